"""The one exception tree of `extract`.

Whether something is retried, re-asked, recorded or stops the run is decided by its class, never by
matching message text. Context hangs on the exception as attributes.

    ExtractError                      base of everything the library raises on purpose
    ├── ConfigError                   bad pipeline file, bad --set, unknown column   (exit 2)
    │   ├── SchemaError               a model strict mode cannot express             (exit 2)
    │   └── EngineUnavailable         run.engine ray without the `ray` extra, or its
    │                                 cluster cannot be reached (.engine)            (exit 2)
    ├── SourceError                   unreadable input, duplicate or null keys       (exit 2)
    ├── SinkError                     output cannot be opened or written             (exit 2)
    │   └── WriteFailed               writing failed mid-run: disk full, read-only   (exit 8)
    ├── APIError                      the endpoint answered with an error (.status, .body)
    │   ├── TransientError            retried with backoff (transport retry loop)
    │   │   ├── RateLimited           429, honours .retry_after
    │   │   ├── ServerError           5xx and 408
    │   │   ├── ConnectionFailed      timeouts, refused or dropped connections
    │   │   └── UpstreamError         HTTP 200 whose body carries an `error`
    │   ├── RowRejected               400 and 403: not retried, the row goes to the errors table
    │   └── RunStopped                401 and 402: not retried, the run stops cleanly   (exit 4)
    ├── ContentError                  the reply arrived but is unusable: re-asked (.raw)
    │   ├── MalformedOutput           not JSON, or truncated JSON
    │   ├── TruncatedOutput           finish_reason "length" (or only reasoning came back)
    │   ├── InvalidOutput             JSON that the Pydantic model rejects (.errors)
    │   │   └── MergeFailed           a split row's merged answer does not validate:
    │   │                             recorded, not re-asked
    │   ├── RepeatedFailure           the same 500 twice for the identical request: re-asked
    │   │                             as a changed request, never sent a third time unchanged
    │   ├── Ungrounded                a value of run.require_grounding is not in the input
    │   │                             text (.paths): re-asked, then recorded or flagged
    │   └── Refusal                   the model refused; recorded, not re-asked
    ├── RowInputError                 a row cannot be rendered (missing image): errors table
    │   ├── DocumentError             a PDF of prompt.documents is missing, broken, encrypted,
    │   │                             has no such page or no text layer (.column, .source)
    │   └── InputTooLong              a row over model.max_input_tokens that cannot be split
    │                                 small enough (.tokens, .limit)
    ├── BudgetExceeded                the next request could pass run.budget_usd: stop   (exit 5)
    ├── BatchPending                  run.mode batch: the row's batch is still running; the
    │                                 row is collected by a later run                   (exit 7)
    ├── WorkerLost                    run.engine ray: a worker died more often than Ray
    │                                 restarts it (.shard); the run stops cleanly       (exit 9)
    └── AccuracyBelowMinimum          `extract eval` measured less than the minimum
                                      accuracy (.accuracy, .minimum)                     (exit 6)
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "APIError",
    "AccuracyBelowMinimum",
    "BatchPending",
    "BudgetExceeded",
    "ConfigError",
    "ConnectionFailed",
    "ContentError",
    "DocumentError",
    "EngineUnavailable",
    "ExitCode",
    "ExtractError",
    "InputTooLong",
    "InvalidOutput",
    "MalformedOutput",
    "MergeFailed",
    "RateLimited",
    "Refusal",
    "RepeatedFailure",
    "RowInputError",
    "RowRejected",
    "RunStopped",
    "SchemaError",
    "ServerError",
    "SinkError",
    "SourceError",
    "TransientError",
    "TruncatedOutput",
    "Ungrounded",
    "UpstreamError",
    "WorkerLost",
    "WriteFailed",
]


class ExitCode(enum.IntEnum):
    """The `extract` command's exit codes: the one table of them (the README shows it)."""

    OK = 0  # every row validated
    INTERNAL = 1  # an unexpected internal error (a bug)
    INPUT = 2  # bad input: pipeline file, --set, schema, source or output; nothing was sent
    ROWS_FAILED = 3  # the run finished, but some rows are in the errors table
    API_STOPPED = 4  # the API stopped the run (401, 402); rows already written stay
    BUDGET = 5  # the run stopped before passing run.budget_usd; rows already written stay
    LOW_ACCURACY = 6  # evaluated below the minimum accuracy (extract eval --min-accuracy)
    BATCHES_RUNNING = 7  # run.mode batch: batches are still running; run again to collect them
    WRITE_FAILED = 8  # the output could not be written mid-run (disk full, read-only); rerun
    WORKER_LOST = 9  # run.engine ray: a worker was lost for good; rows already written stay
    INTERRUPTED = 130  # interrupted (Ctrl-C); rows already written stay
    TERMINATED = 143  # stopped by SIGTERM: rows in flight finished (run.grace_s) and were kept


