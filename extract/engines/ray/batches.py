"""`RemoteRows`: the row loop's Processor on the driver. Each row goes to the actor of its
shard and its answer comes back, a few rows per Ray call each way.

A Ray call costs far more CPU than an HTTP request's bookkeeping, so rows are not sent one per
call: those that reach a shard within FLUSH_S (or BATCH_ROWS of them) go in one call, and the
actor streams the answers back (a Ray streaming generator) in groups, each as soon as its row
is done, so one slow row never holds the others back. When the actor dies mid-call, the rows of
the call whose answers had not arrived are sent again (Ray restarts the actor); the rows whose
answers had arrived are recorded already and never sent again. Ray itself retries nothing
(`max_task_retries=0`): a generator retried by Ray would request its finished rows again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ray
import ray.exceptions

from ...errors import WorkerLost
from ...runner.rows import Counter
from .shards import shard_of
from .worker import Stop

if TYPE_CHECKING:
    from ...pipeline import PreparedRow
    from ...results import RowResult
    from ...trust.assess import Assessor

__all__ = ["BATCH_ROWS", "FLUSH_S", "RemoteRows"]

#: the most rows in one call, and how long a row waits for others to join it
BATCH_ROWS = 64
FLUSH_S = 0.005

_Waiting = tuple["PreparedRow", "asyncio.Future[RowResult | Stop]"]


@dataclass
class _Shard:
    actor: Any
    waiting: list[_Waiting] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class RemoteRows:
    """Rows to their shards' actors, answers back; `restarts`: how often an actor may die
    before its rows stop the run (WorkerLost)."""

    def __init__(self, actors: list[Any], assessor: Assessor, *, restarts: int):
        self.shards = [_Shard(a) for a in actors]
        self.assessor = assessor
        self.restarts = restarts
        self.sent = Counter()
        self._calls: set[asyncio.Task[None]] = set()

    async def process(self, row: PreparedRow) -> RowResult:
        loop = asyncio.get_running_loop()
        index = shard_of(row.key, len(self.shards))
        shard = self.shards[index]
        answer: asyncio.Future[RowResult | Stop] = loop.create_future()
        shard.waiting.append((row, answer))
        if len(shard.waiting) >= BATCH_ROWS:
            self._flush(index)
        elif shard.timer is None:
            shard.timer = loop.call_later(FLUSH_S, self._flush, index)
        reply = await answer
        self.sent.requests += reply.requests
        if isinstance(reply, Stop):
            raise reply.error()
        return reply

    def _flush(self, index: int) -> None:
        shard = self.shards[index]
        if shard.timer is not None:
            shard.timer.cancel()
            shard.timer = None
        items, shard.waiting = shard.waiting, []
        if items:
            task = asyncio.get_running_loop().create_task(self._call(index, items))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call(self, index: int, items: list[_Waiting]) -> None:
        """One call's rows to the actor, their answers to their rows; sent again after the
        actor died, without the rows answered already."""
        pending = dict(enumerate(items))
        lost = 0
        while pending:
            order = list(pending)
            try:
                stream = (
                    self.shards[index]
                    .actor.process_many.options(num_returns="streaming")
                    .remote([pending[i][0] for i in order])
                )
                async for ref in stream:
                    for j, reply in await ref:
                        _, answer = pending.pop(order[j])
                        if not answer.done():  # a row cancelled meanwhile (Ctrl-C)
                            answer.set_result(reply)
            except ray.exceptions.RayActorError as e:
                lost += 1
                if lost <= self.restarts:
                    continue  # Ray restarts the actor; calls wait for it
                error: BaseException = WorkerLost(
                    f"run.engine ray: the worker of shard {index} was lost ({type(e).__name__};"
                    f" Ray restarts a worker {self.restarts} times); rows already written stay,"
                    " run again to continue",
                    shard=index,
                )
                error.__cause__ = e
                self._fail(pending, error)
            except Exception as e:
                self._fail(pending, e)  # a bug of ours: the row loop records it per row
            except asyncio.CancelledError:
                for _, answer in pending.values():
                    answer.cancel()
                raise
            if pending:  # the stream ended without some rows: never, unless a bug of ours
                self._fail(pending, RuntimeError("the worker's answers ended early"))

    @staticmethod
    def _fail(pending: dict[int, _Waiting], error: BaseException) -> None:
        for _, answer in pending.values():
            if not answer.done():
                answer.set_exception(error)
        pending.clear()

    async def close(self) -> None:
        """Cancel the calls still out (their rows were cancelled; the run is ending)."""
        for task in self._calls:
            task.cancel()
        if self._calls:
            await asyncio.wait(set(self._calls))
