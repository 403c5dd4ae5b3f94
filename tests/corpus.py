"""A corpus of Pydantic models of rising difficulty, with the DuckDB column types each must get.

Run `python tests/corpus.py` for a table: per model, the compiled schema's size (characters of
compact JSON, object properties in all) and the DuckDB column types.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import functools
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    NaiveDatetime,
    StringConstraints,
)

# ---------------------------------------------------------------------------------------------
# 1. flat scalars


class Flat(BaseModel):
    name: str
    count: int
    score: float
    active: bool


# 2. Optional


class WithOptional(BaseModel):
    title: str
    subtitle: str | None
    pages: int | None = None


# 3. Enum + Literal


class Priority(str, enum.Enum):  # noqa: UP042 - the pre-3.11 spelling, on purpose
    LOW = "low"
    HIGH = "high"
    URGENT = "it's urgent"


class Level(enum.IntEnum):
    ONE = 1
    TWO = 2


class EnumsLiterals(BaseModel):
    priority: Priority
    level: Level
    channel: Literal["email", "phone", "chat"]
    version: Literal[1, 2, 3]
    fixed: Literal["v1"]


# 4. date/datetime/time/UUID/email


class Temporal(BaseModel):
    day: dt.date
    at: dt.datetime
    at_naive: NaiveDatetime
    at_aware: AwareDatetime
    clock: dt.time
    id: uuid.UUID
    contact: EmailStr


# 5. Decimal


class Money(BaseModel):
    amount: decimal.Decimal = Field(max_digits=12, decimal_places=2)
    rate: decimal.Decimal = Field(max_digits=5, decimal_places=5)
    loose: decimal.Decimal
    tax: decimal.Decimal | None = Field(default=None, max_digits=6, decimal_places=3, ge=0)


# 6. nested model


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str
    postcode: str | None


class Person(BaseModel):
    name: str
    home: Address
    work: Address | None


# 7. list of models


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class Order(BaseModel):
    id: str
    items: list[LineItem]
    notes: list[str]


# 8. dict[str, int] and dict[str, Model]


class Inventory(BaseModel):
    counts: dict[str, int]
    places: dict[str, Address]
    labels: dict[str, str] | None


# 9. tuples


class Geometry(BaseModel):
    point: tuple[float, float]
    labelled: tuple[str, int]
    ids: tuple[int, ...]


# 10. constrained str/int/float/list


class Constrained(BaseModel):
    code: Annotated[str, StringConstraints(min_length=3, max_length=8, pattern=r"^[A-Z0-9]+$")]
    nickname: str = Field(max_length=20)
    age: int = Field(ge=0, le=150)
    ratio: float = Field(gt=0, lt=1)
    step: int = Field(multiple_of=5)
    tags: list[str] = Field(min_length=1, max_length=4)
    unique: set[str]


# 11. descriptions and docstrings


class Described(BaseModel):
    """A product review, as written by a customer."""

    rating: int = Field(ge=1, le=5, description="Stars, 1 (worst) to 5 (best).")
    summary: str = Field(description="One sentence.", max_length=200)
    author: Address | None = Field(default=None, description="Where the reviewer lives.")
    origin: Address = Field(description="Where the product shipped from.")


# 12. recursive tree


class TreeNode(BaseModel):
    """A node of an outline."""

    label: str
    children: list[TreeNode]


class Outline(BaseModel):
    title: str
    root: TreeNode
    extra: TreeNode | None


# 13. discriminated union


class CardPayment(BaseModel):
    method: Literal["card"]
    last4: str = Field(pattern=r"^\d{4}$")


class BankPayment(BaseModel):
    method: Literal["bank"]
    iban: str
    meta: dict[str, str]


class Payment(BaseModel):
    amount: decimal.Decimal = Field(max_digits=10, decimal_places=2)
    detail: CardPayment | BankPayment = Field(discriminator="method")
    history: list[Annotated[CardPayment | BankPayment, Field(discriminator="method")]]


# 14. aliases and extra="forbid"


class Aliased(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    invoice_no: str = Field(alias="Invoice Number")
    total: float = Field(alias="total-amount")


# 15. realistic invoice


class Currency(enum.StrEnum):
    EUR = "EUR"
    USD = "USD"
    GBP = "GBP"


class Party(BaseModel):
    name: str
    vat_id: str | None = Field(description="VAT identification number, if printed.")
    address: Address


class InvoiceLine(BaseModel):
    description: str
    quantity: decimal.Decimal = Field(max_digits=10, decimal_places=3)
    unit_price: decimal.Decimal = Field(max_digits=12, decimal_places=2)
    vat_rate: decimal.Decimal = Field(max_digits=4, decimal_places=2, ge=0, le=100)


class Invoice(BaseModel):
    """An invoice as printed on the document; copy values, do not compute them."""

    number: str
    issued: dt.date
    due: dt.date | None
    currency: Currency
    seller: Party
    buyer: Party
    lines: list[InvoiceLine] = Field(min_length=1)
    total: decimal.Decimal = Field(max_digits=14, decimal_places=2)
    paid: bool


# 16. realistic support ticket


class Sentiment(enum.StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Customer(BaseModel):
    name: str | None
    email: EmailStr | None
    account_id: uuid.UUID | None


class Ticket(BaseModel):
    """A customer support ticket, classified."""

    summary: str = Field(max_length=120, description="What the customer wants, in one line.")
    category: Literal["billing", "bug", "feature", "account", "other"]
    sentiment: Sentiment
    urgency: int = Field(ge=1, le=5)
    customer: Customer
    products: list[str] = Field(max_length=5)
    opened_at: AwareDatetime
    attributes: dict[str, str]
    refund: decimal.Decimal | None = Field(max_digits=8, decimal_places=2)


# 17. everything deep: lists of dicts of models, nested optional unions


class Deep(BaseModel):
    matrix: list[list[int]]
    groups: list[dict[str, list[LineItem]]]
    maybe: list[Address | None]
    either: int | str
    keyed: dict[Priority, int]


CORPUS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (Flat, WithOptional, EnumsLiterals, Temporal, Money, Person, Order, Inventory,
              Geometry, Constrained, Described, Outline, Payment, Aliased, Invoice, Ticket, Deep)
}

_ADDR = 'STRUCT(street VARCHAR, city VARCHAR, postcode VARCHAR)'
_PARTY = f'STRUCT("name" VARCHAR, vat_id VARCHAR, address {_ADDR})'

#: the DuckDB types each column must have, as `information_schema.columns.data_type` spells them
EXPECTED_TYPES: dict[str, dict[str, str]] = {
    "Flat": {"name": "VARCHAR", "count": "BIGINT", "score": "DOUBLE", "active": "BOOLEAN"},
    "WithOptional": {"title": "VARCHAR", "subtitle": "VARCHAR", "pages": "BIGINT"},
    "EnumsLiterals": {
        "priority": "ENUM('low', 'high', 'it''s urgent')",
        "level": "BIGINT",
        "channel": "ENUM('email', 'phone', 'chat')",
        "version": "BIGINT",
        "fixed": "ENUM('v1')",
    },
    "Temporal": {
        "day": "DATE",
        "at": "TIMESTAMP",
        "at_naive": "TIMESTAMP",
        "at_aware": "TIMESTAMP WITH TIME ZONE",
        "clock": "TIME",
        "id": "UUID",
        "contact": "VARCHAR",
    },
    "Money": {"amount": "DECIMAL(12,2)", "rate": "DECIMAL(5,5)", "loose": "DECIMAL(38,9)",
              "tax": "DECIMAL(6,3)"},
    "Person": {"name": "VARCHAR", "home": _ADDR, "work": _ADDR},
    "Order": {"id": "VARCHAR", "items": "STRUCT(sku VARCHAR, quantity BIGINT)[]",
              "notes": "VARCHAR[]"},
    "Inventory": {"counts": "MAP(VARCHAR, BIGINT)", "places": f"MAP(VARCHAR, {_ADDR})",
                  "labels": "MAP(VARCHAR, VARCHAR)"},
    "Geometry": {"point": "DOUBLE[]", "labelled": "JSON", "ids": "BIGINT[]"},
    "Constrained": {"code": "VARCHAR", "nickname": "VARCHAR", "age": "BIGINT", "ratio": "DOUBLE",
                    "step": "BIGINT", "tags": "VARCHAR[]", "unique": "VARCHAR[]"},
    "Described": {"rating": "BIGINT", "summary": "VARCHAR", "author": _ADDR, "origin": _ADDR},
    "Outline": {"title": "VARCHAR", "root": "JSON", "extra": "JSON"},
    "Payment": {"amount": "DECIMAL(10,2)", "detail": "JSON", "history": "JSON[]"},
    "Aliased": {"Invoice Number": "VARCHAR", "total-amount": "DOUBLE"},
    "Invoice": {
        "number": "VARCHAR",
        "issued": "DATE",
        "due": "DATE",
        "currency": "ENUM('EUR', 'USD', 'GBP')",
        "seller": _PARTY,
        "buyer": _PARTY,
        "lines": "STRUCT(description VARCHAR, quantity DECIMAL(10,3), unit_price DECIMAL(12,2), "
                 "vat_rate DECIMAL(4,2))[]",
        "total": "DECIMAL(14,2)",
        "paid": "BOOLEAN",
    },
    "Ticket": {
        "summary": "VARCHAR",
        "category": "ENUM('billing', 'bug', 'feature', 'account', 'other')",
        "sentiment": "ENUM('negative', 'neutral', 'positive')",
        "urgency": "BIGINT",
        "customer": 'STRUCT("name" VARCHAR, email VARCHAR, account_id UUID)',
        "products": "VARCHAR[]",
        "opened_at": "TIMESTAMP WITH TIME ZONE",
        "attributes": "MAP(VARCHAR, VARCHAR)",
        "refund": "DECIMAL(8,2)",
    },
    "Deep": {
        "matrix": "BIGINT[][]",
        "groups": "MAP(VARCHAR, STRUCT(sku VARCHAR, quantity BIGINT)[])[]",
        "maybe": f"{_ADDR}[]",
        "either": "JSON",
        "keyed": "MAP(ENUM('low', 'high', 'it''s urgent'), BIGINT)",
    },
}


#: models with constraints only Pydantic enforces (string lengths, bounds on decimals, tuple
#: positions, email validity, calendar dates, leap seconds): some generated instances fail
#: validation and are dropped; for every other model all of them must pass
PYDANTIC_ONLY = {"Temporal", "Money", "Geometry", "Constrained", "Described", "Invoice", "Ticket"}


@functools.cache
def samples(name: str) -> tuple[list[BaseModel], list[object]]:
    """Instances drawn from the compiled schema of `CORPUS[name]` (hypothesis-jsonschema) and
    parsed back: (valid instances, generated data that the model rejected)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis_jsonschema import from_schema
    from pydantic import ValidationError
    from strict_rules import for_generation

    from extract.schema import compile_schema

    compiled = compile_schema(CORPUS[name])
    valid: list[BaseModel] = []
    rejected: list[object] = []

    # hypothesis-jsonschema knows no "uuid" format: without this it draws any string
    formats = {"uuid": st.uuids().map(str)}

    @settings(max_examples=25, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(from_schema(for_generation(compiled.schema), custom_formats=formats))
    def collect(data: object) -> None:
        try:
            valid.append(compiled.parse(data))
        except ValidationError:
            rejected.append(data)

    collect()
    return valid, rejected


def table() -> str:
    """The corpus table: schema size and DuckDB column types per model."""
    from extract.schema import compile_schema
    from extract.schema.columns import model_columns

    lines = ["| model | schema chars | properties | DuckDB columns |", "| --- | --- | --- | --- |"]
    for name, model in CORPUS.items():
        compiled = compile_schema(model)
        text = json.dumps(compiled.schema, separators=(",", ":"))
        n_props = _count_properties(compiled.schema)
        cols = ", ".join(f"{c.name} {c.duckdb_type}" for c in model_columns(model))
        lines.append(f"| {name} | {len(text)} | {n_props} | {cols} |")
    return "\n".join(lines)


def _count_properties(node: object) -> int:
    if isinstance(node, dict):
        here = len(node["properties"]) if isinstance(node.get("properties"), dict) else 0
        return here + sum(_count_properties(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_properties(v) for v in node)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(table())
