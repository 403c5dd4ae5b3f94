"""extract.schema.columns: DuckDB types, Arrow types, batches written as the ledger writes."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pytest
from corpus import CORPUS, EXPECTED_TYPES, samples
from pydantic import AwareDatetime, BaseModel, Field

from extract.errors import SchemaError
from extract.schema.columns import Column, columns_ddl, insert_select, model_columns, to_arrow


def write_like_the_sink(path: Path, columns: list[Column], instances: list[BaseModel]) -> None:
    """CREATE TABLE (key, columns, provenance) and INSERT BY NAME an Arrow batch."""
    con = duckdb.connect(str(path))
    con.execute(f'CREATE TABLE t ("_key" BIGINT, {columns_ddl(columns)}, "_run_id" VARCHAR)')
    frame = pa.table(
        {
            "_key": pa.array(range(len(instances)), type=pa.int64()),
            **to_arrow(instances, columns),
            "_run_id": pa.array(["r1"] * len(instances), type=pa.string()),
        }
    )
    con.register("batch", frame)
    con.execute(f"INSERT INTO t BY NAME SELECT {insert_select(columns)} FROM batch")
    con.unregister("batch")
    con.close()


def read_back(path: Path, model: type[BaseModel], columns: list[Column]) -> list[BaseModel]:
    con = duckdb.connect(str(path), read_only=True)
    cur = con.execute("SELECT * FROM t ORDER BY _key")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    out = []
    for row in rows:
        assert row.pop("_key") is not None and row.pop("_run_id") == "r1"
        for c in columns:
            if c.duckdb_type == "JSON" and row[c.name] is not None:
                row[c.name] = json.loads(row[c.name])
            elif c.duckdb_type == "JSON[]" and row[c.name] is not None:
                row[c.name] = [None if x is None else json.loads(x) for x in row[c.name]]
        out.append(model.model_validate(row))
    return out


def canon(value: Any) -> Any:
    """A dump with moments as naive UTC: a TIMESTAMP column keeps the instant, not the offset."""
    if isinstance(value, BaseModel):
        return canon(value.model_dump())
    if isinstance(value, dict):
        return {canon(k): canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canon(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((canon(v) for v in value), key=repr)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        try:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            return value.replace(tzinfo=None)
    if isinstance(value, dt.time) and value.utcoffset() is not None:
        moment = dt.datetime.combine(dt.date(2000, 1, 1), value.replace(tzinfo=None))
        return (moment - value.utcoffset()).time()  # type: ignore[operator]
    return value


def column_types(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't' "
        "ORDER BY ordinal_position"
    ).fetchall()
    con.close()
    return {n: t for n, t in rows if n not in ("_key", "_run_id")}


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_round_trips_through_duckdb(name: str, tmp_path: Path) -> None:
    model = CORPUS[name]
    columns = model_columns(model)
    instances, _ = samples(name)
    assert instances
    db = tmp_path / "out.duckdb"
    write_like_the_sink(db, columns, instances)
    assert column_types(db) == EXPECTED_TYPES[name]
    back = read_back(db, model, columns)
    assert [canon(b) for b in back] == [canon(i) for i in instances]


def test_columns_follow_field_order_and_aliases() -> None:
    columns = model_columns(CORPUS["Aliased"])
    assert [(c.name, c.attribute, c.duckdb_type) for c in columns] == [
        ("Invoice Number", "invoice_no", "VARCHAR"), ("total-amount", "total", "DOUBLE")
    ]
    assert columns_ddl(columns) == '"Invoice Number" VARCHAR, "total-amount" DOUBLE'
    assert insert_select(columns) == "*"


def test_map_columns_travel_as_json_and_are_cast() -> None:
    columns = model_columns(CORPUS["Inventory"])
    assert [c.arrow_type() for c in columns] == [pa.string(), pa.string(), pa.string()]
    assert insert_select(columns) == (
        '* REPLACE (CAST(CAST("counts" AS JSON) AS MAP(VARCHAR, BIGINT)) AS "counts", '
        'CAST(CAST("places" AS JSON) AS MAP(VARCHAR, STRUCT("street" VARCHAR, "city" VARCHAR, '
        '"postcode" VARCHAR))) AS "places", '
        'CAST(CAST("labels" AS JSON) AS MAP(VARCHAR, VARCHAR)) AS "labels")'
    )


class Shade(enum.Enum):
    DARK = "dark"
    LIGHT = "light"


class Small(BaseModel):
    when: dt.datetime
    aware: AwareDatetime
    shade: Shade | None
    kind: Literal["a", "b"]
    nums: list[int]
    money: decimal.Decimal = Field(max_digits=7, decimal_places=3)
    ref: uuid.UUID


def test_to_arrow_types_and_values() -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    row = Small(when=dt.datetime(2024, 5, 1, 12, 0, tzinfo=plus2),
                aware=dt.datetime(2024, 5, 1, 12, 0, tzinfo=plus2), shade=None, kind="b",
                nums=[1, 2], money=decimal.Decimal("1.5"),
                ref=uuid.UUID("12345678-1234-5678-1234-567812345678"))
    frame = pa.table(to_arrow([row], model_columns(Small)))
    assert frame.schema == pa.schema({
        "when": pa.timestamp("us"), "aware": pa.timestamp("us", tz="UTC"),
        "shade": pa.string(), "kind": pa.string(),
        "nums": pa.list_(pa.int64()), "money": pa.decimal128(7, 3), "ref": pa.string(),
    })
    assert frame.to_pylist()[0] == {
        "when": dt.datetime(2024, 5, 1, 10, 0),
        "aware": dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC), "shade": None, "kind": "b",
        "nums": [1, 2], "money": decimal.Decimal("1.500"),
        "ref": "12345678-1234-5678-1234-567812345678",
    }
    assert pa.table(to_arrow([], model_columns(Small))).num_rows == 0


def test_model_columns_refuses_like_compile_schema() -> None:
    class Bad(BaseModel):
        x: Any

    with pytest.raises(SchemaError, match=r"^Bad\.x: typing\.Any cannot be expressed"):
        model_columns(Bad)
