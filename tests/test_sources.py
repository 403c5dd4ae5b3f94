from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from pydantic import ValidationError

from extract.config import SourceConfig
from extract.errors import SourceError
from extract.sources import RelationSource, Source, open_source


def csv(tmp_path: Path, text: str) -> SourceConfig:
    p = tmp_path / "in.csv"
    p.write_text(text)
    return SourceConfig(type="csv", path=p, key="id")


def rows_of(src: Source, size: int = 10) -> list[dict[str, Any]]:
    """Every row of the source, read through `batches`."""
    out: list[dict[str, Any]] = []
    for batch in src.batches(size):
        assert isinstance(batch, pa.RecordBatch)
        out.extend(batch.to_pylist())
    return out


def test_csv_streams_in_order(tmp_path: Path) -> None:
    rows = "".join(f'{i},"text, {i}"\n' for i in range(1, 1001))
    cfg = csv(tmp_path, "id,text\n" + rows)
    # a file source resolves relative paths against its own folder, not the base_dir passed
    with open_source(cfg, base_dir=tmp_path / "elsewhere") as src:
        assert src.columns == ["id", "text"]
        assert src.key_type == "BIGINT"
        assert src.label == str(tmp_path / "in.csv")
        assert src.base_dir == tmp_path
        assert src.count() == 1000
        assert src.count(limit=10) == 10
        batches = list(src.batches(300))
        assert all(isinstance(b, pa.RecordBatch) for b in batches)
        assert [b.num_rows for b in batches] == [300, 300, 300, 100]
        assert batches[0].to_pylist()[0] == {"id": 1, "text": "text, 1"}
        assert [r["id"] for b in batches for r in b.to_pylist()] == list(range(1, 1001))
        assert [b.num_rows for b in src.batches(300, limit=450)] == [300, 150]
        src.check_keys()


def test_broken_csv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"in\.csv: cannot read the input: "):
        open_source(csv(tmp_path, 'id,text\n1,"a,b"\n2,hello\n3,"broken\n'), base_dir=tmp_path)


def test_missing_key_column_lists_columns(tmp_path: Path) -> None:
    cfg = csv(tmp_path, "ident,text\n1,a\n")
    with pytest.raises(SourceError) as e:
        open_source(cfg, base_dir=tmp_path)
    assert str(e.value) == f"{cfg.path}: key column 'id' not found; columns are: ident, text"


def test_duplicate_and_null_keys(tmp_path: Path) -> None:
    dupes = r"duplicate key 'id': 2 \(3 times\), 1 \(2 times\)"
    with (
        open_source(csv(tmp_path, "id,text\n1,a\n2,b\n1,c\n2,d\n2,e\n"), base_dir=tmp_path) as src,
        pytest.raises(SourceError, match=dupes),
    ):
        src.check_keys()
    with (
        open_source(csv(tmp_path, "id,text\n1,a\n,b\n3,c\n"), base_dir=tmp_path) as src,
        pytest.raises(
            SourceError, match=r"1 row\(s\) have a null key 'id' \(the first is data row 2\)"
        ),
    ):
        src.check_keys()


def test_parquet_and_duckdb(tmp_path: Path) -> None:
    pq = tmp_path / "in.parquet"
    pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"]}).write_parquet(pq)
    with open_source(SourceConfig(type="parquet", path=pq, key="id"), base_dir=tmp_path) as src:
        batches = list(src.batches(10))
        assert [b.to_pylist() for b in batches] == [
            [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]
        ]
    db = tmp_path / "in.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table docs as select range as id, 'doc ' || range as body from range(5)")
    con.close()
    with open_source(
        SourceConfig(type="duckdb", path=db, key="id", table="docs"), base_dir=tmp_path
    ) as src:
        assert src.count() == 5
    with open_source(
        SourceConfig(type="duckdb", path=db, key="id", query="select * from docs where id > 2;"),
        base_dir=tmp_path,
    ) as src:
        assert [r["id"] for b in src.batches(10) for r in b.to_pylist()] == [3, 4]
    with pytest.raises(SourceError, match="cannot read the input: Catalog Error"):
        open_source(SourceConfig(type="duckdb", path=db, key="id", table="nope"), base_dir=tmp_path)


def test_duckdb_query_without_a_file_uses_the_base_dir(tmp_path: Path) -> None:
    cfg = SourceConfig(type="duckdb", key="id", query="select range as id from range(3)")
    with open_source(cfg, base_dir=tmp_path / "pipes") as src:
        assert src.label == "duckdb query"
        assert src.base_dir == tmp_path / "pipes"
        assert rows_of(src) == [{"id": 0}, {"id": 1}, {"id": 2}]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(
            SourceConfig(type="parquet", path=tmp_path / "x.parquet", key="id"), base_dir=tmp_path
        )


# ---------------------------------------------------------------------------------------- jsonl

JSONL_ROWS: list[dict[str, Any]] = [
    {"id": 3, "text": "third", "meta": {"lang": "en", "n": 1}},
    {"id": 1, "text": "first", "meta": {"lang": "fr", "n": 2}},
    {"id": 2, "text": "second", "meta": {"lang": "de", "n": 3}},
]


