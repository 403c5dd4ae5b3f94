"""The pipeline file: `pipelines/NAME.yaml` loaded into validated Pydantic models.

Every problem is reported at once as `file:key: message`. `--set a.b=value` overrides are applied to
the parsed YAML *before* validation, so an override is checked exactly like the file itself.
Relative paths in the file resolve against its folder; relative paths given with --set, against
the current directory. Secrets never live here: the file names the
environment variable that holds the API key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "DocumentColumn",
    "DocumentOptions",
    "EvalConfig",
    "EvalFieldConfig",
    "LocalServerConfig",
    "ModelConfig",
    "OutputConfig",
    "PipelineConfig",
    "PromptConfig",
    "RunConfig",
    "SourceConfig",
    "SplitConfig",
    "load_pipeline",
    "parse_override",
]

#: the default endpoint (also in providers/openrouter.py, which needs no config to be imported)
OPENROUTER_URL = "https://openrouter.ai/api/v1"

#: US dollars per million input and output tokens, used when a reply carries no `usage.cost`
KNOWN_PRICES: dict[str, tuple[float, float]] = {"qwen/qwen3.5-27b": (0.195, 1.56)}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where rows come from. `key` names the unique row key column.

    `python`: rows handed over by `extract.run_pipeline(path, source=rows)`.
    """

    type: Literal["csv", "parquet", "jsonl", "duckdb", "python"]
    path: Path | None = None
    key: str
    table: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _check_shape(self) -> SourceConfig:
        if self.type == "python":
            if self.path is not None or self.table is not None or self.query is not None:
                raise ValueError("a python source takes only 'key': its rows come from Python")
        elif self.type in ("csv", "parquet", "jsonl"):
            if self.path is None:
                raise ValueError(f"a {self.type} source needs 'path'")
            if self.table is not None or self.query is not None:
                raise ValueError(f"'table' and 'query' belong to duckdb sources, not {self.type}")
        elif (self.table is None) == (self.query is None):
            raise ValueError("a duckdb source needs exactly one of 'table' or 'query'")
        elif self.table is not None and self.path is None:
            raise ValueError("a duckdb source with 'table' needs 'path' (the database file)")
        return self


#: how a document column reaches the model: its text layer, its pages as images, or both
DocumentMode = Literal["text", "images", "both"]


def _check_pages(value: str | int | None) -> str | None:
    """A page selection as written (`1-3`, `2,5-7`, `all`), checked; None stays None."""
    if value is None:
        return None
    from .documents.pages import PageSelection

    return str(PageSelection.parse(value))


class DocumentOptions(_Strict):
    """How document columns are read unless a column says otherwise (prompt.document_defaults)."""

    as_: DocumentMode = Field(default="text", alias="as")
    #: `all`, or 1-based pages and ranges: `1-3`, `2,5-7`
    pages: str = "all"
    #: resolution of the page images (as: images | both)
    dpi: int = Field(default=100, ge=36, le=600)

    @field_validator("pages", mode="before")
    @classmethod
    def _pages(cls, value: Any) -> Any:
        return _check_pages(value) if isinstance(value, str | int) else value


class DocumentColumn(_Strict):
    """A column of prompt.documents: a PDF's path, http(s) URL or bytes; unset options come
    from prompt.document_defaults."""

    column: str
    as_: DocumentMode | None = Field(default=None, alias="as")
    pages: str | None = None
    dpi: int | None = Field(default=None, ge=36, le=600)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        # `documents: [invoice_pdf]`: a bare name is a column with the defaults
        return {"column": data} if isinstance(data, str) else data

    @field_validator("pages", mode="before")
    @classmethod
    def _pages(cls, value: Any) -> Any:
        return _check_pages(value) if isinstance(value, str | int) else value


class PromptConfig(_Strict):
    """The messages of each request: `{column}` placeholders are filled from the row."""

    system: str | None = None
    user: str
    images: list[str] = Field(default_factory=list)
    #: columns holding PDF documents (paths relative to the source file's folder, http(s) URLs,
    #: or bytes), read as text, page images or both (extract/documents/)
    documents: list[DocumentColumn] = Field(default_factory=list)
    document_defaults: DocumentOptions = Field(default_factory=DocumentOptions)

    @model_validator(mode="after")
    def _check_documents(self) -> PromptConfig:
        names = [d.column for d in self.documents]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"documents: column(s) {', '.join(map(repr, twice))} listed twice")
        both = sorted(set(names) & set(self.images))
        if both:
            raise ValueError(
                f"column(s) {', '.join(map(repr, both))} are in both images and documents"
            )
        return self


