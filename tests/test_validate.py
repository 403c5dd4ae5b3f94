from __future__ import annotations

import pytest
from pydantic import BaseModel

from extract.errors import InvalidOutput, MalformedOutput, Refusal, TruncatedOutput
from extract.schema import compile_schema
from extract.transport.base import Completion, Usage
from extract.validate import parse_completion


class Item(BaseModel):
    name: str
    qty: int
    tags: dict[str, str]


COMPILED = compile_schema(Item)


def reply(content: str | None, finish: str = "stop", **kw: object) -> Completion:
    return Completion(content=content, reasoning=kw.get("reasoning"),  # type: ignore[arg-type]
                      reasoning_details=None, refusal=kw.get("refusal"),  # type: ignore[arg-type]
                      finish_reason=finish, provider="p", model="m", usage=Usage(), latency_ms=1)


GOOD = '{"name": "a", "qty": 2, "tags": [{"key": "k", "value": "v"}]}'
WANT = Item(name="a", qty=2, tags={"k": "v"})


@pytest.mark.parametrize("content", [
    GOOD,
    f"```json\n{GOOD}\n```",
    f"Here is the JSON you asked for: {GOOD} Hope this helps!",
])
def test_json_fenced_or_in_prose(content: str) -> None:
    assert parse_completion(reply(content), COMPILED) == WANT


def test_schema_invalid_lists_every_error() -> None:
    with pytest.raises(InvalidOutput) as e:
        parse_completion(reply('{"name": 1, "tags": []}'), COMPILED)
    assert e.value.errors == ["name: Input should be a valid string", "qty: Field required"]
    assert e.value.raw == '{"name": 1, "tags": []}'


def test_truncated_empty_refused_and_broken() -> None:
    with pytest.raises(TruncatedOutput, match="cut off at max_tokens"):
        parse_completion(reply('{"name": "a", "qty', finish="length"), COMPILED)
    with pytest.raises(TruncatedOutput, match="only reasoning"):
        parse_completion(reply("", reasoning="thinking..."), COMPILED)
    with pytest.raises(Refusal, match="the model refused: no"):
        parse_completion(reply(None, refusal="no"), COMPILED)
    with pytest.raises(MalformedOutput, match="the answer is not JSON"):
        parse_completion(reply('{"name": "a", "qty": 2,'), COMPILED)
    with pytest.raises(MalformedOutput, match="the answer is empty"):
        parse_completion(reply("  "), COMPILED)
    # validated in JSON mode, as the answer is JSON
    with pytest.raises(InvalidOutput, match=r"\(root\): Input should be an object"):
        parse_completion(reply("[1, 2]"), COMPILED)
