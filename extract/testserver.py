"""An OpenAI/OpenRouter-compatible chat-completions server on 127.0.0.1 for tests and benchmarks.

It answers `POST /v1/chat/completions` with `extract.fakegen.expected_answer(body)` serialised as
the assistant's content, in OpenRouter's reply shape, after a configurable latency, and injects
faults (HTTP errors, dropped connections, broken or off-schema content) at configurable rates.

Fault decisions are deterministic yet let an identical retry succeed: each request draws a number
in [0, 1) from a hash of (config seed, request body bytes, how many times this exact body was seen
before), and the fault rates are laid end to end in `FAULT_CLASSES` order on that interval.

Three ways to run it:

- `python -m extract.testserver --port 0 --faults rate_limit=0.1` prints one line
  `listening on http://127.0.0.1:PORT/v1` once ready and serves until SIGTERM/SIGINT;
- `with ServerThread(ServerConfig(...)) as server:` runs it on its own event loop in a daemon
  thread (for tests), with `.base_url`, `.stats()`, `.reset()` and `.configure(**changes)`;
- `start_subprocess(config)` starts the command above and returns `(process, base_url)`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import hashlib
import json
import random
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from extract import fakegen

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

DEFAULT_MODEL = "qwen/qwen3.5-27b"
PRICE_INPUT_PER_M = 0.195
PRICE_OUTPUT_PER_M = 1.56
#: tokens billed per image part (a fixed figure; the text is billed at ~4 characters a token)
IMAGE_TOKENS = 256
#: reasoning tokens spent by a `reasoning_only` reply when the request sets no max_tokens
DEFAULT_REASONING_TOKENS = 1024

#: fault classes, in the order their rates are laid end to end on [0, 1)
FAULT_CLASSES: tuple[str, ...] = (
    "rate_limit",
    "server_error",
    "timeout",
    "drop",
    "upstream_error",
    "malformed",
    "fenced",
    "prose",
    "invalid",
    "length",
    "reasoning_only",
    "refusal",
    "bad_request",
    "forbidden",
    "payment",
)

_FORBIDDEN_KEYWORDS = (
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "prefixItems",
    "dependentRequired",
    "dependentSchemas",
)


@dataclass(frozen=True)
class ServerConfig:
    """How the test server behaves. `faults` maps a class in `FAULT_CLASSES` to its rate."""

    latency_ms: float = 0
    jitter_ms: float = 0
    faults: dict[str, float] = field(default_factory=dict)
    retry_after: str = "0"
    api_key: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        _check_faults(self.faults)
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")


def _check_faults(faults: Mapping[str, float]) -> None:
    unknown = sorted(set(faults) - set(FAULT_CLASSES))
    if unknown:
        raise ValueError(
            f"unknown fault class {', '.join(unknown)}; expected one of {', '.join(FAULT_CLASSES)}"
        )
    for name, rate in faults.items():
        if not 0 <= rate <= 1:
            raise ValueError(f"fault rate {name}={rate} is not between 0 and 1")
    # A little slack so that e.g. ten rates of 0.1 are accepted despite float rounding.
    if sum(faults.values()) > 1 + 1e-9:
        raise ValueError(f"fault rates add up to {sum(faults.values()):g}, more than 1")


def parse_faults(text: str) -> dict[str, float]:
    """Parse `"rate_limit=0.1,server_error=0.05"` into a dict; ValueError names a bad entry."""
    faults: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"fault {item!r} is not of the form class=rate")
        if name not in FAULT_CLASSES:
            raise ValueError(
                f"unknown fault class {name!r}; expected one of {', '.join(FAULT_CLASSES)}"
            )
        try:
            faults[name] = float(value)
        except ValueError:
            raise ValueError(f"fault rate {value!r} for {name} is not a number") from None
    _check_faults(faults)
    return faults


def usage_cost(prompt_tokens: int, completion_tokens: int) -> float:
    """Dollar cost the server reports for these token counts."""
    return (prompt_tokens * PRICE_INPUT_PER_M + completion_tokens * PRICE_OUTPUT_PER_M) / 1e6


# --------------------------------------------------------------------------- strict-schema check


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not strict-mode compliant (the basics), or None when it is."""
    if not isinstance(schema, dict):
        return "schema must be a JSON object"
    if schema.get("type") != "object":
        return "root schema must be of type object (not anyOf or another type)"
    return _walk(schema, "#")


