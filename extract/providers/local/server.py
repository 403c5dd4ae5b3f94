"""Running the local model: llama-server's command line, its start and stop, the schema check.

`provider.Local.start` does all of it for a run: prepares what is missing
(`build.prepare_local`), starts the server and checks that it can compile the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...config import LocalServerConfig
from ...errors import APIError, ConfigError, RowRejected, SchemaError
from ..base import stop_process
from .build import LocalFiles, cache_dir, last_line

#: the name the bundled model answers to (the `model` of each reply, the `_model` column)
MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: get SIGTERM when extract dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def server_command(files: LocalFiles, options: LocalServerConfig, port: int) -> list[str]:
    """The llama-server command line for these files and options."""
    # One core left free: llama.cpp's threads wait on each other at every step, so when the
    # machine is busy (the run itself, tests, another job), a descheduled thread stalls them all:
    # on 2 busy cores -t 1 ran at 38-41 tokens/s and -t 2 at 5-8.
    threads = options.threads or max(1, len(os.sched_getaffinity(0)) - 1)
    cmd = [
        str(files.server),
        "--model",
        str(files.model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--alias",
        MODEL_ALIAS if files.bundled else files.model.stem,
        # every slot gets the whole `context`
        "--ctx-size",
        str(options.context * options.parallel),
        "--parallel",
        str(options.parallel),
        "--threads",
        str(threads),
        # a reused prompt cache changes the numerics, so identical requests got different answers
        "--no-cache-prompt",
        "--no-webui",
    ]
    if options.chat_template is not None:
        # a built-in template by name; the Jinja engine would want the file's own template
        cmd += ["--no-jinja", "--chat-template", options.chat_template]
    else:
        # the GGUF's own template, the bundled model's included: the one it was tuned with
        cmd += ["--jinja"]
    return cmd


def log_path(cache: Path | None = None) -> Path:
    """The log of the llama-server this process runs (while it runs)."""
    return (cache or cache_dir()) / "logs" / f"llama-server-{os.getpid()}.log"


#: how llama-server says that it accepts any string where the schema asked for more
_INCOMPLETE = "WARNING: JSON schema conversion was incomplete: "


def schema_warnings(log: Path) -> list[str]:
    """What llama-server logged about the parts of a schema its grammar does not enforce."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln.removeprefix(_INCOMPLETE).strip() for ln in lines if ln.startswith(_INCOMPLETE)]


def _healthy(base: str) -> bool:
    # A plain GET with the standard library: the chat client is built for the run, not for polling
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def start_server(
    files: LocalFiles, options: LocalServerConfig, cache: Path | None = None
) -> Iterator[str]:
    """Run llama-server on a free 127.0.0.1 port; yield its OpenAI base URL (`.../v1`).

    Its output goes to a log file in the cache, named in every error. The server is stopped on
    leaving the block however it is left; its log is then kept as `logs/llama-server.log`.
    """
    log_file = log_path(cache)
    logs = log_file.parent
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_file, "w") as log:
        try:
            process = subprocess.Popen(
                server_command(files, options, port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as e:
            raise ConfigError(f"cannot start {files.server}: {e}") from e
        started = False
        try:
            deadline = time.monotonic() + options.start_timeout_s
            while not _healthy(base):
                if process.poll() is not None:
                    raise ConfigError(
                        f"llama-server exited with code {process.returncode} before it was ready: "
                        f"{last_line(log_file)}; log: {log_file}"
                    )
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"llama-server was not ready after {options.start_timeout_s:g} s "
                        f"(model.local.start_timeout_s); log: {log_file}"
                    )
                time.sleep(0.1)
            started = True
            yield f"{base}/v1"
        finally:
            stop_process(process)
            if started:
                # A server that started keeps its log as the last one; one that failed to start
                # keeps the file its error names.
                with contextlib.suppress(OSError):
                    os.replace(log_file, logs / "llama-server.log")


async def _probe(base_url: str, response_format: dict[str, Any], timeout_s: float) -> None:
    from ...transport import encode_body
    from ...transport.http import HttpTransport

    body = {
        "messages": [{"role": "user", "content": "{}"}],
        "response_format": response_format,
        "max_tokens": 1,
        "temperature": 0,
    }
    async with HttpTransport(base_url, api_key=None, timeout_s=timeout_s) as client:
        await client.complete(encode_body(body))


def check_schema(base_url: str, response_format: dict[str, Any], *, where: str = "") -> None:
    """Raise SchemaError when the server cannot compile `response_format` into a grammar.

    One request of one token: a schema llama-server refuses is a property of the pipeline, so it
    is reported once, before any row is sent, instead of once per row in the errors table.
    """
    try:
        asyncio.run(_probe(base_url, response_format, timeout_s=60))
    except RowRejected as e:
        name = response_format.get("json_schema", {}).get("name", "")
        raise SchemaError(
            f"{where}schema: the local model server cannot use the schema {name}: "
            f"{_server_message(e)} (llama.cpp's JSON-schema grammar supports "
            "less than strict mode; simplify the field it names)",
            model=name,
        ) from e
    except APIError as e:
        raise ConfigError(f"the local model server failed a test request: {e}") from e


#: what llama-server's Jinja path puts before a schema error: it blames the chat template, which is
#: not the problem, so it is dropped
_JINJA_PREFIX = "Unable to generate parser for this template. Automatic parser generation failed: "


def _server_message(error: RowRejected) -> str:
    # one line: the CLI prints one line per problem
    message = str(error).removeprefix(f"HTTP {error.status}: ").removeprefix(_JINJA_PREFIX)
    return message.replace("\n", " ")
