"""The rows someone should check, each with its input text, values, confidence and grounding.

A row needs review when it failed (`<table>_errors`), when the latest evaluation found a wrong
value in it, when some of its values were not found in its input text (`_ungrounded > 0`) or
when the model was unsure of some value (`_min_confidence` below the threshold). At most `cap`
rows are read in full, in that order of reasons; the counts cover every row.

Input texts are read from the pipeline's source for those rows only (filtered by key in SQL),
and rendered through the pipeline's prompt columns exactly as the model saw them, so the
character offsets of `_grounding` point into them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from ..config import PipelineConfig
from ..errors import ExtractError, SourceError
from ..sql import first_line, ident
from ..trust.shape import Fields, Items, Shape, field_path
from .data import GROUNDING_KEYS, Catalog, latest_evaluated, rows, schema_fields, type_shape
from .facts import FOUND, Highlight, Mismatch, Review, ReviewRow, RowError, ValueLine

__all__ = ["RAW_CHARS", "REASONS", "read_review", "show_value", "source_texts", "walk"]

#: why a row is listed, in the order the list shows them
REASONS = ("failed", "wrong", "ungrounded", "low_confidence")
#: characters of a failed row's raw answer that the report keeps
RAW_CHARS = 600


def _shorten(text: str | None, limit: int = RAW_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 ({len(text) - limit:,} more characters)"


class _Keys:
    """The conditions that put a row of the result table on the list, as SQL."""

    def __init__(self, catalog: Catalog, config: PipelineConfig, threshold: float):
        self.catalog = catalog
        self.table = config.table
        self.errors = f"{config.table}_errors"
        self.detail = f"{config.table}_eval_rows"
        self.key = config.source.key
        self.k = ident(config.source.key)
        self.threshold = threshold

    def wrong_sql(self) -> str | None:
        """Keys (as text, as `extract eval` stores them) with a wrong value in the latest
        evaluation; needs one parameter, the evaluation's time."""
        if not self.catalog.has(self.detail, "correct") or not self.catalog.has(self.detail, "key"):
            return None
        return (
            f"SELECT DISTINCT key FROM {ident(self.detail)} "
            "WHERE evaluated_at = ? AND correct = false"
        )

    def conditions(self) -> dict[str, str]:
        """reason -> SQL condition on the result table (reasons the output can tell)."""
        out: dict[str, str] = {}
        if self.wrong_sql() is not None:
            out["wrong"] = f"CAST({self.k} AS VARCHAR) IN ({self.wrong_sql()})"
        if self.catalog.has(self.table, "_ungrounded"):
            out["ungrounded"] = "_ungrounded > 0"
        if self.catalog.has(self.table, "_min_confidence"):
            out["low_confidence"] = "_min_confidence < ?"
        return out

    def params(self, reason: str, evaluated_at: Any) -> list[Any]:
        if reason == "wrong":
            return [evaluated_at]
        if reason == "low_confidence":
            return [self.threshold]
        return []


_ORDER = {
    "wrong": "{k}",
    "ungrounded": "_ungrounded DESC, {k}",
    "low_confidence": "_min_confidence, {k}",
}


def _pick(
    con: duckdb.DuckDBPyConnection, keys: _Keys, cap: int, evaluated_at: Any
) -> tuple[list[Any], dict[str, int], int]:
    """(keys to show in order, count of each reason, distinct rows with any reason)."""
    picked: dict[str, Any] = {}
    counts: dict[str, int] = {}
    total = 0
    if keys.catalog.has(keys.errors, keys.key):
        counts["failed"] = int(rows(con, f"SELECT count(*) AS n FROM {ident(keys.errors)}")[0]["n"])
        total += counts["failed"]
        for r in rows(
            con, f"SELECT {keys.k} AS k FROM {ident(keys.errors)} ORDER BY {keys.k} LIMIT ?", [cap]
        ):
            picked.setdefault(repr(r["k"]), r["k"])
    conditions = keys.conditions()
    if not keys.catalog.has(keys.table) or not conditions:
        return list(picked.values())[:cap], counts, total
    table = ident(keys.table)
    for reason, cond in conditions.items():
        params = keys.params(reason, evaluated_at)
        counted = rows(con, f"SELECT count(*) AS n FROM {table} WHERE {cond}", params)
        counts[reason] = int(counted[0]["n"])
        order = _ORDER[reason].replace("{k}", keys.k)
        for r in rows(
            con,
            f"SELECT {keys.k} AS k FROM {table} WHERE {cond} ORDER BY {order} LIMIT ?",
            [*params, cap],
        ):
            picked.setdefault(repr(r["k"]), r["k"])
    # keys are unique across the two tables, so the distinct total is a sum
    any_sql = " OR ".join(f"({c})" for c in conditions.values())
    any_params = [p for reason in conditions for p in keys.params(reason, evaluated_at)]
    total += rows(con, f"SELECT count(*) AS n FROM {table} WHERE {any_sql}", any_params)[0]["n"]
    return list(picked.values())[:cap], counts, total


