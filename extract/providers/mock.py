"""`provider: mock`: the project's test server (providers/testserver/) on a free 127.0.0.1 port.

For demos and dry runs: it answers with schema-conforming, made-up values, never real ones, and
needs no key. The server runs in a child process for the length of the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .base import Endpoint, Provider, stop_process

__all__ = ["Mock"]


class Mock(Provider):
    name = "mock"
    batch = True

    def identity(self) -> str:
        # The port changes every run; the answers do not.
        return "mock"

    def prices(self) -> tuple[float, float] | None:
        from .testserver.replies import PRICE_INPUT_PER_M, PRICE_OUTPUT_PER_M

        return self.model.prices() or (PRICE_INPUT_PER_M, PRICE_OUTPUT_PER_M)

    @contextmanager
    def start(self) -> Iterator[Endpoint]:
        from .testserver import ServerConfig, start_subprocess

        process, base_url = start_subprocess(ServerConfig())
        try:
            yield Endpoint(base_url, None)
        finally:
            stop_process(process)
            if process.stdout is not None:
                process.stdout.close()
