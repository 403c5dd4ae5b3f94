"""The fault classes, the server's configuration, and the draw that picks a request's fault.

Fault decisions are deterministic yet let an identical retry succeed: each request draws a number
in [0, 1) from a hash of (config seed, request body bytes, how many times this exact body was seen
before), and the fault rates are laid end to end in `FAULT_CLASSES` order on that interval.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["BATCH_OUTCOMES", "FAULT_CLASSES", "ServerConfig", "draw", "parse_faults"]

#: fault classes, in the order their rates are laid end to end on [0, 1)
FAULT_CLASSES: tuple[str, ...] = (
    "rate_limit",
    "server_error",
    "timeout",
    "drop",
    "upstream_error",
    "malformed",
    "fenced",
    "prose",
    "invalid",
    "length",
    "reasoning_only",
    "refusal",
    "bad_request",
    "forbidden",
    "payment",
    "runaway",
)

#: how a batch can end; `ServerConfig.batch_outcome` picks one for the batches created under it
BATCH_OUTCOMES: tuple[str, ...] = ("completed", "expired", "failed", "cancelled")


@dataclass(frozen=True)
class ServerConfig:
    """How the test server behaves. `faults` maps a class in `FAULT_CLASSES` to its rate."""

    latency_ms: float = 0
    jitter_ms: float = 0
    faults: dict[str, float] = field(default_factory=dict)
    retry_after: str = "0"
    api_key: str | None = None
    seed: int = 0
    #: answer `logprobs: true` with made-up token log-probabilities (False: ignore it, as some
    #: providers do)
    logprobs: bool = True
    #: the `system_fingerprint` of every reply (a deployment's identity; null: none sent)
    system_fingerprint: str | None = "fp_extract_test"
    #: the share of rows answered other than before, as if the model had changed (for replays)
    drift: float = 0
    #: answer with the values the first user message gives in `@field: <JSON>` lines (see
    #: fromtext.py), so that an answer shows which text it came from
    answer_from_text: bool = False
    #: answer 429 at once to a request beyond this many in flight (a provider's hidden cap)
    max_concurrency: int | None = None
    #: `stream: true`: pause this long halfway through the first stream of each body (a stall
    #: an idle timeout must catch; the retry streams without it)
    stream_stall_ms: float = 0
    # The Batch API (`batches.py`). A batch keeps the config in force when it was created, so
    # changing these (or `faults`) later does not touch batches already submitted.
    #: seconds each of a batch's non-terminal statuses lasts (0: terminal at the first look)
    batch_step_s: float = 0.2
    #: how batches end: "completed", or "expired", "failed" or "cancelled" to test those paths
    batch_outcome: str = "completed"
    #: the documented limits per batch; over either, the create is answered 413
    batch_max_requests: int = 5000
    batch_max_bytes: int = 200_000_000
    #: refuse a batch model that is not a `:batch` slug (one third-party client saw this live)
    batch_require_batch_slug: bool = False
    #: wait this long after storing a new batch before answering its create
    batch_create_latency_ms: float = 0
    #: store a new batch, then cut the connection instead of answering (the client must find
    #: the batch through the list endpoint)
    batch_create_drop: bool = False
    #: keep every chat request body parsed (`ServerThread.bodies()`): what a test asserts was
    #: sent, e.g. a document's page images
    record_bodies: bool = False

    def __post_init__(self) -> None:
        _check_faults(self.faults)
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")
        if self.batch_step_s < 0 or self.batch_create_latency_ms < 0:
            raise ValueError("batch_step_s and batch_create_latency_ms must be >= 0")
        if self.batch_outcome not in BATCH_OUTCOMES:
            raise ValueError(
                f"batch_outcome {self.batch_outcome!r} is not one of {', '.join(BATCH_OUTCOMES)}"
            )
        if self.batch_max_requests < 1 or self.batch_max_bytes < 1:
            raise ValueError("batch_max_requests and batch_max_bytes must be >= 1")


def _check_faults(faults: Mapping[str, float]) -> None:
    unknown = sorted(set(faults) - set(FAULT_CLASSES))
    if unknown:
        raise ValueError(
            f"unknown fault class {', '.join(unknown)}; expected one of {', '.join(FAULT_CLASSES)}"
        )
    for name, rate in faults.items():
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate {name}={rate} is not between 0 and 1")
    # A little slack so that e.g. ten rates of 0.1 are accepted despite float rounding.
    if sum(faults.values()) > 1 + 1e-9:
        raise ValueError(f"fault rates add up to {sum(faults.values()):g}, more than 1")


def parse_faults(text: str) -> dict[str, float]:
    """Parse `"rate_limit=0.1,server_error=0.05"` into a dict; ValueError names a bad entry."""
    faults: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"fault {item!r} is not of the form class=rate")
        if name not in FAULT_CLASSES:
            raise ValueError(
                f"unknown fault class {name!r}; expected one of {', '.join(FAULT_CLASSES)}"
            )
        try:
            faults[name] = float(value)
        except ValueError:
            raise ValueError(f"fault rate {value!r} for {name} is not a number") from None
    _check_faults(faults)
    return faults


def draw(config: ServerConfig, body_key: bytes, occurrence: int) -> tuple[str | None, int]:
    """Pick the fault (or None) for the `occurrence`-th sighting of a body."""
    faults = config.faults
    h = hashlib.blake2b(
        body_key + occurrence.to_bytes(8, "big") + str(config.seed).encode(),
        digest_size=16,
    ).digest()
    if not faults:
        return None, h[8]
    u = int.from_bytes(h[:8], "big") / 2**64
    edge = 0.0
    for name in FAULT_CLASSES:
        edge += faults.get(name, 0.0)
        if u < edge:
            return name, h[8]
    return None, h[8]
