"""What a provider is: where requests go, how that endpoint is started, and what it can do.

A provider is a class with capability flags and a few methods (the shape of llm's models):

- `identity()`: what answers, as it enters every request hash, so answers of one endpoint are
  never served from the cache to a run against another;
- `request_fields()`: fields the provider adds to every request (OpenRouter's routing);
- `model_name()`, `prices()`: what the requests name and what they cost;
- `problems()`: what makes this pipeline unusable with this provider, found before any request;
- `start()`: a context manager that brings the endpoint up (a server it runs, or nothing) and
  yields an `Endpoint`; it is stopped when the run ends, also on errors and Ctrl-C.

Providers are registered by name (`register_provider`, in `providers/__init__.py`); the built-in
ones go through the same call as a plug-in's.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import ModelConfig, PipelineConfig

__all__ = ["Endpoint", "Provider", "stop_process"]


def stop_process(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """Stop a server a provider started: SIGTERM, then SIGKILL after `grace_s`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Endpoint:
    """A live OpenAI-compatible endpoint: where to send, with which key, how many at once."""

    base_url: str
    api_key: str | None
    #: requests the endpoint can work on at once (None: as many as run.concurrency)
    max_concurrency: int | None = None


class Provider:
    """Any OpenAI-compatible chat-completions endpoint at `model.base_url` (the default).

    Subclasses override what differs; the flags say what the endpoint can do.
    """

    #: the `model.provider` value that selects it
    name: ClassVar[str] = "openai"
    #: the endpoint enforces minLength/maxLength while decoding (a grammar), so they are sent
    string_lengths: ClassVar[bool] = False
    #: a re-ask hands a reply's `reasoning_details` back unchanged (when the reply has them)
    reasoning_details: ClassVar[bool] = True
    #: the endpoint returns token log-probabilities when asked (`run.confidence`); when False
    #: they are not asked for and `_confidence` stays null. An endpoint that ignores the request
    #: gives nulls too, and the run says so once.
    logprobs: ClassVar[bool] = True
    #: its log-probabilities are the model's before the grammar of the schema restricted each
    #: token (llama-server): at temperature 0 they are renormalised over what it allowed
    logprobs_before_grammar: ClassVar[bool] = False
    #: the endpoint has a batch API
    batch: ClassVar[bool] = False

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.model: ModelConfig = config.model

    def identity(self) -> str:
        """What answers the requests, as it enters the request hash."""
        return self.model.base_url.rstrip("/")

    def model_name(self) -> str:
        """The `model` every request names."""
        return self.model.name

    def request_fields(self) -> dict[str, Any]:
        """Fields added to every request body, besides model, messages and sampling options."""
        return {"provider": dict(self.model.routing)} if self.model.routing else {}

    def prices(self) -> tuple[float, float] | None:
        """Dollars per million (input, output) tokens, when known."""
        return self.model.prices()

    def context_tokens(self) -> int | None:
        """The model's context window in tokens, when the run must keep each request inside it
        (a long row is split to fit); None: no limit known."""
        return None

    def problems(self) -> list[str]:
        """What keeps this pipeline from running on this provider (checked before any request)."""
        where = f"{self.config.file}:"
        problems = []
        if self.config.run.budget_usd is not None and self.prices() is None:
            problems.append(
                f"{where}run.budget_usd: the prices of {self.model.name} are unknown; "
                "set model.price"
            )
        if self.config.run.mode == "batch" and not self.batch and not self.model.batch_url:
            problems.append(
                f"{where}run.mode: batch: provider {self.name!r} has no Batch API that extract "
                "knows; set model.batch_url to an OpenRouter-style one, or use mode: sync"
            )
        return problems

    def api_key(self) -> str | None:
        """The key named by `model.api_key_env`; ConfigError when that variable is unset."""
        name = self.model.api_key_env
        if not name:
            return None
        value = os.environ.get(name)
        if not value:
            raise ConfigError(
                f"{self.config.file}:model.api_key_env: environment variable {name} is not set "
                "(export it, or set model.api_key_env to null for an endpoint without a key)"
            )
        return value

    @contextmanager
    def start(self) -> Iterator[Endpoint]:
        """Bring the endpoint up for a run and yield it; nothing to start for a remote API."""
        yield Endpoint(self.model.base_url, self.api_key())
