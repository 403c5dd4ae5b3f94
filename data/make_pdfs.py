"""Generate the invoice PDFs of pipelines/invoice_pdfs.yaml (and the PDF maker the tests use).

Deterministic (random.Random(13)); needs fpdf2 (a dev dependency: pure Python, it writes a real
text layer in the standard Helvetica font). Run from anywhere:  .venv/bin/python data/make_pdfs.py

Writes, next to this script:
  pdfs/inv-*.pdf        6 one- or two-page supplier invoices with a text layer (a few KB each)
  invoice_pdfs.csv      one row per PDF: id, pdf (the path, relative to this folder)
  labels/invoice_pdfs.csv  the values each PDF was written from, for `extract eval`
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from random import Random

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
COUNT = 6

VENDORS = [
    ("Nordlicht Bürobedarf GmbH", "Hafenstraße 12, 20457 Hamburg"),
    ("Maple Leaf Print Co.", "88 King Street West, Toronto ON"),
    ("Atelier Lumière SARL", "14 rue des Lilas, 69003 Lyon"),
    ("Harbour Freight Logistics Ltd", "2 Dock Road, Bristol BS1 5TR"),
    ("Cobalt Cloud Services Inc.", "500 Market St, San Francisco CA"),
    ("Vega Office Supplies BV", "Keizersgracht 221, Amsterdam"),
]
ITEMS = [
    ("Copy paper A4, 500 sheets", Decimal("4.90")),
    ("Toner cartridge black", Decimal("62.00")),
    ("Desk lamp LED", Decimal("34.50")),
    ("Shipping pallet handling", Decimal("18.75")),
    ("Cloud storage, 1 TB month", Decimal("9.99")),
    ("Consulting hour", Decimal("95.00")),
    ("Binder clips, box of 100", Decimal("3.20")),
    ("Office chair repair", Decimal("48.00")),
]
CURRENCIES = ["EUR", "USD", "GBP"]


#: the creation date written into every PDF: the same content gives the same bytes (and the
#: same request hashes) on every run
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def pdf_bytes(
    pages: Sequence[Sequence[str]], *, password: str | None = None, created: dt.datetime = CREATED
) -> bytes:
    """A PDF whose pages hold these lines of text (Helvetica; an empty page has no text layer,
    only a drawn box). `password` encrypts it with that user password."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(created)
    pdf.set_font("Helvetica", size=11)
    pdf.set_auto_page_break(False)
    for lines in pages:
        pdf.add_page()
        if not lines:
            pdf.rect(20, 20, 80, 40, style="F")  # something to see, nothing to read
        for line in lines:
            if line:
                pdf.cell(text=line)
            pdf.ln(6)
    if password is not None:
        pdf.set_encryption(owner_password=password + "-owner", user_password=password)
    return bytes(pdf.output())


def invoice(rng: Random, n: int) -> tuple[list[list[str]], dict[str, str]]:
    """One invoice's pages (the line items run onto a second page for some) and its truth."""
    vendor, address = VENDORS[n % len(VENDORS)]
    number = f"INV-{2026}-{rng.randrange(1000, 9999)}"
    date = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(0, 330))
    currency = rng.choice(CURRENCIES)
    items = rng.sample(ITEMS, rng.randrange(2, 6))
    lines = []
    total = Decimal("0")
    for name, price in items:
        qty = rng.randrange(1, 6)
        amount = price * qty
        total += amount
        lines.append(f"{qty} x {name} @ {price} = {amount} {currency}")
    head = [
        vendor,
        address,
        "",
        f"Invoice number: {number}",
        f"Invoice date: {date.isoformat()}",
        "Bill to: Example Customer AG, Bahnhofplatz 1, 8001 Zürich",
        "",
    ]
    foot = ["", f"Total due: {total} {currency}", "Payment within 30 days. Thank you!"]
    if n % 2:  # two pages: the items and the total on the second
        pages = [[*head, "Items: see page 2"], ["Items", *lines, *foot]]
    else:
        pages = [[*head, "Items", *lines, *foot]]
    truth = {
        "invoice_number": number,
        "vendor": vendor,
        "invoice_date": date.isoformat(),
        "total": str(total),
        "currency": currency,
    }
    return pages, truth


def main() -> None:
    rng = Random(13)
    (HERE / "pdfs").mkdir(exist_ok=True)
    (HERE / "labels").mkdir(exist_ok=True)
    rows, labels = [], []
    for n in range(COUNT):
        pages, truth = invoice(rng, n)
        name = f"pdfs/inv-{n + 1}.pdf"
        (HERE / name).write_bytes(pdf_bytes(pages))
        rows.append({"id": n + 1, "pdf": name})
        labels.append({"id": n + 1, **truth})
    with (HERE / "invoice_pdfs.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["id", "pdf"])
        w.writeheader()
        w.writerows(rows)
    with (HERE / "labels" / "invoice_pdfs.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, list(labels[0]))
        w.writeheader()
        w.writerows(labels)


if __name__ == "__main__":
    main()
