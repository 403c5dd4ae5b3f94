"""`extract replay`: ask a random sample of finished rows again and say, field by field, how many
values came back different: the drift of a model or a provider over time.

The sampled rows are rendered from the source as a run renders them and sent through the one run
path, into a scratch output: the cache is bypassed, and nothing of the real output changes but
the report table. Each answer is compared with the one the output holds (its cache keeps every
validated answer as JSON) leaf by leaf: nested models by field, lists as a whole. The result is
appended to `<table>_replay` in the output file, one row per field.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import OutputConfig, PipelineConfig
from .errors import SinkError
from .ledger.store import connect
from .ledger.tables import CACHE_TABLE
from .outputs import open_output
from .results import new_run_id
from .sql import first_line, ident

__all__ = ["FieldDrift", "ReplayResult", "replay"]


@dataclass
class FieldDrift:
    """One field of a replay: values compared and values that changed."""

    field: str
    compared: int = 0
    changed: int = 0

    @property
    def share_changed(self) -> float:
        return self.changed / self.compared if self.compared else 0.0


@dataclass
class ReplayResult:
    replay_id: str
    pipeline: str
    table: str
    model: str
    rows_sampled: int
    rows_replayed: int
    #: sampled rows whose replay ended in an error (their fields are not compared)
    rows_failed: int
    fields: list[FieldDrift] = field(default_factory=list)
    cost_usd: float = 0.0

    def rows(self) -> list[dict[str, Any]]:
        """One mapping per field, for display and for `<table>_replay`."""
        return [
            {
                "field": f.field,
                "compared": f.compared,
                "changed": f.changed,
                "share_changed": round(f.share_changed, 4),
            }
            for f in self.fields
        ]


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """A JSON answer as {field path: value}: objects by key, anything else (lists too) whole."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _answers(path: Path, table: str, key: str, sample: int | None, seed: int) -> dict[Any, Any]:
    """{key: answer} for a random sample of the output's rows (every row when sample is None)."""
    con = connect(path, read_only=True)
    try:
        k = ident(key)
        query = (
            f"SELECT t.{k}, c.output FROM {ident(table)} t "
            f"JOIN {CACHE_TABLE} c ON c.request_hash = t._request_hash "
            f"QUALIFY row_number() OVER (PARTITION BY t.{k}) = 1"
        )
        if sample is not None:
            how = f"reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"
            query = f"SELECT * FROM ({query}) USING SAMPLE {how}"
        rows = con.execute(query).fetchall()
    finally:
        con.close()
    return {key_value: json.loads(output) for key_value, output in rows}


def replay(config: PipelineConfig, *, sample: int, seed: int = 0) -> ReplayResult:
    """Re-request `sample` random rows of the output and compare their answers field by field;
    the result is appended to `<table>_replay`."""
    from .pipeline import prepare
    from .runner import run

    ledger_path = open_output(config.output, config.table).ledger_path
    if not ledger_path.exists():
        raise SinkError(
            f"{ledger_path}: no output yet (run the pipeline first)", path=str(ledger_path)
        )
    before = _answers(ledger_path, config.table, config.source.key, sample, seed)
    with tempfile.TemporaryDirectory(prefix="extract-replay-") as tmp:
        scratch_path = Path(tmp) / "replay.duckdb"
        scratch = config.model_copy(
            update={
                "output": OutputConfig(type="duckdb", path=scratch_path, table=config.table),
                "run": config.run.model_copy(update={"mode": "sync"}),
            }
        )
        with prepare(scratch) as pipeline:
            summary = run(pipeline, only=set(before))
        after = _answers(scratch_path, config.table, config.source.key, None, seed)
    drift: dict[str, FieldDrift] = {}
    for key_value, old in before.items():
        new = after.get(key_value)
        if new is None:
            continue
        old_leaves, new_leaves = _leaves(old), _leaves(new)
        for path in dict.fromkeys([*old_leaves, *new_leaves]):
            f = drift.setdefault(path, FieldDrift(path))
            f.compared += 1
            f.changed += old_leaves.get(path) != new_leaves.get(path)
    result = ReplayResult(
        replay_id=new_run_id(),
        pipeline=config.name,
        table=config.table,
        model=config.model.name,
        rows_sampled=len(before),
        rows_replayed=sum(1 for k in before if k in after),
        rows_failed=sum(1 for k in before if k not in after),
        fields=list(drift.values()),
        cost_usd=summary.cost_usd,
    )
    _store(ledger_path, result)
    return result


def _store(path: Path, result: ReplayResult) -> None:
    table = ident(f"{result.table}_replay")
    con = connect(path)
    try:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (replay_id VARCHAR, replayed_at TIMESTAMPTZ, "
            "pipeline VARCHAR, model VARCHAR, rows_sampled BIGINT, rows_replayed BIGINT, "
            "rows_failed BIGINT, field VARCHAR, compared BIGINT, changed BIGINT, "
            "share_changed DOUBLE)"
        )
        now = dt.datetime.now(dt.UTC)
        con.executemany(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (result.replay_id, now, result.pipeline, result.model, result.rows_sampled,
                 result.rows_replayed, result.rows_failed, f.field, f.compared, f.changed,
                 f.share_changed)
                for f in result.fields
            ],
        )  # fmt: skip
    except Exception as e:
        raise SinkError(f"{path}: cannot write {table} ({first_line(e)})", path=str(path)) from e
    finally:
        con.close()

