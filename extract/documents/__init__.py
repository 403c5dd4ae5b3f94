"""Documents as input: PDFs read as their text layer (with page markers), as page images, or both.

`pages` holds page selections and the page-marker contract (no PDF library needed); `pdf` opens,
reads and renders through pypdfium2; `read` turns a row's document value into what the prompt
sends. Only `pdf` imports pypdfium2, and it is imported only when a pipeline has documents.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = [
    "PAGE_MARKER",
    "DocumentReader",
    "PageSelection",
    "ReadDocument",
    "join_pages",
    "page_marker",
    "split_pages",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "PAGE_MARKER": ".pages",
        "PageSelection": ".pages",
        "join_pages": ".pages",
        "page_marker": ".pages",
        "split_pages": ".pages",
        "DocumentReader": ".read",
        "ReadDocument": ".read",
    },
)