def jsonl_text(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def check_jsonl(path: Path, base_dir: Path) -> None:
    with open_source(SourceConfig(type="jsonl", path=path, key="id"), base_dir=base_dir) as src:
        assert isinstance(src, RelationSource)
        assert src.columns == ["id", "text", "meta"]
        assert src.key_type == "BIGINT"
        assert src.types == {
            "id": "BIGINT",
            "text": "VARCHAR",
            "meta": "STRUCT(lang VARCHAR, n BIGINT)",
        }
        assert src.label == str(path)
        assert src.base_dir == path.parent
        assert src.count() == 3
        assert src.count(limit=2) == 2
        batches = list(src.batches(2))
        assert [b.num_rows for b in batches] == [2, 1]
        # input order, not key order; the nested object comes back as a dict
        assert [r for b in batches for r in b.to_pylist()] == JSONL_ROWS
        assert [r["id"] for r in rows_of(src)] == [3, 1, 2]
        src.check_keys()


def test_jsonl_columns_types_and_order(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_text(jsonl_text(JSONL_ROWS))
    check_jsonl(p, tmp_path / "elsewhere")


def test_jsonl_gz_reads_the_same(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(jsonl_text(JSONL_ROWS))
    assert p.read_bytes()[:2] == b"\x1f\x8b"  # really gzip
    check_jsonl(p, tmp_path)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("not json", "Invalid Input Error: Malformed JSON in file "),
        ("[1, 2]", "Binder Error: json_read expected records"),
    ],
)
def test_jsonl_broken_line_names_the_file(tmp_path: Path, line: str, error: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": 1, "text": "a"}\n' + line + '\n{"id": 3, "text": "c"}\n')
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(type="jsonl", path=p, key="id"), base_dir=tmp_path)
    assert re.match(re.escape(f"{p}: cannot read the input: {error}"), str(e.value))
    assert e.value.path == str(p)  # type: ignore[attr-defined]


def test_jsonl_duplicate_and_null_keys(tmp_path: Path) -> None:
    p = tmp_path / "dup.jsonl"
    p.write_text(jsonl_text([{"id": k} for k in ["a", "b", "a", "b", "b", "c"]]))
    with (
        open_source(SourceConfig(type="jsonl", path=p, key="id"), base_dir=tmp_path) as src,
        pytest.raises(SourceError) as e,
    ):
        src.check_keys()
    assert str(e.value) == f"{p}: duplicate key 'id': 'b' (3 times), 'a' (2 times)"
    assert e.value.row_key == "b"  # type: ignore[attr-defined]
    p.write_text('{"id": "a"}\n{"id": "b"}\n{"id": null}\n{"text": "no id"}\n')
    with (
        open_source(SourceConfig(type="jsonl", path=p, key="id"), base_dir=tmp_path) as src,
        pytest.raises(SourceError) as e,
    ):
        src.check_keys()
    assert str(e.value) == f"{p}: 2 row(s) have a null key 'id' (the first is data row 3)"


def test_jsonl_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "none.jsonl"
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(type="jsonl", path=p, key="id"), base_dir=tmp_path)
    assert str(e.value) == f"{p}: no such file"


def test_jsonl_mixed_key_is_a_string(tmp_path: Path) -> None:
    p = tmp_path / "mixed.jsonl"
    p.write_text('{"id": 1}\n{"id": "x"}\n')
    with open_source(SourceConfig(type="jsonl", path=p, key="id"), base_dir=tmp_path) as src:
        assert src.key_type == "VARCHAR"
        assert rows_of(src) == [{"id": "1"}, {"id": "x"}]


# ---------------------------------------------------------------------------------------- python

ROWS: list[dict[str, Any]] = [
    {"id": 1, "text": "a"},
    {"id": 2, "text": "b"},
    {"id": 3, "text": "c"},
]
PYTHON = SourceConfig(type="python", key="id")


def _generator() -> Iterator[dict[str, Any]]:
    yield from (dict(r) for r in ROWS)


ROW_KINDS = {
    "polars": lambda: pl.DataFrame(ROWS),
    "arrow_table": lambda: pa.Table.from_pylist(ROWS),
    "arrow_batch": lambda: pa.RecordBatch.from_pylist(ROWS),
    "list": lambda: [dict(r) for r in ROWS],
    "generator": _generator,
}



@pytest.mark.parametrize("kind", list(ROW_KINDS))
def test_python_rows_shape(tmp_path: Path, kind: str) -> None:
    with open_source(PYTHON, base_dir=tmp_path, rows=ROW_KINDS[kind]()) as src:
        assert src.columns == ["id", "text"]
        assert src.key == "id"
        assert src.key_type == "BIGINT"
        assert src.label == "rows from Python"
        assert src.base_dir == tmp_path
        assert src.count() == 3
        assert src.count(limit=2) == 2
        src.check_keys()