class PriceConfig(_Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class LocalServerConfig(_Strict):
    """How `provider: local` runs llama.cpp's llama-server (see extract/local/)."""

    #: context window in tokens, shared by the prompt, a re-ask and the answer
    context: int = Field(default=2048, ge=256, le=131072)
    #: CPU threads for generation; null: one less than the cores this process may use (at least 1)
    threads: int | None = Field(default=None, ge=1, le=1024)
    #: requests decoded at once; above 1 the answers stop being byte-identical between runs
    parallel: int = Field(default=1, ge=1, le=64)
    #: llama.cpp's name of a built-in chat template; null: the GGUF file's own template (the
    #: bundled model carries one)
    chat_template: str | None = None
    #: seconds to wait for the server to load the model and answer GET /health
    start_timeout_s: float = Field(default=120, gt=0)


class ModelConfig(_Strict):
    """The model endpoint and the sampling options sent with every request."""

    #: `api` (an OpenAI-compatible endpoint; OpenRouter's when base_url is), `openai`,
    #: `openrouter`, `local` (llama-server here), `mock` (the test server), or a plug-in's name
    provider: str = Field(default="api", pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = "qwen/qwen3.5-27b"
    base_url: str = OPENROUTER_URL
    api_key_env: str | None = "OPENROUTER_API_KEY"
    seed: int = 42
    temperature: float | None = Field(default=0, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_tokens: int | None = Field(default=4096, ge=1)
    reasoning: dict[str, Any] | None = None
    #: OpenRouter's provider routing preferences, sent as the request's `provider` field
    routing: dict[str, Any] | None = None
    #: any further request fields, sent as they are
    extra_body: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=300, gt=0)
    #: seconds to open a connection, apart from `timeout_s` for the whole answer
    connect_timeout_s: float = Field(default=10, gt=0)
    #: stream the answers (server-sent events): a stalled answer is caught after
    #: `idle_timeout_s` without an event, and one that repeats itself is cut short
    stream: bool = False
    idle_timeout_s: float = Field(default=60, gt=0)
    price: PriceConfig | None = None
    #: run.mode batch: the Batch API's URL; null: `{base_url}/batches` (OpenRouter's older
    #: generation of the API lives at https://openrouter.ai/api/beta/batches)
    batch_url: str | None = None
    #: run.mode batch: the batch price as a share of the per-token price (for costs a batch line
    #: does not report, and for `extract plan`)
    batch_discount: float = Field(default=0.5, gt=0, le=1)
    #: provider local: a GGUF model file of your own instead of the bundled Qwen2.5-Coder-1.5B
    path: Path | None = None
    #: provider local: options of the llama-server that extract starts
    local: LocalServerConfig = Field(default_factory=LocalServerConfig)
    #: the most input tokens (estimated) one request may carry; a longer row is split (see
    #: `split`). null: no limit, except the local model's context (extract/split/tokens.py)
    max_input_tokens: int | None = Field(default=None, ge=64)

    @model_validator(mode="after")
    def _check_local(self) -> ModelConfig:
        if self.path is not None and self.provider != "local":
            raise ValueError("'path' (a GGUF model file) is used only with provider: local")
        return self

    def prices(self) -> tuple[float, float] | None:
        """Dollars per million (input, output) tokens, when known."""
        if self.price is not None:
            return (self.price.input_per_mtok, self.price.output_per_mtok)
        return KNOWN_PRICES.get(self.name)


class RateLimitConfig(_Strict):
    """A provider's published limits, kept to across retries (token buckets)."""

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)


class RunConfig(_Strict):
    concurrency: int = Field(default=16, ge=1, le=4096)
    #: attempts per row in all: the first request plus re-asks after unusable output
    max_attempts: int = Field(default=4, ge=1, le=20)
    #: transport retries (429, 5xx, timeouts, dropped connections) per attempt
    max_retries: int = Field(default=6, ge=0, le=50)
    #: first transport-retry wait in seconds (exponential, jittered, capped at 60 s)
    backoff_s: float = Field(default=0.5, gt=0, le=60)
    #: rows folded into the output tables per transaction (each row is journaled at once anyway)
    batch_size: int = Field(default=500, ge=1)
    #: requests and tokens per minute at most (the provider's limits), beside the adaptive limit
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)
    #: stop before the run's cost could pass this many US dollars (needs the model's prices)
    budget_usd: float | None = Field(default=None, gt=0)
    #: ask for token log-probabilities and store each value's probability in `_confidence`
    confidence: bool = False
    #: alternatives per token asked for with `confidence` (the runner-up of an enum or boolean)
    top_logprobs: int = Field(default=5, ge=1, le=20)
    #: find each string, number and date value in the row's input text (`_grounding`)
    grounding: bool = True
    #: fields (dotted paths, `customer.email`) whose values must be found in the input text: a
    #: value that is not is re-asked, and when the attempts run out handled as `ungrounded` says
    require_grounding: list[str] = Field(default_factory=list)
    #: what becomes of a row whose required values are still not found: `error` records it in
    #: the errors table as `Ungrounded`; `flag` keeps it, counted in `_ungrounded`
    ungrounded: Literal["error", "flag"] = "error"
    #: seconds that rows in flight get to finish after SIGTERM before they are cancelled (below
    #: Kubernetes' 30 s); a second SIGTERM or a Ctrl-C cancels them at once
    grace_s: float = Field(default=20, ge=0, le=3600)
    #: `sync`: one request per row as it comes; `batch`: rows go in half-price Batch API batches
    #: (`extract run` submits what is new, collects what has finished and exits 7 while batches
    #: are still running; `--wait` polls until everything is collected)
    mode: Literal["sync", "batch"] = "sync"
    #: requests per batch (the Batch API takes at most 5,000 and 200 MB)
    batch_max_requests: int = Field(default=5000, ge=1, le=5000)
    batch_max_mb: float = Field(default=200, gt=0, le=200)
    #: seconds between status polls of a running batch (`--wait`)
    batch_poll_s: float = Field(default=30, gt=0)
    #: a row a batch cannot carry (a local image: batches take images by URL only): `error`
    #: records it in the errors table, `sync` sends it as a normal request
    batch_fallback: Literal["error", "sync"] = "error"
    #: where re-asks after unusable output go: a follow-up `batch`, or `sync` requests
    batch_reask: Literal["batch", "sync"] = "batch"
    # run.engine: where rows are requested. Excluded from config_hash: the engine does not
    # shape the results (the same table either way).
    #: `local`: this process; `ray`: Ray actors, one shard of the rows each (extract/engines/ray/)
    engine: Literal["local", "ray"] = Field(default="local", exclude=True)
    #: engine ray: the cluster (`auto`, `ray://HEAD:10001`, `HOST:6379`); null: connect to the
    #: instance RAY_ADDRESS names, else start a local one
    ray_address: str | None = Field(default=None, exclude=True)
    #: engine ray: worker actors, one shard each; null: one per CPU of the cluster
    ray_workers: int | None = Field(default=None, ge=1, le=4096, exclude=True)


