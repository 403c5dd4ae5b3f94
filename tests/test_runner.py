"""The row loop in-process: `run_pipeline(..., transport=FakeTransport(handler))`.

No endpoint is started and no socket is opened: a handler answers each request body, the fake
records every body it was sent, and the assertions read the real DuckDB output.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

import extract
from extract.results import RunSummary
from extract.schema import compile_schema, load_model
from extract.transport.fake import FakeTransport, Reply, chat_reply

SCHEMA = """\
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int
"""

PIPELINE = """\
name: t
source: {type: python, key: id}
schema: m.py:Person
prompt:
  system: Extract.
  user: "Row {id}: {text}"
model: {provider: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: null, seed: 7,
        max_tokens: 100}
run: {concurrency: 4, max_attempts: 3, max_retries: 2, backoff_s: 0.001, batch_size: 5}
output: {type: duckdb, path: out/r.duckdb, table: people}
"""

MAX_ATTEMPTS = 3
PEG = "does not match the expected peg-native format"
PEG_BODY = {"error": {"message": PEG}}
#: what the fake hands the parser for PEG_BODY, as the row's error keeps it
PEG_TEXT = orjson.dumps(PEG_BODY).decode()

Request = dict[str, Any]
Overrides = dict[str, Any] | None


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(SCHEMA)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    return path


def people(n: int, **changed: str) -> list[dict[str, Any]]:
    """Rows 1..n with text `person i`, or the text given as `changed[f"r{i}"]`."""
    return [{"id": i, "text": changed.get(f"r{i}", f"person {i}")} for i in range(1, n + 1)]


def first_turn(row: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Extract."},
        {"role": "user", "content": f"Row {row['id']}: {row['text']}"},
    ]


def row_of(request: Request) -> tuple[int, str]:
    """(id, text) of the row a request is about, read back from its rendered user message."""
    head, _, text = request["messages"][1]["content"].partition(": ")
    return int(head.removeprefix("Row ")), text


def answer_for(request: Request) -> str:
    """The valid answer for a request's row: its text as the name, its id as the age."""
    key, text = row_of(request)
    return json.dumps({"name": text, "age": key})


def valid(request: Request) -> Reply:
    return chat_reply(answer_for(request))


def go(
    path: Path,
    rows: list[dict[str, Any]],
    handler: Any,
    overrides: Overrides = None,
    **kwargs: Any,
) -> tuple[RunSummary, FakeTransport]:
    """Run the pipeline over `rows`, answered by `handler`; every request sent is counted."""
    transport = FakeTransport(handler)
    summary = extract.run_pipeline(path, overrides, rows, transport=transport, **kwargs)
    assert summary.requests == len(transport.requests)
    return summary, transport