class ExtractError(Exception):
    """Base class of every error `extract` raises on purpose."""

    #: process exit code the CLI uses when this error ends a run
    exit_code: ExitCode = ExitCode.INTERNAL


class ConfigError(ExtractError):
    """The pipeline file, a --set override or a referenced file is wrong.

    `problems` lists every `location: message` found, so a user fixes them all at once.
    """

    exit_code = ExitCode.INPUT

    def __init__(self, message: str, *, path: str | None = None, problems: list[str] | None = None):
        self.path = path
        self.problems = problems or [message]
        super().__init__(message)


class SchemaError(ConfigError):
    """A model that strict structured output cannot express. `field_path` names the field,
    `reason` says why (the message without the path) and `fix` what a user can change."""

    def __init__(
        self,
        message: str,
        *,
        field_path: str = "",
        model: str = "",
        reason: str = "",
        fix: str = "",
    ):
        self.field_path = field_path
        self.model = model
        self.reason = reason
        self.fix = fix
        super().__init__(message)


class EngineUnavailable(ConfigError):
    """run.engine names an engine this installation or this machine cannot run: its package is
    not installed (the message names the pip command) or its cluster cannot be reached."""

    def __init__(self, message: str, *, engine: str, path: str | None = None):
        self.engine = engine
        super().__init__(message, path=path)


class SourceError(ExtractError):
    """The input cannot be read, or its keys are duplicated or null (`row_key` names a row)."""

    exit_code = ExitCode.INPUT

    def __init__(self, message: str, *, path: str | None = None, row_key: Any = None):
        self.path = path
        self.row_key = row_key
        super().__init__(message)


class SinkError(ExtractError):
    """The output cannot be opened or written."""

    exit_code = ExitCode.INPUT

    def __init__(self, message: str, *, path: str | None = None):
        self.path = path
        super().__init__(message)


class WriteFailed(SinkError):
    """Writing the output (its journal or its tables) failed during a run: a full disk, a
    file system turned read-only. The run stops; what was journaled lands on the next run."""

    exit_code = ExitCode.WRITE_FAILED


class APIError(ExtractError):
    """The chat-completions endpoint answered with an error."""

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        self.status = status
        self.body = body
        super().__init__(message)


class TransientError(APIError):
    """A failure that the same request may not meet again: retried with backoff."""


class RateLimited(TransientError):
    """HTTP 429. `retry_after` is the server's `Retry-After` in seconds, when it sent one."""

    def __init__(
        self, message: str, *, status: int | None = 429, body: str = "", retry_after: float | None
    ):
        self.retry_after = retry_after
        super().__init__(message, status=status, body=body)


class ServerError(TransientError):
    """HTTP 5xx or 408."""


class ConnectionFailed(TransientError):
    """Timeout, refused connection, or a connection dropped mid-reply."""


class UpstreamError(TransientError):
    """HTTP 200 whose body carries an `error` object (generation failed after it started)."""


class RowRejected(APIError):
    """HTTP 400 or 403: the request itself is refused; retrying it would get the same answer."""


class RunStopped(APIError):
    """HTTP 401 or 402: no further request can succeed, so the run stops cleanly."""

    exit_code = ExitCode.API_STOPPED


class ContentError(ExtractError):
    """The reply arrived but its content is unusable. `raw` is what the model said."""

    def __init__(self, message: str, *, raw: str = ""):
        self.raw = raw
        super().__init__(message)


class MalformedOutput(ContentError):
    """The content is not JSON (or is truncated JSON)."""


class TruncatedOutput(ContentError):
    """The reply stopped at `max_tokens`, or carried only reasoning and no answer."""


