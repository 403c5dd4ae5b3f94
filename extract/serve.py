"""Endpoints that `extract` starts itself, chosen by `model.provider`.

- `api` (default): the configured `base_url`; nothing is started.
- `mock`: the project's OpenAI-compatible test server (extract/testserver/) on a free 127.0.0.1
  port, for demos and dry runs: it answers with schema-conforming, made-up values, never real ones.
- `local`: llama.cpp's llama-server running the bundled model or `model.path` on a free 127.0.0.1
  port, prepared and cached on first use (extract/local/).
The server is stopped when the run ends, also on errors and Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .config import PipelineConfig

__all__ = ["endpoint"]


@contextmanager
def endpoint(config: PipelineConfig) -> Iterator[tuple[PipelineConfig, str | None]]:
    """Yield the config pointed at a live endpoint, and the API key to use (None: from the env)."""
    if config.model.provider == "api":
        yield config, None
        return
    if config.model.provider == "local":
        from .local import local_endpoint

        with local_endpoint(config) as local_config:
            yield local_config, ""
        return
    from .testserver import ServerConfig, start_subprocess

    process, base_url = start_subprocess(ServerConfig())
    try:
        model = config.model.model_copy(update={"base_url": base_url, "api_key_env": None})
        yield config.model_copy(update={"model": model}), ""
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except Exception:
            process.kill()
            process.wait()