def read(path: Path, table: str) -> list[dict[str, Any]]:
    """Every row of `table` in the pipeline's output, ordered by key."""
    con = duckdb.connect(str(path.parent / "out/r.duckdb"), read_only=True)
    try:
        cur = con.execute(f'SELECT * FROM "{table}" ORDER BY id')
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def runs(path: Path) -> list[dict[str, Any]]:
    con = duckdb.connect(str(path.parent / "out/r.duckdb"), read_only=True)
    try:
        cur = con.execute("SELECT * FROM _extract_runs ORDER BY started_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def response_format(path: Path) -> dict[str, Any]:
    return compile_schema(load_model("m.py:Person", path.parent)).response_format


def schema_problem(*details: str) -> str:
    return (
        "Your answer was not valid for the required JSON schema:\n- "
        + "\n- ".join(details)
        + "\nReply with only the corrected JSON object."
    )


TRUNCATED_PROBLEM = (
    "Your answer was cut off before it was complete. Reply again with only the JSON "
    "object, complete and concise."
)


# 1. the first request of a row


def test_first_request_body_is_exact_and_openai_sends_no_provider(pipeline: Path) -> None:
    rows = people(1)
    summary, transport = go(pipeline, rows, valid)
    assert transport.requests == [
        {
            "model": "qwen/qwen3.5-27b",
            "response_format": response_format(pipeline),
            "seed": 7,
            "temperature": 0,
            "max_tokens": 100,
            "messages": first_turn(rows[0]),
        }
    ]
    assert "provider" not in transport.requests[0]
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (1, 0, 1)
    [row] = read(pipeline, "people")
    assert {k: row[k] for k in ("id", "name", "age", "_status", "_seed", "_model")} == {
        "id": 1,
        "name": "person 1",
        "age": 1,
        "_status": "ok",
        "_seed": 7,
        "_model": "fake-model",
    }
    assert (row["_provider"], row["_finish_reason"], row["_attempts"], row["_requests"]) == (
        "fake",
        "stop",
        1,
        1,
    )
    assert read(pipeline, "people_errors") == []


def test_openrouter_requires_parameters(pipeline: Path) -> None:
    rows = people(1)
    _, transport = go(pipeline, rows, valid, overrides={"model.provider": "openrouter"})
    assert transport.requests == [
        {
            "model": "qwen/qwen3.5-27b",
            "response_format": response_format(pipeline),
            "seed": 7,
            "temperature": 0,
            "max_tokens": 100,
            "provider": {"require_parameters": True},
            "messages": first_turn(rows[0]),
        }
    ]


def test_rows_from_python_are_read(pipeline: Path) -> None:
    rows = people(3)
    jsonl = pipeline.parent / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from_jsonl = FakeTransport(valid)
    extract.run_pipeline(
        pipeline, {"source.type": "jsonl", "source.path": str(jsonl)}, transport=from_jsonl
    )
    transport = FakeTransport(valid)
    summary = extract.run_pipeline(pipeline, source=rows, transport=transport, full_refresh=True)
    assert sorted(map(orjson.dumps, transport.requests)) == sorted(
        map(orjson.dumps, from_jsonl.requests)
    )
    assert (summary.rows_ok, summary.requests) == (3, 3)


def test_every_row_gets_its_own_answer(pipeline: Path) -> None:
    rows = people(12)
    summary, transport = go(pipeline, rows, valid)
    assert sorted(row_of(r) for r in transport.requests) == [(r["id"], r["text"]) for r in rows]
    assert (summary.rows_total, summary.rows_ok, summary.requests) == (12, 12, 12)
    assert [(r["id"], r["name"], r["age"]) for r in read(pipeline, "people")] == [
        (i, f"person {i}", i) for i in range(1, 13)
    ]


# 2. re-ask after unusable content


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("not json at all", schema_problem("the answer is not JSON")),
        ('{"name": 5, "age": 1}', schema_problem("name: Input should be a valid string")),
        ('{"name": "x"}', schema_problem("age: Field required")),
    ],
    ids=["malformed", "wrong-type", "missing-field"],
)
def test_reask_after_unusable_answer(pipeline: Path, bad: str, problem: str) -> None:
    rows = people(1)

    def handler(request: Request) -> Reply:
        return valid(request) if len(request["messages"]) > 2 else chat_reply(bad)

    summary, transport = go(pipeline, rows, handler)
    assert len(transport.requests) == 2
    first, second = transport.requests
    assert first["messages"] == first_turn(rows[0])
    assert second["messages"] == [
        *first_turn(rows[0]),
        {"role": "assistant", "content": bad},
        {"role": "user", "content": problem},
    ]
    # only the messages change
    assert {k: v for k, v in second.items() if k != "messages"} == {
        k: v for k, v in first.items() if k != "messages"
    }
    [row] = read(pipeline, "people")
    assert (row["name"], row["age"], row["_attempts"], row["_requests"]) == ("person 1", 1, 2, 2)
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (1, 0, 2)
    assert read(pipeline, "people_errors") == []


# 3. truncation


def test_truncated_answer_doubles_max_tokens(pipeline: Path) -> None:
    rows = people(1)
    cut = '{"name": "per'

    def handler(request: Request) -> Reply:
        if len(request["messages"]) > 2:
            return valid(request)
        return chat_reply(cut, finish_reason="length")

    summary, transport = go(pipeline, rows, handler)
    first, second = transport.requests
    assert (first["max_tokens"], second["max_tokens"]) == (100, 200)
    assert second["messages"] == [
        *first_turn(rows[0]),
        {"role": "assistant", "content": cut},
        {"role": "user", "content": TRUNCATED_PROBLEM},
    ]
    [row] = read(pipeline, "people")
    assert (row["_attempts"], row["_requests"], row["_finish_reason"]) == (2, 2, "stop")
    assert summary.rows_ok == 1


