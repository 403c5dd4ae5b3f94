"""Batch mode behind the transport seam: `complete(body)` answers from a batch line.

The row loop and the row worker are those of sync mode; only the transport differs. Each
`complete(body)` either finds its body among the lines of a batch the ledger knows (submitted by
this run, or by an earlier one that was killed or exited while the batch ran) and waits for that
line, or queues the body for a new batch. A queue is submitted when it is full (requests or
bytes) or when no row has joined it for a moment. Then, per batch:

1. record the batch and its lines in the ledger (`submitting`) and commit: before the POST;
2. POST it. A definite refusal (400, 401, 413) ends it; a lost or failed answer (timeout,
   dropped connection, 5xx) may still mean a stored batch, so the key's batches created since
   step 1 are listed and one of our model and size not known to the ledger is adopted; only
   when there is none is it `unsent`, and its lines are queued again;
3. record the provider's id and status; poll until the batch ends (with `--wait`), or once,
   leaving its rows pending (`BatchPending`) for a later run to collect;
4. read the result lines (paged, or inline on the older API) and hand each waiting row its
   Completion or error, exactly as a sync reply would be. A line that failed transiently, or a
   batch that expired or was cancelled, sends its rows' bodies again in a new batch.

A row is recorded in the output only once it has an answer, and a body is looked up in the
ledger before it is ever queued: no request is submitted twice, and none is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import APIError, BatchPending, RowRejected, RunStopped, ServerError
from ..transport.base import CURRENT_ROW, Completion, Transport
from ..transport.retry import with_retries
from .client import BatchClient
from .lines import body_hash, create_body, custom_id, has_inline_data, line_outcome
from .store import DEAD, BatchRecord, BatchStore

__all__ = ["BatchTransport"]

T = TypeVar("T")
StoreCall = Callable[..., Awaitable[Any]]

#: a body whose batch ended without answering it is submitted again at most this often
MAX_RESUBMITS = 3
#: a queue is submitted once no row has joined it for this long (seconds), or this long after
#: its first row at the latest
LINGER_S = 0.2
MAX_LINGER_S = 10.0
#: bytes a line adds to a create body beyond its request body
_LINE_OVERHEAD = 80
_ENDED = ("completed", "failed", "expired", "cancelled")


@dataclass(slots=True)
class _Entry:
    """A body waiting to be submitted, with the row it is for."""

    digest: str
    body: bytes
    future: asyncio.Future[Completion]
    row_key: str
    request_hash: str


class _Resubmit(Exception):
    """The batch ended without answering this line: submit its body again."""


@dataclass(eq=False)
class _Batch:
    record: BatchRecord
    #: every custom id of the batch
    ids: set[str] = field(default_factory=set)
    #: rows waiting for a line, by custom id
    waiters: dict[str, list[asyncio.Future[Completion]]] = field(default_factory=dict)
    #: each line's outcome, once the batch has ended and its results were read
    outcomes: dict[str, Completion | APIError] | None = None
    #: lines handed to a row in this process
    delivered: set[str] = field(default_factory=set)
    #: why rows cannot be answered now (still running in a run that does not wait, ...)
    pending: str | None = None
    follow: asyncio.Task[None] | None = None


class BatchTransport:
    """The `Transport` of run.mode batch (use inside a running event loop, `async with`)."""

    def __init__(
        self,
        client: BatchClient,
        store: BatchStore,
        call: StoreCall,
        *,
        model: str,
        run_id: str,
        max_requests: int,
        max_bytes: int,
        poll_s: float,
        wait: bool,
        max_retries: int,
        backoff_s: float,
        fallback: Transport | None = None,
        prices: tuple[float, float] | None = None,
        discount: float = 0.5,
    ):
        self.client = client
        self.store = store
        self.call = call
        self.model = model
        self.run_id = run_id
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.poll_s = poll_s
        self.wait = wait
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.fallback = fallback
        self.prices = prices
        self.discount = discount
        self.batches: dict[str, _Batch] = {}
        #: lines by body hash: [(batch_key, custom_id), ...], oldest first
        self.by_body: dict[str, list[tuple[str, str]]] = {}
        #: lines given to a row in this process (a second call with the same body is a retry)
        self.taken: set[tuple[str, str]] = set()
        self._queue: list[_Entry] = []
        self._queued_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._opened = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._create_lock = asyncio.Lock()
        #: a batch whose submit may or may not have reached the provider, not yet found out
        self._unresolved: _Batch | None = None
        #: batches submitted by this run
        self.submitted = 0
        #: why the last batch that failed did (for the rows that give up)
        self.last_failure: str | None = None

    async def __aenter__(self) -> BatchTransport:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        tasks = set(self._tasks) | {b.follow for b in self.batches.values() if b.follow}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.client.__aexit__(*exc)

    # ------------------------------------------------------------------ the seam

    async def complete(self, body: bytes) -> Completion:
        """The answer to `body` from a batch line; BatchPending while its batch runs."""
        if has_inline_data(body):
            if self.fallback is not None:
                return await self.fallback.complete(body)
            raise RowRejected(
                "run.mode batch: the request carries an image or file inline (a local file), and "
                "batches take them by http(s) URL only; give URLs, or set run.batch_fallback: sync"
            )
        await self._load()
        digest = body_hash(body)
        for _ in range(MAX_RESUBMITS):
            future = self._existing(digest) or self._enqueue(digest, body)
            try:
                return await future
            except _Resubmit:
                continue
        last = f" (the last: {self.last_failure})" if self.last_failure else ""
        raise ServerError(
            f"run.mode batch: the request's batch ended without answering it {MAX_RESUBMITS} "
            f"times{last}"
        )

    def collectable(self) -> list[str]:
        """Batches that ended and whose every line reached its row in this run."""
        return [
            key
            for key, b in self.batches.items()
            if b.record.status in DEAD or (b.outcomes is not None and b.ids <= b.delivered)
        ]

    # ------------------------------------------------------------------ finding and queueing

    async def _load(self) -> None:
        async with self._load_lock:
            if self._loaded:
                return
            records, lines = await self.call(self.store.open_batches)
            self.batches = {r.batch_key: _Batch(r) for r in records}
            for digest, found in lines.items():
                self.by_body[digest] = list(found)
                for key, cid in found:
                    self.batches[key].ids.add(cid)
            self._loaded = True
            # submits a killed run left in doubt are found out first, oldest first, before
            # anything new is submitted
            async with self._create_lock:
                for batch in self.batches.values():
                    if batch.record.batch_id is None and batch.record.status == "submitting":
                        await self._resolve(batch, "the submit's answer was never recorded")
                        if self._unresolved is not None:
                            break

    def _existing(self, digest: str) -> asyncio.Future[Completion] | None:
        for key, cid in self.by_body.get(digest, ()):
            batch = self.batches.get(key)
            if (key, cid) in self.taken or batch is None or batch.record.status in DEAD:
                continue
            self.taken.add((key, cid))
            return self._wait(batch, cid)
        return None

    def _wait(self, batch: _Batch, cid: str) -> asyncio.Future[Completion]:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        if batch.outcomes is not None:
            self._deliver(batch, cid, future)
        elif batch.pending is not None:
            future.set_exception(BatchPending(batch.pending, batch_id=batch.record.batch_id))
        elif batch.record.status in DEAD:
            future.set_exception(_Resubmit())
        else:
            batch.waiters.setdefault(cid, []).append(future)
            if batch.follow is None:
                batch.follow = asyncio.create_task(self._follow(batch))
        return future

    def _enqueue(self, digest: str, body: bytes) -> asyncio.Future[Completion]:
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        size = len(body) + _LINE_OVERHEAD
        if self._queue and self._queued_bytes + size > self.max_bytes:
            self._flush()
        row_key, request_hash = CURRENT_ROW.get() or ("", digest)
        self._queue.append(_Entry(digest, body, future, row_key, request_hash))
        self._queued_bytes += size
        if len(self._queue) >= self.max_requests:
            self._flush()
        elif self._timer is None:
            self._opened = time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(LINGER_S, self._flush)
        elif time.monotonic() - self._opened >= MAX_LINGER_S:
            self._flush()  # rows that trickle in do not hold the queue open for ever
        else:
            # every row that joins keeps the queue open a little longer
            self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(LINGER_S, self._flush)
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        entries, self._queue, self._queued_bytes = self._queue, [], 0
        if entries:
            task = asyncio.create_task(self._submit(entries))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ one batch

    async def _submit(self, entries: list[_Entry]) -> None:
        try:
            await self._submit_batch(entries)
        except Exception as e:  # a bug of ours: the rows end with it rather than wait forever
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(e)

    async def _submit_batch(self, entries: list[_Entry]) -> None:
        key = uuid.uuid4().hex[:12]
        ids = [custom_id(key, i, e.request_hash) for i, e in enumerate(entries)]
        pairs = list(zip(ids, entries, strict=True))
        payload = create_body(self.model, [(cid, e.body) for cid, e in pairs])
        # One submit at a time, and none while an earlier one is unconfirmed: then at most one
        # batch is ever in doubt, and a lost answer can only be that one batch.
        async with self._create_lock:
            doubt = self._unresolved
            if doubt is not None and not await self._resolve(doubt, "an earlier submit"):
                for entry in entries:
                    entry.future.set_exception(BatchPending(doubt.pending or "", batch_id=None))
                return
            record = BatchRecord(key, None, self.model, "submitting", len(ids), time.time())
            batch = _Batch(record, ids=set(ids))
            rows = [(cid, e.digest, e.row_key, e.request_hash) for cid, e in pairs]
            await self.call(self.store.add, record, rows, len(payload), self.run_id)
            self.batches[key] = batch
            for cid, entry in pairs:
                self.by_body.setdefault(entry.digest, []).append((key, cid))
                self.taken.add((key, cid))
                batch.waiters[cid] = [entry.future]
            self.submitted += 1
            try:
                answer = await self.client.create(payload)
            except (RunStopped, RowRejected) as e:  # refused: nothing was stored
                await self._set(batch, status="rejected", error=str(e)[:500])
                self._end(batch, _again(e))
                return
            except APIError as e:  # the answer is lost, or the server failed: it may be stored
                if not await self._resolve(batch, str(e)):
                    return
            else:
                await self._adopt(batch, answer)
        await self._follow(batch)

    async def _resolve(self, batch: _Batch, why: str) -> bool:
        """A submit whose answer was lost: adopt the batch the provider stored, or mark it
        unsent (its rows go in a new batch). False when it was not adopted; when the provider
        cannot be asked, the batch stays in doubt and its rows pending."""
        if batch.record.batch_id is not None:
            return True
        if batch.record.status != "submitting":
            return False
        try:
            found = await self._find(batch)
        except APIError as e:
            self._unresolved = batch
            batch.pending = (
                f"could not tell whether a batch was submitted ({why}; listing failed: {e}); "
                "run again to find it"
            )
            self._end_pending(batch)
            return False
        self._unresolved = None
        if found is None:
            await self._set(batch, status="unsent", error=why[:500])
            self._end(batch, _Resubmit)
            return False
        await self._adopt(batch, found)
        return True

    async def _find(self, batch: _Batch) -> dict[str, Any] | None:
        """The provider's batch that answers a submit whose answer was lost: created after the
        record was written, of our model and size, and not known to the ledger."""
        known: set[str] = await self.call(self.store.known_ids)
        since = batch.record.created_after - 2  # created_after is strict, clocks drift
        candidates: list[dict[str, Any]] = []
        after: str | None = None
        for _ in range(100):
            page = await self._retrying(
                functools.partial(self.client.list, created_after=since, after=after)
            )
            for item in page.get("data") or []:
                if not isinstance(item, dict) or item.get("id") in known:
                    continue
                total = (item.get("request_counts") or {}).get("total")
                if item.get("model") == self.model and total in (None, 0, batch.record.requests):
                    candidates.append(item)
            after = page.get("last_id")
            if not page.get("has_more") or not after:
                break
        if not candidates:
            return None
        # submits go one at a time, in the order of their records: the earliest unknown one
        return min(candidates, key=lambda item: (float(item.get("created_at") or 0), item["id"]))

    async def _adopt(self, batch: _Batch, answer: dict[str, Any]) -> None:
        batch.record.batch_id = str(answer.get("id"))
        status = str(answer.get("status") or "validating")
        now = dt.datetime.now(dt.UTC)
        await self._set(batch, batch_id=batch.record.batch_id, status=status, submitted_at=now)

    async def _follow(self, batch: _Batch) -> None:
        """Poll the batch until it ends (or once, without --wait), then hand out its lines."""
        try:
            if batch.record.batch_id is None:  # recorded by a run that died in its submit
                async with self._create_lock:
                    if not await self._resolve(batch, "the submit's answer was never recorded"):
                        return
            assert batch.record.batch_id is not None
            batch_id = batch.record.batch_id
            while True:
                state = await self._retrying(lambda: self.client.get(batch_id))
                status = str(state.get("status"))
                if status != batch.record.status:
                    await self._set(batch, status=status)
                if status in _ENDED:
                    await self._collect(batch, state)
                    return
                if not self.wait:
                    batch.pending = f"batch {batch_id} is {status}; run again to collect it"
                    self._end_pending(batch)
                    return
                await asyncio.sleep(self.poll_s)
        except RunStopped as e:
            self._end(batch, _again(e))
        except APIError as e:
            batch.pending = f"the Batch API could not be reached ({e}); run again to collect"
            self._end_pending(batch)
        except Exception as e:  # a bug of ours: the rows end with it rather than wait forever
            self._end(batch, _again(e))
        finally:
            batch.follow = None

    async def _collect(self, batch: _Batch, state: dict[str, Any]) -> None:
        status = str(state.get("status"))
        batch_id = str(batch.record.batch_id)
        if status == "failed":  # the provider failed the batch: its rows go in a new one
            reason = str((state.get("error") or {}).get("message") or "no reason given")
            self.last_failure = f"batch {batch_id} failed: {reason}"
            await self._set(batch, error=reason[:500])
            self._end(batch, _Resubmit)
            return
        if status == "completed":
            created = float(state.get("created_at") or batch.record.created_after)
            latency_ms = max(0.0, (float(state.get("finalized_at") or time.time()) - created) * 1e3)
            outcomes: dict[str, Completion | APIError] = {}
            for line in await self._results(batch_id, state):
                outcome = line_outcome(line, latency_ms)
                if isinstance(outcome, Completion):
                    outcome.batch_id = batch_id
                    self._price(outcome)
                outcomes[str(line.get("custom_id"))] = outcome
            batch.outcomes = outcomes
            await self._set(batch, **_totals(state, outcomes))
        else:  # expired, cancelled: nothing answered, the rows go in a new batch
            batch.record.status = status
            self._end(batch, _Resubmit)
            return
        waiting, batch.waiters = batch.waiters, {}
        for cid, futures in waiting.items():
            for future in futures:
                self._deliver(batch, cid, future)

    async def _results(self, batch_id: str, state: dict[str, Any]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            try:
                page = await self._retrying(
                    functools.partial(self.client.results, batch_id, cursor)
                )
            except RowRejected:
                # the older API has no results endpoint: the batch object holds them
                inline = state.get("results")
                inline = inline if isinstance(inline, list) else []
                return [x for x in inline if isinstance(x, dict)]
            lines.extend(x for x in page.get("data") or [] if isinstance(x, dict))
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                return lines

    def _deliver(self, batch: _Batch, cid: str, future: asyncio.Future[Completion]) -> None:
        assert batch.outcomes is not None
        batch.delivered.add(cid)
        outcome = batch.outcomes.get(cid)
        if future.done():
            return
        if outcome is None:
            future.set_exception(_Resubmit())
        elif isinstance(outcome, Completion):
            future.set_result(outcome)
        else:
            future.set_exception(outcome)

    def _end(self, batch: _Batch, error: Callable[[], BaseException]) -> None:
        waiting, batch.waiters = batch.waiters, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error())

    def _end_pending(self, batch: _Batch) -> None:
        message, batch_id = batch.pending or "", batch.record.batch_id
        self._end(batch, lambda: BatchPending(message, batch_id=batch_id))

    def _price(self, completion: Completion) -> None:
        """A line without a reported cost is priced from its tokens at the batch price."""
        u = completion.usage
        if u.cost_usd is None and self.prices is not None:
            per_in, per_out = self.prices
            u.cost_usd = (u.prompt_tokens * per_in + u.completion_tokens * per_out) / 1e6
            u.cost_usd *= self.discount

    async def _set(self, batch: _Batch, **values: Any) -> None:
        if "status" in values:
            batch.record.status = values["status"]
        await self.call(functools.partial(self.store.update, batch.record.batch_key, **values))

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(call, self.max_retries, initial=self.backoff_s)


def _again(error: BaseException) -> Callable[[], BaseException]:
    """The same error for every waiting row."""
    return lambda: error


def _totals(state: dict[str, Any], outcomes: dict[str, Completion | APIError]) -> dict[str, Any]:
    """A finished batch's counts, tokens and cost: the provider's figures where it gives them."""
    counts = state.get("request_counts") or {}
    usage = state.get("usage") or {}
    answered = [o for o in outcomes.values() if isinstance(o, Completion)]
    cost = usage.get("cost")
    return {
        "completed": counts.get("completed", len(answered)),
        "failed": counts.get("failed", len(outcomes) - len(answered)),
        "prompt_tokens": usage.get("prompt_tokens", sum(o.usage.prompt_tokens for o in answered)),
        "completion_tokens": usage.get(
            "completion_tokens", sum(o.usage.completion_tokens for o in answered)
        ),
        "cost_usd": cost
        if isinstance(cost, int | float)
        else sum(o.usage.cost_usd or 0.0 for o in answered),
    }
