"""What splitting a long input costs the client: `split_text` on texts of each shape it cuts.

    .venv/bin/python bench/split_speed.py

Prints, per text, its size, the parts it is cut into for a 4,000-token budget (200 characters of
overlap) and the best of five timings. No server and no model: this is the CPU a long row adds
before its requests are sent.
"""

from __future__ import annotations

import random
import time

from extract.split import split_text
from extract.split.tokens import UNITS_PER_TOKEN

WORDS = [
    "invoice",
    "total",
    "amount",
    "due",
    "payment",
    "terms",
    "delivery",
    "order",
    "customer",
    "account",
    "number",
    "date",
    "quantity",
    "price",
    "tax",
    "vendor",
    "address",
    "street",
    "city",
    "shipping",
    "handling",
    "discount",
    "balance",
]


def prose(rng: random.Random, words: int) -> str:
    out = []
    for i in range(words):
        word = rng.choice(WORDS)
        if rng.random() < 0.08:
            word = str(rng.randint(1, 99999))
        out.append(word + ("." if i % 14 == 13 else ""))
    return " ".join(out)


def texts() -> dict[str, str]:
    rng = random.Random(7)
    page = "\n\n".join(prose(rng, 60) for _ in range(8))
    return {
        "50 PDF pages (page markers)": "".join(f"--- page {n} ---\n{page}\n" for n in range(1, 51)),
        "1 MB of paragraphs": "\n\n".join(prose(rng, 80) for _ in range(1800)),
        "1 MB, one paragraph (sentences)": prose(rng, 150_000),
        "200 KB without a space": "x" * 200_000,
    }


def main() -> None:
    budget = 4000 * UNITS_PER_TOKEN
    print("| text | characters | parts | ms (best of 5) |")
    print("| --- | ---: | ---: | ---: |")
    for name, text in texts().items():
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            spans = split_text(text, budget, overlap_chars=200, max_parts=10_000)
            best = min(best, time.perf_counter() - start)
        print(f"| {name} | {len(text):,} | {len(spans)} | {best * 1000:.1f} |")


if __name__ == "__main__":
    main()
