"""The table side of a model: DuckDB column types, Arrow types, and typed batches.

`model_columns(Model)` gives one `Column` per top-level field, in field order. A column is named by
the field's alias when it has one (else its name): the same key the model answers with, so a row
read back from the table goes straight into `Model.model_validate`. Nested struct fields are
named the same way.

| Python type                        | DuckDB                    | Arrow type in the batch     |
| ---------------------------------- | ------------------------- | --------------------------- |
| str, EmailStr, URL, IP address     | VARCHAR                   | string                      |
| timedelta                          | INTERVAL                  | duration(us)                |
| int / float / bool                 | BIGINT / DOUBLE / BOOLEAN | int64 / float64 / bool      |
| date / time                        | DATE / TIME               | date32 / time64(us)         |
| datetime, NaiveDatetime            | TIMESTAMP                 | timestamp(us)               |
| AwareDatetime                      | TIMESTAMPTZ               | timestamp(us, UTC)          |
| UUID                               | UUID                      | string (DuckDB casts it)    |
| Decimal                            | DECIMAL(p,s)              | decimal128(p, s)            |
| Enum / Literal of strings          | ENUM('a', 'b')            | string (DuckDB casts it)    |
| Enum / Literal of ints, bools, ... | BIGINT, BOOLEAN, DOUBLE   | int64, bool, float64        |
| Enum / Literal of mixed types      | JSON                      | string (JSON text)          |
| nested model, dataclass, TypedDict,| STRUCT("a" ..., ...)      | struct                      |
| NamedTuple                         |                           |                             |
| RootModel[X], NewType, type alias  | same as X                                               |
| Json[X]                            | same as X (the parsed value is stored)                  |
| list[X], set[X], tuple[X, ...]     | X[]                       | list                        |
| tuple of differing types           | JSON                      | string (JSON text)          |
| dict[K, V]                         | MAP(K, V)                 | string (JSON text, below)   |
| recursive model                    | JSON                      | string (JSON text)          |
| union of models or types           | JSON                      | string (JSON text)          |
| X | None                           | same as X (every column is nullable)                    |

Decisions worth knowing:
- A plain `datetime` is a TIMESTAMP: aware values (strict mode's `date-time` carries an offset)
  are converted to UTC and stored without the offset. Declare `AwareDatetime` to keep the instant
  as TIMESTAMPTZ. A `time` with an offset is likewise shifted to UTC and stored as TIME.
- Decimal: DECIMAL(max_digits, decimal_places). Without constraints it is DECIMAL(38, 9) (the wire
  pattern allows exactly that much); with only max_digits p, DECIMAL(p, min(p, 9)); with only
  decimal_places s, DECIMAL(38, s). More than 38 digits cannot be a DECIMAL: VARCHAR.
- Unions of models become JSON, not a STRUCT of all members' fields: members may share a field
  name with different types, and JSON keeps which member it was. DuckDB's JSON functions query it.
- DuckDB will not cast a list of key/value structs to MAP, so a column with a MAP anywhere inside
  travels as JSON text and is cast by the INSERT.
  `insert_select(columns)` gives the SELECT list that does it:
  `* REPLACE (CAST(CAST("c" AS JSON) AS MAP(...)) AS "c")`; it is just `*` when no column
  needs it. UUID, ENUM and JSON columns need nothing: `INSERT ... BY NAME` casts the String
  columns into them.
- JSON columns hold the value keyed as on the wire (aliases, AliasChoices, AliasPath as the
  schema says), dicts as objects and tuples as arrays.
- Arrow types are built on first use (`Column.arrow_type`): `extract schema` and `extract validate`
  never import pyarrow.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, RootModel

from ..sql import ident as quote
from ..sql import literal as _literal
from .records import wire_key
from .tree import (
    Analysis,
    EnumNode,
    JsonNode,
    LiteralNode,
    MapNode,
    ModelNode,
    Node,
    NullableNode,
    Scalar,
    SeqNode,
    TupleNode,
    UnionNode,
    decimal_digits,
)
from .types import analyze
from .wire import Encoder, unroot

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Column", "columns_ddl", "insert_select", "model_columns", "to_arrow"]

Convert = Callable[[Any], Any]
#: an Arrow type, built when first asked for (pyarrow is imported only by what writes batches)
ArrowType = Callable[[], "pa.DataType"]


def _pa() -> Any:
    import pyarrow

    return pyarrow


def _identity(v: Any) -> Any:
    return v


@dataclass(frozen=True)
class Column:
    """One table column: `name` (the field's alias, else its name), its DuckDB type, and the
    Arrow type `to_arrow` gives it. `attribute` is the model attribute it is read from;
    `select_expr` is how an INSERT reads it from a `to_frame` batch (see `insert_select`)."""

    name: str
    duckdb_type: str
    arrow: ArrowType = dc_field(repr=False, compare=False)
    attribute: str = ""
    select_expr: str = ""
    convert: Convert = dc_field(default=_identity, repr=False, compare=False)

    def arrow_type(self) -> pa.DataType:
        return self.arrow()

    @property
    def needs_cast(self) -> bool:
        """True when the batch holds JSON text that the INSERT must cast (a MAP inside)."""
        return self.select_expr != quote(self.name)


@dataclass(frozen=True)
class _Plan:
    duckdb: str
    arrow: ArrowType
    native: Convert  # value -> what pyarrow builds `arrow()` from
    jsonable: Convert  # value -> JSON-able data that DuckDB casts from JSON into `duckdb`
    has_map: bool = False


def _nullsafe(f: Convert) -> Convert:
    # A field typed as a RootModel holds the RootModel instance; its column is the root's type.
    def convert(v: Any) -> Any:
        v = unroot(v)
        return None if v is None else f(v)

    return convert


def _utc_naive(v: dt.datetime) -> dt.datetime:
    if v.tzinfo is None:
        return v
    try:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999 shifted out of range: keep the wall-clock time
        return v.replace(tzinfo=None)


def _utc_time(v: dt.time) -> dt.time:
    offset = v.utcoffset()
    if offset is None:
        return v
    moment = dt.datetime.combine(dt.date(2000, 1, 1), v.replace(tzinfo=None)) - offset
    return moment.time()  # the date is a scratch value: only the shifted clock time is kept


def _iso(v: Any) -> str:
    return str(v.isoformat())


def generic_jsonable(value: Any) -> Any:
    """JSON-able data for a JSON column: models by alias, dicts as objects, Decimals as strings."""
    if isinstance(value, BaseModel):
        if isinstance(value, RootModel):
            return generic_jsonable(value.root)
        return {
            wire_key(n, f) or n: generic_jsonable(getattr(value, n))
            for n, f in type(value).model_fields.items()
        }
    if isinstance(value, dict):
        return {str(generic_jsonable(k)): generic_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [generic_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return generic_jsonable(value.value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _string() -> pa.DataType:
    return _pa().string()


def _int64() -> pa.DataType:
    return _pa().int64()


def _float64() -> pa.DataType:
    return _pa().float64()


def _bool() -> pa.DataType:
    return _pa().bool_()


def _date() -> pa.DataType:
    return _pa().date32()


def _timestamp() -> pa.DataType:
    return _pa().timestamp("us")


def _timestamp_utc() -> pa.DataType:
    return _pa().timestamp("us", tz="UTC")


def _time() -> pa.DataType:
    return _pa().time64("us")


def _duration() -> pa.DataType:
    return _pa().duration("us")


def _interval_text(v: dt.timedelta) -> str:
    # what DuckDB casts to INTERVAL from JSON text (inside a MAP); ISO 8601 it does not read
    us = (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
    return f"{us} microseconds"


_SCALAR_PLANS: dict[str, _Plan] = {
    "str": _Plan("VARCHAR", _string, str, str),
    "email": _Plan("VARCHAR", _string, str, str),
    "url": _Plan("VARCHAR", _string, str, str),
    "http_url": _Plan("VARCHAR", _string, str, str),
    "ipv4": _Plan("VARCHAR", _string, str, str),
    "ipv6": _Plan("VARCHAR", _string, str, str),
    "ip": _Plan("VARCHAR", _string, str, str),
    "duration": _Plan("INTERVAL", _duration, _identity, _interval_text),
    "int": _Plan("BIGINT", _int64, _identity, _identity),
    "float": _Plan("DOUBLE", _float64, float, float),
    "bool": _Plan("BOOLEAN", _bool, _identity, _identity),
    "null": _Plan("VARCHAR", _string, _identity, _identity),
    "date": _Plan("DATE", _date, _identity, _iso),
    "datetime": _Plan("TIMESTAMP", _timestamp, _utc_naive, lambda v: _utc_naive(v).isoformat()),
    "datetime_naive": _Plan(
        "TIMESTAMP", _timestamp, _utc_naive, lambda v: _utc_naive(v).isoformat()
    ),
    "datetime_aware": _Plan("TIMESTAMPTZ", _timestamp_utc, _identity, _iso),
    "time": _Plan("TIME", _time, _utc_time, lambda v: _utc_time(v).isoformat()),
    "uuid": _Plan("UUID", _string, str, str),
}


class _Mapper:
    def __init__(self, analysis: Analysis):
        self.a = analysis
        self.encoder = Encoder(analysis, maps="objects")

    def json(self, node: Node) -> _Plan:
        """A JSON column: the value encoded along its type, so record keys match the wire."""
        encoder = self.encoder

        def jsonable(v: Any) -> Any:
            return encoder.value(node, v)

        def text(v: Any) -> str:
            return json.dumps(encoder.value(node, v), ensure_ascii=False)

        return _Plan("JSON", _string, text, jsonable)

    def plan(self, node: Node) -> _Plan:
        if isinstance(node, NullableNode | JsonNode):
            return self.plan(node.inner)
        if isinstance(node, Scalar):
            if node.kind == "decimal":
                p, s = decimal_digits(node.constraints)
                if p > 38:
                    return _Plan(
                        "VARCHAR", _string, lambda v: format(v, "f"), lambda v: format(v, "f")
                    )
                return _Plan(
                    f"DECIMAL({p},{s})",
                    lambda: _pa().decimal128(p, s),
                    _identity,
                    lambda v: format(v, "f"),
                )
            return _SCALAR_PLANS[node.kind]
        if isinstance(node, LiteralNode | EnumNode):
            return self.choice(node)
        if isinstance(node, SeqNode):
            item = self.plan(node.item)
            native, jsonable = _nullsafe(item.native), _nullsafe(item.jsonable)

            def seq_native(v: Any) -> Any:
                return [native(x) for x in _ordered(v)]

            def seq_json(v: Any) -> Any:
                return [jsonable(x) for x in _ordered(v)]

            return _Plan(
                f"{item.duckdb}[]",
                lambda: _pa().list_(item.arrow()),
                seq_native,
                seq_json,
                item.has_map,
            )
        if isinstance(node, TupleNode):
            plans = [self.plan(i) for i in node.items]
            if len({p.duckdb for p in plans}) == 1:
                return self.plan(SeqNode(node.items[0]))
            return self.json(node)
        if isinstance(node, MapNode):
            key, value = self.plan(node.key), self.plan(node.value)
            kj, vj = _nullsafe(key.jsonable), _nullsafe(value.jsonable)

            def map_json(v: Any) -> Any:
                return {str(kj(k)): vj(x) for k, x in v.items()}

            return _Plan(
                f"MAP({key.duckdb}, {value.duckdb})", _string, map_json, map_json, has_map=True
            )
        if isinstance(node, ModelNode):
            if node.cls in self.a.recursive:
                return self.json(node)
            return self.struct(node.cls)
        if isinstance(node, UnionNode):
            return self.json(node)
        raise AssertionError(node)  # pragma: no cover - the node union is closed

    def choice(self, node: LiteralNode | EnumNode) -> _Plan:
        values = node.values
        kept = tuple(v for v in values if v is not None)
        value_of: Convert = lambda v: v.value if isinstance(v, enum.Enum) else v  # noqa: E731
        if kept and all(isinstance(v, str) for v in kept):
            ddl = "ENUM(" + ", ".join(_literal(v) for v in kept) + ")"
            return _Plan(ddl, _string, value_of, value_of)
        if kept and all(isinstance(v, bool) for v in kept):
            return _Plan("BOOLEAN", _bool, value_of, value_of)
        if kept and all(isinstance(v, int) and not isinstance(v, bool) for v in kept):
            return _Plan("BIGINT", _int64, value_of, value_of)
        if kept and all(isinstance(v, int | float) and not isinstance(v, bool) for v in kept):
            return _Plan(
                "DOUBLE", _float64, lambda v: float(value_of(v)), lambda v: float(value_of(v))
            )
        return self.json(node)

    def struct(self, cls: type[Any]) -> _Plan:
        spec = self.a.models[cls]
        if not spec.fields:
            return self.json(ModelNode(cls))
        parts = [(f.name, f.key, self.plan(f.node)) for f in spec.fields]
        natives = [(n, k, _nullsafe(p.native)) for n, k, p in parts]
        jsons = [(n, k, _nullsafe(p.jsonable)) for n, k, p in parts]
        get = spec.get

        def struct_native(v: Any) -> Any:
            return {k: f(get(v, n)) for n, k, f in natives}

        def struct_json(v: Any) -> Any:
            return {k: f(get(v, n)) for n, k, f in jsons}

        ddl = "STRUCT(" + ", ".join(f"{quote(k)} {p.duckdb}" for _, k, p in parts) + ")"

        def arrow() -> pa.DataType:
            return _pa().struct([(k, p.arrow()) for _, k, p in parts])

        return _Plan(ddl, arrow, struct_native, struct_json, any(p.has_map for *_, p in parts))


def _ordered(v: Any) -> Any:
    if isinstance(v, set | frozenset):
        try:
            return sorted(v)
        except TypeError:
            return list(v)
    return v


def model_columns(model: type[BaseModel]) -> list[Column]:
    """One column per top-level field of `model`, in field order; raises `SchemaError` like
    `compile_schema` for types that cannot be expressed."""
    analysis = analyze(model)
    mapper = _Mapper(analysis)
    columns = []
    for f in analysis.models[model].fields:
        plan = mapper.plan(f.node)
        q = quote(f.key)
        if plan.has_map:
            jsonable = plan.jsonable

            def to_text(v: Any, jsonable: Convert = jsonable) -> Any:
                return json.dumps(jsonable(v), ensure_ascii=False)

            columns.append(
                Column(
                    f.key,
                    plan.duckdb,
                    _string,
                    f.name,
                    f"CAST(CAST({q} AS JSON) AS {plan.duckdb}) AS {q}",
                    _nullsafe(to_text),
                )
            )
        else:
            columns.append(
                Column(f.key, plan.duckdb, plan.arrow, f.name, q, _nullsafe(plan.native))
            )
    return columns


def columns_ddl(columns: list[Column]) -> str:
    """The column list of a CREATE TABLE: `"a" BIGINT, "b" STRUCT("x" VARCHAR)`."""
    return ", ".join(f"{quote(c.name)} {c.duckdb_type}" for c in columns)


def insert_select(columns: list[Column]) -> str:
    """The SELECT list for `INSERT INTO t BY NAME SELECT <this> FROM batch`.

    `*` unless a column holds JSON text for a MAP, which it then casts with `* REPLACE (...)`.
    """
    casts = [c.select_expr for c in columns if c.needs_cast]
    return f"* REPLACE ({', '.join(casts)})" if casts else "*"


def to_arrow(instances: Sequence[BaseModel], columns: list[Column]) -> dict[str, Any]:
    """Typed Arrow arrays, one per `Column`, each built from the whole batch at once."""
    pa = _pa()
    out: dict[str, Any] = {}
    for c in columns:
        attr = c.attribute or c.name
        values = [c.convert(getattr(inst, attr)) for inst in instances]
        out[c.name] = pa.array(values, type=c.arrow_type())
    return out
