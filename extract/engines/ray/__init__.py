"""`run.engine: ray`: the same pipeline on a Ray cluster, its rows sharded across actors.

    shards.py    which shard a key belongs to (a stable hash), and the concurrency split
    dataset.py   the source read as a Ray Dataset (files by Ray Data's readers, a DuckDB
                 source by key ranges), its batches typed as the driver's source
    worker.py    `ShardWorker`: the actor that runs one shard's rows through a RowWorker
    engine.py    `RayEngine`: connects, starts the actors, hands each row to its shard's actor
                 and passes the answers back to the driver's row loop

Importing this package needs Ray (`pip install 'extract[ray]'`); without it, EngineUnavailable.
"""

from __future__ import annotations

import importlib.util

from ...errors import EngineUnavailable

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
    raise EngineUnavailable(
        "run.engine ray needs Ray Data, which is not installed: pip install 'extract[ray]'",
        engine="ray",
    )

from .engine import RayEngine

__all__ = ["RayEngine"]