#: how the parts' answers of a split row are merged, per field (extract/split/merge.py)
MergePolicy = Literal["first", "vote", "union", "min", "max", "concat"]


class SplitConfig(_Strict):
    """How a row whose prompt is over `model.max_input_tokens` is split, and its parts merged."""

    #: the column cut into parts; null: the longest text column the prompt names, per row
    column: str | None = None
    #: characters of the previous part that each part repeats at its start
    overlap_chars: int = Field(default=200, ge=0, le=100_000)
    #: a row that needs more parts than this is that row's error
    max_parts: int = Field(default=50, ge=1, le=10_000)
    #: per field (a dotted path such as `vendor.name`): how the parts' values are merged;
    #: unset, the policy follows the field's type
    merge: dict[str, MergePolicy] = Field(default_factory=dict)


class OutputConfig(_Strict):
    type: Literal["duckdb", "parquet", "csv"] = "duckdb"
    path: Path
    table: str | None = None

    @model_validator(mode="after")
    def _check_table(self) -> OutputConfig:
        if self.type == "duckdb" and not self.table:
            raise ValueError("a duckdb output needs 'table'")
        return self


#: how `extract eval` compares a field's values (extract/evaluate/match.py)
EvalMode = Literal["exact", "normalized", "numeric", "date", "set", "enum", "fuzzy"]


