"""`run.engine: ray`: the same pipeline on a Ray cluster, its rows sharded across actors.

    shards.py    which shard a key belongs to (a stable hash), and the concurrency split
    dataset.py   the source read as a Ray Dataset (files by Ray Data's readers, a DuckDB
                 source by key ranges), its batches typed as the driver's source
    worker.py    `ShardWorker`: the actor that runs one shard's rows through a RowWorker
    batches.py   `RemoteRows`: each row to its shard's actor, a few rows per Ray call, the
                 answers streamed back to the driver's row loop; rows a dead actor had in
                 flight sent again
    engine.py    `RayEngine`: connects, starts the actors, reads the source, stops them

Importing this package needs Ray (`pip install 'extract[ray]'`); without it, EngineUnavailable.
"""

from __future__ import annotations

from ...errors import EngineUnavailable

try:
    import ray
    import ray.data  # noqa: F401 (whether Ray Data imports, before anything uses it)
except ImportError as e:
    raise EngineUnavailable(
        f"run.engine ray needs Ray Data, which cannot be imported ({e}): "
        "pip install 'extract[ray]'",
        engine="ray",
    ) from e

from .engine import RayEngine

__all__ = ["RayEngine"]