def _walk(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return None if isinstance(schema, bool) else f"{where}: schema must be an object"
    for keyword in _FORBIDDEN_KEYWORDS:
        if keyword in schema:
            return f"{where}: keyword {keyword!r} is not allowed in strict mode"
    if schema.get("default") is not None:
        return f"{where}: a non-null default is not allowed in strict mode"
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"{where}: object must set additionalProperties to false"
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [name for name in props if name not in required]
        if missing:
            return f"{where}: properties {', '.join(missing)} missing from required"
        for name, sub in props.items():
            if problem := _walk(sub, f"{where}/properties/{name}"):
                return problem
    if "items" in schema and (problem := _walk(schema["items"], f"{where}/items")):
        return problem
    for i, sub in enumerate(schema.get("anyOf") or []):
        if problem := _walk(sub, f"{where}/anyOf/{i}"):
            return problem
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            if problem := _walk(sub, f"{where}/{key}/{name}"):
                return problem
    return None


@dataclass(frozen=True)
class _Prepared:
    problem: str | None
    node: fakegen.Node | None
    required: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def _prepare(schema_text: str) -> _Prepared:
    """Check and compile a schema once; the benchmark sends the same schema thousands of times."""
    schema = json.loads(schema_text)
    problem = schema_problem(schema)
    if problem:
        return _Prepared(problem, None, ())
    try:
        node = fakegen.compile_schema(schema_text)
    except ValueError as e:
        return _Prepared(f"the test server cannot answer this schema: {e}", None, ())
    return _Prepared(None, node, tuple(schema.get("required") or ()))


# --------------------------------------------------------------------------- server state


class _State:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.jitter = random.Random()
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.faults: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.seen: dict[bytes, int] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "total_requests": self.total,
            "faults": {name: self.faults[name] for name in FAULT_CLASSES},
            "status_counts": dict(sorted(self.statuses.items())),
            "distinct_bodies": len(self.seen),
            "requests_by_row": dict(self.rows),
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost": self.cost,
            },
        }

    def draw(self, body_key: bytes, occurrence: int) -> tuple[str | None, int]:
        """Pick the fault (or None) for the `occurrence`-th sighting of a body."""
        faults = self.config.faults
        h = hashlib.blake2b(
            body_key + occurrence.to_bytes(8, "big") + str(self.config.seed).encode(),
            digest_size=16,
        ).digest()
        if not faults:
            return None, h[8]
        u = int.from_bytes(h[:8], "big") / 2**64
        edge = 0.0
        for name in FAULT_CLASSES:
            edge += faults.get(name, 0.0)
            if u < edge:
                return name, h[8]
        return None, h[8]


_STATE: web.AppKey[_State] = web.AppKey("state", _State)


def make_app(config: ServerConfig | None = None) -> web.Application:
    """Build the aiohttp application (routes and state) without starting it."""
    app = web.Application()
    app[_STATE] = _State(config or ServerConfig())
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_post("/reset", _reset)
    return app


