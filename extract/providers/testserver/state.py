"""The test server's state: its configuration in force, the counters behind GET /stats, and the
batches of the Batch API."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from aiohttp import web

from extract.providers.testserver.batches import AnswerFn, BatchStore
from extract.providers.testserver.faults import FAULT_CLASSES, ServerConfig

__all__ = ["STATE", "State"]


class State:
    """What one server holds between requests: its config, its counters and its batches.

    `answer` is the chat endpoint's core, with which the batches answer their lines.
    """

    def __init__(self, config: ServerConfig, answer: AnswerFn) -> None:
        self.config = config
        self._answer = answer
        self.jitter = random.Random()
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        """Forget every counter, every seen body and every batch."""
        self.batches = BatchStore(self._answer)
        self.total = 0
        #: requests being answered now, the most at once, and those refused over the cap
        self.in_flight = 0
        self.peak_in_flight = 0
        self.capped = 0
        #: streams the client closed before their end
        self.streams_cut = 0
        self.faults: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.seen: dict[bytes, int] = {}
        #: the chat bodies received, with config.record_bodies
        self.bodies: list[Any] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0

    def snapshot(self) -> dict[str, Any]:
        """The JSON of GET /stats."""
        return {
            "total_requests": self.total,
            "faults": {name: self.faults[name] for name in FAULT_CLASSES},
            "status_counts": dict(sorted(self.statuses.items())),
            "distinct_bodies": len(self.seen),
            "requests_by_row": dict(self.rows),
            "peak_in_flight": self.peak_in_flight,
            "capped": self.capped,
            "streams_cut": self.streams_cut,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost": self.cost,
            },
            "batches": self.batches.snapshot(),
        }


STATE: web.AppKey[State] = web.AppKey("state", State)
