"""An OpenAI/OpenRouter-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

It answers `POST /v1/chat/completions` with `fakegen.expected_answer(body)` serialised as the
assistant's content, in OpenRouter's reply shape, after a configurable latency, and injects
faults (HTTP errors, dropped connections, broken or off-schema content) at configurable rates.
It also serves OpenRouter's Batch API under `/v1/batches` and `/beta/batches`: each line is
answered as the chat endpoint would answer its body (the same faults, at `BATCH_DISCOUNT` of the
price), with statuses that advance every `batch_step_s` seconds.

Three ways to run it:

- `python -m extract.providers.testserver --port 0 --faults rate_limit=0.1` prints one line
  `listening on http://127.0.0.1:PORT/v1` once ready and serves until SIGTERM/SIGINT;
- `with ServerThread(ServerConfig(...)) as server:` runs it on its own event loop in a daemon
  thread (for tests), with `.base_url`, `.stats()`, `.reset()` and `.configure(**changes)`;
- `start_subprocess(config)` starts the command above and returns `(process, base_url)`.

The package: `faults` (the fault classes, `ServerConfig`, the deterministic fault draw),
`fakegen` (schema-conforming made-up answers, deterministic per request), `schemas` (the
strict-mode check of a request's schema), `state` (the counters), `replies`
(completions, error bodies, broken answers), `app` (routes, handlers and `answer`, the chat
core), `batches` (the stored batches, their statuses, result lines and counters),
`batch_routes` (the Batch API's routes and request checks), `run` (the thread, the child
process, the command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extract.lazy import lazy_exports

if TYPE_CHECKING:
    from .app import make_app
    from .faults import BATCH_OUTCOMES, FAULT_CLASSES, ServerConfig, parse_faults
    from .replies import (
        BATCH_DISCOUNT,
        DEFAULT_MODEL,
        DEFAULT_REASONING_TOKENS,
        IMAGE_TOKENS,
        PRICE_INPUT_PER_M,
        PRICE_OUTPUT_PER_M,
        usage_cost,
    )
    from .run import ServerThread, config_args, main, start_site, start_subprocess
    from .schemas import schema_problem

__all__ = [
    "BATCH_DISCOUNT",
    "BATCH_OUTCOMES",
    "DEFAULT_MODEL",
    "DEFAULT_REASONING_TOKENS",
    "FAULT_CLASSES",
    "IMAGE_TOKENS",
    "PRICE_INPUT_PER_M",
    "PRICE_OUTPUT_PER_M",
    "ServerConfig",
    "ServerThread",
    "config_args",
    "main",
    "make_app",
    "parse_faults",
    "schema_problem",
    "start_site",
    "start_subprocess",
    "usage_cost",
]

# aiohttp is imported only when the server itself is used: `fakegen` alone stays light.
__getattr__ = lazy_exports(
    __name__,
    {
        "make_app": ".app",
        "BATCH_OUTCOMES": ".faults",
        "FAULT_CLASSES": ".faults",
        "ServerConfig": ".faults",
        "parse_faults": ".faults",
        "BATCH_DISCOUNT": ".replies",
        "DEFAULT_MODEL": ".replies",
        "DEFAULT_REASONING_TOKENS": ".replies",
        "IMAGE_TOKENS": ".replies",
        "PRICE_INPUT_PER_M": ".replies",
        "PRICE_OUTPUT_PER_M": ".replies",
        "usage_cost": ".replies",
        "ServerThread": ".run",
        "config_args": ".run",
        "main": ".run",
        "start_site": ".run",
        "start_subprocess": ".run",
        "schema_problem": ".schemas",
    },
)
