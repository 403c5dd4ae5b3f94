"""The test server's Batch API (`extract/providers/testserver/batches.py`, `batch_routes.py`),
over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from extract.providers.testserver import (
    BATCH_DISCOUNT,
    FAULT_CLASSES,
    ServerConfig,
    ServerThread,
    config_args,
    start_subprocess,
    usage_cost,
)
from extract.providers.testserver.fakegen import expected_answer

MODEL = "qwen/qwen3.5-27b"
CHAT = "/v1/chat/completions"
#: the config every test starts from: quick steps, everything else at its default
STEP_S = 0.01
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Extract the person."},
            {"role": "user", "content": text},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Person", "strict": True, "schema": SCHEMA},
        },
        "seed": 1,
        **extra,
    }


def lines(n: int, prefix: str = "row") -> list[dict[str, Any]]:
    return [{"custom_id": f"{prefix}-{i}", "body": chat_body(f"{prefix} {i}")} for i in range(n)]


class Reply:
    def __init__(self, status: int, data: bytes, content_type: str) -> None:
        self.status = status
        # aiohttp's own 404/405 pages are text
        self.json: Any = json.loads(data) if content_type == "application/json" else None


def call(
    server: ServerThread,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    query: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Reply:
    """One request to the server's root (paths start with /v1 or /beta)."""
    url = urllib.parse.urlsplit(server.base_url)
    assert url.hostname is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    if query is not None:
        path += "?" + urllib.parse.urlencode(query, doseq=True)
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    try:
        conn.request(method, path, raw, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, resp.read(), resp.headers.get_content_type())
    finally:
        conn.close()


def create(
    server: ServerThread, requests: list[dict[str, Any]], base: str = "/v1", **fields: Any
) -> Reply:
    """POST a batch with endpoint and model first, as the API requires."""
    body = {"endpoint": CHAT, "model": MODEL, **fields, "requests": requests}
    return call(server, "POST", f"{base}/batches", body)


