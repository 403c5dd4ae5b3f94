"""The header of a supplier invoice read from a PDF (pipelines/invoice_pdfs.yaml): few fields,
for the small local model."""

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PdfInvoice(BaseModel):
    """A supplier invoice's number, issuer, date and total."""

    model_config = ConfigDict(extra="forbid")

    invoice_number: str = Field(description="The invoice number exactly as printed.", max_length=40)
    vendor: str = Field(
        description="The company that issued the invoice (the first line), not the bill-to "
        "customer.",
        max_length=60,
    )
    invoice_date: dt.date = Field(description="The invoice date.")
    total: Decimal = Field(description="The total due, a number without the currency.")
    currency: Literal["EUR", "USD", "GBP"] = Field(description="The currency of the total.")
