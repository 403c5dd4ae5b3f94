"""OpenRouter's Batch API without the HTTP: the stored batch, its statuses, its result lines, the
list and results pages, and the counters behind `/stats["batches"]`. `batch_routes.py` checks
the requests and calls this.

A batch's status is a function of the time since it was created (each non-terminal status lasts
the `batch_step_s` of the config it was created under), so nothing runs in the background. Its
lines are answered once, the first time anyone looks at it after it became terminal, by the chat
endpoint's core (`app.answer`, handed in as an `AnswerFn`) at `BATCH_DISCOUNT` of the price; the
faults that replace a whole reply become per-line `error` objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from extract.providers.testserver.faults import FAULT_CLASSES, ServerConfig
from extract.providers.testserver.replies import BATCH_DISCOUNT, Answer

__all__ = [
    "LINE_ERRORS",
    "LISTABLE_STATUSES",
    "TERMINAL_STATUSES",
    "AnswerFn",
    "Batch",
    "BatchError",
    "BatchStore",
    "Submission",
    "body_key",
    "decode_cursor",
    "encode_cursor",
]

#: the chat core: (config, body, body key, sightings, new id, price factor) -> Answer
AnswerFn = Callable[
    [ServerConfig, Any, bytes, dict[bytes, int], Callable[[bytes], str], float], Answer
]

WINDOW_S = 24 * 3600

TERMINAL_STATUSES = ("completed", "failed", "expired", "cancelled")
#: what the list's `status` filter accepts; stored `finalizing`/`cancelling` count as in_progress
LISTABLE_STATUSES = ("validating", "in_progress", "completed", "failed", "expired", "cancelled")
#: the statuses a batch passes through, one `batch_step_s` each, before it ends in its outcome
PATHS: dict[str, tuple[str, ...]] = {
    "completed": ("validating", "in_progress", "finalizing"),
    "failed": ("validating",),  # a validation failure
    "expired": ("validating", "in_progress"),
    "cancelled": ("validating", "in_progress", "cancelling"),
}
#: fault classes that replace a completion, as a result line's (`type`, `error_type`)
LINE_ERRORS: dict[str, tuple[str, str]] = {
    "rate_limit": ("rate_limit_error", "rate_limit_exceeded"),
    "server_error": ("server_error", "server"),
    "timeout": ("server_error", "timeout"),
    "drop": ("server_error", "server"),
    "upstream_error": ("server_error", "server"),
    "bad_request": ("invalid_request_error", "invalid_request"),
    "forbidden": ("moderation", "content_policy_violation"),
    "payment": ("payment_required", "payment_required"),
}
_CURSOR_VERSION = "v1"


class BatchError(Exception):
    """A request the Batch API refuses: the HTTP status and the message of its error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Submission:
    """A create body that passed the checks answered at once (400/413): what a batch stores."""

    endpoint: str
    model: str
    #: (custom_id, body) in submission order
    requests: list[tuple[str, dict[str, Any]]]
    #: why validation fails later (the batch is stored, then ends `failed`), or None
    failure: str | None


def body_key(body: dict[str, Any]) -> bytes:
    """A line body's identity: the hash of its canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


# --------------------------------------------------------------------------- cursors


def encode_cursor(batch_id: str, offset: int) -> str:
    """The results cursor for `offset`: base64url of `v1:<batch id>:<offset>`, no padding."""
    text = f"{_CURSOR_VERSION}:{batch_id}:{offset}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, batch_id: str) -> int:
    """The offset a cursor of `batch_id` points at; BatchError 400 for any other string."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    version, _, rest = text.partition(":")
    owner, _, offset = rest.rpartition(":")
    if (
        version != _CURSOR_VERSION
        or owner != batch_id
        or not (offset.isascii() and offset.isdigit())
    ):
        raise BatchError(400, f"cursor {cursor!r} is not a results cursor of batch {batch_id}")
    return int(offset)


# --------------------------------------------------------------------------- the stored batch


@dataclass(eq=False)
class Batch:
    """One stored batch: what was submitted, the config it was created under, and its results."""

    id: str
    endpoint: str
    model: str
    #: Unix time of the create (wall clock, for created_at) and the monotonic time (for statuses)
    created: float
    started: float
    config: ServerConfig
    requests: list[tuple[str, dict[str, Any]]]
    #: kept after a delete, for the resubmission counters
    body_keys: list[bytes]
    custom_ids: list[str]
    outcome: str
    failure: str | None
    #: the result lines, filled in once the batch is terminal (then never changed)
    results: list[dict[str, Any]] | None = None
    usage: dict[str, Any] | None = None
    completed: int = 0
    failed: int = 0
    deleted: bool = False

    @property
    def path(self) -> tuple[str, ...]:
        """The non-terminal statuses this batch passes through."""
        return PATHS[self.outcome]

    def status_at(self, now: float) -> str:
        """The status at monotonic time `now`."""
        step = self.config.batch_step_s
        path = self.path
        index = int((now - self.started) / step) if step > 0 else len(path)
        return path[index] if index < len(path) else self.outcome

    def finalized_at(self) -> int:
        """Unix seconds at which the batch became terminal."""
        return int(self.created + len(self.path) * self.config.batch_step_s)


