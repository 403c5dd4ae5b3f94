"""A pipeline ready to run: the open source, the compiled schema and prompt, and its rows
rendered into first-turn messages with the hashes that identify them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .columns import model_columns
from .config import PipelineConfig
from .errors import ConfigError, RowInputError
from .ledger import Ledger
from .prompt import Message, Prompt, fingerprint
from .schema import CompiledSchema, compile_schema, load_model
from .sinks import ledger_path
from .sources import Source, open_source, resolve_image_base

__all__ = ["Pipeline", "PreparedRow", "api_key_from_env", "prepare"]

#: rows read, rendered and looked up in the ledger together
READ_BATCH = 1000


@dataclass
class Pipeline:
    """A pipeline ready to run: config, open source, compiled schema and prompt."""

    config: PipelineConfig
    source: Source
    compiled: CompiledSchema
    prompt: Prompt
    #: the hash of the pipeline as written, before `extract` points it at an endpoint it started
    config_hash: str = ""

    def close(self) -> None:
        self.source.close()

    @property
    def ledger_path(self) -> Path:
        return ledger_path(self.config.output.type, self.config.output.path)

    def open_ledger(self) -> Ledger:
        """Open (creating, or checking) the output's ledger for this pipeline."""
        return Ledger(
            self.ledger_path,
            self.config.table,
            key=self.source.key,
            key_type=self.source.key_type,
            columns=model_columns(self.compiled.model),
            compiled=self.compiled,
            seed=self.config.model.seed,
        )

    def request_template(self) -> dict[str, Any]:
        """Every request field but `messages`."""
        m = self.config.model
        body: dict[str, Any] = {
            "model": m.name,
            "response_format": self.compiled.response_format,
            "seed": m.seed,
        }
        for name in ("temperature", "top_p", "presence_penalty", "max_tokens", "reasoning"):
            value = getattr(m, name)
            if value is not None:
                body[name] = value
        routing = dict(m.routing or {})
        if m.is_openrouter:
            # Only providers that honour response_format and seed; others may silently ignore them.
            routing.setdefault("require_parameters", True)
        if routing:
            body["provider"] = routing
        body.update(m.extra_body)
        return body

    def rows(self, limit: int | None = None) -> Iterator[list[PreparedRow]]:
        """The source's rows, rendered and hashed, a batch at a time."""
        m = self.config.model
        # The endpoint is part of what determines an answer: a mock or local model's outputs must
        # never be served from the cache to a run against the hosted model, or the reverse.
        endpoint = m.base_url.rstrip("/") if m.provider == "api" else m.provider
        template = json.dumps(self.request_template(), sort_keys=True, separators=(",", ":"))
        template_digest = hashlib.sha256(f"{endpoint}\n{template}".encode()).digest()
        key = self.source.key
        for batch in self.source.batches(READ_BATCH, limit):
            out = []
            for row in batch:
                k = row.get(key)
                try:
                    messages = self.prompt.messages(row, k)
                except RowInputError as e:
                    out.append(PreparedRow(k, None, "", None, e))
                    continue
                prompt_hash, request_hash, chars = fingerprint(messages, template_digest)
                out.append(PreparedRow(k, messages, prompt_hash, request_hash, None, chars))
            yield out


@dataclass(slots=True)
class PreparedRow:
    """A source row turned into its first-turn messages and hashes."""

    key: Any
    messages: list[Message] | None
    prompt_hash: str
    #: hash of everything that determines the answer: the cache key
    request_hash: str | None
    error: RowInputError | None
    chars: int = 0
    #: the output already holds a row of this key (set from the ledger; True when unknown)
    exists: bool = True


def prepare(config: PipelineConfig) -> Pipeline:
    """Open the source, compile the schema and the prompt; every check that needs no request."""
    compiled = compile_schema(
        load_model(config.schema_ref, config.base_dir),
        string_lengths=config.model.provider == "local",
    )
    source = open_source(config.source)
    try:
        prompt = Prompt(
            config.prompt,
            columns=source.columns,
            where=str(config.file),
            image_base=resolve_image_base(config.source),
        )
        if any(c.name == source.key for c in model_columns(compiled.model)):
            raise ConfigError(
                f"{config.file}:source.key: the key column '{source.key}' has the same name as a "
                f"field of {compiled.model.__name__}; rename the field or select the key under "
                "another name"
            )
        if (
            config.run.budget_usd is not None
            and config.model.provider == "api"
            and config.model.prices() is None
        ):
            raise ConfigError(
                f"{config.file}:run.budget_usd: the prices of {config.model.name} are unknown; "
                "set model.price"
            )
        source.check_keys()
    except BaseException:
        source.close()
        raise
    return Pipeline(config, source, compiled, prompt, config.config_hash())


def api_key_from_env(config: PipelineConfig) -> str | None:
    """The API key named by `model.api_key_env`; ConfigError when that variable is unset."""
    name = config.model.api_key_env
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(
            f"{config.file}:model.api_key_env: environment variable {name} is not set "
            "(export it, or set model.api_key_env to null for an endpoint without a key)"
        )
    return value
