"""Schema for customer support tickets (pipelines/tickets.yaml)."""

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class TicketCategory(StrEnum):
    billing = "billing"
    shipping = "shipping"
    returns_refunds = "returns_refunds"
    technical_issue = "technical_issue"
    account_access = "account_access"
    product_question = "product_question"
    order_change = "order_change"
    complaint = "complaint"
    feedback = "feedback"
    other = "other"


class Sentiment(StrEnum):
    positive = "positive"
    neutral = "neutral"
    negative = "negative"
    angry = "angry"


Priority = Literal["low", "medium", "high", "urgent"]

Tag = Annotated[str, Field(min_length=1, max_length=30, pattern="^[a-z0-9][a-z0-9_-]*$")]


class SupportTicket(BaseModel):
    """One customer support message, classified and normalised for routing.

    Read the subject and the message body. Use null for any optional field that the
    message does not state; never invent order numbers, names or amounts.
    """

    model_config = ConfigDict(extra="forbid")

    category: TicketCategory = Field(
        description=(
            "Main reason for contacting support. billing = charges, invoices, payment "
            "methods; shipping = delivery status, delays, lost parcels; returns_refunds = "
            "wants to send back or get money back; technical_issue = app, website or device "
            "malfunction; account_access = login, password, 2FA, locked account; "
            "product_question = question before or after buying; order_change = change or "
            "cancel an order / address; complaint = dissatisfaction not covered above; "
            "feedback = praise or suggestions; other = none of these or empty message."
        )
    )
    priority: Priority = Field(
        description=(
            "Urgency for the support team. urgent = safety issue, legal threat, charged "
            "several times, or business down; high = customer blocked or deadline soon; "
            "medium = normal problem; low = questions, feedback, no time pressure."
        )
    )
    product: str | None = Field(
        description="Product or service the message is about, as named by the customer "
        "(e.g. 'AeroPress Go', 'Premium plan'); null if none is mentioned.",
        max_length=80,
    )
    order_id: str | None = Field(
        description=(
            "Order number normalised to the form ORD-123456 (six digits). Customers write "
            "it as '#123456', 'ord123456', 'order no. 123456' etc.; null if absent."
        ),
        pattern="^ORD-[0-9]{6}$",
    )
    sentiment: Sentiment = Field(description="Overall tone of the customer's message.")
    customer_name: str | None = Field(
        description="Name of the customer as signed or stated in the message; null if not given.",
        max_length=80,
    )
    requested_action: str | None = Field(
        description="What the customer asks support to do, as a short imperative phrase "
        "in English (e.g. 'refund the duplicate charge'); null if nothing is requested.",
        max_length=120,
    )
    language: str = Field(
        description="ISO 639-1 code of the language the message is written in (e.g. 'en', "
        "'de', 'es'); use 'en' for an empty message.",
        pattern="^[a-z]{2}$",
    )
    summary: str = Field(
        description="One-sentence English summary of the ticket for an agent.",
        max_length=200,
    )
    refund_amount: Decimal | None = Field(
        description="Amount of money the customer explicitly asks to be refunded or "
        "credited, as a number without currency sign; null if no amount is stated.",
        max_digits=10,
        decimal_places=2,
    )
    tags: list[Tag] = Field(
        description="Up to 5 short lowercase keywords for search (e.g. 'late-delivery', "
        "'double-charge'); empty list if nothing stands out.",
        max_length=5,
    )
