"""The Batch API's routes: under `/v1/batches` (the newer docs: create, list, get, results,
delete) and `/beta/batches` (the older docs: create and get, with the results inline only on a
completed batch). The checks of the create body and of the query strings live here; what a
batch is and does lives in `batches.py`.

The batch routes count their replies in `/stats["batches"]`, never in the chat endpoint's
counters.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from extract.providers.testserver.batches import (
    LISTABLE_STATUSES,
    BatchError,
    BatchStore,
    Submission,
)
from extract.providers.testserver.faults import ServerConfig
from extract.providers.testserver.replies import DEFAULT_MODEL, error_payload, json_response
from extract.providers.testserver.state import STATE

__all__ = ["add_batch_routes", "parse_create"]

CHAT_ENDPOINT = "/v1/chat/completions"
#: the endpoints OpenRouter documents for batches; the test server answers only chat
ENDPOINTS = (CHAT_ENDPOINT, "/v1/responses", "/v1/messages", "/v1/embeddings")
#: the create body's fields (anything else, e.g. `metadata`, is refused)
CREATE_FIELDS = ("endpoint", "model", "requests", "completion_window", "provider", "callback_url")
#: fields the API must read before it streams through `requests`
BEFORE_REQUESTS = ("endpoint", "model", "callback_url")
MAX_CUSTOM_ID = 64
MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20
MAX_RESULTS_LIMIT = 1000
DEFAULT_RESULTS_LIMIT = 100

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_batch_routes(app: web.Application) -> None:
    """Add the batch routes under both base paths."""
    app.router.add_post("/v1/batches", _create)
    app.router.add_get("/v1/batches", _list)
    app.router.add_get("/v1/batches/{batch_id}", _getter("terminal"))
    app.router.add_get("/v1/batches/{batch_id}/results", _results)
    app.router.add_delete("/v1/batches/{batch_id}", _delete)
    app.router.add_post("/beta/batches", _create)
    app.router.add_get("/beta/batches/{batch_id}", _getter("completed"))


# --------------------------------------------------------------------------- handlers


def _reply(store: BatchStore, status: int, payload: dict[str, Any]) -> web.Response:
    store.statuses[str(status)] += 1
    return json_response(status, payload)


def _refuse(store: BatchStore, error: BatchError) -> web.Response:
    return _reply(store, error.status, error_payload(error.status, error.message))


def _denied(request: web.Request) -> web.Response | None:
    """The 401 when the server wants a key and the request lacks it (as the chat endpoint)."""
    state = request.app[STATE]
    key = state.config.api_key
    if key is not None and request.headers.get("Authorization") != f"Bearer {key}":
        return _refuse(state.batches, BatchError(401, "No auth credentials found"))
    return None


async def _create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    if (denied := _denied(request)) is not None:
        return denied
    # Read the stream ourselves: `request.read()` stops at aiohttp's 1 MB client_max_size, and
    # raising that for the whole app would change what the chat endpoint accepts.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size <= config.batch_max_bytes:
            chunks.append(chunk)
    store = state.batches  # after the await: a /reset meanwhile replaced the store
    if size > config.batch_max_bytes:
        message = f"the request body is {size} bytes; a batch is at most {config.batch_max_bytes}"
        return _refuse(store, BatchError(413, message))
    try:
        submission = parse_create(b"".join(chunks), config)
    except BatchError as e:
        return _refuse(store, e)
    batch = store.create(submission, config)
    if config.batch_create_latency_ms:
        # Stored first, answered late: a client killed meanwhile must find it with the list.
        await asyncio.sleep(config.batch_create_latency_ms / 1000)
    if config.batch_create_drop:
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=599)  # never sent: the connection is gone
    # A new batch is "validating" even when its first step lasts 0 s.
    return _reply(store, 202, store.render(batch, "never", status="validating"))


def _getter(inline: str) -> Handler:
    async def get(request: web.Request) -> web.StreamResponse:
        if (denied := _denied(request)) is not None:
            return denied
        store = request.app[STATE].batches
        try:
            batch = store.get(request.match_info["batch_id"])
        except BatchError as e:
            return _refuse(store, e)
        return _reply(store, 200, store.render(batch, inline))

    return get


async def _list(request: web.Request) -> web.StreamResponse:
    if (denied := _denied(request)) is not None:
        return denied
    store = request.app[STATE].batches
    query = request.query
    try:
        limit = _int_param(query, "limit", 1, MAX_LIST_LIMIT) or DEFAULT_LIST_LIMIT
        statuses = [s for value in query.getall("status", []) for s in value.split(",") if s]
        for status in statuses:
            if status not in LISTABLE_STATUSES:
                raise BatchError(
                    400,
                    f"status {status!r} is not a status to filter on; "
                    f"expected {', '.join(LISTABLE_STATUSES)}",
                )
        page = store.list_page(
            limit,
            query.get("after"),
            statuses,
            _int_param(query, "created_after", 0, None),
            _int_param(query, "created_before", 0, None),
        )
    except BatchError as e:
        return _refuse(store, e)
    return _reply(store, 200, page)


async def _results(request: web.Request) -> web.StreamResponse:
    if (denied := _denied(request)) is not None:
        return denied
    store = request.app[STATE].batches
    try:
        batch = store.get(request.match_info["batch_id"])
        limit = _int_param(request.query, "limit", 1, MAX_RESULTS_LIMIT) or DEFAULT_RESULTS_LIMIT
        page = store.results_page(batch, limit, request.query.get("cursor"))
    except BatchError as e:
        return _refuse(store, e)
    return _reply(store, 200, page)


async def _delete(request: web.Request) -> web.StreamResponse:
    if (denied := _denied(request)) is not None:
        return denied
    store = request.app[STATE].batches
    try:
        reply = store.delete(store.get(request.match_info["batch_id"]))
    except BatchError as e:
        return _refuse(store, e)
    return _reply(store, 200, reply)


def _int_param(query: Mapping[str, str], name: str, low: int, high: int | None) -> int | None:
    """An integer query parameter in [low, high], None when absent; BatchError 400 else."""
    text = query.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise BatchError(400, f"{name} must be an integer {bounds}, got {text!r}")
    return value


# --------------------------------------------------------------------------- the create body


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A stream parser sees every key; a dict would silently keep the last of a repeated one.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_create(raw: bytes, config: ServerConfig) -> Submission:
    """Check a create body (already within `batch_max_bytes`); BatchError says why it is refused.

    A body that breaks a rule the docs check at once is refused here (400, or 413 over
    `batch_max_requests`); one with a base64 image passes with `failure` set: OpenRouter stores
    such a batch and fails it in validation.
    """
    try:
        doc = json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise BatchError(400, f"duplicate key {e.args[0]!r} in the request body") from None
    except ValueError:
        raise BatchError(400, "request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BatchError(400, "request body must be a JSON object")
    keys = list(doc)  # json.loads keeps the document's key order
    for key in keys:
        if key not in CREATE_FIELDS:
            raise BatchError(
                400, f"unknown field {key!r} in the batch body; expected {', '.join(CREATE_FIELDS)}"
            )
    if "requests" not in doc:
        raise BatchError(400, "missing required field 'requests'")
    for key in ("endpoint", "model"):
        if key not in doc:
            raise BatchError(
                400, f"missing required field {key!r}; endpoint and model must come before requests"
            )
    for key in BEFORE_REQUESTS:
        if key in doc and keys.index(key) > keys.index("requests"):
            raise BatchError(
                400,
                f"{key!r} must come before 'requests' in the batch body: "
                "the body is read as a stream",
            )

    endpoint = doc["endpoint"]
    if endpoint not in ENDPOINTS:
        raise BatchError(400, f"endpoint {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
    if endpoint != CHAT_ENDPOINT:
        raise BatchError(
            400, f"endpoint {endpoint} is not supported by the test server (only {CHAT_ENDPOINT})"
        )
    model = doc["model"]
    if not isinstance(model, str) or not model:
        raise BatchError(400, "model must be a non-empty string")
    if config.batch_require_batch_slug and not model.endswith(":batch"):
        raise BatchError(
            400,
            f"model {model!r} is not a batch variant; use a ':batch' slug "
            f"such as {DEFAULT_MODEL}:batch",
        )
    if "completion_window" in doc and doc["completion_window"] != "24h":
        raise BatchError(400, f"completion_window {doc['completion_window']!r} is not '24h'")
    _check_provider(doc.get("provider"))
    callback = doc.get("callback_url")
    if callback is not None and not (isinstance(callback, str) and callback.startswith("https://")):
        raise BatchError(400, "callback_url must be an https:// URL")

    requests = doc["requests"]
    if not isinstance(requests, list) or not requests:
        raise BatchError(400, "requests must be a non-empty list")
    if len(requests) > config.batch_max_requests:
        raise BatchError(
            413,
            f"a batch holds at most {config.batch_max_requests} requests; "
            f"this one has {len(requests)}",
        )
    lines = [_check_line(i, item, model) for i, item in enumerate(requests)]
    first: dict[str, int] = {}
    for i, (custom_id, _) in enumerate(lines):
        if custom_id in first:
            raise BatchError(
                400,
                f"requests[{i}]: custom_id {custom_id!r} is already used by "
                f"requests[{first[custom_id]}]; custom_ids must be unique in a batch",
            )
        first[custom_id] = i
    failure = None
    for custom_id, body in lines:
        if _has_inline_image(body):
            failure = (
                f"request {custom_id!r}: images must be public http(s) URLs; "
                "base64 data: URIs are not supported in batches"
            )
            break
    return Submission(endpoint, model, lines, failure)


def _check_provider(provider: Any) -> None:
    if provider is None:
        return
    if not isinstance(provider, dict) or set(provider) - {"only", "allow_fallbacks"}:
        raise BatchError(400, "provider may only set 'only' and 'allow_fallbacks'")
    only = provider.get("only")
    if only is not None and not (isinstance(only, list) and all(isinstance(s, str) for s in only)):
        raise BatchError(400, "provider.only must be a list of provider slugs")
    if not isinstance(provider.get("allow_fallbacks", True), bool):
        raise BatchError(400, "provider.allow_fallbacks must be true or false")


def _check_line(i: int, item: Any, model: str) -> tuple[str, dict[str, Any]]:
    where = f"requests[{i}]"
    if not isinstance(item, dict):
        raise BatchError(400, f"{where} must be an object with custom_id and body")
    extra = sorted(set(item) - {"custom_id", "body"})
    if extra:
        raise BatchError(400, f"{where}: unknown field {extra[0]!r}; expected custom_id and body")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise BatchError(400, f"{where}: custom_id must be a non-empty string")
    if len(custom_id) > MAX_CUSTOM_ID:
        raise BatchError(
            400, f"{where}: custom_id is {len(custom_id)} characters; at most {MAX_CUSTOM_ID}"
        )
    body = item.get("body")
    if not isinstance(body, dict):
        raise BatchError(400, f"{where} (custom_id {custom_id!r}): body must be an object")
    if "model" in body and body["model"] != model:
        raise BatchError(
            400,
            f"{where} (custom_id {custom_id!r}): body model {body['model']!r} differs from "
            f"the batch model {model!r}; a batch has one model",
        )
    return custom_id, body


def _has_inline_image(body: dict[str, Any]) -> bool:
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url.startswith("data:"):
                return True
    return False