class EvalFieldConfig(_Strict):
    """How `extract eval` compares one field; unset, the mode follows the field's type."""

    mode: EvalMode | None = None
    #: numeric: the largest absolute difference still counted as equal
    tolerance: float | None = Field(default=None, ge=0)
    #: numeric: the largest difference relative to the expected value still counted as equal
    relative: float | None = Field(default=None, ge=0)
    #: fuzzy: the least similarity (rapidfuzz ratio / 100) counted as equal
    threshold: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _check_options(self) -> EvalFieldConfig:
        numeric = self.tolerance is not None or self.relative is not None
        if numeric and self.mode not in (None, "numeric"):
            raise ValueError("'tolerance' and 'relative' belong to mode numeric")
        if self.threshold is not None and self.mode not in (None, "fuzzy"):
            raise ValueError("'threshold' belongs to mode fuzzy")
        if numeric and self.threshold is not None:
            raise ValueError("'threshold' (fuzzy) and 'tolerance' (numeric) exclude each other")
        return self


class EvalConfig(_Strict):
    """`extract eval`: the labels a run is compared with, and how each field is compared."""

    #: the labels file (CSV, Parquet, JSONL, or DuckDB `file.duckdb:table`), relative to the
    #: pipeline file's folder
    labels: Path | None = None
    #: the table, for a DuckDB labels file
    labels_table: str | None = None
    #: per field (a dotted path such as `customer.email`): how it is compared
    fields: dict[str, EvalFieldConfig] = Field(default_factory=dict)
    #: `extract eval` exits 6 when the overall accuracy is below this
    min_accuracy: float | None = Field(default=None, ge=0, le=1)


class PipelineConfig(_Strict):
    """A validated pipeline file."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    source: SourceConfig
    schema_ref: str = Field(alias="schema")
    prompt: PromptConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    output: OutputConfig
    #: long inputs: how a row over model.max_input_tokens is split and its parts merged
    split: SplitConfig = Field(default_factory=SplitConfig)
    #: `extract eval`'s section; excluded from config_hash, since it does not shape a run
    evaluation: EvalConfig | None = Field(default=None, alias="eval", exclude=True)

    #: the file this was loaded from (not part of the file itself)
    file: Path = Field(default=Path("pipeline.yaml"), exclude=True)

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    @property
    def table(self) -> str:
        return self.output.table or self.name

    def config_hash(self) -> str:
        """A hash of everything in the file that shapes the run's results."""
        data = self.model_dump(mode="json", by_alias=True)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into its key path and a value parsed as a YAML scalar."""
    key, sep, raw = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from e
    return key.split("."), value


def _apply_override(data: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: '{part}' is not a mapping")
        node = child
    node[path[-1]] = value


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top)"


Overrides = Sequence[str] | Mapping[str, Any]


def _override_items(overrides: Overrides) -> list[tuple[list[str], Any, str]]:
    """(key path, value, how to name it) for `--set`-style strings or a {dotted key: value} map."""
    if isinstance(overrides, Mapping):
        items = []
        for key, value in overrides.items():
            if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
                raise ConfigError(f"overrides: {key!r} is not a dotted key such as 'run.limit'")
            items.append((key.split("."), value, f"{key}={value!r}"))
        return items
    return [(*parse_override(item), item) for item in overrides]


def load_pipeline(path: str | Path, overrides: Overrides = ()) -> PipelineConfig:
    """Read, override, validate and resolve a pipeline file; ConfigError lists every problem.

    `overrides`: `--set` strings (`"run.concurrency=8"`, values parsed as YAML) or a mapping of
    dotted keys to values (`{"run.concurrency": 8}`).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"{file}: cannot read the pipeline file ({e.strerror})", path=str(file)
        ) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{file}{where}: invalid YAML: {problem}", path=str(file)) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the pipeline file must be a mapping of keys", path=str(file))
    for keys, value, item in _override_items(overrides):
        if keys[-1] == "path" and isinstance(value, str) and value:
            # A path typed on the command line is relative to where it was typed.
            value = str(Path.cwd() / value)
        _apply_override(data, keys, value, item)
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as e:
        problems = [f"{file}:{_location(err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError("; ".join(problems), path=str(file), problems=problems) from e
    return _resolve_paths(config, file)


def _resolve_paths(config: PipelineConfig, file: Path) -> PipelineConfig:
    base = file.resolve().parent

    def resolve(p: Path | None) -> Path | None:
        return None if p is None else (base / p).resolve()

    source = config.source.model_copy(update={"path": resolve(config.source.path)})
    output = config.output.model_copy(update={"path": resolve(config.output.path)})
    model = config.model.model_copy(update={"path": resolve(config.model.path)})
    return config.model_copy(
        update={"source": source, "output": output, "model": model, "file": file.resolve()}
    )
