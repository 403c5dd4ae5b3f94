"""Running the test server: on a thread in this process, in a child process, or as the command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import selectors
import signal
import subprocess
import sys
import threading
from typing import Any

from aiohttp import web

from extract.providers.testserver.app import make_app
from extract.providers.testserver.faults import BATCH_OUTCOMES, ServerConfig, parse_faults
from extract.providers.testserver.state import STATE

__all__ = ["ServerThread", "config_args", "main", "start_site", "start_subprocess"]


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


# --------------------------------------------------------------------------- in-process thread


class ServerThread:
    """The test server on its own event loop in a daemon thread; a context manager."""

    def __init__(
        self, config: ServerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._app = make_app(config)
        self._state = self._app[STATE]
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

    def bodies(self) -> list[Any]:
        """The chat request bodies received since the last reset (with `record_bodies=True`)."""
        result: list[Any] = self._call(lambda: list(self._state.bodies))
        return result

    def reset(self) -> None:
        """Clear the counters, the seen-body occurrences and the batches."""
        self._call(self._state.reset)

    def configure(self, **changes: Any) -> ServerConfig:
        """Change the configuration live (e.g. `faults={...}`, `latency_ms=...`,
        `batch_outcome="expired"`); a batch keeps the configuration it was created under."""
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
    args += [
        "--batch-step-s",
        repr(config.batch_step_s),
        "--batch-outcome",
        config.batch_outcome,
        "--batch-max-requests",
        str(config.batch_max_requests),
        "--batch-max-bytes",
        str(config.batch_max_bytes),
        "--batch-create-latency-ms",
        repr(config.batch_create_latency_ms),
    ]
    if config.batch_require_batch_slug:
        args.append("--batch-require-batch-slug")
    if config.batch_create_drop:
        args.append("--batch-create-drop")
    if config.answer_from_text:
        args.append("--answer-from-text")
    return args


def start_subprocess(
    config: ServerConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 20.0,
) -> tuple[subprocess.Popen[str], str]:
    """Run `python -m extract.providers.testserver` in a child process; return it and its base URL.

    The caller terminates the process (`proc.terminate(); proc.wait()`).
    """
    cmd = [
        sys.executable,
        "-m",
        "extract.providers.testserver",
        "--host",
        host,
        "--port",
        str(port),
    ]
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
        prog="python -m extract.providers.testserver",
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
    parser.add_argument(
        "--answer-from-text",
        action="store_true",
        help="answer with the values of '@field: <JSON>' lines in the first user message",
    )
    defaults = ServerConfig()
    batch = parser.add_argument_group("Batch API (/v1/batches and /beta/batches)")
    batch.add_argument(
        "--batch-step-s",
        type=float,
        default=defaults.batch_step_s,
        help="seconds each non-terminal batch status lasts (0: terminal at once)",
    )
    batch.add_argument(
        "--batch-outcome",
        choices=BATCH_OUTCOMES,
        default=defaults.batch_outcome,
        help="how new batches end",
    )
    batch.add_argument(
        "--batch-max-requests",
        type=int,
        default=defaults.batch_max_requests,
        help="requests per batch; more is answered 413",
    )
    batch.add_argument(
        "--batch-max-bytes",
        type=int,
        default=defaults.batch_max_bytes,
        help="bytes per create body; more is answered 413",
    )
    batch.add_argument(
        "--batch-require-batch-slug",
        action="store_true",
        help="refuse a batch model that does not end in :batch",
    )
    batch.add_argument(
        "--batch-create-latency-ms",
        type=float,
        default=defaults.batch_create_latency_ms,
        help="wait this long after storing a new batch before answering",
    )
    batch.add_argument(
        "--batch-create-drop",
        action="store_true",
        help="store a new batch, then cut the connection without answering",
    )
    args = parser.parse_args(argv)
    try:
        config = ServerConfig(
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            faults=parse_faults(args.faults),
            retry_after=args.retry_after,
            api_key=args.api_key,
            seed=args.seed,
            answer_from_text=args.answer_from_text,
            batch_step_s=args.batch_step_s,
            batch_outcome=args.batch_outcome,
            batch_max_requests=args.batch_max_requests,
            batch_max_bytes=args.batch_max_bytes,
            batch_require_batch_slug=args.batch_require_batch_slug,
            batch_create_latency_ms=args.batch_create_latency_ms,
            batch_create_drop=args.batch_create_drop,
        )
    except ValueError as e:
        parser.error(str(e))
    asyncio.run(_serve_forever(config, args.host, args.port))
    return 0
