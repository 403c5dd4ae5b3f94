"""Which shard a row belongs to, and how the run's concurrency is split across the shards.

The shard comes from sha256 of the key's text, never Python's `hash()`: that one is salted per
process (PYTHONHASHSEED), so the driver and a restarted driver would disagree.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["shard_of", "split"]


def shard_of(key: Any, shards: int) -> int:
    """The shard (0 to `shards` - 1) of a row key: the same for the same key in every process."""
    digest = hashlib.sha256(str(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def split(total: int, shards: int) -> list[int]:
    """`total` split into `shards` parts that differ by at most one (each at least 1)."""
    base, extra = divmod(total, shards)
    return [max(1, base + (i < extra)) for i in range(shards)]
