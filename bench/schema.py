"""The Pydantic model every client in the benchmark asks for and validates replies with.

Shaped like a real extraction target (enums, a Literal, patterns, bounded strings, a Decimal and
a bounded list) but with nothing that `extract.schema` rewrites on the wire (no dicts, no tuples),
so `CompiledSchema.parse` is `model_validate` itself and instructor, which validates with the
model directly, checks exactly what extract checks.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Topic(StrEnum):
    billing = "billing"
    delivery = "delivery"
    returns = "returns"
    defect = "defect"
    account = "account"
    question = "question"
    praise = "praise"
    other = "other"


class Mood(StrEnum):
    happy = "happy"
    neutral = "neutral"
    annoyed = "annoyed"
    furious = "furious"


Keyword = Annotated[str, Field(min_length=1, max_length=24, pattern="^[a-z][a-z0-9-]*$")]


class BenchTicket(BaseModel):
    """A customer message, classified for the support queue. Use null for what is not stated."""

    model_config = ConfigDict(extra="forbid")

    topic: Topic = Field(description="What the customer writes about.")
    urgency: Literal["low", "normal", "high"] = Field(description="How soon to answer.")
    mood: Mood = Field(description="The customer's tone.")
    product: str | None = Field(description="Product named by the customer.", max_length=60)
    order_ref: str | None = Field(
        description="Order number as ORD-123456; null if absent.", pattern="^ORD-[0-9]{6}$"
    )
    customer: str | None = Field(description="Name the customer signs with.", max_length=60)
    amount: Decimal | None = Field(
        description="Money the customer asks back, without currency; null if none.",
        max_digits=9,
        decimal_places=2,
    )
    language: str = Field(description="ISO 639-1 code of the message.", pattern="^[a-z]{2}$")
    summary: str = Field(description="One English sentence for the agent.", max_length=160)
    keywords: list[Keyword] = Field(description="Up to 4 search keywords.", max_length=4)
