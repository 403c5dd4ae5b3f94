"""`provider: openrouter` (the default endpoint): OpenRouter's OpenAI-compatible API.

Routing: `model.routing` is sent as the request's `provider` object, and `require_parameters:
true` is added unless set, so only providers that honour `response_format` and `seed` are used:
others may silently ignore them. Replies carry `reasoning_details`, which a re-ask hands back.
"""

from __future__ import annotations

from typing import Any

from .base import Provider

__all__ = ["OPENROUTER_URL", "OpenRouter", "is_openrouter"]

OPENROUTER_URL = "https://openrouter.ai/api/v1"


def is_openrouter(base_url: str) -> bool:
    return base_url.rstrip("/").startswith("https://openrouter.ai")


class OpenRouter(Provider):
    name = "openrouter"
    logprobs = True
    batch = True

    def request_fields(self) -> dict[str, Any]:
        routing = dict(self.model.routing or {})
        routing.setdefault("require_parameters", True)
        return {"provider": routing}
