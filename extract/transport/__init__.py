"""Sending requests: the transport seam, its HTTP and in-process implementations, and retry.

    base.py      `Transport` (one method: `complete(body) -> Completion`), Completion, Usage,
                 the request-body encoder
    replies.py   a reply's status and bytes -> Completion, or the error class it calls for
    http.py      `HttpTransport`, over aiohttp (the only module that does HTTP)
    fake.py      `FakeTransport`, answered by a function in-process (tests)
    retry.py     the one transport-retry policy (tenacity)

`http` is not imported here: aiohttp costs a quarter of a second to import, and only a run needs it.
"""

from __future__ import annotations

from .base import BodyEncoder, Completion, Transport, Usage, encode_body

__all__ = ["BodyEncoder", "Completion", "Transport", "Usage", "encode_body"]
