"""The batch bookkeeping in the ledger: every batch and every line, written before the submit.

Two tables in the output's DuckDB file, beside the runs table:
- `_extract_batches`: one row per batch, keyed by our own nonce (`batch_key`), with the
  provider's id once the submit was answered, the last status seen, counts, usage and cost;
- `_extract_batch_lines`: which request body (by hash) went in which batch under which custom id.

A batch is recorded (status `submitting`) and committed before its POST, and updated after the
answer: a process killed at any moment leaves a record saying what may have been submitted. Every
method runs on the ledger's connection in the run's writer thread, one call at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from ..sql import ident

__all__ = ["BATCHES_TABLE", "DEAD", "LINES_TABLE", "BatchRecord", "BatchStore"]

BATCHES_TABLE = "_extract_batches"
LINES_TABLE = "_extract_batch_lines"

#: statuses after which a batch answers nothing more: its lines are submitted again
DEAD = frozenset({"failed", "expired", "cancelled", "rejected", "unsent"})
#: statuses of a batch that will not change any more
TERMINAL = frozenset({"completed", *DEAD})

_BATCH_COLUMNS = (
    ("batch_key", "VARCHAR PRIMARY KEY"),
    ("batch_id", "VARCHAR"),
    ("table_name", "VARCHAR"),
    ("model", "VARCHAR"),
    ("status", "VARCHAR"),
    ("requests", "INTEGER"),
    ("bytes", "BIGINT"),
    ("completed", "INTEGER"),
    ("failed", "INTEGER"),
    ("prompt_tokens", "BIGINT"),
    ("completion_tokens", "BIGINT"),
    ("cost_usd", "DOUBLE"),
    ("error", "VARCHAR"),
    ("run_id", "VARCHAR"),
    # unix seconds taken just before the submit: a lost answer is looked for in the batches
    # created after it
    ("created_after", "DOUBLE"),
    ("submitted_at", "TIMESTAMPTZ"),
    ("finished_at", "TIMESTAMPTZ"),
    ("collected", "BOOLEAN"),
)
_LINE_COLUMNS = (
    ("batch_key", "VARCHAR"),
    ("custom_id", "VARCHAR"),
    ("body_hash", "VARCHAR"),
    ("row_key", "VARCHAR"),
    ("request_hash", "VARCHAR"),
)


@dataclass
class BatchRecord:
    """One batch as the ledger holds it."""

    batch_key: str
    batch_id: str | None
    model: str
    status: str
    requests: int
    created_after: float
    collected: bool = False
    error: str | None = None


def _ddl(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{ident(n)} {t}" for n, t in columns)


class BatchStore:
    """Reads and writes the two batch tables on a ledger connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str):
        self.con = con
        self.table = table

    @staticmethod
    def ensure(con: duckdb.DuckDBPyConnection) -> None:
        """Create the tables if they are missing."""
        con.execute(f"CREATE TABLE IF NOT EXISTS {BATCHES_TABLE} ({_ddl(_BATCH_COLUMNS)})")
        con.execute(f"CREATE TABLE IF NOT EXISTS {LINES_TABLE} ({_ddl(_LINE_COLUMNS)})")

    def open_batches(self) -> tuple[list[BatchRecord], dict[str, list[tuple[str, str]]]]:
        """The batches of this table not yet collected, and their lines by body hash:
        `{body_hash: [(batch_key, custom_id), ...]}`, oldest batch first."""
        rows = self.con.execute(
            f"SELECT batch_key, batch_id, model, status, requests, created_after, collected, "
            f"error FROM {BATCHES_TABLE} WHERE table_name = ? AND NOT collected "
            "ORDER BY created_after",
            [self.table],
        ).fetchall()
        records = [BatchRecord(*r) for r in rows]
        lines: dict[str, list[tuple[str, str]]] = {}
        if records:
            found = self.con.execute(
                f"SELECT l.batch_key, l.custom_id, l.body_hash FROM {LINES_TABLE} l "
                f"JOIN {BATCHES_TABLE} b USING (batch_key) WHERE b.table_name = ? "
                "AND NOT b.collected ORDER BY b.created_after",
                [self.table],
            ).fetchall()
            for key, cid, digest in found:
                lines.setdefault(digest, []).append((key, cid))
        return records, lines

    def known_ids(self) -> set[str]:
        """Every provider batch id the ledger knows, of any table."""
        rows = self.con.execute(
            f"SELECT batch_id FROM {BATCHES_TABLE} WHERE batch_id IS NOT NULL"
        ).fetchall()
        return {r[0] for r in rows}

    def add(
        self,
        record: BatchRecord,
        lines: Sequence[tuple[str, str, str, str]],
        size: int,
        run_id: str,
    ) -> None:
        """Record a batch about to be submitted, with its lines (custom id, body hash, row key,
        the row's request hash), in one transaction."""
        self.con.execute("BEGIN")
        try:
            self.con.execute(
                f"INSERT INTO {BATCHES_TABLE} (batch_key, batch_id, table_name, model, status, "
                "requests, bytes, run_id, created_after, collected) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, false)",
                [record.batch_key, record.batch_id, self.table, record.model, record.status,
                 record.requests, size, run_id, record.created_after],
            )  # fmt: skip
            self.con.executemany(
                f"INSERT INTO {LINES_TABLE} VALUES (?, ?, ?, ?, ?)",
                [(record.batch_key, *line) for line in lines],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def update(self, batch_key: str, **values: Any) -> None:
        """Set some columns of a batch (`status`, `batch_id`, counts, usage, ...)."""
        if "status" in values and values["status"] in TERMINAL:
            values.setdefault("finished_at", dt.datetime.now(dt.UTC))
        names = ", ".join(f"{ident(k)} = ?" for k in values)
        self.con.execute(
            f"UPDATE {BATCHES_TABLE} SET {names} WHERE batch_key = ?",
            [*values.values(), batch_key],
        )

    def collected(self, batch_keys: Sequence[str]) -> None:
        """Mark batches whose every line reached its row: later runs need not load them."""
        if batch_keys:
            self.con.executemany(
                f"UPDATE {BATCHES_TABLE} SET collected = true WHERE batch_key = ?",
                [(k,) for k in batch_keys],
            )
