"""How the long-input token estimate (extract/split/tokens.py) compares with a real tokenizer.

Starts the bundled local model's llama-server (it must be prepared: `extract prepare-local`) and
asks its /tokenize endpoint for the true token count of each text, and its /apply-template for
the count of whole chat prompts. Prints, per corpus, the estimate over the true count: a ratio
at or above 1 everywhere is what the estimate promises (a part is never bigger than it says).

    .venv/bin/python bench/split_tokens.py
"""

from __future__ import annotations

import json
import statistics
import sys
import urllib.request
from pathlib import Path
from typing import Any

import duckdb

from extract.config import LocalServerConfig
from extract.providers.local.build import prepared
from extract.providers.local.server import start_server
from extract.split.tokens import message_units, text_units, tokens

ROOT = Path(__file__).resolve().parent.parent
#: texts at least this long are the ones a split is about (a 4-character "Thx!" is 3 tokens,
#: which no per-character rate predicts, and the 8 tokens a message adds cover it)
LONG = 200


def post(base: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        base + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def corpora() -> dict[str, list[str]]:
    """The repository's example texts, plus prose in three more scripts."""

    def column(file: str, expr: str) -> list[str]:
        rows = duckdb.sql(f"SELECT {expr} FROM '{ROOT / 'data' / file}'").fetchall()
        return [r[0] for r in rows if r[0]]

    german = (
        "Sehr geehrte Damen und Herren, die Lieferung vom 12. März ist unvollständig "
        "angekommen; es fehlen drei Kartons. Bitte prüfen Sie die Rechnung Nr. 4471. "
    )
    japanese = (
        "請求書番号は四四七一です。三月十二日の配送で、三箱が不足していました。確認をお願いします。"
    )
    return {
        "invoices (numbers, aligned columns)": column("invoices.parquet", "raw_text"),
        "tickets (English e-mail)": column("tickets.csv", "text"),
        "products (emoji, German)": column("products.csv", "concat(title, ' ', description)"),
        "German prose": [german * n for n in (1, 4, 16)],
        "Japanese prose": [japanese * n for n in (1, 4, 16)],
    }


def main() -> int:
    files = prepared()
    if files is None:
        print("the local model is not prepared: run `extract prepare-local` first", file=sys.stderr)
        return 2
    rows = []
    with start_server(files, LocalServerConfig()) as base_url:
        base = base_url.removesuffix("/v1")
        for name, texts in corpora().items():
            ratios, long, true_total, est_total, chars = [], [], 0, 0, 0
            for text in texts:
                true = len(post(base, "/tokenize", {"content": text})["tokens"])
                est = tokens(text_units(text))
                ratios.append(est / true)
                if len(text) >= LONG:
                    long.append(est / true)
                true_total, est_total, chars = true_total + true, est_total + est, chars + len(text)
            rows.append((name, len(texts), chars, true_total, est_total, ratios, long))
        # whole prompts, as the local model sees them: system + user through its chat template
        prompt_ratios = []
        for text in corpora()["invoices (numbers, aligned columns)"][:50]:
            messages = [
                {"role": "system", "content": "You extract invoice fields as JSON."},
                {"role": "user", "content": f"Invoice:\n{text}"},
            ]
            prompt = post(base, "/apply-template", {"messages": messages})["prompt"]
            true = len(post(base, "/tokenize", {"content": prompt})["tokens"])
            prompt_ratios.append(tokens(message_units(messages)) / true)
    print(
        "| corpus | texts | chars | true tokens | estimated | chars/token | est/true: mean | "
        f"min | min of texts >= {LONG} chars |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, chars, true, est, ratios, long in rows:
        low = f"{min(long):.2f} ({len(long)})" if long else "-"
        print(
            f"| {name} | {n} | {chars} | {true} | {est} | {chars / true:.2f} | "
            f"{statistics.mean(ratios):.2f} | {min(ratios):.2f} | {low} |"
        )
    print(
        f"\nwhole chat prompts (50 invoices, system + user, the model's template): est/true "
        f"min {min(prompt_ratios):.2f}, mean {statistics.mean(prompt_ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
