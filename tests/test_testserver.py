from __future__ import annotations

import asyncio
import http.client
import json
import signal
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import jsonschema
import pytest

from extract.providers.testserver import (
    FAULT_CLASSES,
    ServerConfig,
    ServerThread,
    parse_faults,
    schema_problem,
    start_subprocess,
    usage_cost,
)
from extract.providers.testserver.fakegen import answer_seed, expected_answer

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 120}, {"type": "null"}]},
        "status": {"enum": ["new", "active"]},
        "address": {"$ref": "#/$defs/Address"},
    },
    "required": ["name", "age", "status", "address"],
    "additionalProperties": False,
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "zip": {"type": "string", "pattern": r"^\d{5}$"},
            },
            "required": ["city", "zip"],
            "additionalProperties": False,
        }
    },
}


def request_body(
    text: str = "Ada Lovelace, 36", seed: int | None = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "model": "qwen/qwen3.5-27b",
        "messages": [
            {"role": "system", "content": "Extract the person."},
            {"role": "user", "content": text},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Person", "strict": True, "schema": SCHEMA},
        },
        "seed": seed,
        **extra,
    }


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, data: bytes) -> None:
        self.status = status
        self.headers = headers
        self.json: Any = json.loads(data)

    @property
    def content(self) -> Any:
        return self.json["choices"][0]["message"]["content"]


def call(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    url = urllib.parse.urlsplit(base_url)
    assert url.hostname is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(
            method,
            url.path + path,
            payload,
            {"Content-Type": "application/json", **(headers or {})},
        )
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def complete(server: ServerThread, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return call(server.base_url, "POST", "/chat/completions", body, headers)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as srv:
        yield srv


@pytest.fixture(autouse=True)
def clean(server: ServerThread) -> Iterator[None]:
    server.configure(
        faults={}, latency_ms=0, jitter_ms=0, api_key=None, retry_after="0", seed=0, logprobs=True
    )
    server.reset()
    yield


def test_reply_has_the_openrouter_shape_and_the_expected_answer(server: ServerThread) -> None:
    body = request_body()
    reply = complete(server, body)
    assert reply.status == 200
    answer = expected_answer(body)
    jsonschema.validate(answer, SCHEMA)
    content = json.dumps(answer)
    prompt_tokens = (len("Extract the person.") + len("Ada Lovelace, 36") + 3) // 4
    completion_tokens = (len(content) + 3) // 4
    data = reply.json
    assert reply.headers["X-Generation-Id"] == data["id"]
    assert data["id"].startswith("gen-")
    assert isinstance(data["created"], int)
    assert {k: v for k, v in data.items() if k not in ("id", "created")} == {
        "provider": "fake",
        "model": "qwen/qwen3.5-27b",
        "object": "chat.completion",
        "system_fingerprint": "fp_extract_test",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "reasoning": None,
                    "refusal": None,
                },
                "finish_reason": "stop",
                "native_finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": usage_cost(prompt_tokens, completion_tokens),
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert usage_cost(1_000_000, 1_000_000) == pytest.approx(0.195 + 1.56)


def test_logprobs_spell_the_answer_and_are_the_same_each_time(server: ServerThread) -> None:
    body = {**request_body(), "logprobs": True, "top_logprobs": 3}
    data = complete(server, body).json
    choice = data["choices"][0]
    tokens = choice["logprobs"]["content"]
    content = choice["message"]["content"].encode()
    assert b"".join(bytes(t["bytes"]) for t in tokens) == content
    assert all(-2 <= t["logprob"] < 0 for t in tokens)
    for t in tokens:
        top = t["top_logprobs"]
        assert len(top) == 3 and top[0]["bytes"] == t["bytes"]
        assert all(alt["logprob"] < t["logprob"] for alt in top[1:])
    assert complete(server, body).json["choices"][0]["logprobs"] == choice["logprobs"]
    # not asked for, or a server configured as a provider that ignores it: no logprobs
    assert "logprobs" not in complete(server, request_body()).json["choices"][0]
    server.configure(logprobs=False)
    assert "logprobs" not in complete(server, body).json["choices"][0]


def test_same_request_same_answer_other_seed_other_answer(server: ServerThread) -> None:
    first = complete(server, request_body(seed=1)).content
    assert complete(server, request_body(seed=1)).content == first
    others = {complete(server, request_body(seed=s)).content for s in (2, 3, 4)}
    assert first not in others


def test_reask_turns_get_the_same_answer(server: ServerThread) -> None:
    body = request_body()
    reask = dict(body)
    reask["messages"] = [
        *body["messages"],
        {"role": "assistant", "content": "{}"},
        {"role": "user", "content": "Field required: name"},
    ]
    assert complete(server, reask).content == json.dumps(expected_answer(body))
    row = answer_seed(body["messages"], 1).hex()
    assert server.stats()["requests_by_row"] == {row: 1}


def test_no_response_format_answers_an_empty_object(server: ServerThread) -> None:
    body = request_body()
    del body["response_format"]
    assert complete(server, body).content == "{}"


def test_api_key_is_required_when_configured(server: ServerThread) -> None:
    server.configure(api_key="sk-test")
    missing = complete(server, request_body())
    assert missing.status == 401
    assert missing.json == {"error": {"code": 401, "message": "No auth credentials found"}}
    wrong = complete(server, request_body(), {"Authorization": "Bearer nope"})
    assert wrong.status == 401
    right = complete(server, request_body(), {"Authorization": "Bearer sk-test"})
    assert right.status == 200


def _with_schema(schema: dict[str, Any], strict: Any = True) -> dict[str, Any]:
    body = request_body()
    body["response_format"]["json_schema"] = {"name": "X", "strict": strict, "schema": schema}
    return body


@pytest.mark.parametrize(
    ("schema", "strict", "message"),
    [
        (SCHEMA, False, "response_format.json_schema.strict must be true"),
        (
            {"anyOf": [SCHEMA, {"type": "null"}]},
            True,
            "Invalid schema for response_format: "
            "root schema must be of type object (not anyOf or another type)",
        ),
        (
            {**SCHEMA, "additionalProperties": True},
            True,
            "Invalid schema for response_format: #: object must set additionalProperties to false",
        ),
        (
            {**SCHEMA, "required": ["name"]},
            True,
            "Invalid schema for response_format: "
            "#: properties age, status, address missing from required",
        ),
    ],
    ids=["not-strict", "root-anyof", "open-object", "optional-property"],
)
def test_non_strict_schema_is_400(
    server: ServerThread, schema: dict[str, Any], strict: Any, message: str
) -> None:
    reply = complete(server, _with_schema(schema, strict))
    assert reply.status == 400
    assert reply.json == {"error": {"code": 400, "message": message}}


def test_schema_problem_walks_defs_and_keywords() -> None:
    assert schema_problem(SCHEMA) is None
    nested = json.loads(json.dumps(SCHEMA))
    del nested["$defs"]["Address"]["additionalProperties"]
    assert schema_problem(nested) == (
        "#/$defs/Address: object must set additionalProperties to false"
    )
    one_of = {**SCHEMA, "properties": {**SCHEMA["properties"], "age": {"oneOf": []}}}
    assert schema_problem(one_of) == (
        "#/properties/age: keyword 'oneOf' is not allowed in strict mode"
    )


def _fault_reply(server: ServerThread, fault: str, **config: Any) -> Reply:
    server.configure(faults={fault: 1.0}, **config)
    return complete(server, request_body(max_tokens=300))


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ("rate_limit", 429),
        ("timeout", 408),
        ("bad_request", 400),
        ("forbidden", 403),
        ("payment", 402),
    ],
)
def test_http_error_faults(server: ServerThread, fault: str, status: int) -> None:
    reply = _fault_reply(server, fault)
    assert reply.status == status
    assert reply.json["error"]["code"] == status
    assert isinstance(reply.json["error"]["message"], str)
    assert server.stats()["faults"][fault] == 1


