"""Schema for marketplace product listings (pipelines/products.yaml)."""

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ProductCategory(StrEnum):
    electronics = "electronics"
    computers = "computers"
    phones = "phones"
    home_kitchen = "home_kitchen"
    furniture = "furniture"
    clothing = "clothing"
    shoes = "shoes"
    beauty = "beauty"
    toys_games = "toys_games"
    sports_outdoors = "sports_outdoors"
    books = "books"
    garden_tools = "garden_tools"
    other = "other"


class Money(BaseModel):
    """A price with its currency."""

    model_config = ConfigDict(extra="forbid")

    amount: Decimal = Field(
        description="Price as a plain number, e.g. 24.99.", max_digits=10, decimal_places=2
    )
    currency: Literal["EUR", "USD", "GBP", "CHF", "SEK", "PLN"] = Field(
        description="ISO 4217 currency code (€ -> EUR, $ -> USD, £ -> GBP)."
    )


class Dimensions(BaseModel):
    """Physical size of the item (package size only if the item size is not given)."""

    model_config = ConfigDict(extra="forbid")

    length: Decimal = Field(description="Longest side.", max_digits=8, decimal_places=2)
    width: Decimal = Field(description="Second side.", max_digits=8, decimal_places=2)
    height: Decimal | None = Field(
        description="Third side; null for flat items or when only two sides are given.",
        max_digits=8,
        decimal_places=2,
    )
    unit: Literal["mm", "cm", "m", "in"] = Field(description="Unit of all three sides.")


Color = Annotated[str, Field(min_length=1, max_length=30)]


class ProductListing(BaseModel):
    """One product listing from an online marketplace, normalised for a catalogue.

    Use the title, the description and the photo if one is attached. Use null for
    anything the listing does not say.
    """

    model_config = ConfigDict(extra="forbid")

    brand: str | None = Field(
        description="Manufacturer brand name; null for unbranded / generic items.",
        max_length=60,
    )
    category: ProductCategory = Field(description="Best-fitting catalogue category.")
    price: Money | None = Field(
        description="Current asking price; null if no price is stated in the listing."
    )
    condition: Literal["new", "used", "refurbished"] = Field(
        description="Item condition. 'open box' / 'like new' used items count as used; "
        "'renewed' / 'reconditioned' count as refurbished; assume new if not stated."
    )
    attributes: dict[str, str] = Field(
        description="Other specs as lowercase snake_case keys to short string values, e.g. "
        "{'material': 'cotton', 'size': 'M', 'capacity': '1.5 l'}. Do not repeat brand, "
        "price, condition, colors or dimensions here."
    )
    dimensions: Dimensions | None = Field(
        description="Physical dimensions if stated; null otherwise."
    )
    in_stock: bool = Field(
        description="False if the listing says sold out / out of stock / preorder only; "
        "true otherwise."
    )
    colors: list[Color] = Field(
        description="Available colours in lowercase English (e.g. 'navy', 'black'); at "
        "most 5; empty if none are mentioned or visible.",
        max_length=5,
    )
