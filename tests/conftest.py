from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from extract.providers.testserver import ServerConfig, ServerThread

#: the batch API's settings, back to their defaults for every test
BATCH_FIELDS = [f.name for f in dataclasses.fields(ServerConfig) if f.name.startswith("batch_")]


@pytest.fixture(scope="session")
def _server() -> Iterator[ServerThread]:
    with ServerThread(ServerConfig(api_key="sk-test-secret")) as server:
        yield server


@pytest.fixture
def server(_server: ServerThread) -> Iterator[ServerThread]:
    """The project's OpenAI-compatible test server on 127.0.0.1, counters reset, no faults."""
    defaults = ServerConfig()
    _server.configure(
        faults={},
        latency_ms=0,
        jitter_ms=0,
        retry_after="0",
        api_key="sk-test-secret",
        **{f: getattr(defaults, f) for f in BATCH_FIELDS},
    )
    _server.reset()
    yield _server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the real local model are slow-tier tests too."""
    for item in items:
        if item.get_closest_marker("local") is not None:
            item.add_marker(pytest.mark.slow)
