"""Schema for OCR'd invoices (pipelines/invoices.yaml)."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Money12 = Annotated[Decimal, Field(max_digits=12, decimal_places=2)]


class Vendor(BaseModel):
    """The company that issued the invoice (the seller), not the customer billed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Legal or trading name of the issuing company.", max_length=120)
    address: str | None = Field(
        description="Vendor postal address on one line, parts separated by commas; null if absent.",
        max_length=200,
    )
    vat_id: str | None = Field(
        description="Vendor VAT / tax registration number exactly as printed, without "
        "spaces (e.g. 'DE123456789'); null if absent.",
        max_length=30,
    )


class LineItem(BaseModel):
    """One row of the invoice's item table."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="Item or service description as printed.", max_length=200)
    quantity: Decimal = Field(
        description="Quantity billed (may be fractional, e.g. hours).",
        max_digits=10,
        decimal_places=3,
    )
    unit_price: Decimal = Field(
        description="Price per unit before tax, as a plain number.",
        max_digits=12,
        decimal_places=2,
    )
    amount: Decimal = Field(
        description="Line total before tax (normally quantity x unit price).",
        max_digits=12,
        decimal_places=2,
    )


class Invoice(BaseModel):
    """A supplier invoice read from noisy OCR text.

    Numbers may use a decimal comma ('1.234,50') or thousands separators ('1,234.50');
    always return plain numbers with a decimal point. Dates are returned as YYYY-MM-DD.
    """

    model_config = ConfigDict(extra="forbid")

    vendor: Vendor = Field(description="The issuing company (seller).")
    invoice_number: str = Field(
        description="The invoice number printed on the document.", max_length=40
    )
    issue_date: date = Field(description="Invoice date (date of issue).")
    due_date: date | None = Field(
        description="Payment due date if printed or computable from an explicit date; "
        "null if only payment terms are given or nothing is stated."
    )
    currency: Literal["EUR", "USD", "GBP", "CHF", "SEK", "PLN"] = Field(
        description="ISO 4217 currency of the amounts (EUR for €, USD for $, GBP for £)."
    )
    line_items: list[LineItem] = Field(
        description="All item rows of the invoice table, in printed order.",
        min_length=1,
        max_length=20,
    )
    subtotal: Money12 = Field(description="Sum of line amounts before tax.")
    tax: Money12 = Field(description="Total tax / VAT amount (0 if none is charged).")
    total: Money12 = Field(description="Grand total payable including tax.")
    payment_terms: str | None = Field(
        description="Payment terms as printed (e.g. 'Net 30', 'Due on receipt'); null if absent.",
        max_length=120,
    )
