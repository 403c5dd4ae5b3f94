from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from extract.providers.testserver import ServerConfig, ServerThread


@pytest.fixture(scope="session")
def _server() -> Iterator[ServerThread]:
    with ServerThread(ServerConfig(api_key="sk-test-secret")) as server:
        yield server


@pytest.fixture
def server(_server: ServerThread) -> Iterator[ServerThread]:
    """The project's OpenAI-compatible test server on 127.0.0.1: counters reset, every setting
    at its default (no faults, no latency), the key `sk-test-secret` required."""
    # every setting back to its default, whatever the last test changed
    defaults = ServerConfig(api_key="sk-test-secret")
    _server.configure(**{f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)})
    _server.reset()
    yield _server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the real local model are slow-tier tests too."""
    for item in items:
        if item.get_closest_marker("local") is not None:
            item.add_marker(pytest.mark.slow)