# ---------------------------------------------------------------------- one row's values


def _is_grounding_leaf(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == GROUNDING_KEYS


def walk(
    shape: Shape,
    value: Any,
    confidence: Any,
    grounding: Any,
    path: str,
    out: list[ValueLine],
    spans: list[Highlight],
) -> None:
    """One ValueLine per leaf value of a row (a null model or an empty list is one line), and
    a Highlight per value found in the text. The three trees mirror each other."""
    # a value the trust columns keep whole (a tuple stored as a STRUCT, say) is one leaf
    whole = isinstance(confidence, float) or _is_grounding_leaf(grounding)
    if isinstance(shape, Fields) and isinstance(value, dict) and not whole:
        for name, sub in shape.fields:
            walk(
                sub,
                value.get(name),
                confidence.get(name) if isinstance(confidence, dict) else None,
                grounding.get(name) if isinstance(grounding, dict) else None,
                f"{path}.{name}" if path else name,
                out,
                spans,
            )
        return
    if isinstance(shape, Items) and isinstance(value, list) and value:
        for i, item in enumerate(value):
            walk(
                shape.item,
                item,
                confidence[i] if isinstance(confidence, list) and i < len(confidence) else None,
                grounding[i] if isinstance(grounding, list) and i < len(grounding) else None,
                f"{path}[{i}]",
                out,
                spans,
            )
        return
    status = grounding.get("status") if _is_grounding_leaf(grounding) else None
    conf = float(confidence) if isinstance(confidence, int | float) else None
    out.append(ValueLine(path, value, conf, status))
    if status in FOUND and isinstance(grounding, dict):
        start, end, column = grounding.get("start"), grounding.get("end"), grounding.get("column")
        if isinstance(start, int) and isinstance(end, int) and isinstance(column, str):
            spans.append(Highlight(column, start, end, str(status), path))


def _flag_wrong(values: list[ValueLine], mismatches: Sequence[Mismatch]) -> list[ValueLine]:
    """The values with the evaluation's mismatch attached where the field paths meet."""
    by_field = {m.field: m for m in mismatches}
    out = []
    for v in values:
        m = by_field.get(v.path) or by_field.get(field_path(v.path))
        out.append(ValueLine(v.path, v.value, v.confidence, v.grounding, m) if m else v)
    return out


# ---------------------------------------------------------------------- source texts


def source_texts(
    config: PipelineConfig, keys: Sequence[Any]
) -> tuple[dict[str, dict[str, str]], str | None]:
    """The input texts of the rows with these keys (by `repr(key)`), as the prompt put them in
    the messages; and a note when they cannot be read."""
    from ..prompt import Prompt
    from ..sources import RelationSource, open_source

    if not keys:
        return {}, None
    if config.source.type == "python":
        return {}, (
            "input texts are not shown: the source is rows handed over from Python, "
            "which the report cannot read again"
        )
    try:
        source = open_source(config.source, base_dir=config.base_dir)
    except SourceError as e:
        return {}, f"input texts are not shown: {e}"
    try:
        prompt = Prompt(
            config.prompt,
            columns=source.columns,
            where=str(config.file),
            image_base=source.base_dir,
        )
        key = config.source.key
        wanted = [key, *(c for c in prompt.text_columns if c != key)]
        found: list[dict[str, Any]] = []
        if isinstance(source, RelationSource):
            # only the review rows, filtered where the source is read
            cursor = source.cursor().execute(
                f"SELECT {', '.join(ident(c) for c in wanted)} FROM {source.relation()} "
                f"WHERE list_contains(?, {ident(key)})",
                [list(keys)],
            )
            names = [d[0] for d in cursor.description or []]
            found = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        else:
            wanted_keys = {repr(k) for k in keys}
            for batch in source.batches(10_000):
                found.extend(
                    row for row in batch.select(wanted).to_pylist() if repr(row[key]) in wanted_keys
                )
        return {repr(r[key]): prompt.texts(r) for r in found}, None
    # a source that changed since the run (a column gone, a file unreadable) must not cost the
    # whole report: the rows are listed without their text, and the page says why
    except ExtractError as e:
        return {}, f"input texts are not shown: {e}"
    except (duckdb.Error, OSError, ValueError) as e:
        reason = first_line(e) if isinstance(e, duckdb.Error) else str(e)
        return {}, f"input texts are not shown: cannot read them from {source.label} ({reason})"
    finally:
        source.close()


# ---------------------------------------------------------------------- the review list


def read_review(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    config: PipelineConfig,
    *,
    threshold: float,
    cap: int,
) -> Review:
    """The rows to check, at most `cap`, with everything the report shows about each."""
    keys = _Keys(catalog, config, threshold)
    evaluated_at = latest_evaluated(con, catalog, config.table)
    picked, counts, total = _pick(con, keys, cap, evaluated_at)
    notes: list[str] = []
    if not catalog.has(config.table, "_min_confidence"):
        notes.append("no _min_confidence column: rows are not picked by confidence")
    if not catalog.has(config.table, "_ungrounded"):
        notes.append("no _ungrounded column: rows are not picked by grounding")
    texts, note = source_texts(config, picked)
    if note:
        notes.append(note)
    failed = _failed_rows(con, catalog, config, picked)
    ok = _result_rows(con, catalog, config, picked, threshold)
    mismatches = _mismatches(con, keys, picked, evaluated_at)
    out: list[ReviewRow] = []
    for k in picked:
        seen_as = repr(k)
        base = failed.get(seen_as) or ok.get(seen_as)
        if base is None:  # written or deleted between two queries: nothing to show
            continue
        wrong = tuple(mismatches.get(str(k), ()))
        reasons = base.reasons + (("wrong",) if wrong and "failed" not in base.reasons else ())
        out.append(
            ReviewRow(
                key=k,
                reasons=tuple(r for r in REASONS if r in reasons),
                min_confidence=base.min_confidence,
                ungrounded=base.ungrounded,
                error=base.error,
                texts=texts.get(seen_as, {}),
                highlights=base.highlights,
                values=tuple(_flag_wrong(list(base.values), wrong)),
                mismatches=wrong,
            )
        )
    return Review(tuple(out), total, counts, threshold, cap, tuple(notes))


def _failed_rows(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, config: PipelineConfig, keys: list[Any]
) -> dict[str, ReviewRow]:
    errors = f"{config.table}_errors"
    if not keys or not catalog.has(errors, config.source.key):
        return {}
    names = ["_error_class", "_message", "_raw_output", "_attempts"]
    k = ident(config.source.key)
    found = rows(
        con,
        f"SELECT {k} AS __key, {catalog.select(errors, names)} FROM {ident(errors)} "
        f"WHERE list_contains(?, {k})",
        [keys],
    )
    return {
        repr(r["__key"]): ReviewRow(
            key=r["__key"],
            reasons=("failed",),
            error=RowError(
                r["_error_class"], r["_message"], _shorten(r["_raw_output"]), r["_attempts"]
            ),
        )
        for r in found
    }


def _result_rows(
    con: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    config: PipelineConfig,
    keys: list[Any],
    threshold: float,
) -> dict[str, ReviewRow]:
    table = config.table
    if not keys or not catalog.has(table, config.source.key):
        return {}
    fields = schema_fields(catalog, table, config.source.key)
    shape = Fields(tuple((n, type_shape(t)) for n, t in fields))
    trust = ["_confidence", "_min_confidence", "_grounding", "_ungrounded"]
    k = ident(config.source.key)
    columns = ", ".join([f"{k} AS __key", *(ident(n) for n, _ in fields)])
    found = rows(
        con,
        f"SELECT {columns}, {catalog.select(table, trust)} FROM {ident(table)} "
        f"WHERE list_contains(?, {k})",
        [keys],
    )
    out: dict[str, ReviewRow] = {}
    for r in found:
        values: list[ValueLine] = []
        spans: list[Highlight] = []
        walk(shape, {n: r[n] for n, _ in fields}, r["_confidence"], r["_grounding"], "", values,
             spans)  # fmt: skip
        low, ungrounded = r["_min_confidence"], r["_ungrounded"]
        reasons = []
        if ungrounded:
            reasons.append("ungrounded")
        if low is not None and low < threshold:
            reasons.append("low_confidence")
        out[repr(r["__key"])] = ReviewRow(
            key=r["__key"],
            reasons=tuple(reasons),
            min_confidence=low,
            ungrounded=ungrounded,
            highlights=tuple(spans),
            values=tuple(values),
        )
    return out


def _mismatches(
    con: duckdb.DuckDBPyConnection, keys: _Keys, picked: list[Any], evaluated_at: Any
) -> dict[str, list[Mismatch]]:
    """The latest evaluation's wrong values of the picked rows, by key as text."""
    if keys.wrong_sql() is None or evaluated_at is None or not picked:
        return {}
    names = ["key", "field", "expected", "actual", "score"]
    found = rows(
        con,
        f"SELECT {keys.catalog.select(keys.detail, names)} FROM {ident(keys.detail)} "
        "WHERE evaluated_at = ? AND correct = false AND list_contains(?, key) ORDER BY field",
        [evaluated_at, [str(k) for k in picked]],
    )
    out: dict[str, list[Mismatch]] = {}
    for r in found:
        out.setdefault(str(r["key"]), []).append(
            Mismatch(str(r["field"]), _decoded(r["expected"]), _decoded(r["actual"]), r["score"])
        )
    return out


def _decoded(text: Any) -> Any:
    """A value `extract eval` stored as JSON text; text that is not JSON stays as it is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def show_value(value: Any) -> str:
    """A value as the report prints it: JSON's spelling of null, booleans, lists and objects."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
