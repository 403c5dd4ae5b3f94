"""Making finished rows durable during a run, without stalling the event loop.

`LedgerWriter.record(row)` appends the row to the journal at once; the journal is handed to the
operating system once per event-loop turn, however many rows finished in it (from then on a
`kill -9` cannot lose them). Every `batch_size` rows, or every second, the buffered rows are
committed to the tables in one transaction in the writer thread: DuckDB releases the GIL while it
works, so replies keep being read and requests sent meanwhile. The closed journal segment is
deleted once its batch is committed. `drain(n)` waits until at most n commits are under way:
back-pressure on a slow disk. Every use of the ledger's connection during a run goes through
the one writer thread (`in_thread`), so the connection has one user at a time.

A failure to write is kept (`fatal`) and ends the run; what was journaled and not committed is
replayed by the next run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import WriteFailed
from ..results import RowResult
from .store import Ledger

__all__ = ["LedgerWriter"]

T = TypeVar("T")

#: journaled rows are folded into the tables at least this often (seconds)
FLUSH_SECONDS = 1.0


class LedgerWriter:
    """The write side of a ledger for one run (use inside a running event loop)."""

    def __init__(self, ledger: Ledger, batch_size: int):
        self.ledger = ledger
        self.batch_size = batch_size
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-ledger")
        self._buffer: list[RowResult] = []
        self._writes: set[asyncio.Future[None]] = set()
        self._sync_pending = False
        self._last_flush = time.monotonic()
        #: the first write failure; the run stops on it
        self.fatal: BaseException | None = None

    async def in_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on the ledger's connection, in the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def record(self, result: RowResult) -> None:
        """Journal one finished row now; commit it with its batch later."""
        if self.fatal is not None:
            return
        try:
            self.ledger.journal.append(result)
        except Exception as e:
            self.fatal = self._failed(e)
            return
        self._buffer.append(result)
        if not self._sync_pending:
            self._sync_pending = True
            asyncio.get_running_loop().call_soon(self._sync)
        now = time.monotonic()
        if len(self._buffer) >= self.batch_size or now - self._last_flush >= FLUSH_SECONDS:
            self._last_flush = now
            self.write()

    def _sync(self) -> None:
        self._sync_pending = False
        try:
            self.ledger.journal.sync()
        except Exception as e:
            self.fatal = self.fatal or self._failed(e)

    def write(self) -> None:
        """Commit the buffered rows in the writer thread."""
        if self.fatal is not None or not self._buffer:
            return  # what is not committed stays journaled for the next run
        self._sync()
        if self.fatal is not None:
            return
        batch, self._buffer = self._buffer, []
        try:
            segment = self.ledger.journal.rotate()
        except Exception as e:
            self.fatal = self._failed(e)
            return
        future = asyncio.get_running_loop().run_in_executor(
            self._thread, self._commit, batch, segment
        )
        self._writes.add(future)
        future.add_done_callback(self._written)

    def _commit(self, batch: list[RowResult], segment: Path | None) -> None:
        self.ledger.commit(batch)
        if segment is not None:
            segment.unlink(missing_ok=True)

    def _failed(self, error: BaseException) -> BaseException:
        """A journal write that failed, as the run's one-line error (the rows journaled before
        it are safe)."""
        if not isinstance(error, OSError):
            return error
        reason = error.strerror or str(error)
        return WriteFailed(
            f"{self.ledger.journal.db_path}.journal: cannot write ({reason}); the rows journaled "
            "so far land on the next run",
            path=str(self.ledger.path),
        )

    def _written(self, future: asyncio.Future[None]) -> None:
        self._writes.discard(future)
        if not future.cancelled() and future.exception() is not None and self.fatal is None:
            self.fatal = future.exception()

    async def drain(self, most: int = 0) -> None:
        """Wait until at most `most` commits are under way."""
        while len(self._writes) > most:
            await asyncio.wait(set(self._writes), return_when=asyncio.FIRST_COMPLETED)

    async def close(self) -> None:
        """Commit what is buffered, wait for every commit, stop the thread."""
        self.write()
        await self.drain(0)
        self._thread.shutdown(wait=True)
