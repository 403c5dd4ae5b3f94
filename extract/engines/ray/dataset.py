"""The pipeline's source read as a Ray Dataset, in Ray's read tasks.

Files are read by Ray Data's own readers (a CSV or JSONL file, or a Parquet file or folder);
a DuckDB table or query is cut into ranges of its key, each range read by a task of its own.
Every batch that reaches the driver is cast to the types the driver's source gives the same
columns (DuckDB's), so that a row renders into the same prompt, and hashes to the same request,
as in a local run: the cache and the ledger cannot tell the engines apart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import ray.data
import ray.exceptions

from ... import errors
from ...errors import ExtractError, SourceError
from ...sources.duckdb import DuckDBSource, KeyRanges

if TYPE_CHECKING:
    from ...pipeline import Pipeline

__all__ = ["read_dataset", "typed_batches"]


def _source_schema(pipeline: Pipeline) -> pa.Schema | None:
    """The Arrow schema of the driver's source; None when it has no rows."""
    for batch in pipeline.source.batches(1, 1):
        return batch.schema
    return None


def _quiet() -> None:
    """Ray Data's progress bars and INFO lines would interleave with the run's own progress
    (its errors still raise; the level is set first, since turning the bars off logs a
    warning)."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False


def _csv(path: str, schema: pa.Schema) -> ray.data.Dataset:
    # DuckDB's dialect (sources/csv.py): quoted fields may hold newlines, "" escapes a quote,
    # an empty field is null. Each column is parsed as the type DuckDB inferred for it; text
    # columns as text, so that "007" stays "007".
    types = {
        f.name: pa.string()
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_string_view(f.type)
        else f.type
        for f in schema
    }
    return ray.data.read_csv(
        path,
        file_extensions=None,
        parse_options=pacsv.ParseOptions(
            delimiter=",", quote_char='"', double_quote=True, newlines_in_values=True
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _reader(ranges: KeyRanges) -> Callable[[Any], Any]:
    """The map_batches function that reads the ranges its batch names."""

    def read(batch: Any) -> Any:
        return pa.concat_tables([ranges.read(int(i)) for i in batch["range"]])

    return read


def read_dataset(pipeline: Pipeline, limit: int | None, parts: int) -> ray.data.Dataset | None:
    """The source (its first `limit` rows) as a Ray Dataset read in about `parts` pieces at
    least; None when the source has no rows."""
    cfg = pipeline.config.source
    source = pipeline.source
    _quiet()
    schema = _source_schema(pipeline)
    if schema is None:
        return None
    path = str(cfg.path)
    ds: ray.data.Dataset
    if cfg.type == "duckdb":
        assert isinstance(source, DuckDBSource)
        # the limit is applied before the cut: the same rows as a local run's first `limit`
        ranges = source.key_ranges(parts, limit)
        ds = ray.data.from_items(
            [{"range": i} for i in range(len(ranges))], override_num_blocks=len(ranges)
        ).map_batches(_reader(ranges), batch_size=1, batch_format="numpy")
        return ds
    if cfg.type == "csv":
        ds = _csv(path, schema)
    elif cfg.type == "parquet":
        ds = ray.data.read_parquet(path)
    elif cfg.type == "jsonl":
        gz = path.endswith(".gz")
        ds = ray.data.read_json(
            path,
            lines=True,
            file_extensions=None,
            arrow_open_stream_args={"compression": "gzip"} if gz else None,
        )
    else:
        # rows handed over from Python live in the driver: they are put in Ray's object store
        tables = [pa.Table.from_batches([b]) for b in source.batches(pipeline.batch_size)]
        ds = ray.data.from_arrow(tables)
    if limit is not None:
        # which rows are the first `limit` depends on the order being kept
        ds.context.execution_options.preserve_order = True
        ds = ds.limit(limit)
    return ds


#: a line of a Ray task's traceback text that shows one of our errors and its message
_OURS = re.compile(rf"\b(?:{'|'.join(errors.__all__)}): (.+)$", re.M)


def _why(e: BaseException) -> str:
    """One line of what failed in a Ray task: our own error's message, found in the chain of
    causes Ray wraps it in or in their traceback text, else the innermost cause's first line."""
    seen: list[BaseException] = []
    at: BaseException | None = e
    while at is not None and at not in seen and len(seen) < 20:
        if isinstance(at, ExtractError):
            return str(at).splitlines()[0]
        found = _OURS.search(str(at))
        if found:
            return found.group(1)
        seen.append(at)
        at = getattr(at, "cause", None) or at.__cause__ or at.__context__
    inner = seen[-1]
    return (str(inner).strip().splitlines() or [type(inner).__name__])[0]


def typed_batches(pipeline: Pipeline, ds: ray.data.Dataset) -> Iterator[pa.Table]:
    """The dataset's rows a batch at a time, each cast to the driver's source schema."""
    schema = _source_schema(pipeline)
    assert schema is not None
    label = pipeline.source.label
    batches = iter(ds.iter_batches(batch_size=pipeline.batch_size, batch_format="pyarrow"))
    while True:
        try:
            table = next(batches)
        except StopIteration:
            return
        except ray.exceptions.RayError as e:
            raise SourceError(
                f"{label}: Ray could not read the input: {_why(e)}", path=label
            ) from e
        assert isinstance(table, pa.Table)
        try:
            yield table.select(schema.names).cast(schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise SourceError(
                f"{label}: Ray read the input with other columns or types than DuckDB ({e})",
                path=label,
            ) from e