def test_rate_limit_sends_retry_after(server: ServerThread) -> None:
    assert _fault_reply(server, "rate_limit").headers["Retry-After"] == "0"
    reply = _fault_reply(server, "rate_limit", retry_after="7")
    assert reply.headers["Retry-After"] == "7"
    assert reply.json["error"]["metadata"]["provider_name"] == "fake"


def test_server_error_is_502_or_503(server: ServerThread) -> None:
    server.configure(faults={"server_error": 1.0})
    statuses = {complete(server, request_body(f"row {i}")).status for i in range(20)}
    assert statuses == {502, 503}


def test_drop_closes_the_connection_without_a_reply(server: ServerThread) -> None:
    server.configure(faults={"drop": 1.0})
    with pytest.raises(http.client.RemoteDisconnected):
        complete(server, request_body())

    async def with_aiohttp() -> None:
        async with aiohttp.ClientSession() as session:
            url = server.base_url + "/chat/completions"
            async with session.post(url, json=request_body()) as resp:
                await resp.read()

    with pytest.raises(aiohttp.ServerDisconnectedError):
        asyncio.run(with_aiohttp())
    assert server.stats()["faults"]["drop"] == 2


def test_upstream_error_is_a_200_with_an_error(server: ServerThread) -> None:
    reply = _fault_reply(server, "upstream_error")
    assert reply.status == 200
    assert reply.json["error"]["code"] == 502
    assert reply.json["choices"][0]["finish_reason"] == "error"


def _full() -> str:
    return json.dumps(expected_answer(request_body(max_tokens=300)))


