"""Tiny demo schema for a small local model (pipelines/demo.yaml)."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Topic = Annotated[str, Field(min_length=1, max_length=20)]


class Contact(BaseModel):
    """The sender of a short message and what it is about."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Sender's name as written in the message.", max_length=40)
    email: str | None = Field(
        description="Sender's email address if written in the message; otherwise null.",
        max_length=80,
        pattern="^[^@ ]+@[^@ ]+[.][a-z]+$",
    )
    company: str | None = Field(
        description="Sender's company or organisation; null if not mentioned.", max_length=40
    )
    topics: list[Topic] = Field(
        description="1 to 3 short lowercase topics of the message, e.g. 'pricing'.",
        max_length=3,
    )
    urgent: bool = Field(description="True only if the sender says it is urgent or time-critical.")
