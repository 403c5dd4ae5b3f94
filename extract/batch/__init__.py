"""run.mode batch: rows answered through a Batch API at half price, exactly once.

`transport` (the `Transport` of batch mode and the flow of one batch), `client` (the Batch
API over HTTP), `lines` (the create body, custom ids, result lines to Completions), `store` (the
batch and line tables in the ledger).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .client import BatchClient
    from .store import BatchStore
    from .transport import BatchTransport

__all__ = ["BatchClient", "BatchStore", "BatchTransport"]

# aiohttp is imported only when a batch run needs it: the ledger reads the store alone
__getattr__ = lazy_exports(
    __name__,
    {"BatchClient": ".client", "BatchStore": ".store", "BatchTransport": ".transport"},
)