def test_content_faults(server: ServerThread) -> None:
    full = _full()

    malformed = _fault_reply(server, "malformed")
    assert malformed.content == full[: len(full) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content)

    assert _fault_reply(server, "fenced").content == f"```json\n{full}\n```"

    prose = _fault_reply(server, "prose").content
    assert prose == f"Here is the extracted data:\n{full}\nLet me know if you need anything else."

    invalid = json.loads(_fault_reply(server, "invalid").content)
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        jsonschema.validate(invalid, SCHEMA)

    length = _fault_reply(server, "length").json["choices"][0]
    assert length["finish_reason"] == "length"
    assert full.startswith(length["message"]["content"])
    assert length["message"]["content"] != full


def test_reasoning_only_and_refusal(server: ServerThread) -> None:
    data = _fault_reply(server, "reasoning_only").json
    choice = data["choices"][0]
    assert choice["message"]["content"] == ""
    assert choice["message"]["reasoning"]
    assert choice["finish_reason"] == "length"
    assert data["usage"]["completion_tokens_details"] == {"reasoning_tokens": 300}

    choice = _fault_reply(server, "refusal").json["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["message"]["refusal"] == "I'm sorry, but I can't help with that request."
    assert choice["finish_reason"] == "stop"


def test_identical_retry_succeeds_eventually_and_deterministically(server: ServerThread) -> None:
    server.configure(faults={"server_error": 0.5})

    def attempts_until_ok(body: dict[str, Any]) -> list[int]:
        statuses: list[int] = []
        while not statuses or statuses[-1] != 200:
            statuses.append(complete(server, body).status)
            assert len(statuses) < 40
        return statuses

    runs = [attempts_until_ok(request_body(f"row {i}")) for i in range(12)]
    assert any(len(r) > 1 for r in runs)  # some rows needed retries
    assert any(len(r) == 1 for r in runs)  # some did not
    server.reset()
    assert [attempts_until_ok(request_body(f"row {i}")) for i in range(12)] == runs


def test_stats_count_exactly(server: ServerThread) -> None:
    server.configure(api_key="k")
    auth = {"Authorization": "Bearer k"}
    for _ in range(3):
        complete(server, request_body("row A"), auth)
    complete(server, request_body("row B"), auth)
    complete(server, request_body("row B"))  # 401
    complete(server, _with_schema(SCHEMA, strict=False), auth)  # 400
    server.configure(faults={"rate_limit": 1.0})
    complete(server, request_body("row B"), auth)  # 429

    stats = server.stats()
    row_a = answer_seed(request_body("row A")["messages"], 1).hex()
    row_b = answer_seed(request_body("row B")["messages"], 1).hex()
    row_c = answer_seed(request_body()["messages"], 1).hex()
    assert stats["total_requests"] == 7
    assert stats["status_counts"] == {"200": 4, "400": 1, "401": 1, "429": 1}
    assert stats["faults"] == {name: int(name == "rate_limit") for name in FAULT_CLASSES}
    assert stats["distinct_bodies"] == 3
    assert stats["requests_by_row"] == {row_a: 3, row_b: 2, row_c: 1}
    assert stats["usage"]["prompt_tokens"] == 4 * ((len("Extract the person.row A") + 3) // 4)
    assert call(server.base_url.removesuffix("/v1"), "GET", "/stats").json == stats

    assert call(server.base_url.removesuffix("/v1"), "POST", "/reset").status == 200
    assert server.stats()["total_requests"] == 0


def test_models_and_health(server: ServerThread) -> None:
    models = call(server.base_url, "GET", "/models")
    assert models.status == 200
    assert models.json["data"][0]["id"] == "qwen/qwen3.5-27b"
    health = call(server.base_url.removesuffix("/v1"), "GET", "/health")
    assert health.json == {"status": "ok"}


def test_latency_is_applied(server: ServerThread) -> None:
    server.configure(latency_ms=150, jitter_ms=20)
    start = time.perf_counter()
    assert complete(server, request_body()).status == 200
    assert 0.125 <= time.perf_counter() - start < 1.0


def test_parse_faults() -> None:
    assert parse_faults("rate_limit=0.1, server_error=0.05,") == {
        "rate_limit": 0.1,
        "server_error": 0.05,
    }
    assert parse_faults("") == {}
    with pytest.raises(ValueError, match="unknown fault class 'ratelimit'"):
        parse_faults("ratelimit=0.1")
    with pytest.raises(ValueError, match=r"add up to 1\.5"):
        parse_faults("drop=0.75,timeout=0.75")
    with pytest.raises(ValueError, match="unknown fault class nope"):
        ServerConfig(faults={"nope": 0.1})
    assert sum(ServerConfig(faults=dict.fromkeys(FAULT_CLASSES[:10], 0.1)).faults.values()) > 0.99


def test_subprocess_prints_its_url_and_stops_on_sigterm() -> None:
    proc, base_url = start_subprocess(ServerConfig(faults={"timeout": 1.0}, api_key="k"))
    try:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        reply = call(
            base_url, "POST", "/chat/completions", request_body(), {"Authorization": "Bearer k"}
        )
        assert reply.status == 408
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()
