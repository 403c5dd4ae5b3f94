"""Grounding cost: microseconds per `find_value` call and per `ground` of a whole answer.

    .venv/bin/python bench/grounding.py [--reps 5] [--min-time 0.2]

Texts are generated deterministically (invoice-like prose with amounts, dates, a few non-ASCII
characters) at 1 KB and 20 KB, with the sought phrase three quarters of the way in, so an exact
search reads most of the text. Each case is timed two ways:

- cold: a fresh `Texts` per call, so the call pays for whatever the column needs beyond
  `str.find` (folding it, reading its numbers): what the first such value of a row costs;
- warm: one `Texts` reused, as `ground` does for every value of a row after the first.

`ground` is timed on a 17-leaf answer (a nested list of line items included) with a plain
mapping of texts, so a fresh `Texts` each time: the whole per-row cost. Each figure is the median
over the repetitions of a loop that runs for at least `--min-time` seconds. Markdown to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial

from pydantic import BaseModel

from extract.schema import compile_schema
from extract.trust.grounding import Texts, find_value, ground
from extract.trust.shape import model_shape

VOCABULARY = (
    "the invoice for services rendered during period according to our agreement please pay "
    "within thirty days of receipt delivery address order number customer reference total "
    "amount due including tax shipping handling discount applied account payable remittance "
    "contact billing department questions regarding this statement thank you business Müller "
    "café straße service support quarterly annual maintenance contract renewal licence"
)
WORDS = VOCABULARY.split()
SIZES = {"1 KB": 1_000, "20 KB": 20_000}


def prose(size: int, seed: int) -> str:
    """About `size` characters of invoice-like text, the same for the same seed."""
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    while length < size:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
        if rng.random() < 0.4:
            amount = f"{rng.randint(1, 9999)},{rng.randint(0, 99):02d} €"
            words.insert(rng.randrange(len(words)), amount)
        if rng.random() < 0.2:
            day = f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2023"
            words.insert(rng.randrange(len(words)), day)
        sentence = " ".join(words).capitalize() + rng.choice([". ", ". ", "! ", ".\n", ".\n\n"])
        out.append(sentence)
        length += len(sentence)
    return "".join(out)[:size]


def with_phrase(text: str, phrase: str) -> str:
    """`text` with `phrase` put in at three quarters of its length, at a space."""
    at = text.index(" ", len(text) * 3 // 4)
    return f"{text[:at]} {phrase} {text[at:]}"


# (case, value, kind, what the text holds)
CASES = (
    ("exact", "Acme Corporation International", "str", "Acme Corporation International"),
    ("normalized", "ACME corporation, international", "str", "Acme Corporation International"),
    ("fuzzy", "Acme Corporation International", "str", "Acme Corporatlon Internatlonal"),
    ("none", "Globex Holdings Limited", "str", "Acme Corporation International"),
    ("number, exact", "1234.50", "decimal", "total 1234.50 EUR"),
    ("number, normalized", "1234.50", "decimal", "total 1.234,50 €"),
    ("number, none", "4321.09", "decimal", "total 1.234,50 €"),
    ("date, normalized", "2024-03-01", "date", "dated 1. März 2024"),
    ("date, none", "2024-03-02", "date", "dated 1. März 2024"),
)


class Item(BaseModel):
    description: str
    quantity: int
    unit_price: Decimal


class Invoice(BaseModel):
    vendor: str
    vendor_address: str
    invoice_number: str
    customer: str
    issued: dt.date
    due: dt.date
    total: Decimal
    tax: Decimal
    items: list[Item]


ANSWER = Invoice(
    vendor="Acme Corporation International",
    vendor_address="12 Harbour Road, Portsmouth",
    invoice_number="INV-2024-0042",
    customer="Globex Holdings Ltd",
    issued=dt.date(2024, 3, 1),
    due=dt.date(2024, 3, 31),
    total=Decimal("1234.50"),
    tax=Decimal("197.11"),
    items=[
        Item(description="Quarterly maintenance", quantity=3, unit_price=Decimal("250.00")),
        Item(description="Licence renewal", quantity=1, unit_price=Decimal("384.50")),
        Item(description="On-site support hours", quantity=2, unit_price=Decimal("50.00")),
    ],
)
ANSWER_TEXT = (
    "INVOICE INV-2024-0042 from ACME CORPORATION INTERNATIONAL, 12 Harbour Road, Portsmouth. "
    "Bill to: Globex Holdings Ltd. Issued 1 March 2024, due 31.03.2024. "
    "3 x Quarterly maintenance at 250,00 €; 1 x Licence renewal at 384,50 €; "
    "2 x on-site support hrs at 50,00 €. Tax 197,11 €. Total 1.234,50 €."
)


def per_call_us(fn: Callable[[], object], reps: int, min_time: float) -> float:
    """Median over `reps` loops of the microseconds one call of `fn` takes."""
    calls = 1
    while True:  # calibrate: enough calls that one loop lasts `min_time`
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start >= min_time:
            break
        calls *= 2
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args()
    reps, min_time = args.reps, args.min_time

    print(f"Python {platform.python_version()} on {platform.machine()}, median of {reps}.\n")
    head = " | ".join(f"{s} cold | {s} warm" for s in SIZES)
    print(f"| case | status | {head} |")
    print("| --- | --- |" + " --- | --- |" * len(SIZES))
    for case, value, kind, phrase in CASES:
        cells: list[str] = []
        status = ""
        for size in SIZES.values():
            raw = {"body": with_phrase(prose(size, seed=7), phrase)}
            status = find_value(value, raw, kind=kind).status
            warm = Texts(raw)
            for texts in (raw, warm):
                call = partial(find_value, value, texts, kind=kind)
                cells.append(_us(per_call_us(call, reps, min_time)))
        print(f"| {case} | {status} | " + " | ".join(cells) + " |")

    compiled = compile_schema(Invoice)
    shape = model_shape(Invoice)
    wire = compiled.encode(ANSWER)
    print("\n| ground() of a 17-leaf answer | statuses | µs per answer |")
    print("| --- | --- | --- |")
    for label, size in SIZES.items():
        filler = prose(size - len(ANSWER_TEXT), seed=11)
        texts = {"subject": "Invoice", "body": with_phrase(filler, ANSWER_TEXT)}
        grounding, missing = ground(shape, wire, texts)
        counts: dict[str, int] = {}
        for status in _statuses(grounding):
            counts[status] = counts.get(status, 0) + 1
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        cost = per_call_us(partial(ground, shape, wire, texts), reps, min_time)
        print(f"| {label} text | {statuses} ({missing} ungrounded) | {_us(cost)} |")


def _statuses(tree: object) -> list[str]:
    """The status of every slot in a grounding mirror."""
    if isinstance(tree, dict):
        if "status" in tree:
            return [str(tree["status"])]
        return [s for v in tree.values() for s in _statuses(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _statuses(v)]
    return []


if __name__ == "__main__":
    main()
