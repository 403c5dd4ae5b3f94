from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from extract.config import SourceConfig
from extract.errors import SourceError
from extract.sources import open_source


def csv(tmp_path: Path, text: str) -> SourceConfig:
    p = tmp_path / "in.csv"
    p.write_text(text)
    return SourceConfig(type="csv", path=p, key="id")


def test_csv_streams_in_order(tmp_path: Path) -> None:
    rows = "".join(f'{i},"text, {i}"\n' for i in range(1, 1001))
    with open_source(csv(tmp_path, "id,text\n" + rows)) as src:
        assert src.columns == ["id", "text"]
        assert src.key_type == "BIGINT"
        assert src.count() == 1000
        assert src.count(limit=10) == 10
        batches = list(src.batches(300))
        assert [len(b) for b in batches] == [300, 300, 300, 100]
        assert batches[0][0] == {"id": 1, "text": "text, 1"}
        assert [r["id"] for b in batches for r in b] == list(range(1, 1001))
        src.check_keys()


def test_broken_csv_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"in\.csv: cannot read the input: "):
        open_source(csv(tmp_path, 'id,text\n1,"a,b"\n2,hello\n3,"broken\n'))


def test_missing_key_column_lists_columns(tmp_path: Path) -> None:
    cfg = csv(tmp_path, "ident,text\n1,a\n")
    with pytest.raises(SourceError) as e:
        open_source(cfg)
    assert str(e.value) == f"{cfg.path}: key column 'id' not found; columns are: ident, text"


def test_duplicate_and_null_keys(tmp_path: Path) -> None:
    dupes = r"duplicate key 'id': 2 \(3 times\), 1 \(2 times\)"
    with (
        open_source(csv(tmp_path, "id,text\n1,a\n2,b\n1,c\n2,d\n2,e\n")) as src,
        pytest.raises(SourceError, match=dupes),
    ):
        src.check_keys()
    with (
        open_source(csv(tmp_path, "id,text\n1,a\n,b\n3,c\n")) as src,
        pytest.raises(
            SourceError, match=r"1 row\(s\) have a null key 'id' \(the first is data row 2\)"
        ),
    ):
        src.check_keys()


def test_parquet_and_duckdb(tmp_path: Path) -> None:
    pq = tmp_path / "in.parquet"
    pl.DataFrame({"id": ["a", "b"], "text": ["x", "y"]}).write_parquet(pq)
    with open_source(SourceConfig(type="parquet", path=pq, key="id")) as src:
        assert list(src.batches(10)) == [[{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]]
    db = tmp_path / "in.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table docs as select range as id, 'doc ' || range as body from range(5)")
    con.close()
    with open_source(SourceConfig(type="duckdb", path=db, key="id", table="docs")) as src:
        assert src.count() == 5
    with open_source(
        SourceConfig(type="duckdb", path=db, key="id", query="select * from docs where id > 2;")
    ) as src:
        assert [r["id"] for b in src.batches(10) for r in b] == [3, 4]
    with pytest.raises(SourceError, match="cannot read the input: Catalog Error"):
        open_source(SourceConfig(type="duckdb", path=db, key="id", table="nope"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(SourceConfig(type="parquet", path=tmp_path / "x.parquet", key="id"))
