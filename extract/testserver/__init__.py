"""An OpenAI/OpenRouter-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

It answers `POST /v1/chat/completions` with `extract.fakegen.expected_answer(body)` serialised as
the assistant's content, in OpenRouter's reply shape, after a configurable latency, and injects
faults (HTTP errors, dropped connections, broken or off-schema content) at configurable rates.

Three ways to run it:

- `python -m extract.testserver --port 0 --faults rate_limit=0.1` prints one line
  `listening on http://127.0.0.1:PORT/v1` once ready and serves until SIGTERM/SIGINT;
- `with ServerThread(ServerConfig(...)) as server:` runs it on its own event loop in a daemon
  thread (for tests), with `.base_url`, `.stats()`, `.reset()` and `.configure(**changes)`;
- `start_subprocess(config)` starts the command above and returns `(process, base_url)`.

The package: `faults` (the fault classes, `ServerConfig`, the deterministic fault draw),
`schemas` (the strict-mode check of a request's schema), `state` (the counters), `replies`
(completions, error bodies, broken answers), `app` (routes and handlers), `run` (the thread, the
child process, the command).
"""

from __future__ import annotations

from extract.testserver.app import make_app
from extract.testserver.faults import FAULT_CLASSES, ServerConfig, parse_faults
from extract.testserver.replies import (
    DEFAULT_MODEL,
    PRICE_INPUT_PER_M,
    PRICE_OUTPUT_PER_M,
    usage_cost,
)
from extract.testserver.replies import (
    DEFAULT_REASONING_TOKENS as DEFAULT_REASONING_TOKENS,
)
from extract.testserver.replies import IMAGE_TOKENS as IMAGE_TOKENS
from extract.testserver.run import (
    ServerThread,
    main,
    start_site,
    start_subprocess,
)
from extract.testserver.run import config_args as config_args
from extract.testserver.schemas import schema_problem

__all__ = [
    "DEFAULT_MODEL",
    "FAULT_CLASSES",
    "PRICE_INPUT_PER_M",
    "PRICE_OUTPUT_PER_M",
    "ServerConfig",
    "ServerThread",
    "main",
    "make_app",
    "parse_faults",
    "schema_problem",
    "start_site",
    "start_subprocess",
    "usage_cost",
]
