"""Confidence and grounding through a whole run: what the runner asks for, what lands in the
trust columns, the re-ask of `run.require_grounding`, the cache and the journal.

In-process (`FakeTransport`): exact request bodies, the real DuckDB output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

import extract
from extract.errors import ConfigError
from extract.ledger.journal import Journal
from extract.results import RowResult
from extract.transport.fake import FakeTransport, Reply, chat_reply

SCHEMA = """\
from typing import Literal

from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int
    kind: Literal["human", "robot"]
    tags: list[str]
"""

PIPELINE = """\
name: t
source: {type: python, key: id}
schema: m.py:Person
prompt:
  user: "Row {id}: {text}"
model: {provider: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: null, seed: 7}
run: {concurrency: 2, max_attempts: 3, max_retries: 1, backoff_s: 0.001}
output: {type: duckdb, path: out/r.duckdb, table: people}
"""

ROWS = [
    {"id": 1, "text": "Anna Berg is 34 and a human; tags: red, blue"},
    {"id": 2, "text": "Unit R2 (robot), age 7; tags: metal"},
]


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(SCHEMA)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE)
    return path


def tokens_of(pieces: list[tuple[str, float]]) -> dict[str, Any]:
    """A `logprobs` object whose tokens are `pieces` (text, logprob), one runner-up each."""
    return {
        "content": [
            {
                "token": text,
                "bytes": list(text.encode()),
                "logprob": lp,
                "top_logprobs": [
                    {"token": text, "bytes": list(text.encode()), "logprob": lp},
                    {"token": "x", "bytes": [120], "logprob": math.log(0.05)},
                ],
            }
            for text, lp in pieces
        ]
    }


#: row 1's answer cut into tokens: each value is its own tokens, so its confidence is known
ANSWER_1 = [
    ('{"name": "', -0.01),
    ("Anna", math.log(0.9)),
    (" Berg", math.log(0.8)),
    ('", "age": ', -0.01),
    ("34", math.log(0.7)),
    (', "kind": "', -0.01),
    ("human", math.log(0.6)),
    ('", "tags": ["', -0.01),
    ("red", math.log(0.5)),
    ('", "', -0.01),
    ("blue", math.log(0.95)),
    ('"]}', -0.01),
]
ANSWER_2 = '{"name": "R2", "age": 7, "kind": "robot", "tags": ["metal"]}'


def handler(with_logprobs: bool = True) -> Any:
    def answer(request: dict[str, Any]) -> Reply:
        if "Row 1:" in request["messages"][-1]["content"]:
            content = "".join(t for t, _ in ANSWER_1)
            return chat_reply(content, logprobs=tokens_of(ANSWER_1) if with_logprobs else None)
        return chat_reply(
            ANSWER_2, logprobs=tokens_of([(ANSWER_2, -0.5)]) if with_logprobs else None
        )

    return answer


def read(path: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(path.parent / "out/r.duckdb"), read_only=True)
    try:
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def trust(path: Path) -> list[dict[str, Any]]:
    return read(
        path,
        "SELECT id, _confidence, _min_confidence, _margins, _grounding, _ungrounded "
        "FROM people ORDER BY id",
    )


def test_confidence_is_asked_for_and_mirrors_the_schema(pipeline: Path) -> None:
    transport = FakeTransport(handler())
    summary = extract.run_pipeline(pipeline, {"run.confidence": True}, ROWS, transport=transport)
    assert summary.rows_ok == 2 and summary.warnings == []
    body = transport.requests[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    row1, row2 = trust(pipeline)
    conf = row1["_confidence"]
    assert math.isclose(conf["name"], 0.9 * 0.8)
    assert math.isclose(conf["age"], 0.7)
    assert math.isclose(conf["kind"], 0.6)
    assert [round(x, 9) for x in conf["tags"]] == [0.5, 0.95]
    assert math.isclose(row1["_min_confidence"], 0.5)
    # the enum's margin: p(chosen) - p(runner-up) at its first token
    assert math.isclose(row1["_margins"]["kind"], 0.6 - 0.05)
    # row 2 is one token: every value has that token's probability
    assert math.isclose(row2["_confidence"]["age"], math.exp(-0.5))
    assert math.isclose(row2["_min_confidence"], math.exp(-0.5))


def test_no_logprobs_gives_nulls_and_says_so_once(pipeline: Path) -> None:
    summary = extract.run_pipeline(
        pipeline, {"run.confidence": True}, ROWS, transport=FakeTransport(handler(False))
    )
    assert summary.rows_ok == 2
    assert len(summary.warnings) == 1
    assert summary.warnings[0].startswith("run.confidence: 2 answer(s) came without usable token")
    for row in trust(pipeline):
        assert row["_confidence"] is None and row["_min_confidence"] is None


def test_without_run_confidence_nothing_is_asked(pipeline: Path) -> None:
    transport = FakeTransport(handler())
    extract.run_pipeline(pipeline, None, ROWS, transport=transport)
    assert "logprobs" not in transport.requests[0]
    assert all(r["_confidence"] is None for r in trust(pipeline))


def test_values_are_grounded_in_the_prompt_columns(pipeline: Path) -> None:
    extract.run_pipeline(pipeline, None, ROWS, transport=FakeTransport(handler()))
    row1, row2 = trust(pipeline)
    g = row1["_grounding"]
    text = ROWS[0]["text"]
    assert g["name"] == {"status": "exact", "column": "text", "start": 0, "end": 9}
    assert text[g["age"]["start"] : g["age"]["end"]] == "34"
    # enums are labels, not text: not grounded
    assert g["kind"] is None
    assert [text[t["start"] : t["end"]] for t in g["tags"]] == ["red", "blue"]
    assert row1["_ungrounded"] == 0
    assert row2["_grounding"]["name"]["status"] == "exact"


INVENTED = '{"name": "Zed Quux", "age": 34, "kind": "human", "tags": []}'
COPIED = '{"name": "Anna Berg", "age": 34, "kind": "human", "tags": []}'


def test_require_grounding_reasks_with_the_value_not_found(pipeline: Path) -> None:
    answers = iter([INVENTED, COPIED])
    transport = FakeTransport(lambda request: chat_reply(next(answers)))
    summary = extract.run_pipeline(
        pipeline, {"run.require_grounding": ["name"]}, ROWS[:1], transport=transport
    )
    assert summary.rows_ok == 1 and summary.requests == 2
    reask = transport.requests[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": INVENTED}
    assert reask[-1]["content"].startswith(
        "These values are not found in the input text:\n- name: 'Zed Quux'\n"
    )
    (row,) = read(pipeline, "SELECT name, _attempts, _ungrounded FROM people")
    assert row == {"name": "Anna Berg", "_attempts": 2, "_ungrounded": 0}


def test_require_grounding_records_or_flags_when_attempts_run_out(pipeline: Path) -> None:
    always = FakeTransport(lambda request: chat_reply(INVENTED))
    summary = extract.run_pipeline(
        pipeline, {"run.require_grounding": ["name"]}, ROWS[:1], transport=always
    )
    assert summary.rows_failed == 1 and summary.requests == 3
    (error,) = read(pipeline, "SELECT _error_class, _message, _raw_output FROM people_errors")
    assert error == {
        "_error_class": "Ungrounded",
        "_message": "not found in the input text: name = 'Zed Quux'",
        "_raw_output": INVENTED,
    }
    summary = extract.run_pipeline(
        pipeline,
        {"run.require_grounding": ["name"], "run.ungrounded": "flag"},
        ROWS[:1],
        transport=FakeTransport(lambda request: chat_reply(INVENTED)),
        retry_errors=True,
    )
    assert summary.rows_ok == 1
    (row,) = read(pipeline, "SELECT name, _ungrounded, _grounding.name AS g FROM people")
    assert row["name"] == "Zed Quux" and row["_ungrounded"] == 1
    assert row["g"] == {"status": "none", "column": None, "start": None, "end": None}
    assert read(pipeline, "SELECT count(*) AS n FROM people_errors") == [{"n": 0}]


@pytest.mark.parametrize(
    ("paths", "why"),
    [
        (["nmae"], "'nmae' is not a field"),
        (["kind"], "'kind' holds enum values, which are not looked for in the text"),
    ],
)
def test_require_grounding_names_real_text_fields(
    pipeline: Path, paths: list[str], why: str
) -> None:
    with pytest.raises(ConfigError) as e:
        extract.run_pipeline(
            pipeline, {"run.require_grounding": paths}, ROWS, transport=FakeTransport(handler())
        )
    assert str(e.value) == (
        f"{pipeline}:run.require_grounding: {why} of Person; fields that can be grounded: "
        "age, name, tags"
    )


def test_a_cached_answer_keeps_its_confidence_and_is_grounded_again(pipeline: Path) -> None:
    overrides = {"run.confidence": True}
    extract.run_pipeline(pipeline, overrides, ROWS, transport=FakeTransport(handler()))
    first = trust(pipeline)
    # another prompt replaces the rows; switching back is answered from the cache
    extract.run_pipeline(
        pipeline,
        {**overrides, "prompt.user": "Row {id}: {text}!"},
        ROWS,
        transport=FakeTransport(handler()),
    )
    transport = FakeTransport(handler())
    summary = extract.run_pipeline(pipeline, overrides, ROWS, transport=transport)
    assert summary.rows_cached == 2 and transport.requests == []
    assert trust(pipeline) == first


def test_the_journal_keeps_trust_fields(tmp_path: Path) -> None:
    from pydantic import BaseModel

    class M(BaseModel):
        name: str

    journal = Journal(tmp_path / "x.duckdb")
    result = RowResult(
        key=1,
        prompt_hash="p",
        request_hash="r",
        instance=M(name="a"),
        confidence={"name": 0.5},
        min_confidence=0.5,
        margins={},
        grounding={"name": {"status": "exact", "column": "text", "start": 0, "end": 1}},
        ungrounded=0,
    )
    journal.append(result)
    journal.sync()
    (back,) = journal.replay(M)
    journal.close()
    for name in ("confidence", "min_confidence", "margins", "grounding", "ungrounded"):
        assert getattr(back, name) == getattr(result, name)
    # a line journaled before trust fields existed still replays
    line = json.loads((tmp_path / "x.duckdb.journal.0").read_text())
    for name in ("confidence", "min_confidence", "margins", "grounding", "ungrounded"):
        del line[name]
    (tmp_path / "x.duckdb.journal.0").write_text(json.dumps(line) + "\n")
    (old,) = Journal(tmp_path / "x.duckdb").replay(M)
    assert old.instance == M(name="a") and old.confidence is None


def test_an_older_cache_table_gets_the_trust_column(pipeline: Path) -> None:
    extract.run_pipeline(pipeline, None, ROWS[:1], transport=FakeTransport(handler()))
    con = duckdb.connect(str(pipeline.parent / "out/r.duckdb"))
    # the cache as written before trust came in (and, so, before the later `parts`)
    con.execute("ALTER TABLE _extract_cache DROP COLUMN parts")
    con.execute("ALTER TABLE _extract_cache DROP COLUMN trust")
    con.close()
    summary = extract.run_pipeline(
        pipeline, {"run.confidence": True}, ROWS, transport=FakeTransport(handler())
    )
    assert summary.rows_ok == 2
    cached = read(pipeline, "SELECT count(*) AS n FROM _extract_cache WHERE trust IS NOT NULL")
    assert cached == [{"n": 2}]


def test_over_real_http_the_test_server_gives_confidence(
    pipeline: Path, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run through aiohttp against the project's test server on 127.0.0.1."""
    monkeypatch.setenv("TEST_KEY", "sk-test-secret")
    summary = extract.run_pipeline(
        pipeline,
        {"model.base_url": server.base_url, "model.api_key_env": "TEST_KEY",
         "run.confidence": True},
        ROWS,
    )  # fmt: skip
    assert summary.rows_ok == 2 and summary.warnings == []
    for row in trust(pipeline):
        leaves = [
            row["_confidence"]["name"],
            row["_confidence"]["age"],
            *row["_confidence"]["tags"],
        ]
        assert all(0 < p <= 1 for p in leaves)
        assert math.isclose(row["_min_confidence"], min([*leaves, row["_confidence"]["kind"]]))
        assert 0 <= row["_margins"]["kind"] <= 1
