"""Driving a run.

runner.py        `run(pipeline)`: endpoint up, ledger open, the loop, the run record, down
loop.py          `RowLoop`: rows streamed, settled from the ledger or the cache, or requested
rows.py          `RowWorker`: one row's requests, validation and re-asks
budget.py        `Budget`: run.budget_usd
concurrency.py   `AdaptiveLimit`: how many rows are in flight (AIMD on 429s)
"""

from __future__ import annotations

from .runner import run

__all__ = ["run"]