async def start_site(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Serve `app` on host:port (0 picks a free port); return the runner and the base URL."""
    # No access log: formatting a log line per request costs more than answering it.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    # The backlog leaves room for the benchmark's 128-256 connections opening at once.
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}/v1"


# --------------------------------------------------------------------------- handlers


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


def _error(
    state: _State, status: int, message: str, metadata: dict[str, Any] | None = None, **kw: Any
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    state.statuses[str(status)] += 1
    return _json(status, {"error": error}, **kw)


def _prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    images = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "image_url":
                    images += 1
                else:
                    chars += len(str(part.get("text", "")))
    return (chars + 3) // 4 + images * IMAGE_TOKENS


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    config = state.config
    state.total += 1
    if config.latency_ms or config.jitter_ms:
        delay = state.jitter.uniform(
            config.latency_ms - config.jitter_ms, config.latency_ms + config.jitter_ms
        )
        await asyncio.sleep(max(delay, 0.0) / 1000)

    if config.api_key is not None and (
        request.headers.get("Authorization") != f"Bearer {config.api_key}"
    ):
        return _error(state, 401, "No auth credentials found")

    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(state, 400, "request body is not valid JSON")
    if not isinstance(body, dict):
        return _error(state, 400, "request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(state, 400, "messages must be a non-empty list")
    if body.get("stream"):
        return _error(state, 400, "the test server does not stream; send stream: false")

    row = fakegen.answer_seed(messages, body.get("seed"))
    state.rows[row.hex()] += 1
    body_key = hashlib.blake2b(raw, digest_size=16).digest()
    occurrence = state.seen.get(body_key, 0)
    state.seen[body_key] = occurrence + 1

    prepared: _Prepared | None = None
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            return _error(state, 400, "response_format.json_schema.schema must be an object")
        if spec.get("strict") is not True:
            return _error(state, 400, "response_format.json_schema.strict must be true")
        text = json.dumps(spec["schema"], separators=(",", ":"))
        prepared = _prepare(text)
        if prepared.problem:
            return _error(state, 400, f"Invalid schema for response_format: {prepared.problem}")

    fault, bits = state.draw(body_key, occurrence)
    if fault is not None:
        state.faults[fault] += 1
        early = _http_fault(state, request, fault, bits, body)
        if early is not None:
            return early

    if prepared is not None and prepared.node is not None:
        try:
            answer: Any = prepared.node(random.Random(row), 0)
        except ValueError as e:
            return _error(state, 400, f"the test server cannot answer this schema: {e}")
    else:
        answer = {}
    return _reply(state, body, messages, row, answer, fault, prepared)


def _http_fault(
    state: _State, request: web.Request, fault: str, bits: int, body: dict[str, Any]
) -> web.StreamResponse | None:
    """The reply for faults that replace the completion entirely; None for content faults."""
    provider = {"provider_name": "fake"}
    if fault == "rate_limit":
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
        if state.config.retry_after:
            headers["Retry-After"] = state.config.retry_after
        try:
            wait_s = float(state.config.retry_after or 0)
        except ValueError:  # an HTTP-date Retry-After
            wait_s = 0.0
        headers["X-RateLimit-Reset"] = str(int((time.time() + wait_s) * 1000))
        return _error(
            state,
            429,
            "Rate limit exceeded: fake/qwen is temporarily rate-limited upstream",
            {**provider, "raw": "rate limited"},
            headers=headers,
        )
    if fault == "server_error":
        if bits & 1:
            return _error(state, 503, "No available provider meets the routing requirements")
        return _error(state, 502, "Upstream provider returned an invalid response", provider)
    if fault == "timeout":
        return _error(state, 408, "Upstream request timed out", provider)
    if fault == "drop":
        transport = request.transport
        if transport is not None:
            # Cut the TCP connection with no reply; the client sees a server disconnect.
            transport.abort()
        # aiohttp skips writing a reply to an aborted transport (debug log only, no traceback).
        return web.Response(status=599)
    if fault == "bad_request":
        return _error(state, 400, "Provider returned error: invalid request parameters")
    if fault == "forbidden":
        metadata = {
            "reasons": ["violence"],
            "flagged_input": "...",
            "provider_name": "fake",
            "model_slug": str(body.get("model") or DEFAULT_MODEL),
        }
        return _error(state, 403, "Input was flagged by moderation", metadata)
    if fault == "payment":
        return _error(state, 402, "Insufficient credits. Add more using https://openrouter.ai")
    return None


def _reply(
    state: _State,
    body: dict[str, Any],
    messages: list[Any],
    row: bytes,
    answer: Any,
    fault: str | None,
    prepared: _Prepared | None,
) -> web.Response:
    state.generation += 1
    gen_id = f"gen-{row.hex()[:12]}-{state.generation}"
    content: str | None = json.dumps(answer)
    reasoning: str | None = None
    refusal: str | None = None
    finish = "stop"
    max_tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None
    reasoning_tokens = 0
    error: dict[str, Any] | None = None
    assert content is not None

    if fault == "malformed":
        content = content[: len(content) // 2]
    elif fault == "fenced":
        content = f"```json\n{content}\n```"
    elif fault == "prose":
        content = f"Here is the extracted data:\n{content}\nLet me know if you need anything else."
    elif fault == "invalid":
        content = json.dumps(_break(answer, prepared))
    elif fault == "length":
        content = content[: max(1, len(content) * 2 // 3)]
        finish = "length"
    elif fault == "reasoning_only":
        content = ""
        reasoning = "Let me look at the input carefully and work out each field in turn..."
        reasoning_tokens = max_tokens or DEFAULT_REASONING_TOKENS
        finish = "length"
    elif fault == "refusal":
        content = None
        refusal = "I'm sorry, but I can't help with that request."
    elif fault == "upstream_error":
        content = ""
        finish = "error"
        error = {
            "code": 502,
            "message": "Upstream provider error during generation",
            "metadata": {"provider_name": "fake"},
        }

    prompt_tokens = _prompt_tokens(messages)
    if fault == "length" and max_tokens:
        completion_tokens = max_tokens
    else:
        completion_tokens = reasoning_tokens + (len(content or refusal or "") + 3) // 4
    cost = usage_cost(prompt_tokens, completion_tokens)
    choice: dict[str, Any] = {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": content,
            "reasoning": reasoning,
            "refusal": refusal,
        },
        "finish_reason": finish,
        "native_finish_reason": finish,
    }
    if error is not None:
        choice["error"] = error
    payload: dict[str, Any] = {
        "id": gen_id,
        "provider": "fake",
        "model": str(body.get("model") or DEFAULT_MODEL),
        "object": "chat.completion",
        "created": int(time.time()),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": cost,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        },
    }
    if error is not None:
        payload["error"] = error
    state.statuses["200"] += 1
    state.prompt_tokens += prompt_tokens
    state.completion_tokens += completion_tokens
    state.cost += cost
    return _json(200, payload, headers={"X-Generation-Id": gen_id})


def _break(answer: Any, prepared: _Prepared | None) -> Any:
    """Valid JSON that the schema rejects: drop a required property, else change the type."""
    if isinstance(answer, dict) and prepared is not None and prepared.required:
        broken = dict(answer)
        broken.pop(prepared.required[0], None)
        return broken
    if isinstance(answer, dict):
        # No schema (or nothing required): a list is the wrong type for an object answer.
        return [answer]
    return {"unexpected": answer}


async def _models(request: web.Request) -> web.Response:
    model = {
        "id": DEFAULT_MODEL,
        "name": "Fake Qwen3.5 27B (extract test server)",
        "context_length": 262144,
        "pricing": {
            "prompt": f"{PRICE_INPUT_PER_M / 1e6:.10f}",
            "completion": f"{PRICE_OUTPUT_PER_M / 1e6:.10f}",
        },
        "supported_parameters": ["response_format", "structured_outputs", "seed", "max_tokens"],
    }
    return _json(200, {"data": [model]})


async def _health(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return _json(200, request.app[_STATE].snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[_STATE].reset()
    return _json(200, {"status": "reset"})


# --------------------------------------------------------------------------- in-process thread


class ServerThread:
    """The test server on its own event loop in a daemon thread; a context manager."""

    def __init__(
        self, config: ServerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._app = make_app(config)
        self._state = self._app[_STATE]
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def config(self) -> ServerConfig:
        """The configuration in force."""
        return self._state.config

    def start(self) -> ServerThread:
        """Start serving; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.base_url = loop.run_until_complete(
                    start_site(self._app, self._host, self._port)
                )
            except BaseException as e:  # handed to the starting thread, then re-raised there
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="extract-testserver", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def _call(self, fn: Any) -> Any:
        """Run `fn()` on the server's loop (its state is only touched there) and return it."""
        if self._loop is None or self._thread is None:
            raise RuntimeError("server is not running")

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=10)

    def stats(self) -> dict[str, Any]:
        """Counters since start or the last reset (the same JSON as GET /stats)."""
        result: dict[str, Any] = self._call(self._state.snapshot)
        return result

    def reset(self) -> None:
        """Clear the counters and the seen-body occurrences."""
        self._call(self._state.reset)

    def configure(self, **changes: Any) -> ServerConfig:
        """Change the configuration live (e.g. `faults={...}`, `latency_ms=...`)."""
        new = dataclasses.replace(self._state.config, **changes)

        def apply() -> None:
            self._state.config = new

        self._call(apply)
        return new

    def close(self) -> None:
        """Stop serving and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- subprocess


def config_args(config: ServerConfig) -> list[str]:
    """Command-line flags that reproduce `config`."""
    args = [
        "--latency-ms",
        repr(config.latency_ms),
        "--jitter-ms",
        repr(config.jitter_ms),
        "--retry-after",
        config.retry_after,
        "--seed",
        str(config.seed),
    ]
    if config.faults:
        args += ["--faults", ",".join(f"{k}={v!r}" for k, v in config.faults.items())]
    if config.api_key is not None:
        args += ["--api-key", config.api_key]
    return args


def start_subprocess(
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 20.0,
) -> tuple[subprocess.Popen[str], str]:
    """Run `python -m extract.testserver` in a child process; return it and its base URL.

    The caller terminates the process (`proc.terminate(); proc.wait()`).
    """
    cmd = [sys.executable, "-m", "extract.testserver", "--host", host, "--port", str(port)]
    cmd += config_args(config or ServerConfig())
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
    line = proc.stdout.readline() if ready else ""
    prefix = "listening on "
    if not line.startswith(prefix):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise RuntimeError(f"test server did not start (exit code {proc.returncode}): {line!r}")
    return proc, line[len(prefix) :].strip()


async def _serve_forever(config: ServerConfig, host: str, port: int) -> None:
    runner, base_url = await start_site(make_app(config), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m extract.testserver",
        description="OpenAI/OpenRouter-compatible fake chat-completions server for tests.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="mean reply latency")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="latency is mean +- jitter")
    parser.add_argument(
        "--faults", default="", help="e.g. rate_limit=0.1,server_error=0.05 (classes: see docs)"
    )
    parser.add_argument("--retry-after", default="0", help="Retry-After header on 429 replies")
    parser.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault decisions")
    args = parser.parse_args(argv)
    try:
        config = ServerConfig(
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            faults=parse_faults(args.faults),
            retry_after=args.retry_after,
            api_key=args.api_key,
            seed=args.seed,
        )
    except ValueError as e:
        parser.error(str(e))
    asyncio.run(_serve_forever(config, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