class InvalidOutput(ContentError):
    """Well-formed JSON that the Pydantic model rejects. `errors` lists `location: message`."""

    def __init__(self, message: str, *, raw: str = "", errors: list[str] | None = None):
        self.errors = errors or []
        super().__init__(message, raw=raw)


class MergeFailed(InvalidOutput):
    """The parts of a split row each validated, but their merged answer does not (a list that a
    `union` made longer than the schema allows, say). `errors` lists `location: message`."""


class Ungrounded(ContentError):
    """Values that `run.require_grounding` names were not found in the row's input text.

    `paths` are the values' dotted paths (`items[1].name`); `values` what the model wrote there.
    """

    def __init__(self, message: str, *, raw: str = "", paths: list[str], values: list[str]):
        self.paths = paths
        self.values = values
        super().__init__(message, raw=raw)


class RepeatedFailure(ContentError):
    """The endpoint failed the same way twice for the identical request (`status`, `body`).

    Retrying it unchanged would meet the same failure; the runner re-asks instead.
    """

    def __init__(self, message: str, *, status: int | None, body: str = ""):
        self.status = status
        self.body = body
        super().__init__(message, raw="")


class Refusal(ContentError):
    """The model refused to answer; recorded as the row's error, not re-asked."""


class RowInputError(ExtractError):
    """A row cannot be turned into a request (an image is missing or unreadable)."""

    def __init__(self, message: str, *, row_key: Any = None):
        self.row_key = row_key
        super().__init__(message)


class DocumentError(RowInputError):
    """A document of `prompt.documents` cannot be read for a row: missing, not a PDF, broken,
    encrypted, a page selection beyond its pages, or no text layer where text is asked for.

    `column` is the document column, `source` the file, URL or `<bytes>` as the row gives it,
    `reason` the message without the row and column (`located` adds them).
    """

    def __init__(self, reason: str, *, source: str, column: str = "", row_key: Any = None):
        self.column = column
        self.source = source
        self.reason = reason
        where = f"row {row_key!r}: document column '{column}': " if column else ""
        super().__init__(where + reason, row_key=row_key)

    def located(self, *, row_key: Any, column: str) -> DocumentError:
        """The same error, naming the row and the column."""
        return DocumentError(self.reason, source=self.source, column=column, row_key=row_key)
class InputTooLong(RowInputError):
    """A row's prompt is over the input limit and cannot be split small enough: the prompt
    without the split column is already too long, or it needs more than `split.max_parts`
    parts. `tokens` is the estimate, `limit` the limit."""

    def __init__(self, message: str, *, row_key: Any = None, tokens: int, limit: int):
        self.tokens = tokens
        self.limit = limit
        super().__init__(message, row_key=row_key)


class BudgetExceeded(ExtractError):
    """The next request could take the run past `run.budget_usd`; it stops before sending it."""

    exit_code = ExitCode.BUDGET

    def __init__(self, message: str, *, budget_usd: float, spent_usd: float):
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        super().__init__(message)


class BatchPending(ExtractError):
    """run.mode batch: the row's request is in a batch that has not finished (`.batch_id`).
    Nothing is recorded for the row: a later run collects the batch's answer."""

    exit_code = ExitCode.BATCHES_RUNNING

    def __init__(self, message: str, *, batch_id: str | None):
        self.batch_id = batch_id
        super().__init__(message)


class WorkerLost(ExtractError):
    """run.engine ray: the actor of shard `shard` died more often than Ray restarts it. Its row
    is left unrecorded and the run stops as after a 401: rows already written stay, and running
    the same command again requests the rest."""

    exit_code = ExitCode.WORKER_LOST

    def __init__(self, message: str, *, shard: int):
        self.shard = shard
        super().__init__(message)


class AccuracyBelowMinimum(ExtractError):
    """An evaluation's overall accuracy is below the minimum asked for: a CI gate's failure.

    `pipeline` names the pipeline, `accuracy` is what was measured, `minimum` what was asked.
    """

    exit_code = ExitCode.LOW_ACCURACY

    def __init__(self, message: str, *, pipeline: str, accuracy: float, minimum: float):
        self.pipeline = pipeline
        self.accuracy = accuracy
        self.minimum = minimum
        super().__init__(message)