@pytest.mark.parametrize("kind", list(ROW_KINDS))
def test_python_rows_read_the_same(tmp_path: Path, kind: str) -> None:
    with open_source(PYTHON, base_dir=tmp_path, rows=ROW_KINDS[kind]()) as src:
        batches = list(src.batches(2))
        assert [b.num_rows for b in batches] == [2, 1]
        assert [r for b in batches for r in b.to_pylist()] == ROWS
        assert [b.num_rows for b in src.batches(2, limit=1)] == [1]


def test_pandas_rows(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    with open_source(PYTHON, base_dir=tmp_path, rows=pd.DataFrame(ROWS)) as src:
        assert src.columns == ["id", "text"]
        assert src.key_type == "BIGINT"
        assert src.count() == 3


def test_rows_replace_any_configured_source_and_keep_its_key(tmp_path: Path) -> None:
    cfg = csv(tmp_path, "ident,text\n1,a\n")  # the file would fail: it has no 'id' column
    with open_source(cfg, base_dir=tmp_path / "pipes", rows=[{"text": "a", "id": "k"}]) as src:
        assert src.key == "id"
        assert src.key_type == "VARCHAR"
        assert src.columns == ["text", "id"]
        assert src.label == "rows from Python"
        assert src.base_dir == tmp_path / "pipes"
        assert src.count() == 1
    missing = tmp_path / "missing.parquet"
    parquet = SourceConfig(type="parquet", path=missing, key="text")
    with open_source(parquet, base_dir=tmp_path, rows=pl.DataFrame(ROWS)) as src:
        assert src.key == "text"
        assert src.key_type == "VARCHAR"
        assert src.count() == 3


def test_python_rows_duplicate_and_null_keys(tmp_path: Path) -> None:
    dupes = [{"id": k, "text": "t"} for k in [1, 2, 1, 2, 2, 3]]
    for rows in (dupes, pl.DataFrame(dupes), pa.Table.from_pylist(dupes), iter(dupes)):
        with (
            open_source(PYTHON, base_dir=tmp_path, rows=rows) as src,
            pytest.raises(SourceError) as e,
        ):
            src.check_keys()
        assert str(e.value) == "rows from Python: duplicate key 'id': 2 (3 times), 1 (2 times)"
        assert e.value.row_key == 2  # type: ignore[attr-defined]
        assert e.value.path == "rows from Python"  # type: ignore[attr-defined]
    nulls = [{"id": "a"}, {"id": None}, {"id": "c"}, {"id": None}]
    with (
        open_source(PYTHON, base_dir=tmp_path, rows=nulls) as src,
        pytest.raises(SourceError) as e,
    ):
        src.check_keys()
    assert (
        str(e.value) == "rows from Python: 2 row(s) have a null key 'id' (the first is data row 2)"
    )


def test_python_rows_without_the_key_column(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as e:
        open_source(PYTHON, base_dir=tmp_path, rows=[{"ident": 1, "text": "a"}])
    assert str(e.value) == "rows from Python: key column 'id' not found; columns are: ident, text"


NOT_ROWS = "source rows: expected a DataFrame, an Arrow table or an iterable of dicts, not a "


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([1, 2, 3], "source rows: row 1 is a int, not a dict"),
        ([{"id": 1}, {"id": 2}, ["id", 3]], "source rows: row 3 is a list, not a dict"),
        ((r for r in [{"id": 1}, "id"]), "source rows: row 2 is a str, not a dict"),
        ({"id": 1, "text": "a"}, NOT_ROWS + "dict"),
        ({"id": [1, 2], "text": ["a", "b"]}, NOT_ROWS + "dict"),
        ("id,text\n1,a\n", NOT_ROWS + "str"),
        (b'{"id": 1}', NOT_ROWS + "bytes"),
        (42, NOT_ROWS + "int"),
    ],
    ids=["ints", "list-row", "str-row", "dict", "dict-of-lists", "str", "bytes", "int"],
)
def test_python_rows_refused(tmp_path: Path, rows: Any, message: str) -> None:
    with pytest.raises(SourceError) as e:
        open_source(PYTHON, base_dir=tmp_path, rows=rows)
    assert str(e.value) == message


def test_python_rows_that_are_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as e:
        open_source(PYTHON, base_dir=tmp_path, rows=[{"id": 1}, {"id": "x"}])
    assert str(e.value).startswith("source rows: cannot be read as a table (")


def test_python_source_without_rows(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as e:
        open_source(PYTHON, base_dir=tmp_path)
    assert str(e.value).startswith("source type python: no rows were given")
    assert str(e.value) == (
        "source type python: no rows were given; pass them as "
        "extract.run_pipeline(path, source=rows), or give the pipeline a file source"
    )


@pytest.mark.parametrize(
    "extra",
    [{"path": "in.csv"}, {"table": "docs"}, {"query": "select 1 as id"}],
    ids=["path", "table", "query"],
)
def test_python_source_config_takes_only_a_key(extra: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as e:
        SourceConfig.model_validate({"type": "python", "key": "id", **extra})
    errors = e.value.errors()
    assert len(errors) == 1
    assert errors[0]["type"] == "value_error"
    assert errors[0]["msg"] == (
        "Value error, a python source takes only 'key': its rows come from Python"
    )
    assert SourceConfig(type="python", key="id").path is None
