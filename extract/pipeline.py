"""A pipeline ready to run: its provider, open source, compiled schema and prompt, and output;
its rows rendered into first-turn messages with the hashes that identify them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import PipelineConfig
from .errors import ConfigError, RowInputError
from .outputs import Output, open_output
from .prompt import Message, Prompt, fingerprint
from .providers import get_provider
from .schema import CompiledSchema, compile_schema, load_model, model_columns
from .sources import Source, open_source
from .split import Merger, Part, Splitter, input_limit
from .split.parts import check_column
from .trust.assess import Assessor
from .trust.shape import model_shape

if TYPE_CHECKING:
    import pyarrow as pa

    from .ledger import Ledger
    from .providers.base import Provider

__all__ = ["Pipeline", "PreparedRow", "prepare"]

#: rows read, rendered and looked up in the ledger together
READ_BATCH = 1000
#: the same when documents are sent as page images: a page is ~100 KB of base64 held until its
#: row is done, so a batch of 1000 rows of 5-page PDFs would hold half a gigabyte
IMAGE_DOCUMENT_BATCH = 32


@dataclass
class Pipeline:
    """A pipeline ready to run: config, provider, open source, compiled schema, prompt, output."""

    config: PipelineConfig
    provider: Provider
    source: Source
    compiled: CompiledSchema
    prompt: Prompt
    output: Output
    #: confidence and grounding of each answer
    assessor: Assessor
    #: how a split row's parts' answers are merged (split.merge, checked against the schema)
    merger: Merger | None = None
    #: splits the rows over the input limit (None: no limit applies)
    splitter: Splitter | None = None

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_ledger(self) -> Ledger:
        """Open (creating, or checking) the output's ledger for this pipeline."""
        from .ledger import Ledger

        return Ledger(
            self.output.ledger_path,
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
            "model": self.provider.model_name(),
            "response_format": self.compiled.response_format,
            "seed": m.seed,
        }
        for name in ("temperature", "top_p", "presence_penalty", "max_tokens", "reasoning"):
            value = getattr(m, name)
            if value is not None:
                body[name] = value
        if self.config.run.confidence and self.provider.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.config.run.top_logprobs
        body.update(self.provider.request_fields())
        body.update(m.extra_body)
        return body

    def rows(self, limit: int | None = None) -> Generator[list[PreparedRow], None, None]:
        """The source's rows, rendered and hashed, a batch at a time."""
        return self.prepared(self.source.batches(self.batch_size, limit))

    @property
    def batch_size(self) -> int:
        """Rows read, rendered and looked up together."""
        return IMAGE_DOCUMENT_BATCH if self.prompt.renders_pages else READ_BATCH

    def prepared(
        self, batches: Iterable[pa.RecordBatch | pa.Table]
    ) -> Generator[list[PreparedRow], None, None]:
        """Arrow batches of source rows (from this pipeline's source, or the same rows read
        elsewhere: extract/engines/ray/), rendered and hashed."""
        # The endpoint is part of what determines an answer: a mock or local model's outputs must
        # never be served from the cache to a run against the hosted model, or the reverse.
        template = json.dumps(self.request_template(), sort_keys=True, separators=(",", ":"))
        identity = self.provider.identity()
        template_digest = hashlib.sha256(f"{identity}\n{template}".encode()).digest()
        key = self.source.key
        grounding = self.config.run.grounding or bool(self.config.run.require_grounding)
        for batch in batches:
            out = []
            for row in batch.to_pylist():
                k = row.get(key)
                try:
                    rendered = self.prompt.render(row, k)
                    prompt_hash, request_hash, chars = fingerprint(
                        rendered.messages, template_digest, rendered.inputs
                    )
                except RowInputError as e:
                    out.append(PreparedRow(k, None, "", None, e))
                    continue
                messages = rendered.messages
                texts = rendered.texts if grounding else None
                parts = None
                if self.splitter is not None:
                    try:
                        parts = self.splitter.parts(rendered, k, template_digest, texts)
                    except RowInputError as e:
                        out.append(PreparedRow(k, None, "", None, e))
                        continue
                    if parts is not None:
                        request_hash = self.splitter.request_hash(parts)
                out.append(
                    PreparedRow(
                        # a split row's whole prompt is never sent (its parts are): not kept
                        k, None if parts else messages, prompt_hash, request_hash, None, chars,
                        texts=texts, parts=parts, pages=rendered.pages,
                    )
                )  # fmt: skip
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
    #: the input text the values are grounded in, by column (None: grounding is off)
    texts: dict[str, str] | None = None
    #: the document pages sent (`_pages`: `invoice_pdf:1-3`), None without documents
    pages: str | None = None
    #: a prompt over the input limit, split: one request per part, answers merged, and
    #: `messages` None (None: one request with `messages`)
    parts: list[Part] | None = None


def prepare(config: PipelineConfig, *, rows: Any = None) -> Pipeline:
    """Every check that needs no request: provider, schema, source and keys, prompt, output.

    `rows` (a DataFrame, an Arrow table, an iterable of dicts) replaces the file's source.
    """
    provider = get_provider(config)
    compiled = compile_schema(
        load_model(config.schema_ref, config.base_dir), string_lengths=provider.string_lengths
    )
    problems = provider.problems()
    if problems:
        raise ConfigError("; ".join(problems), path=str(config.file), problems=problems)
    source = open_source(config.source, base_dir=config.base_dir, rows=rows)
    try:
        prompt = Prompt(
            config.prompt,
            columns=source.columns,
            where=str(config.file),
            image_base=source.base_dir,
        )
        if any(c.name == source.key for c in model_columns(compiled.model)):
            raise ConfigError(
                f"{config.file}:source.key: the key column '{source.key}' has the same name as a "
                f"field of {compiled.model.__name__}; rename the field or select the key under "
                "another name"
            )
        source.check_keys()
        assessor = Assessor(
            config,
            compiled,
            logprobs=provider.logprobs,
            before_grammar=provider.logprobs_before_grammar,
        )
        # long inputs: the merge policies and split.column are checked whether or not a limit
        # applies, so that a mistake shows before the first long row does
        merger = Merger(
            model_shape(compiled.model),
            config.split.merge,
            where=f"{config.file}:split.merge",
            model=compiled.model.__name__,
        )
        check_column(config, prompt)
        limit = input_limit(config, provider)
        splitter = None if limit is None else Splitter(config, prompt, limit, merger)
    except BaseException:
        source.close()
        raise
    output = open_output(config.output, config.table)
    return Pipeline(config, provider, source, compiled, prompt, output, assessor, merger, splitter)
