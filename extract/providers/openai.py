"""`provider: openai`: any OpenAI-compatible chat-completions endpoint at `model.base_url`.

Everything it does is the base class's: see `providers/base.py`.
"""

from __future__ import annotations

from .base import Provider

__all__ = ["OpenAICompatible"]


class OpenAICompatible(Provider):
    """Any OpenAI-compatible endpoint; `model.routing`, when set, is sent as `provider`."""

    name = "openai"