def test_truncation_keeps_doubling(pipeline: Path) -> None:
    rows = people(1)

    def handler(request: Request) -> Reply:
        return chat_reply('{"name": "p', finish_reason="length")

    summary, transport = go(pipeline, rows, handler)
    assert [r["max_tokens"] for r in transport.requests] == [100, 200, 400]
    [row] = read(pipeline, "people_errors")
    assert (row["_error_class"], row["_attempts"], row["_requests"]) == (
        "TruncatedOutput",
        MAX_ATTEMPTS,
        MAX_ATTEMPTS,
    )
    assert row["_message"] == "the answer was cut off at max_tokens"
    assert row["_finish_reason"] == "length"
    assert summary.rows_failed == 1


# 4. attempts run out


def test_attempts_run_out_row_lands_in_errors(pipeline: Path) -> None:
    rows = people(3)

    def handler(request: Request) -> Reply:
        key, _ = row_of(request)
        if key != 2:
            return valid(request)
        return chat_reply(json.dumps({"name": f"try {len(request['messages'])}", "age": "x"}))

    summary, transport = go(pipeline, rows, handler)
    mine = [r for r in transport.requests if row_of(r)[0] == 2]
    assert len(mine) == MAX_ATTEMPTS
    assert len(transport.requests) == MAX_ATTEMPTS + 2
    # every re-ask carries only the latest bad answer: the conversation stays bounded
    assert [len(r["messages"]) for r in mine] == [2, 4, 4]
    last = '{"name": "try 4", "age": "x"}'
    assert mine[2]["messages"][2] == {"role": "assistant", "content": last}
    [err] = read(pipeline, "people_errors")
    assert err["id"] == 2
    assert err["_error_class"] == "InvalidOutput"
    assert err["_attempts"] == MAX_ATTEMPTS
    assert err["_requests"] == MAX_ATTEMPTS
    assert err["_raw_output"] == last
    assert err["_message"] == (
        "the answer does not match the schema: age: Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    assert [r["id"] for r in read(pipeline, "people")] == [1, 3]
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (2, 1, 5)


# 5. the same failure twice for the identical request


REPEATING = [
    (Reply(status=500, body=PEG_BODY), f"HTTP 500: {PEG}"),
    (Reply(status=200, body=PEG_BODY), f"generation failed: {PEG}"),
]


@pytest.mark.parametrize("reply", [r for r, _ in REPEATING], ids=["http-500", "error-in-200"])
def test_repeated_failure_is_reasked_as_a_changed_request(pipeline: Path, reply: Reply) -> None:
    rows = people(1)

    def handler(request: Request) -> Reply:
        return reply if len(request["messages"]) == 2 else valid(request)

    summary, transport = go(pipeline, rows, handler)
    assert len(transport.requests) == 3
    first, again, changed = transport.requests
    assert first == again  # the identical body, twice, and never a third time
    assert first["messages"] == first_turn(rows[0])
    note = (
        f"Attempt 1 to answer this failed on the server ({PEG_TEXT}). "
        "Reply with only the JSON object."
    )
    assert changed["messages"] == [*first_turn(rows[0]), {"role": "user", "content": note}]
    [row] = read(pipeline, "people")
    assert (row["name"], row["_attempts"], row["_requests"]) == ("person 1", 2, 3)
    assert read(pipeline, "people_errors") == []
    assert (summary.rows_ok, summary.requests) == (1, 3)


@pytest.mark.parametrize(("reply", "error_text"), REPEATING, ids=["http-500", "error-in-200"])
def test_persistent_repeated_failure_ends_in_errors(
    pipeline: Path, reply: Reply, error_text: str
) -> None:
    rows = people(1)
    summary, transport = go(pipeline, rows, lambda request: reply)
    assert len(transport.requests) == 2 * MAX_ATTEMPTS
    # each attempt sends its body twice, then a re-ask changes it
    assert transport.requests[0] == transport.requests[1]
    assert transport.requests[1] != transport.requests[2]
    assert transport.requests[2] == transport.requests[3]
    [err] = read(pipeline, "people_errors")
    assert err["_error_class"] == "RepeatedFailure"
    assert err["_attempts"] == MAX_ATTEMPTS
    assert err["_requests"] == 2 * MAX_ATTEMPTS
    assert err["_message"] == f"the same failure twice for the identical request: {error_text}"
    assert err["_raw_output"] == PEG_TEXT
    assert read(pipeline, "people") == []
    assert (summary.rows_failed, summary.requests) == (1, 2 * MAX_ATTEMPTS)


def test_persistent_repeated_failure_never_sends_a_body_a_third_time(pipeline: Path) -> None:
    rows = people(1)
    _, transport = go(pipeline, rows, lambda request: Reply(status=500, body=PEG_BODY))
    sent = Counter(orjson.dumps(r) for r in transport.requests)
    assert max(sent.values()) == 2


# 6. skip, cache, full refresh


def test_skip_cache_and_full_refresh(pipeline: Path) -> None:
    n = 5
    rows = people(n)
    summary, transport = go(pipeline, rows, valid)
    assert (summary.rows_ok, summary.requests) == (n, n)

    # the same rows again: all done already
    summary, transport = go(pipeline, rows, valid)
    assert transport.requests == []
    assert (summary.rows_skipped, summary.rows_ok, summary.rows_cached) == (n, 0, 0)

    # one row's text changed: exactly that row is requested
    summary, transport = go(pipeline, people(n, r3="changed"), valid)
    assert [row_of(r) for r in transport.requests] == [(3, "changed")]
    assert (summary.rows_skipped, summary.rows_ok, summary.rows_cached) == (n - 1, 1, 0)
    assert read(pipeline, "people")[2]["name"] == "changed"

    # changed back: the earlier answer comes from the cache, nothing is sent
    summary, transport = go(pipeline, rows, valid)
    assert transport.requests == []
    assert (summary.rows_skipped, summary.rows_ok, summary.rows_cached) == (n - 1, 0, 1)
    table = read(pipeline, "people")
    assert [(r["id"], r["name"]) for r in table] == [(i, f"person {i}") for i in range(1, n + 1)]

    # full refresh: every row requested again, replaced rather than duplicated
    summary, transport = go(pipeline, rows, valid, full_refresh=True)
    assert sorted(row_of(r)[0] for r in transport.requests) == list(range(1, n + 1))
    assert (summary.rows_skipped, summary.rows_ok, summary.rows_cached) == (0, n, 0)
    assert len(read(pipeline, "people")) == n
    assert [r["requests"] for r in runs(pipeline)] == [n, 0, 1, 0, n]


def test_cache_look_ups_gathered_over_batches_answer_every_row_once(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # batches of 3 rows, the cache read for 4 rows at a time: rows wait across batches for
    # their look-up, and the last ones at the end of the input
    import extract.pipeline
    import extract.runner.loop

    monkeypatch.setattr(extract.pipeline, "READ_BATCH", 3)
    monkeypatch.setattr(extract.runner.loop, "DEFERRED_ROWS", 4)
    n = 11
    changed = {f"r{i}": f"changed {i}" for i in range(1, n + 1)}
    go(pipeline, people(n), valid)
    go(pipeline, people(n, **changed), valid)
    # every text back as it was: each answer is in the cache; rows 2 and 7 changed again
    again = {"r2": "new 2", "r7": "new 7"}
    summary, transport = go(pipeline, people(n, **again), valid)
    assert sorted(row_of(r) for r in transport.requests) == [(2, "new 2"), (7, "new 7")]
    assert (summary.rows_cached, summary.rows_ok, summary.rows_skipped) == (n - 2, 2, 0)
    expected = {i: again.get(f"r{i}", f"person {i}") for i in range(1, n + 1)}
    assert {r["id"]: r["name"] for r in read(pipeline, "people")} == expected


def test_failed_rows_are_skipped_until_retry_errors(pipeline: Path) -> None:
    rows = people(3)

    def flaky(request: Request) -> Reply:
        return chat_reply("nope") if row_of(request)[0] == 2 else valid(request)

    summary, transport = go(pipeline, rows, flaky)
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (2, 1, 2 + MAX_ATTEMPTS)

    summary, transport = go(pipeline, rows, valid)
    assert transport.requests == []
    assert (summary.rows_skipped, summary.rows_failed_before) == (3, 1)

    summary, transport = go(pipeline, rows, valid, retry_errors=True)
    assert [row_of(r)[0] for r in transport.requests] == [2]
    assert (summary.rows_skipped, summary.rows_ok) == (2, 1)
    assert [r["id"] for r in read(pipeline, "people")] == [1, 2, 3]
    assert read(pipeline, "people_errors") == []


# 7. 401 and 400


def test_401_stops_the_run_and_keeps_finished_rows(pipeline: Path) -> None:
    rows = people(5)

    def handler(request: Request) -> Reply:
        if row_of(request)[0] == 3:
            return Reply(status=401, body={"error": {"message": "invalid key"}})
        return valid(request)

    transport = FakeTransport(handler)
    with pytest.raises(extract.RunStopped, match=r"^HTTP 401: invalid key$"):
        extract.run_pipeline(pipeline, {"run.concurrency": 1}, rows, transport=transport)
    # one row at a time: rows 1 and 2 finished, row 3 stopped the run, 4 and 5 never sent
    assert [row_of(r)[0] for r in transport.requests] == [1, 2, 3]
    assert [(r["id"], r["name"]) for r in read(pipeline, "people")] == [
        (1, "person 1"),
        (2, "person 2"),
    ]
    assert read(pipeline, "people_errors") == []
    [run] = runs(pipeline)
    assert (run["status"], run["stop_reason"]) == ("stopped", "HTTP 401: invalid key")
    assert (run["rows_ok"], run["rows_failed"], run["rows_not_processed"]) == (2, 0, 3)

    # the next run does what is left
    summary, transport = go(pipeline, rows, valid)
    assert sorted(row_of(r)[0] for r in transport.requests) == [3, 4, 5]
    assert (summary.rows_skipped, summary.rows_ok) == (2, 3)


def test_401_run_record_counts_every_request_sent(pipeline: Path) -> None:
    rows = people(5)

    def handler(request: Request) -> Reply:
        if row_of(request)[0] == 3:
            return Reply(status=401, body={"error": {"message": "invalid key"}})
        return valid(request)

    transport = FakeTransport(handler)
    with pytest.raises(extract.RunStopped):
        extract.run_pipeline(pipeline, {"run.concurrency": 1}, rows, transport=transport)
    [run] = runs(pipeline)
    assert run["requests"] == len(transport.requests) == 3


def test_400_puts_the_row_in_errors_as_rejected(pipeline: Path) -> None:
    rows = people(3)
    body = {"error": {"message": "response_format is not supported"}}

    def handler(request: Request) -> Reply:
        return Reply(status=400, body=body) if row_of(request)[0] == 2 else valid(request)

    summary, transport = go(pipeline, rows, handler)
    assert sorted(row_of(r)[0] for r in transport.requests) == [1, 2, 3]  # 400: not retried
    [err] = read(pipeline, "people_errors")
    assert err["id"] == 2
    assert err["_error_class"] == "RowRejected"
    assert err["_message"] == "HTTP 400: response_format is not supported"
    assert err["_raw_output"] == orjson.dumps(body).decode()
    assert (err["_attempts"], err["_requests"]) == (1, 1)
    assert [r["id"] for r in read(pipeline, "people")] == [1, 3]
    assert (summary.rows_ok, summary.rows_failed, summary.requests) == (2, 1, 3)


# 8. transient failures


@pytest.mark.parametrize("status", [503, 429])
def test_transient_failure_then_success_is_retried(pipeline: Path, status: int) -> None:
    rows = people(1)
    seen: list[int] = []

    def handler(request: Request) -> Reply:
        seen.append(1)
        if len(seen) == 1:
            return Reply(
                status=status, body={"error": {"message": "busy"}}, headers={"Retry-After": "0"}
            )
        return valid(request)

    summary, transport = go(pipeline, rows, handler)
    assert len(transport.requests) == 2
    assert transport.requests[0] == transport.requests[1]  # a retry is the identical request
    [row] = read(pipeline, "people")
    assert (row["name"], row["_attempts"], row["_requests"]) == ("person 1", 1, 2)
    assert (summary.rows_ok, summary.requests) == (1, 2)


def test_503_every_time_exhausts_the_retries(pipeline: Path) -> None:
    rows = people(1)
    summary, transport = go(
        pipeline, rows, lambda request: Reply(status=503, body={"error": {"message": "down"}})
    )
    # 503 is availability, never a RepeatedFailure: one attempt, 1 + max_retries requests
    assert len(transport.requests) == 3
    [err] = read(pipeline, "people_errors")
    assert (err["_error_class"], err["_message"]) == ("ServerError", "HTTP 503: down")
    assert (err["_attempts"], err["_requests"]) == (1, 3)
    assert summary.rows_failed == 1
