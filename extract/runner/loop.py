"""The row loop: stream the prepared rows, skip what the ledger holds, answer what the cache
holds, and keep up to the adaptive limit of rows in flight, each its own task.

Every row ends as exactly one RowResult, handed to the ledger writer once; an answer can only
reach the row whose request it answers because each task owns its row. A bug of ours inside a
row lands that row in the errors table with its traceback instead of losing it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ..errors import BatchPending, BudgetExceeded, RunStopped, WorkerLost
from ..ledger import Known, LedgerWriter, classify
from ..ledger.store import Ledger
from ..pipeline import Pipeline, PreparedRow
from ..results import RowResult, RunSummary
from ..trust.assess import Assessor
from .concurrency import AdaptiveLimit
from .rows import Counter

__all__ = ["Processor", "Progress", "RowLoop"]

Progress = Callable[[RunSummary], None]

#: rows (or characters of prompts: rows with page images are large) gathered before the
#: response cache is looked up for them
DEFERRED_ROWS = 5000
DEFERRED_CHARS = 16_000_000


class Processor(Protocol):
    """What turns a row into its RowResult: a RowWorker in this process, or the driver's handle
    on workers elsewhere (extract/engines/ray/)."""

    #: requests sent for the run so far
    sent: Counter
    #: the run's confidence and grounding (the cache's answers are re-grounded with it)
    assessor: Assessor

    async def process(self, row: PreparedRow) -> RowResult: ...


class RowLoop:
    def __init__(
        self,
        pipeline: Pipeline,
        worker: Processor,
        ledger: Ledger,
        writer: LedgerWriter,
        summary: RunSummary,
        limit: AdaptiveLimit,
        progress: Progress | None,
        *,
        full_refresh: bool,
        retry_errors: bool,
        only: Collection[Any] | None = None,
        batches: Iterator[list[PreparedRow]] | None = None,
    ):
        self.pipeline = pipeline
        self.worker = worker
        self.ledger = ledger
        self.writer = writer
        self.summary = summary
        self.limit = limit
        self.progress = progress
        self.full_refresh = full_refresh
        self.retry_errors = retry_errors
        #: process only the rows of these keys (extract replay)
        self.only = only
        #: the prepared rows when they are not read here from the pipeline's source (run.engine)
        self.batches = batches
        #: 401/402, the budget or a lost worker: why the run stopped early
        self.stopped: RunStopped | BudgetExceeded | WorkerLost | None = None
        #: SIGTERM: no new row is started; those in flight may finish
        self.draining = False
        self.tasks: set[asyncio.Task[None]] = set()
        #: rows waiting for a look-up in the response cache, and the size of their prompts
        self.deferred: list[tuple[PreparedRow, Known]] = []
        self.deferred_chars = 0

    @property
    def halted(self) -> bool:
        return self.stopped is not None or self.writer.fatal is not None or self.draining

    def drain(self) -> None:
        """Start no new row; let the rows in flight finish."""
        self.draining = True

    def cancel_rows(self) -> None:
        """Cancel the rows in flight (what was journaled stays)."""
        for task in self.tasks:
            task.cancel()

    def accept(self, result: RowResult) -> None:
        """Count a finished row and hand it to the writer."""
        s = self.summary
        if result.from_cache:
            s.rows_cached += 1
        elif result.ok:
            s.rows_ok += 1
        else:
            s.rows_failed += 1
        if not result.from_cache:
            s.usage.add(result.usage)
        s.requests = self.worker.sent.requests
        self.writer.record(result)
        if self.progress is not None:
            self.progress(s)

    async def _row_task(self, row: PreparedRow) -> None:
        try:
            try:
                result = await self.worker.process(row)
            except (RunStopped, BudgetExceeded, WorkerLost) as e:
                # The row is left for the next run: nothing about it is recorded.
                if self.stopped is None:
                    self.stopped = e
                return
            except BatchPending:
                # Its batch is still running: a later run collects the answer.
                self.summary.rows_pending += 1
                if self.progress is not None:
                    self.progress(self.summary)
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                result = RowResult(
                    key=row.key,
                    prompt_hash=row.prompt_hash,
                    request_hash=row.request_hash or "",
                    run_id=self.summary.run_id,
                    error_class=f"InternalError.{type(e).__name__}",
                    message=f"{e}\n{traceback.format_exc(limit=5)}",
                    pages=row.pages,
                )
            self.accept(result)
        finally:
            self.limit.release()

    async def _known(self, batch: list[PreparedRow]) -> list[Known]:
        if self.full_refresh or self.ledger.empty:
            return [Known()] * len(batch)
        return await self.writer.in_thread(
            self.ledger.reader.lookup,
            [r.key for r in batch],
            [r.request_hash for r in batch],
            False,
        )

    def _defers(self, row: PreparedRow, known: Known) -> bool:
        """Whether the row waits for a look-up in the response cache (see `_look_up_cache`)."""
        return (
            not self.full_refresh
            and not self.ledger.empty
            and row.error is None
            and row.request_hash is not None
            and classify(known, retry_errors=self.retry_errors) == "todo"
        )

    async def _look_up_cache(self) -> bool:
        """Answer the deferred rows from the cache where it can, start the others; False when
        the run was halted.

        The cache is keyed by random hashes, so no row group of it can be skipped: each look-up
        reads the whole table (about 0.25 s at a million answers). Rows that need it are
        gathered over many batches and looked up together, so an incremental run over a large
        output reads the cache a few times, not once per batch. A split row's parts are looked
        up too: a part answered before (the row failed in another part, or its merge changed)
        is not paid for again."""
        deferred, self.deferred, self.deferred_chars = self.deferred, [], 0
        if not deferred:
            return not self.halted
        reader = self.ledger.reader
        found = await self.writer.in_thread(
            reader.cached,
            [row.key for row, _ in deferred],
            [row.request_hash for row, _ in deferred],
            [known.exists for _, known in deferred],
        )
        for (_, known), cached in zip(deferred, found, strict=True):
            known.cached = cached
        parts = [
            (row.key, part)
            for row, known in deferred
            if row.parts and known.cached is None
            for part in row.parts
        ]
        if parts:
            answers = await self.writer.in_thread(
                reader.cached,
                [k for k, _ in parts],
                [p.request_hash for _, p in parts],
                [True] * len(parts),
            )
            for (_, part), cached in zip(parts, answers, strict=True):
                part.cached = cached
        for row, known in deferred:
            if not await self._settle_or_start(row, known):
                return False
        return not self.halted

    def _settle(self, row: PreparedRow, known: Known) -> bool:
        """Settle a row without a request if it can be; True when it was."""
        action = classify(known, full_refresh=self.full_refresh, retry_errors=self.retry_errors)
        row.exists = known.exists or self.full_refresh
        if action in ("skip", "failed"):
            self.summary.rows_skipped += 1
            self.summary.rows_failed_before += action == "failed"
            return True
        if action == "cached" and known.cached is not None:
            known.cached.prompt_hash = row.prompt_hash
            known.cached.pages = row.pages
            # A cached answer that misses a value run.require_grounding now asks for is
            # requested again, so that it can be re-asked.
            if self.worker.assessor.regrounded(known.cached, row.texts):
                self.accept(known.cached)
                return True
        if row.error is not None:
            self.accept(
                RowResult(
                    key=row.key,
                    prompt_hash="",
                    run_id=self.summary.run_id,
                    error_class=type(row.error).__name__,
                    message=str(row.error),
                    replaces=row.exists,
                )
            )
            return True
        return False

    async def _start(
        self, batch: list[PreparedRow], looked_up: asyncio.Future[list[Known]]
    ) -> bool:
        """Settle or start every row of a batch; False when the run was halted."""
        states = await looked_up
        await self.writer.drain(2)
        for row, known in zip(batch, states, strict=True):
            if self._defers(row, known):
                self.deferred.append((row, known))
                self.deferred_chars += row.chars
            elif not await self._settle_or_start(row, known):
                return False
        if len(self.deferred) >= DEFERRED_ROWS or self.deferred_chars >= DEFERRED_CHARS:
            return await self._look_up_cache()
        return not self.halted

    async def _settle_or_start(self, row: PreparedRow, known: Known) -> bool:
        """Settle the row, or start its task once a slot is free; False when the run was
        halted."""
        if self._settle(row, known):
            return True
        await self.limit.acquire()
        if self.halted:
            self.limit.release()
            return False
        task = asyncio.create_task(self._row_task(row))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def run(self, limit: int | None) -> None:
        """Process every row (up to `limit`); returns early when the run is halted."""
        tasks = self.tasks
        cancelled = False
        #: the batch read last and its ledger look-up, running in the writer's thread while
        #: the next batch is read and rendered here (DuckDB lets go of the GIL)
        ahead: tuple[list[PreparedRow], asyncio.Future[list[Known]]] | None = None
        # Rows are read and rendered on a thread of their own: a batch of PDF pages to render
        # or a document URL to fetch takes seconds, during which the event loop must go on
        # reading answers (or idle timeouts would fire on healthy streams).
        reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-read")
        batches = self.batches if self.batches is not None else self.pipeline.rows(limit)
        loop = asyncio.get_running_loop()
        try:
            while (batch := await loop.run_in_executor(reader, next, batches, None)) is not None:
                if self.only is not None:
                    batch = [r for r in batch if r.key in self.only]
                last, ahead = ahead, (batch, asyncio.ensure_future(self._known(batch)))
                if last is not None and not await self._start(*last):
                    return
            last, ahead = ahead, None
            if last is not None and not await self._start(*last):
                return
            if not await self._look_up_cache():
                return
            if tasks:
                await asyncio.wait(set(tasks))
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if ahead is not None:
                # a look-up still running when the run stopped: it ends before the writer does
                await asyncio.gather(ahead[1], return_exceptions=True)
            # rows stopped by 401/402 or the budget were sent but never accepted: count them too
            self.summary.requests = self.worker.sent.requests
            if tasks:
                # Stopping (401/402, budget, SIGTERM) lets in-flight rows end; an interrupt
                # cancels them.
                if cancelled or not self.halted:
                    for task in tasks:
                        task.cancel()
                await asyncio.wait(set(tasks))
            # a batch still being read when the run stopped: it ends before the source closes
            reader.shutdown(wait=True)
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            await self.writer.close()
