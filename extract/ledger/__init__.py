"""The ledger: one DuckDB file that makes runs exactly-once, resumable and incremental.

    tables.py    the tables and their columns (results, errors, cache, runs)
    store.py     `Ledger`: the file opened for a run (lock, DDL, archiving, journal replay,
                 batch commits, run records)
    journal.py   finished rows made durable as they finish, one JSON line each
    writer.py    `LedgerWriter`: the journal, the writer thread, back-pressure, during a run
    reader.py    `LedgerReader`: look-ups for a batch, runs, errors, observed usage
    frames.py    finished rows as Arrow tables for DuckDB's INSERT

No SQL against these tables is written outside this package.
"""

from __future__ import annotations

from .reader import Known, LedgerReader, Observed, classify, open_reader
from .store import Ledger
from .writer import LedgerWriter

__all__ = ["Known", "Ledger", "LedgerReader", "LedgerWriter", "Observed", "classify", "open_reader"]