class BatchStore:
    """Every batch a server holds, and the counters of the Batch API."""

    def __init__(self, answer: AnswerFn) -> None:
        self._answer = answer
        self.batches: dict[str, Batch] = {}  # in creation order
        #: sightings of each line body, so a resubmitted line draws its faults anew
        self.seen: dict[bytes, int] = {}
        self.generation = 0
        self.statuses: Counter[str] = Counter()  # HTTP statuses of the batch routes
        self.faults: Counter[str] = Counter()
        self.lines_completed = 0
        self.lines_failed = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0

    def create(self, submission: Submission, config: ServerConfig) -> Batch:
        """Store a new batch under `config` (kept with it: later config changes do not touch it)."""
        batch = Batch(
            id=f"batch_{secrets.token_hex(12)}",
            endpoint=submission.endpoint,
            model=submission.model,
            created=time.time(),
            started=time.monotonic(),
            config=config,
            requests=submission.requests,
            body_keys=[body_key(body) for _, body in submission.requests],
            custom_ids=[custom_id for custom_id, _ in submission.requests],
            outcome="failed" if submission.failure else config.batch_outcome,
            failure=submission.failure,
        )
        if batch.outcome == "failed" and batch.failure is None:
            batch.failure = "batch validation failed (the test server's batch_outcome is 'failed')"
        self.batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> Batch:
        """The batch with this id; BatchError 404 when there is none (or it was deleted)."""
        batch = self.batches.get(batch_id)
        if batch is None or batch.deleted:
            raise BatchError(404, f"No batch found with id {batch_id!r}")
        return batch

    def status(self, batch: Batch) -> str:
        """The batch's status now; answers its lines the first time it is seen terminal."""
        status = batch.status_at(time.monotonic())
        if status in TERMINAL_STATUSES and batch.results is None:
            self._finish(batch)
        return status

    def render(self, batch: Batch, inline: str, status: str | None = None) -> dict[str, Any]:
        """The batch object. `inline` says when it carries `results`: "terminal" (v1 docs),
        "completed" (the older /beta docs) or "never" (list items). `status` overrides the
        status (the create answers "validating" even when the first step lasts 0 s)."""
        status = status or self.status(batch)
        terminal = status in TERMINAL_STATUSES
        show = (inline == "terminal" and terminal) or (
            inline == "completed" and status == "completed"
        )
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.model,
            "completion_window": "24h",
            "status": status,
            "provider": "fake",
            "created_at": int(batch.created),
            "finalized_at": batch.finalized_at() if terminal else None,
            "expires_at": int(batch.created) + WINDOW_S,
            "request_counts": {
                "total": len(batch.custom_ids),
                "completed": batch.completed if terminal else 0,
                "failed": batch.failed if terminal else 0,
            },
            "usage": batch.usage if terminal else None,
            "results": list(batch.results or []) if show else None,
            "error": {"message": batch.failure} if status == "failed" else None,
        }

    def list_page(
        self,
        limit: int,
        after: str | None,
        statuses: Iterable[str],
        created_after: int | None,
        created_before: int | None,
    ) -> dict[str, Any]:
        """One page of `GET /batches`, newest first."""
        wanted = set(statuses)
        newest_first = list(reversed(self.batches.values()))
        if after is not None:
            # Deleted batches keep their place, so paging on from one still works.
            ids = [b.id for b in newest_first]
            if after not in ids:
                raise BatchError(400, f"after: no batch with id {after!r}")
            newest_first = newest_first[ids.index(after) + 1 :]
        matches = [
            b
            for b in newest_first
            if not b.deleted
            and (not wanted or _listed_as(self.status(b)) in wanted)
            and (created_after is None or int(b.created) > created_after)
            and (created_before is None or int(b.created) < created_before)
        ]
        page = [self.render(b, "never") for b in matches[:limit]]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(matches) > limit,
        }

    def results_page(self, batch: Batch, limit: int, cursor: str | None) -> dict[str, Any]:
        """One page of `GET /batches/{id}/results`, in submission order."""
        status = self.status(batch)
        if status not in TERMINAL_STATUSES:
            raise BatchError(
                409, f"batch {batch.id} is {status}; its results are ready once it is terminal"
            )
        lines = batch.results or []
        offset = 0 if cursor is None else decode_cursor(cursor, batch.id)
        if offset > len(lines):
            raise BatchError(400, f"cursor {cursor!r} points past the end of the results")
        data = lines[offset : offset + limit]
        end = offset + len(data)
        has_more = end < len(lines)
        return {
            "object": "list",
            "data": data,
            "has_more": has_more,
            "next_cursor": encode_cursor(batch.id, end) if has_more else None,
        }

    def delete(self, batch: Batch) -> dict[str, Any]:
        """Delete a terminal batch's requests and results; BatchError 409 if it is not terminal."""
        status = self.status(batch)
        if status not in TERMINAL_STATUSES:
            raise BatchError(409, f"batch {batch.id} is {status}; only a terminal batch is deleted")
        batch.deleted = True
        batch.requests = []
        batch.results = []
        return {"id": batch.id, "object": "batch", "deleted": True}

    def snapshot(self) -> dict[str, Any]:
        """The `batches` section of `/stats`."""
        now_status = {b.id: self.status(b) for b in self.batches.values()}
        bodies: Counter[bytes] = Counter()
        custom_ids: Counter[str] = Counter()
        for batch in self.batches.values():
            status = now_status[batch.id]
            # A line of an expired, failed or cancelled batch was never run: sending it again
            # is not a second submission.
            if status not in ("expired", "failed", "cancelled"):
                bodies.update(batch.body_keys)
            if status != "failed":
                custom_ids.update(batch.custom_ids)
        return {
            "created": len(self.batches),
            "deleted": sum(b.deleted for b in self.batches.values()),
            "by_status": dict(sorted(Counter(now_status.values()).items())),
            "status_counts": dict(sorted(self.statuses.items())),
            "lines_submitted": sum(len(b.body_keys) for b in self.batches.values()),
            "lines_completed": self.lines_completed,
            "lines_failed": self.lines_failed,
            "faults": {name: self.faults[name] for name in FAULT_CLASSES},
            "max_submissions_per_body": max(bodies.values(), default=0),
            "bodies_submitted_more_than_once": sum(n > 1 for n in bodies.values()),
            "custom_ids_submitted_more_than_once": sum(n > 1 for n in custom_ids.values()),
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost": self.cost,
            },
        }

    # ----------------------------------------------------------------------- result lines

    def _finish(self, batch: Batch) -> None:
        # Only a completed batch runs its lines; expired and cancelled ones end with none done.
        results = []
        if batch.outcome == "completed":
            for (custom_id, body), key in zip(batch.requests, batch.body_keys, strict=True):
                results.append(self._line(batch, custom_id, body, key))
        prompt_tokens = completion_tokens = 0
        cost = 0.0
        for line in results:
            if line["response"] is None:
                batch.failed += 1
                continue
            batch.completed += 1
            usage = line["response"]["body"]["usage"]
            prompt_tokens += usage["prompt_tokens"]
            completion_tokens += usage["completion_tokens"]
            cost += usage["cost"]
        batch.usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": cost,
            "is_byok": False,
        }
        batch.results = results
        self.lines_completed += batch.completed
        self.lines_failed += batch.failed
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost += cost

    def _line(
        self, batch: Batch, custom_id: str, body: dict[str, Any], key: bytes
    ) -> dict[str, Any]:
        def new_id(row: bytes) -> str:
            self.generation += 1
            return f"gen-batch-{row.hex()[:12]}-{self.generation}"

        # A body may leave out the model and inherit the batch's (a differing one was refused).
        effective = body if "model" in body else {**body, "model": batch.model}
        result = self._answer(batch.config, effective, key, self.seen, new_id, BATCH_DISCOUNT)
        if result.fault is not None:
            self.faults[result.fault] += 1
        line: dict[str, Any] = {
            "id": f"batch_req_{secrets.token_hex(12)}",
            "custom_id": custom_id,
            "response": None,
            "error": None,
        }
        if result.status == 200 and result.fault not in LINE_ERRORS:
            line["response"] = {
                "status_code": 200,
                "request_id": result.payload["id"],
                "body": result.payload,
            }
            return line
        kind, error_type = LINE_ERRORS.get(
            result.fault or "", ("invalid_request_error", "invalid_request")
        )
        if result.status == 503:
            error_type = "provider_unavailable"
        error = result.payload.get("error") or {}
        line["error"] = {
            "message": error.get("message") or "the provider closed the connection mid-request",
            "param": None,
            "type": kind,
            "error_type": error_type,
        }
        return line


def _listed_as(status: str) -> str:
    """The status a list filter matches a stored status by."""
    return {"finalizing": "in_progress", "cancelling": "in_progress"}.get(status, status)
