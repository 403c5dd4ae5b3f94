"""`provider: local`: llama.cpp's llama-server running a GGUF model on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..base import Endpoint, Provider
from .build import MODEL_FILE, Progress, prepare_local, prepared, stderr_progress
from .server import MODEL_ALIAS, check_schema, log_path, schema_warnings, start_server

__all__ = ["Local"]


class Local(Provider):
    """Starts llama-server on a free 127.0.0.1 port for the run, and stops it after.

    The JSON schema becomes a grammar the server decodes under, so string lengths are sent
    (`string_lengths`); requests beyond the server's `model.local.parallel` slots would only queue
    inside it, where their wait counts against `model.timeout_s`, so that caps the run's
    concurrency. The run costs no dollars: 0, not unknown, in `_cost_usd`.
    """

    name = "local"
    string_lengths = True
    reasoning_details = False
    logprobs = True
    logprobs_before_grammar = True

    #: where preparing and starting report what they do
    progress: Progress = staticmethod(stderr_progress)

    def identity(self) -> str:
        # The port changes every run; the model file decides the answers.
        path = self.model.path
        if path is None:
            return f"local:{MODEL_FILE}"
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        return f"local:{path}:{size}"

    def model_name(self) -> str:
        return MODEL_ALIAS if self.model.path is None else self.model.path.stem

    def request_fields(self) -> dict[str, Any]:
        return {}

    def prices(self) -> tuple[float, float] | None:
        return (0.0, 0.0)

    def api_key(self) -> str | None:
        return None

    def context_tokens(self) -> int | None:
        return self.model.local.context

    @contextmanager
    def start(self) -> Iterator[Endpoint]:
        from ...schema import compile_schema, load_model

        m = self.model
        response_format = compile_schema(
            load_model(self.config.schema_ref, self.config.base_dir), string_lengths=True
        ).response_format
        files = prepared(m.path) or prepare_local(m.path, progress=self.progress)
        with start_server(files, m.local) as base_url:
            check_schema(base_url, response_format, where=f"{self.config.file}:")
            # llama-server only logs the parts of a schema its grammar cannot express: say so
            for warning in schema_warnings(log_path()):
                self.progress(
                    "warning: the local model server does not enforce part of the schema: "
                    f"{warning}; Pydantic still checks every answer"
                )
            yield Endpoint(base_url, None, max_concurrency=m.local.parallel)
