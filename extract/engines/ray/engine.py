"""`RayEngine`: the driver's side of a run on Ray.

The driver (the process that runs `extract run`) connects to the cluster, starts one
`ShardWorker` actor per shard and reads the source as a Ray Dataset. Its row loop settles each
row from the ledger and the cache first, exactly as in a local run, and hands only the rest to
`RemoteRows` (batches.py), which sends each row to the actor of its key's shard and hands its
answer back as soon as it arrives, to be recorded: an actor that dies loses only the rows it had
in flight. Ray restarts the actor (`max_restarts`) and RemoteRows sends those rows again; a row
already recorded is never sent again, because the driver records each answer once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import ray
import ray.exceptions

from ...errors import EngineUnavailable
from .batches import RemoteRows
from .dataset import read_dataset, typed_batches
from .shards import split
from .worker import ShardWorker

if TYPE_CHECKING:
    from ...pipeline import Pipeline, PreparedRow
    from ...providers.base import Endpoint

__all__ = ["RayEngine"]

#: CPUs each actor reserves: a shard waits on HTTP, it does not compute, and the rest of a
#: node's CPUs stay free for Ray Data's read tasks
ACTOR_CPUS = 0.5
#: seconds to wait for the cluster's port to answer before ray.init is tried
PROBE_S = 5
#: times Ray restarts a dead actor (RemoteRows sends the rows it had in flight again)
MAX_RESTARTS = 4


class RayEngine:
    """Run a pipeline's rows on Ray: `address` names the cluster (None: RAY_ADDRESS's, else a
    local instance started here); `workers` actors (None: one per CPU of the cluster), each
    restarted up to `restarts` times when its process dies."""

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        restarts: int = MAX_RESTARTS,
    ):
        self.address = address
        self.worker_count = workers
        self.restarts = restarts
        #: the actors of the run in progress (a test kills one by its process id)
        self.actors: list[Any] = []
        self._shards = 1

    def _connect(self) -> bool:
        """Connect unless connected; True when this call did (and so disconnects after)."""
        if ray.is_initialized():
            return False
        if self.address is not None:
            _probe(self.address)
        try:
            ray.init(
                address=self.address,
                include_dashboard=False,
                # workers' own output stays in Ray's session logs, not on the run's stderr
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise EngineUnavailable(
                f"run.engine ray: cannot connect to the Ray cluster at {self.address}: {e}",
                engine="ray",
            ) from e
        return True

    @asynccontextmanager
    async def workers(
        self, pipeline: Pipeline, endpoint: Endpoint, *, run_id: str, concurrency: int
    ) -> AsyncIterator[RemoteRows]:
        """Connect, start the actors (one shard each) and check them; stop them after."""
        started = self._connect()
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
            shards = max(1, min(self.worker_count or cpus, concurrency))
            self._shards = shards
            template = pipeline.request_template()
            self.actors = [
                ray.remote(ShardWorker)
                .options(
                    num_cpus=ACTOR_CPUS,
                    max_restarts=self.restarts,
                    # RemoteRows sends again what a dead actor had not answered
                    max_task_retries=0,
                    # calls of BATCH_ROWS rows or fewer, as many as rows in flight at most
                    max_concurrency=2 * share + 8,
                    scheduling_strategy="SPREAD",
                )
                .remote(
                    pipeline.config,
                    template,
                    endpoint.base_url,
                    concurrency=share,
                    shards=shards,
                    run_id=run_id,
                )
                for share in split(concurrency, shards)
            ]
            try:
                for _pid, problem in await _gather([a.ready.remote() for a in self.actors]):
                    if problem is not None:
                        raise EngineUnavailable(problem, engine="ray")
                remote = RemoteRows(self.actors, pipeline.assessor, restarts=self.restarts)
                try:
                    yield remote
                finally:
                    await remote.close()
            finally:
                await _close(self.actors)
                self.actors = []
        finally:
            if started:
                ray.shutdown()

    def rows(self, pipeline: Pipeline, limit: int | None) -> Iterator[list[PreparedRow]]:
        ds = read_dataset(pipeline, limit, parts=max(2, self._shards))
        if ds is None:
            return iter(())
        return pipeline.prepared(typed_batches(pipeline, ds))


def _probe(address: str) -> None:
    """EngineUnavailable at once when nothing listens at a HOST:PORT address (ray.init would
    retry for minutes); `auto` and other forms are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_S).close()
    except OSError as e:
        raise EngineUnavailable(
            f"run.engine ray: cannot connect to the Ray cluster at {address}: "
            f"{e.strerror or type(e).__name__}",
            engine="ray",
        ) from e


async def _gather(refs: list[Any]) -> list[Any]:
    return [await ref for ref in refs]


async def _close(actors: list[Any]) -> None:
    for actor in actors:
        # an actor that is gone has no connections left to close
        with contextlib.suppress(ray.exceptions.RayError):
            await actor.close.remote()
        ray.kill(actor, no_restart=True)