def wait_terminal(server: ServerThread, batch_id: str, base: str = "/v1") -> dict[str, Any]:
    """Poll until the batch is terminal (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        batch = call(server, "GET", f"{base}/batches/{batch_id}").json
        if batch["status"] in ("completed", "failed", "expired", "cancelled"):
            return dict(batch)
        time.sleep(0.005)
    raise AssertionError(f"batch {batch_id} did not end in time")


def run_batch(server: ServerThread, requests: list[dict[str, Any]]) -> dict[str, Any]:
    reply = create(server, requests)
    assert reply.status == 202, reply.json
    return wait_terminal(server, reply.json["id"])


def error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message}}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


@pytest.fixture(autouse=True)
def clean(server: ServerThread) -> Iterator[None]:
    defaults = ServerConfig()
    server.configure(
        **{
            name: getattr(defaults, name)
            for name in (
                "faults",
                "api_key",
                "seed",
                "batch_outcome",
                "batch_max_requests",
                "batch_max_bytes",
                "batch_require_batch_slug",
                "batch_create_latency_ms",
                "batch_create_drop",
            )
        },
        batch_step_s=STEP_S,
    )
    server.reset()
    yield


# --------------------------------------------------------------------------- create


def test_create_answers_202_with_a_validating_batch(server: ServerThread) -> None:
    before = int(time.time())
    reply = create(server, lines(2), completion_window="24h")
    assert reply.status == 202
    batch = reply.json
    assert re.fullmatch(r"batch_[0-9a-f]{24}", batch["id"])
    assert before <= batch["created_at"] <= time.time()
    assert batch == {
        "id": batch["id"],
        "object": "batch",
        "endpoint": CHAT,
        "model": MODEL,
        "completion_window": "24h",
        "status": "validating",
        "provider": "fake",
        "created_at": batch["created_at"],
        "finalized_at": None,
        "expires_at": batch["created_at"] + 24 * 3600,
        "request_counts": {"total": 2, "completed": 0, "failed": 0},
        "usage": None,
        "results": None,
        "error": None,
    }


def test_statuses_advance_with_time_and_results_come_at_the_end(server: ServerThread) -> None:
    server.configure(batch_step_s=0.15)
    batch_id = create(server, lines(3)).json["id"]
    seen: list[str] = []
    listed_while_finalizing: dict[str, list[str]] = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        batch = call(server, "GET", f"/v1/batches/{batch_id}").json
        if not seen or seen[-1] != batch["status"]:
            seen.append(batch["status"])
        if batch["status"] == "completed":
            break
        assert batch["results"] is None and batch["usage"] is None
        assert batch["finalized_at"] is None
        if batch["status"] == "finalizing" and not listed_while_finalizing:
            # A stored `finalizing` matches the list's `in_progress` filter.
            for status in ("in_progress", "completed"):
                page = call(server, "GET", "/v1/batches", query={"status": status}).json
                listed_while_finalizing[status] = [b["id"] for b in page["data"]]
        time.sleep(0.005)
    assert seen == ["validating", "in_progress", "finalizing", "completed"]
    assert listed_while_finalizing == {"in_progress": [batch_id], "completed": []}
    assert batch["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    # three steps of 0.15 s after a creation time that created_at rounds down
    assert batch["finalized_at"] - batch["created_at"] in (0, 1)
    assert [line["custom_id"] for line in batch["results"]] == ["row-0", "row-1", "row-2"]


def test_step_zero_is_terminal_at_the_first_look(server: ServerThread) -> None:
    server.configure(batch_step_s=0)
    reply = create(server, lines(1))
    assert reply.json["status"] == "validating"
    batch = call(server, "GET", f"/v1/batches/{reply.json['id']}").json
    assert batch["status"] == "completed"
    assert batch["finalized_at"] == batch["created_at"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"requests": lines(1), "endpoint": CHAT, "model": MODEL},
            "'endpoint' must come before 'requests' in the batch body: "
            "the body is read as a stream",
        ),
        (
            {"endpoint": CHAT, "requests": lines(1), "model": MODEL},
            "'model' must come before 'requests' in the batch body: the body is read as a stream",
        ),
        (
            {"endpoint": CHAT, "requests": lines(1)},
            "missing required field 'model'; endpoint and model must come before requests",
        ),
        ({"endpoint": CHAT, "model": MODEL}, "missing required field 'requests'"),
        (
            {"endpoint": CHAT, "model": MODEL, "metadata": {"a": "b"}, "requests": lines(1)},
            "unknown field 'metadata' in the batch body; expected endpoint, model, requests, "
            "completion_window, provider, callback_url",
        ),
        (
            {"endpoint": CHAT, "model": MODEL, "completion_window": "48h", "requests": lines(1)},
            "completion_window '48h' is not '24h'",
        ),
        (
            {"endpoint": "/v1/embeddings", "model": MODEL, "requests": lines(1)},
            "endpoint /v1/embeddings is not supported by the test server "
            "(only /v1/chat/completions)",
        ),
        (
            {"endpoint": "/v1/nope", "model": MODEL, "requests": lines(1)},
            "endpoint '/v1/nope' is not one of /v1/chat/completions, /v1/responses, "
            "/v1/messages, /v1/embeddings",
        ),
        ({"endpoint": CHAT, "model": MODEL, "requests": []}, "requests must be a non-empty list"),
        (
            {"endpoint": CHAT, "model": MODEL, "requests": [*lines(2), lines(1)[0]]},
            "requests[2]: custom_id 'row-0' is already used by requests[0]; "
            "custom_ids must be unique in a batch",
        ),
        (
            {"endpoint": CHAT, "model": MODEL, "requests": [{"custom_id": "x" * 65, "body": {}}]},
            "requests[0]: custom_id is 65 characters; at most 64",
        ),
        (
            {
                "endpoint": CHAT,
                "model": MODEL,
                "requests": [
                    *lines(1),
                    {"custom_id": "other", "body": {**chat_body("x"), "model": "openai/gpt-4o"}},
                ],
            },
            "requests[1] (custom_id 'other'): body model 'openai/gpt-4o' differs from "
            "the batch model 'qwen/qwen3.5-27b'; a batch has one model",
        ),
        (
            {"endpoint": CHAT, "model": MODEL, "requests": lines(1), "callback_url": "https://x"},
            "'callback_url' must come before 'requests' in the batch body: "
            "the body is read as a stream",
        ),
    ],
    ids=[
        "requests-first",
        "model-after-requests",
        "no-model",
        "no-requests",
        "metadata",
        "window",
        "embeddings",
        "unknown-endpoint",
        "empty",
        "duplicate-id",
        "long-id",
        "model-mismatch",
        "callback-after-requests",
    ],
)
def test_bad_create_bodies_are_400(server: ServerThread, raw: Any, message: str) -> None:
    reply = call(server, "POST", "/v1/batches", raw)
    assert (reply.status, reply.json) == (400, error(400, message))
    assert server.stats()["batches"]["created"] == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'{"endpoint": "/v1/chat/completions", "model": "a", "model": "b", "requests": []}',
            "duplicate key 'model' in the request body",
        ),
        (b'{"endpoint": ', "request body is not valid JSON"),
        (b"[]", "request body must be a JSON object"),
    ],
    ids=["duplicate-key", "not-json", "not-object"],
)
def test_unparseable_create_bodies_are_400(server: ServerThread, raw: bytes, message: str) -> None:
    reply = call(server, "POST", "/v1/batches", raw=raw)
    assert (reply.status, reply.json) == (400, error(400, message))


def test_a_body_may_repeat_the_batch_model_or_leave_it_out(server: ServerThread) -> None:
    requests = [
        {"custom_id": "with", "body": {**chat_body("a"), "model": MODEL}},
        {"custom_id": "without", "body": chat_body("b")},
    ]
    batch = run_batch(server, requests)
    assert [line["response"]["body"]["model"] for line in batch["results"]] == [MODEL, MODEL]


def test_batch_slug_can_be_required(server: ServerThread) -> None:
    server.configure(batch_require_batch_slug=True)
    reply = create(server, lines(1))
    assert (reply.status, reply.json) == (
        400,
        error(
            400,
            "model 'qwen/qwen3.5-27b' is not a batch variant; use a ':batch' slug "
            "such as qwen/qwen3.5-27b:batch",
        ),
    )
    body = {"endpoint": CHAT, "model": f"{MODEL}:batch", "requests": lines(1)}
    assert call(server, "POST", "/v1/batches", body).status == 202


def test_limits_are_413(server: ServerThread) -> None:
    server.configure(batch_max_requests=2)
    reply = create(server, lines(3))
    assert (reply.status, reply.json) == (
        413,
        error(413, "a batch holds at most 2 requests; this one has 3"),
    )
    assert create(server, lines(2)).status == 202

    server.configure(batch_max_requests=5000, batch_max_bytes=1000)
    raw = json.dumps({"endpoint": CHAT, "model": MODEL, "requests": lines(5)}).encode()
    reply = call(server, "POST", "/v1/batches", raw=raw)
    assert (reply.status, reply.json) == (
        413,
        error(413, f"the request body is {len(raw)} bytes; a batch is at most 1000"),
    )


def test_bodies_over_aiohttps_one_megabyte_are_accepted(server: ServerThread) -> None:
    requests = [{"custom_id": f"r{i}", "body": chat_body("x" * 100_000)} for i in range(12)]
    reply = create(server, requests)
    assert reply.status == 202
    assert reply.json["request_counts"]["total"] == 12


def test_batch_routes_need_the_api_key(server: ServerThread) -> None:
    server.configure(api_key="sk-batch")
    auth = {"Authorization": "Bearer sk-batch"}
    assert create(server, lines(1)).json == error(401, "No auth credentials found")
    assert call(server, "GET", "/v1/batches").status == 401
    body = {"endpoint": CHAT, "model": MODEL, "requests": lines(1)}
    batch_id = call(server, "POST", "/v1/batches", body, headers=auth).json["id"]
    assert call(server, "GET", f"/v1/batches/{batch_id}").status == 401
    assert call(server, "GET", f"/v1/batches/{batch_id}", headers=auth).status == 200
    assert call(server, "GET", "/v1/batches", headers=auth).json["data"][0]["id"] == batch_id


# --------------------------------------------------------------------------- list


def test_list_is_newest_first_with_paging_and_filters(server: ServerThread) -> None:
    ids = [create(server, lines(1, f"b{i}")).json["id"] for i in range(3)]
    server.configure(batch_outcome="failed")
    ids += [create(server, lines(1, f"b{i}")).json["id"] for i in range(3, 5)]
    newest = ids[::-1]
    for batch_id in ids:
        wait_terminal(server, batch_id)

    def page(**query: Any) -> dict[str, Any]:
        reply = call(server, "GET", "/v1/batches", query=query)
        assert reply.status == 200, reply.json
        return dict(reply.json)

    first = page(limit=2)
    assert first["object"] == "list"
    assert [b["id"] for b in first["data"]] == newest[:2]
    assert (first["first_id"], first["last_id"], first["has_more"]) == (*newest[:2], True)
    assert all(b["results"] is None for b in first["data"])
    assert first["data"][0]["status"] == "failed"
    second = page(limit=2, after=first["last_id"])
    assert [b["id"] for b in second["data"]] == newest[2:4]
    last = page(limit=2, after=second["last_id"])
    assert ([b["id"] for b in last["data"]], last["has_more"]) == ([newest[4]], False)
    assert page(after=newest[4]) == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }
    assert [b["id"] for b in page()["data"]] == newest  # default limit 20

    assert [b["id"] for b in page(status="failed")["data"]] == newest[:2]
    both = page(status=["failed", "completed"])
    assert [b["id"] for b in both["data"]] == newest
    assert page(status="in_progress")["data"] == []

    created = {b["id"]: b["created_at"] for b in page()["data"]}
    cut = created[ids[2]]
    assert [b["id"] for b in page(created_after=cut)["data"]] == [
        i for i in newest if created[i] > cut
    ]
    assert [b["id"] for b in page(created_before=cut)["data"]] == [
        i for i in newest if created[i] < cut
    ]
    assert page(created_after=cut - 1, created_before=cut + 1)["data"] == [
        b for b in page()["data"] if b["created_at"] == cut
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 100, got '0'"),
        ({"limit": 101}, "limit must be an integer from 1 to 100, got '101'"),
        ({"limit": "ten"}, "limit must be an integer from 1 to 100, got 'ten'"),
        (
            {"status": "finalizing"},
            "status 'finalizing' is not a status to filter on; expected validating, "
            "in_progress, completed, failed, expired, cancelled",
        ),
        ({"after": "batch_nope"}, "after: no batch with id 'batch_nope'"),
        ({"created_after": "soon"}, "created_after must be an integer of at least 0, got 'soon'"),
    ],
)
def test_bad_list_queries_are_400(server: ServerThread, query: Any, message: str) -> None:
    reply = call(server, "GET", "/v1/batches", query=query)
    assert (reply.status, reply.json) == (400, error(400, message))


# --------------------------------------------------------------------------- results


def test_results_pages_follow_cursors_in_submission_order(server: ServerThread) -> None:
    batch = run_batch(server, lines(5))
    path = f"/v1/batches/{batch['id']}/results"
    pages = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        reply = call(server, "GET", path, query=query)
        assert reply.status == 200
        pages.append(reply.json)
        cursor = reply.json["next_cursor"]
        if not reply.json["has_more"]:
            break
    assert [[line["custom_id"] for line in p["data"]] for p in pages] == [
        ["row-0", "row-1"],
        ["row-2", "row-3"],
        ["row-4"],
    ]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert pages[-1]["next_cursor"] is None
    first_cursor = pages[0]["next_cursor"]
    decoded = base64.urlsafe_b64decode(first_cursor + "=" * (-len(first_cursor) % 4)).decode()
    assert decoded == f"v1:{batch['id']}:2"
    # the same page again (a retry) is the same page, and matches the inline results
    again = call(server, "GET", path, query={"limit": 2, "cursor": first_cursor}).json
    assert again == pages[1]
    assert [line for p in pages for line in p["data"]] == batch["results"]
    assert all(re.fullmatch(r"batch_req_[0-9a-f]{24}", line["id"]) for line in batch["results"])

    other = run_batch(server, lines(1))
    foreign = call(server, "GET", f"/v1/batches/{other['id']}/results", query={"limit": 1})
    assert foreign.json["next_cursor"] is None
    for bad in ("nope", base64.urlsafe_b64encode(f"v1:{other['id']}:0".encode()).decode()):
        reply = call(server, "GET", path, query={"cursor": bad})
        assert (reply.status, reply.json) == (
            400,
            error(400, f"cursor {bad!r} is not a results cursor of batch {batch['id']}"),
        )
    reply = call(server, "GET", path, query={"limit": 1001})
    assert reply.status == 400
    assert reply.json == error(400, "limit must be an integer from 1 to 1000, got '1001'")


def test_results_default_to_pages_of_100(server: ServerThread) -> None:
    requests = [{"custom_id": f"r{i}", "body": chat_body(f"r {i}")} for i in range(101)]
    batch_id = run_batch(server, requests)["id"]
    page = call(server, "GET", f"/v1/batches/{batch_id}/results").json
    assert (len(page["data"]), page["has_more"]) == (100, True)
    rest = call(
        server, "GET", f"/v1/batches/{batch_id}/results", query={"cursor": page["next_cursor"]}
    ).json
    assert ([line["custom_id"] for line in rest["data"]], rest["has_more"]) == (["r100"], False)


def test_results_before_the_end_are_409(server: ServerThread) -> None:
    server.configure(batch_step_s=30)
    batch_id = create(server, lines(1)).json["id"]
    reply = call(server, "GET", f"/v1/batches/{batch_id}/results")
    assert (reply.status, reply.json) == (
        409,
        error(409, f"batch {batch_id} is validating; its results are ready once it is terminal"),
    )


def test_a_line_is_what_the_sync_endpoint_answers_at_half_price(server: ServerThread) -> None:
    bodies = [chat_body("Ada Lovelace, 36"), chat_body("Alan Turing, 41", max_tokens=50)]
    requests = [{"custom_id": f"c{i}", "body": body} for i, body in enumerate(bodies)]
    batch = run_batch(server, requests)
    total_cost = 0.0
    for body, line in zip(bodies, batch["results"], strict=True):
        sync = call(server, "POST", CHAT, {**body, "model": MODEL}).json
        got = line["response"]["body"]
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"] == got["id"]
        assert got["id"].startswith("gen-batch-")
        usage = sync["usage"]
        assert got == {
            **sync,
            "id": got["id"],
            "created": got["created"],
            "usage": {**usage, "cost": usage["cost"] * BATCH_DISCOUNT},
        }
        assert got["usage"]["cost"] == (
            usage_cost(usage["prompt_tokens"], usage["completion_tokens"]) * 0.5
        )
        assert json.loads(got["choices"][0]["message"]["content"]) == expected_answer(body)
        total_cost += got["usage"]["cost"]
    prompt = sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in batch["results"])
    completion = sum(
        line["response"]["body"]["usage"]["completion_tokens"] for line in batch["results"]
    )
    assert batch["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": total_cost,
        "is_byok": False,
    }
    stats = server.stats()
    # the batch lines are not counted as chat requests; the two sync calls are
    assert stats["total_requests"] == 2
    assert stats["batches"]["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost": total_cost,
    }


def test_content_faults_reach_every_line_at_rate_one(server: ServerThread) -> None:
    server.configure(faults={"fenced": 1.0})
    requests = lines(3)
    batch = run_batch(server, requests)
    server.configure(faults={})  # a batch keeps the config it was created under
    assert batch["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    contents = [
        line["response"]["body"]["choices"][0]["message"]["content"] for line in batch["results"]
    ]
    assert contents == [f"```json\n{json.dumps(expected_answer(r['body']))}\n```" for r in requests]
    assert server.stats()["batches"]["faults"] == {
        name: 3 * (name == "fenced") for name in FAULT_CLASSES
    }

    server.configure(faults={"refusal": 1.0})
    choice = run_batch(server, lines(1, "other"))["results"][0]["response"]["body"]["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["message"]["refusal"] == "I'm sorry, but I can't help with that request."


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            "rate_limit",
            [
                (
                    "Rate limit exceeded: fake/qwen is temporarily rate-limited upstream",
                    "rate_limit_error",
                    "rate_limit_exceeded",
                )
            ],
        ),
        (
            "server_error",
            [
                ("Upstream provider returned an invalid response", "server_error", "server"),
                (
                    "No available provider meets the routing requirements",
                    "server_error",
                    "provider_unavailable",
                ),
            ],
        ),
        ("timeout", [("Upstream request timed out", "server_error", "timeout")]),
        ("drop", [("the provider closed the connection mid-request", "server_error", "server")]),
        (
            "upstream_error",
            [("Upstream provider error during generation", "server_error", "server")],
        ),
        (
            "bad_request",
            [
                (
                    "Provider returned error: invalid request parameters",
                    "invalid_request_error",
                    "invalid_request",
                )
            ],
        ),
        (
            "forbidden",
            [("Input was flagged by moderation", "moderation", "content_policy_violation")],
        ),
        (
            "payment",
            [
                (
                    "Insufficient credits. Add more using https://openrouter.ai",
                    "payment_required",
                    "payment_required",
                )
            ],
        ),
    ],
)
def test_http_faults_become_line_errors(
    server: ServerThread, fault: str, expected: list[tuple[str, str, str]]
) -> None:
    server.configure(faults={fault: 1.0})
    batch = run_batch(server, lines(8))
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 8, "completed": 0, "failed": 8}
    assert batch["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": 0.0,
        "is_byok": False,
    }
    for line in batch["results"]:
        assert line["response"] is None
        err = line["error"]
        assert set(err) == {"message", "param", "type", "error_type"}
        assert err["param"] is None
        assert (err["message"], err["type"], err["error_type"]) in expected
    stats = server.stats()
    assert stats["batches"]["faults"][fault] == 8
    assert (stats["batches"]["lines_completed"], stats["batches"]["lines_failed"]) == (0, 8)
    assert stats["total_requests"] == 0 and stats["faults"][fault] == 0


def test_a_failed_line_resubmitted_draws_again(server: ServerThread) -> None:
    server.configure(faults={"rate_limit": 0.5})
    pending = lines(12)
    rounds = []
    while pending:
        assert len(rounds) < 12
        results = run_batch(server, pending)["results"]
        failed = {line["custom_id"] for line in results if line["error"] is not None}
        rounds.append(len(failed))
        pending = [r for r in pending if r["custom_id"] in failed]
    assert rounds[0] not in (0, 12)  # some lines failed the first time, not all
    assert rounds[-1] == 0


def test_a_non_strict_line_is_an_invalid_request_error(server: ServerThread) -> None:
    body = chat_body("x")
    body["response_format"]["json_schema"]["strict"] = False
    line = run_batch(server, [{"custom_id": "loose", "body": body}])["results"][0]
    assert line["response"] is None
    assert line["error"] == {
        "message": "response_format.json_schema.strict must be true",
        "param": None,
        "type": "invalid_request_error",
        "error_type": "invalid_request",
    }


# --------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize("outcome", ["expired", "failed", "cancelled"])
def test_other_outcomes_run_no_line(server: ServerThread, outcome: str) -> None:
    normal = create(server, lines(1, "before")).json["id"]
    server.configure(batch_outcome=outcome)
    batch = run_batch(server, lines(2))
    assert batch["status"] == outcome
    assert batch["results"] == []
    assert batch["request_counts"] == {"total": 2, "completed": 0, "failed": 0}
    assert batch["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": 0.0,
        "is_byok": False,
    }
    assert batch["finalized_at"] is not None
    expected_error = (
        {"message": "batch validation failed (the test server's batch_outcome is 'failed')"}
        if outcome == "failed"
        else None
    )
    assert batch["error"] == expected_error
    assert call(server, "GET", f"/v1/batches/{batch['id']}/results").json["data"] == []
    # a batch created before the change ends as it would have
    assert wait_terminal(server, normal)["status"] == "completed"


def test_a_data_uri_image_fails_the_batch_naming_the_line(server: ServerThread) -> None:
    def with_image(url: str) -> dict[str, Any]:
        body = chat_body("see the picture")
        body["messages"][1]["content"] = [
            {"type": "text", "text": "see the picture"},
            {"type": "image_url", "image_url": {"url": url}},
        ]
        return body

    requests = [
        {"custom_id": "by-url", "body": with_image("https://example.com/a.png")},
        {"custom_id": "inline", "body": with_image("data:image/png;base64,iVBORw0KGgo=")},
        {"custom_id": "inline-2", "body": with_image("data:image/png;base64,AAAA")},
    ]
    reply = create(server, requests)
    assert reply.status == 202
    batch = wait_terminal(server, reply.json["id"])
    assert batch["status"] == "failed"
    assert batch["error"] == {
        "message": "request 'inline': images must be public http(s) URLs; "
        "base64 data: URIs are not supported in batches"
    }
    assert run_batch(server, requests[:1])["status"] == "completed"


# --------------------------------------------------------------------------- lost creates


def test_a_dropped_create_is_stored_and_listed(server: ServerThread) -> None:
    server.configure(batch_create_drop=True)
    with pytest.raises(http.client.RemoteDisconnected):
        create(server, lines(3))
    server.configure(batch_create_drop=False)
    listed = call(server, "GET", "/v1/batches").json["data"]
    assert [b["request_counts"]["total"] for b in listed] == [3]
    assert wait_terminal(server, listed[0]["id"])["status"] == "completed"
    assert server.stats()["batches"]["lines_submitted"] == 3


def test_a_slow_create_is_stored_before_it_is_answered(server: ServerThread) -> None:
    server.configure(batch_create_latency_ms=400)
    body = {"endpoint": CHAT, "model": MODEL, "requests": lines(2)}
    with pytest.raises(socket.timeout):
        call(server, "POST", "/v1/batches", body, timeout=0.1)
    listed = call(server, "GET", "/v1/batches").json["data"]
    assert [b["request_counts"]["total"] for b in listed] == [2]


# --------------------------------------------------------------------------- /beta, delete


def test_beta_base_path_has_create_and_get_with_results_on_completed(
    server: ServerThread,
) -> None:
    reply = create(server, lines(2), base="/beta")
    assert (reply.status, reply.json["status"]) == (202, "validating")
    batch = wait_terminal(server, reply.json["id"], base="/beta")
    assert batch["status"] == "completed"
    assert [line["custom_id"] for line in batch["results"]] == ["row-0", "row-1"]
    # the same batch through v1
    assert call(server, "GET", f"/v1/batches/{batch['id']}").json == batch

    server.configure(batch_outcome="expired")
    expired = wait_terminal(server, create(server, lines(1), base="/beta").json["id"], "/beta")
    assert (expired["status"], expired["results"]) == ("expired", None)
    assert call(server, "GET", f"/v1/batches/{expired['id']}").json["results"] == []
    assert call(server, "GET", "/beta/batches").status == 405
    assert call(server, "GET", f"/beta/batches/{batch['id']}/results").status == 404


def test_delete_only_terminal_batches(server: ServerThread) -> None:
    server.configure(batch_step_s=30)
    slow = create(server, lines(1)).json["id"]
    reply = call(server, "DELETE", f"/v1/batches/{slow}")
    assert (reply.status, reply.json) == (
        409,
        error(409, f"batch {slow} is validating; only a terminal batch is deleted"),
    )
    server.configure(batch_step_s=STEP_S)
    done = run_batch(server, lines(1, "done"))["id"]
    reply = call(server, "DELETE", f"/v1/batches/{done}")
    assert (reply.status, reply.json) == (200, {"id": done, "object": "batch", "deleted": True})
    gone = error(404, f"No batch found with id {done!r}")
    for method, path in [
        ("GET", f"/v1/batches/{done}"),
        ("GET", f"/v1/batches/{done}/results"),
        ("DELETE", f"/v1/batches/{done}"),
    ]:
        reply = call(server, method, path)
        assert (reply.status, reply.json) == (404, gone)
    assert [b["id"] for b in call(server, "GET", "/v1/batches").json["data"]] == [slow]
    # paging on from a deleted batch still works
    assert call(server, "GET", "/v1/batches", query={"after": done}).json["data"][0]["id"] == slow
    assert server.stats()["batches"]["deleted"] == 1


# --------------------------------------------------------------------------- stats, reset, CLI


def test_stats_count_batches_and_resubmissions(server: ServerThread) -> None:
    first = lines(3)
    run_batch(server, first)
    run_batch(server, first[:1])  # row-0 again, same custom_id and body
    server.configure(batch_outcome="expired")
    run_batch(server, first[1:])  # expired: not a second submission of row-1 and row-2
    server.configure(batch_outcome="failed")
    run_batch(server, first[1:])  # failed: not counted either
    server.configure(batch_outcome="completed", batch_step_s=30)
    create(server, [{"custom_id": "late", "body": first[2]["body"]}])  # still running: counts
    create(server, [{"custom_id": "x", "body": {}, "extra": 1}])  # refused: not counted

    batches = server.stats()["batches"]
    assert {k: v for k, v in batches.items() if k not in ("usage", "faults")} == {
        "created": 5,
        "deleted": 0,
        "by_status": {"completed": 2, "expired": 1, "failed": 1, "validating": 1},
        "status_counts": batches["status_counts"],
        "lines_submitted": 3 + 1 + 2 + 2 + 1,
        "lines_completed": 3 + 1,
        "lines_failed": 0,
        "max_submissions_per_body": 2,
        # row-0 (twice completed) and row-2 (completed, then "late")
        "bodies_submitted_more_than_once": 2,
        # row-0 twice; row-1 and row-2 in the first and the expired batch
        "custom_ids_submitted_more_than_once": 3,
    }
    assert batches["status_counts"]["202"] == 5
    assert batches["status_counts"]["400"] == 1

    assert call(server, "POST", "/reset").status == 200
    assert server.stats()["batches"]["created"] == 0
    assert call(server, "GET", "/v1/batches").json["data"] == []


def test_unknown_batch_is_404(server: ServerThread) -> None:
    reply = call(server, "GET", "/v1/batches/batch_nope")
    assert (reply.status, reply.json) == (404, error(404, "No batch found with id 'batch_nope'"))


def test_config_checks_and_command_line_flags() -> None:
    with pytest.raises(ValueError, match="batch_outcome 'lost' is not one of"):
        ServerConfig(batch_outcome="lost")
    with pytest.raises(ValueError, match="batch_step_s and batch_create_latency_ms"):
        ServerConfig(batch_step_s=-1)
    config = ServerConfig(
        batch_step_s=0.0,
        batch_outcome="cancelled",
        batch_max_requests=7,
        batch_max_bytes=123456,
        batch_require_batch_slug=True,
        batch_create_latency_ms=1.5,
    )
    args = config_args(config)
    for flag, value in [
        ("--batch-step-s", "0.0"),
        ("--batch-outcome", "cancelled"),
        ("--batch-max-requests", "7"),
        ("--batch-max-bytes", "123456"),
        ("--batch-create-latency-ms", "1.5"),
    ]:
        assert args[args.index(flag) + 1] == value
    assert "--batch-require-batch-slug" in args and "--batch-create-drop" not in args

    proc, base_url = start_subprocess(config)
    try:
        root = urllib.parse.urlsplit(base_url)
        conn = http.client.HTTPConnection(root.hostname or "", root.port, timeout=10)
        body = {"endpoint": CHAT, "model": f"{MODEL}:batch", "requests": lines(1)}
        conn.request("POST", "/v1/batches", json.dumps(body))
        created = json.loads(conn.getresponse().read())
        conn.request("GET", f"/v1/batches/{created['id']}")
        assert json.loads(conn.getresponse().read())["status"] == "cancelled"
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()
