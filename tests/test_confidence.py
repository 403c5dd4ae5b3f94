"""Per-value confidence from token log-probabilities (`extract.trust.confidence`) and the JSON
parser that keeps each value's position (`extract.trust.spans`).

The property tests carry their own oracle: a JSON writer that knows where it put every value
(random whitespace, random escapes, fences around the object), a tokenizer that cuts the bytes
anywhere (inside multi-byte characters too) and a brute-force sum over the tokens that overlap
each value. The parser and the bisecting lookup under test share no code with it.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from extract.trust.confidence import (
    Alternative,
    Confidence,
    TokenLogprob,
    tokens_from_reply,
    value_confidence,
)
from extract.trust.shape import Fields, Items, Leaf, Shape, model_shape
from extract.trust.spans import Span, SpanDict, SpanList, SpanNode, parse_spans, plain

Draw = Callable[[st.SearchStrategy[Any]], Any]

# --------------------------------------------------------------------------------------------
# the oracle: a JSON writer that records where it wrote each value

# formatting and tokenization come from a seeded Random: hypothesis draws each choice one by
# one, which made one answer cost ~80 ms; the shapes and values stay hypothesis-drawn
SEEDS = st.integers(0, 2**32 - 1)
# high surrogates always followed by a non-surrogate, so the escaped text decodes back to the
# same string (an escaped high + low pair would become one astral character)
LONE_SURROGATES = st.sampled_from(["\ud800x", "\udbff\u00e9", "\udc00", "\udfff"])
TRICKY = st.sampled_from(
    ['"', "\\", "/", "\n", "\x00", "\x1f", "\x7f", "\u2028", "\u00e9", "\u4e2d", "😀", "𝄞"]
)
TEXT = st.lists(
    st.one_of(st.characters(exclude_categories=["Cs"]), TRICKY, LONE_SURROGATES), max_size=10
).map("".join)
SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


@dataclass(frozen=True)
class Number:
    """A number to write exactly as `raw` (exponents, fractions, `-0`)."""

    raw: str


@st.composite
def numbers(draw: Draw) -> Number:
    whole = draw(st.sampled_from(["0", "7", "12", "9007199254740993", "1000000"]))
    frac = draw(st.sampled_from(["", ".0", ".5", ".000125", ".1415926535"]))
    exp = draw(st.sampled_from(["", "e5", "E-3", "e+12", "E0", "e-300", "e308"]))
    return Number(draw(st.sampled_from(["", "-"])) + whole + frac + exp)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | numbers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=10,
)  # fmt: skip


class Writer:
    """Writes JSON text, recording the character span of every value it writes (pre-order)."""

    def __init__(self, draw: Draw, rng: random.Random) -> None:
        self.draw = draw
        self.rng = rng
        self.parts: list[str] = []
        self.pos = 0
        self.spans: list[tuple[int, int]] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def put(self, s: str) -> None:
        self.parts.append(s)
        self.pos += len(s)

    def ws(self) -> None:
        self.put("".join(self.rng.choices(" \t\n\r", k=self.rng.choice((0, 0, 1, 2)))))

    def escape_u(self, code: int) -> str:
        upper = self.rng.random() < 0.5
        if code > 0xFFFF:
            code -= 0x10000
            units = [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]
        else:
            units = [code]
        return "".join(f"\\u{u:04X}" if upper else f"\\u{u:04x}" for u in units)

    def char(self, c: str) -> str:
        code = ord(c)
        if 0xD800 <= code < 0xE000:  # no UTF-8 form: must be escaped
            return self.escape_u(code)
        if c in SHORT_ESCAPES or code < 0x20:
            if c in SHORT_ESCAPES and self.rng.random() < 0.5:
                return SHORT_ESCAPES[c]
            return self.escape_u(code)
        if c == "/" and self.rng.random() < 0.5:
            return "\\/"
        if self.rng.random() < 0.25:
            return self.escape_u(code)
        return c

    def string(self, s: str) -> tuple[int, int]:
        start = self.pos
        self.put('"' + "".join(self.char(c) for c in s) + '"')
        return start, self.pos

    def value(self, v: Any) -> tuple[int, int]:
        """Write `v`; its span, also appended to `spans` (the parent before its children)."""
        slot = len(self.spans)
        self.spans.append((self.pos, -1))
        start = self.pos
        if v is None or isinstance(v, bool):
            self.put({None: "null", True: "true", False: "false"}[v])
        elif isinstance(v, Number):
            self.put(v.raw)
        elif isinstance(v, int | float):
            self.put(repr(v))
        elif isinstance(v, str):
            self.string(v)
        elif isinstance(v, list):
            self.put("[")
            self.ws()
            for i, item in enumerate(v):
                if i:
                    self.ws()
                    self.put(",")
                    self.ws()
                self.value(item)
            self.ws()
            self.put("]")
        else:
            self.put("{")
            self.ws()
            for i, (k, item) in enumerate(v.items()):
                if i:
                    self.put(",")
                    self.ws()
                self.string(k)
                self.ws()
                self.put(":")
                self.ws()
                self.value(item)
                self.ws()
            self.put("}")
        self.spans[slot] = (start, self.pos)
        return start, self.pos


def expected_value(v: Any) -> Any:
    """What `json.loads` makes of `v` as the writer writes it."""
    if isinstance(v, Number):
        return json.loads(v.raw)
    if isinstance(v, list):
        return [expected_value(i) for i in v]
    if isinstance(v, dict):
        return {k: expected_value(i) for k, i in v.items()}
    return v


def preorder(node: SpanNode) -> list[tuple[int, int]]:
    out = [(node.start, node.end)]
    if isinstance(node, SpanDict):
        for child in node.values():
            out += preorder(child)
    elif isinstance(node, SpanList):
        for child in node:
            out += preorder(child)
    return out


# --------------------------------------------------------------------------------------------
# the span parser against json.loads and the writer's positions


@settings(max_examples=120, deadline=None)
@given(st.data(), st.dictionaries(TEXT, JSON, max_size=5))
def test_parse_spans_matches_json_loads_and_the_written_positions(
    data: st.DataObject, obj: dict[str, Any]
) -> None:
    w = Writer(data.draw, random.Random(data.draw(SEEDS)))
    w.ws()
    w.value(obj)
    w.ws()
    tree = parse_spans(w.text)
    assert plain(tree) == json.loads(w.text) == expected_value(obj)
    assert preorder(tree) == w.spans
    for span in _all_scalars(tree):
        number = isinstance(span.value, int | float) and not isinstance(span.value, bool)
        assert span.raw == (w.text[span.start : span.end] if number else None)


def _all_scalars(node: SpanNode) -> list[Span]:
    if isinstance(node, Span):
        return [node]
    children = node.values() if isinstance(node, SpanDict) else node
    return [s for child in children for s in _all_scalars(child)]


def test_parse_spans_exact_offsets() -> None:
    text = '{"a": [1, -2.5e+3, "x\\"y"], "b": {"c": null}, "d": true}'
    tree = parse_spans(text)
    assert (tree.start, tree.end) == (0, len(text))
    a = tree["a"]
    assert isinstance(a, SpanList)
    assert (a.start, a.end) == (6, 26)
    assert a == [Span(1, 7, 8, "1"), Span(-2500.0, 10, 17, "-2.5e+3"), Span('x"y', 19, 25)]
    b = tree["b"]
    assert isinstance(b, SpanDict)
    assert (b.start, b.end, b["c"]) == (33, 44, Span(None, 39, 43))
    assert tree["d"] == Span(True, 51, 55)
    assert text[19:25] == '"x\\"y"'


def test_parse_spans_decodes_every_escape() -> None:
    text = '{"s": "\\u00e9\\ud83d\\ude00\\n\\/\\b\\f\\r\\t\\\\\\"\\u0041\\uD834\\uDD1E"}'
    assert plain(parse_spans(text)) == {"s": 'é😀\n/\b\f\r\t\\"A𝄞'} == json.loads(text)
    lone = '{"s": "\\ud800x\\udc00\\ud83d\\ud83d\\ude00"}'
    assert plain(parse_spans(lone)) == json.loads(lone) == {"s": "\ud800x\udc00\ud83d😀"}


def test_parse_spans_numbers_keep_their_text() -> None:
    tree = parse_spans('{"a": 0, "b": -0, "c": 1E2, "d": 0.10000000000000000555, "e": 12}')
    assert [(type(s.value), s.raw) for s in tree.values() if isinstance(s, Span)] == [
        (int, "0"),
        (int, "-0"),
        (float, "1E2"),
        (float, "0.10000000000000000555"),
        (int, "12"),
    ]
    assert tree["c"] == Span(100.0, 23, 26, "1E2")


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ('```json\n{"a": 1}\n```', 8),
        ('Here is the answer: {"a": 1} Hope this helps!', 20),
        ('Use {curly} braces: {"a": 1}', 20),
        ('  \n{"a": 1}\n', 3),
        ('{"a": 1}}', 0),
    ],
)
def test_parse_spans_finds_the_object_in_prose_and_fences(text: str, start: int) -> None:
    tree = parse_spans(text)
    assert (tree, tree.start, tree.end) == (
        {"a": Span(1, start + 6, start + 7, "1")},
        start,
        start + 8,
    )


def test_parse_spans_repeated_key_keeps_the_last_value() -> None:
    assert plain(parse_spans('{"a": 1, "a": 2}')) == {"a": 2}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no json here",
        "{",
        '{"a"}',
        '{"a":}',
        '{"a": 1,}',
        '{"a": [1, 2,]}',
        '{"a": [1 2]}',
        '{"a" 1}',
        '{"a": 01}',
        '{"a": 1.}',
        '{"a": .5}',
        '{"a": -}',
        '{"a": 1e}',
        '{"a": "\\x"}',
        '{"a": "\\u12"}',
        '{"a": "\\u12G4"}',
        '{"a": "tab\there"}',
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": tru}',
        '{"a": "unterminated}',
        "{'a': 1}",
        '{"a": 1',
        # truncated: the complete inner object must not pass for the answer
        '{"a": [{"b": 1}',
        '{"a": [{"b": 1}] "c": 2}',
        '{"a": "\\',
        '{"a": \u0661}',  # an Arabic-Indic digit is not a JSON digit
    ],
)
def test_parse_spans_rejects_invalid_json(text: str) -> None:
    with pytest.raises(ValueError, match="JSON"):
        parse_spans(text)


def test_parse_spans_a_top_level_array_is_not_an_object() -> None:
    with pytest.raises(ValueError, match="no JSON object"):
        parse_spans("[1, 2]")


def test_parse_spans_deep_nesting_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_spans('{"a": ' * 5000 + "1" + "}" * 5000)


# --------------------------------------------------------------------------------------------
# value_confidence against the oracle


@dataclass(frozen=True)
class Expect:
    """Where the writer put one leaf's value (characters; string quotes already dropped)."""

    start: int
    end: int
    kind: str
    path: str


EXTRA = object()
#: other tokens among a token's top_logprobs (None: the chosen token itself)
ALTERNATIVES = [None, "a", " true", " false", '"', "low", "\u00e9", "😀", "\ud800", "", "}"]


def leaf_values(leaf: Leaf) -> st.SearchStrategy[Any]:
    if leaf.kind == "enum":
        return st.sampled_from(leaf.choices)
    return {
        "int": st.integers(-(10**20), 10**20),
        "float": numbers() | st.floats(allow_nan=False, allow_infinity=False),
        "bool": st.booleans(),
        "json": JSON,
    }.get(leaf.kind, TEXT)


def write_shaped(w: Writer, shape: Shape, path: str, *, root: bool = False) -> Any:
    """Write a value that follows `shape`; the mirror the confidence must have, with `Expect`
    at each leaf (None where a value is missing, or a model or list is null)."""
    draw = w.draw
    if isinstance(shape, Leaf):
        if draw(st.integers(0, 9)) == 0:
            start = w.pos
            w.put("null")
            return Expect(start, w.pos, shape.kind, path)
        value = draw(leaf_values(shape))
        start, end = w.value(value)
        if isinstance(value, str) and end - start > 2:
            start, end = start + 1, end - 1
        return Expect(start, end, shape.kind, path)
    if not root and draw(st.integers(0, 11)) == 0:
        w.put("null")
        return None
    if isinstance(shape, Items):
        w.put("[")
        w.ws()
        items = []
        for i in range(draw(st.integers(0, 3))):
            if i:
                w.ws()
                w.put(",")
                w.ws()
            items.append(write_shaped(w, shape.item, f"{path}[{i}]"))
        w.ws()
        w.put("]")
        return items
    prefix = f"{path}." if path else ""
    expected: dict[str, Any] = {k: None for k, _ in shape.fields}
    members: list[tuple[str, Any]] = [f for f in shape.fields if draw(st.integers(0, 7)) != 0]
    extra_key = draw(TEXT)
    if extra_key not in expected and draw(st.booleans()):
        members.append((extra_key, EXTRA))  # a key the model does not have: ignored
    w.put("{")
    w.ws()
    for i, (key, sub) in enumerate(draw(st.permutations(members))):
        if i:
            w.ws()
            w.put(",")
            w.ws()
        w.string(key)
        w.ws()
        w.put(":")
        w.ws()
        if sub is EXTRA:
            w.value(draw(JSON))
        else:
            expected[key] = write_shaped(w, sub, prefix + key)
    w.ws()
    w.put("}")
    return expected


KEYS = TEXT.filter(bool)
LEAVES = st.sampled_from(
    [
        Leaf("str"),
        Leaf("date"),
        Leaf("int"),
        Leaf("float"),
        Leaf("bool"),
        Leaf("enum", ("low", "high", 'say "hi"', "caf\u00e9", "😀", "")),
        Leaf("enum", (1, 2, 30)),
        Leaf("json"),
    ]
)


def _fields(members: list[tuple[str, Shape]]) -> Fields:
    return Fields(tuple(members))


SHAPES = st.recursive(
    LEAVES,
    lambda inner: (
        inner.map(Items)
        | st.lists(st.tuples(KEYS, inner), min_size=1, max_size=4, unique_by=lambda m: m[0]).map(
            _fields
        )
    ),
    max_leaves=10,
)
ROOTS = st.lists(st.tuples(KEYS, SHAPES), min_size=1, max_size=5, unique_by=lambda m: m[0]).map(
    _fields
)


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


class Contact(BaseModel):
    name: str
    email: str | None = None
    primary: bool


class Ticket(BaseModel):
    title: str
    priority: Priority
    urgent: bool | None
    score: float
    count: int | None
    tags: list[str]
    contacts: list[Contact]
    attributes: dict[str, int]
    kind: Literal["bug", "feature"] = Field(alias="type")
    ref: int | str
    owner: Contact | None


FIXED = [model_shape(Ticket)]


@dataclass
class Written:
    """An answer, the tokens that spell it, and everything the oracle expects of it."""

    content: str
    core: str
    reply: dict[str, Any]
    values: Any
    margins: dict[str, float]


@st.composite
def answers(draw: Draw, shape: Fields) -> Written:
    rng = random.Random(draw(SEEDS))
    w = Writer(draw, rng)
    w.ws()
    mirror = write_shaped(w, shape, "", root=True)
    w.ws()
    before = draw(st.sampled_from(["", "```json\n", "Sure, here it is:\n```json\n", "Answer: "]))
    after = draw(st.sampled_from(["", "\n```", "\n```\nDone.", " Hope that helps!"]))
    content = before + w.text + after
    data = content.encode("utf-8")
    n = len(data)

    if rng.random() < 0.5:
        step = rng.randint(1, 6)
        cuts = list(range(step, n, step)) + [rng.randint(0, n) for _ in range(rng.randint(0, 5))]
    else:
        cuts = [rng.randint(0, n) for _ in range(rng.randint(0, min(n, 40)))]
    bounds = [0, *sorted(cuts), n]  # repeated cuts make zero-length tokens
    entries = []
    tokens: list[tuple[int, bytes, float, list[tuple[bytes, float]]]] = []
    for a, b in itertools.pairwise(bounds):
        piece = data[a:b]
        logprob = rng.choice((0.0, -rng.expovariate(1.0), -rng.uniform(0, 20)))
        try:
            strict = piece.decode("utf-8")
        except UnicodeDecodeError:
            strict = None
        entry: dict[str, Any] = {
            "id": len(entries),
            "token": piece.decode("utf-8", "replace"),  # lossy when cut inside a character
            "logprob": logprob,
        }
        how = rng.choice(["list", "absent", "null"]) if strict is not None else "list"
        if how == "list":
            entry["bytes"] = list(piece)
        elif how == "null":
            entry["bytes"] = None
        alternatives: list[tuple[bytes, float]] = []
        top = []
        for alt in rng.sample(ALTERNATIVES, rng.randint(0, 3)):
            if alt is None:  # the chosen token itself, as providers list it among the top
                alt_token, alt_bytes, alt_logprob = entry["token"], piece, logprob
            else:
                alt_text = alt.encode("utf-8", "surrogatepass")
                alt_token, alt_bytes, alt_logprob = alt, alt_text, -rng.uniform(0, 9)
            alt_entry = {"token": alt_token, "logprob": alt_logprob}
            if rng.random() < 0.5 or alt is None:
                alt_entry["bytes"] = list(alt_bytes)
            top.append(alt_entry)
            alternatives.append((alt_bytes, alt_logprob))
        if top or rng.random() < 0.5:
            entry["top_logprobs"] = top
        entries.append(entry)
        tokens.append((a, piece, logprob, alternatives))

    offset = len(before)
    margins: dict[str, float] = {}

    def expect(node: Any) -> Any:
        if isinstance(node, Expect):
            start = len(content[: node.start + offset].encode("utf-8"))
            end = len(content[: node.end + offset].encode("utf-8"))
            hits = [t for t in tokens if t[0] < end and t[0] + len(t[1]) > start]
            if node.kind in ("enum", "bool"):
                _, piece, logprob, alternatives = hits[0]
                others = [lp for alt, lp in alternatives if alt != piece]
                chosen = math.exp(logprob)
                margins[node.path] = chosen - math.exp(max(others)) if others else chosen
            return math.exp(sum(t[2] for t in hits))
        if isinstance(node, list):
            return [expect(i) for i in node]
        if isinstance(node, dict):
            return {k: expect(v) for k, v in node.items()}
        return node

    values = expect(mirror)
    return Written(content, w.text, {"content": entries}, values, margins)


def assert_close(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, float):
        assert isinstance(actual, float), path
        assert math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-300), (path, actual)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_close(a, e, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for k in expected:
            assert_close(actual[k], expected[k], f"{path}.{k}")
    else:
        assert actual is expected is None, path


def _leaves(values: Any) -> list[float]:
    if isinstance(values, float):
        return [values]
    if isinstance(values, list):
        return [p for v in values for p in _leaves(v)]
    if isinstance(values, dict):
        return [p for v in values.values() for p in _leaves(v)]
    return []


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_value_confidence_is_the_joint_probability_of_the_overlapping_tokens(
    data: st.DataObject,
) -> None:
    shape = data.draw(st.sampled_from(FIXED) | ROOTS)
    written = data.draw(answers(shape))
    assert plain(parse_spans(written.content)) == json.loads(written.core)
    tokens = tokens_from_reply(written.reply)
    assert tokens is not None
    found = value_confidence(written.content, tokens, shape)
    assert found is not None
    assert_close(found.values, written.values)
    assert found.margins.keys() == written.margins.keys()
    for path, margin in written.margins.items():
        assert math.isclose(found.margins[path], margin, rel_tol=1e-9, abs_tol=1e-12), path
    leaves = _leaves(written.values)
    if leaves:
        assert found.minimum is not None and math.isclose(found.minimum, min(leaves))
    else:
        assert found.minimum is None


# --------------------------------------------------------------------------------------------
# exact examples


def tok(text: str, p: float, *alternatives: tuple[str, float]) -> dict[str, Any]:
    """One token as llama-server sends it: id, text, logprob, bytes and top_logprobs."""
    top = [
        {"id": 100 + i, "token": t, "logprob": math.log(q), "bytes": list(t.encode())}
        for i, (t, q) in enumerate(alternatives)
    ]
    return {
        "id": 7,
        "token": text,
        "logprob": math.log(p),
        "bytes": list(text.encode()),
        "top_logprobs": top,
    }


def run(content: str, entries: list[dict[str, Any]], shape: Fields) -> Confidence:
    tokens = tokens_from_reply({"content": entries})
    assert tokens is not None
    found = value_confidence(content, tokens, shape)
    assert found is not None
    return found


def spell(entries: list[dict[str, Any]]) -> str:
    return "".join(e["token"] for e in entries)


class Person(BaseModel):
    name: str
    age: int
    priority: Literal["low", "medium", "high"]
    urgent: bool


PERSON_TOKENS = [
    tok('{"', 1.0),
    tok("name", 1.0),
    tok('":', 1.0),
    tok(' "', 0.9),
    tok("Ada", 0.5),
    tok(" Lovel", 0.8),
    tok("ace", 0.9),
    tok('",', 1.0),
    tok(' "', 1.0),
    tok("age", 1.0),
    tok('":', 1.0),
    tok(" ", 1.0),
    tok("36", 0.6),
    tok(",", 1.0),
    tok(' "', 1.0),
    tok("priority", 1.0),
    tok('":', 1.0),
    tok(' "', 1.0),
    tok("high", 0.7, ("high", 0.7), ("low", 0.2), ("medium", 0.1)),
    tok('",', 1.0),
    tok(' "', 1.0),
    tok("urgent", 1.0),
    tok('":', 1.0),
    tok(" true", 0.8, (" true", 0.8), (" false", 0.15)),
    tok("}", 1.0),
]
PERSON = '{"name": "Ada Lovelace", "age": 36, "priority": "high", "urgent": true}'


def test_llama_server_reply_exact_values_and_margins() -> None:
    assert spell(PERSON_TOKENS) == PERSON
    found = run(PERSON, PERSON_TOKENS, model_shape(Person))
    assert found.values == {
        "name": pytest.approx(0.5 * 0.8 * 0.9),
        "age": pytest.approx(0.6),
        "priority": pytest.approx(0.7),
        "urgent": pytest.approx(0.8),
    }
    assert found.margins == {"priority": pytest.approx(0.5), "urgent": pytest.approx(0.65)}
    assert found.minimum == pytest.approx(0.36)


def test_a_token_shared_with_punctuation_counts_whole() -> None:
    entries = [
        tok('{"priority": "', 1.0),
        tok('high"', 0.7, ('high"', 0.7), ('low"', 0.25)),
        tok(', "name": "', 1.0),
        tok('Ada"', 0.5),
        tok(', "age": 3', 0.9),
        tok("6, ", 0.8),
        tok('"urgent": false}', 0.4, ('"urgent": false}', 0.4)),
    ]
    content = spell(entries)
    found = run(content, entries, model_shape(Person))
    assert found.values == {
        "name": pytest.approx(0.5),
        "age": pytest.approx(0.9 * 0.8),
        "priority": pytest.approx(0.7),
        "urgent": pytest.approx(0.4),
    }
    # no alternative other than the chosen token itself: the margin is p(chosen)
    assert found.margins == {"priority": pytest.approx(0.45), "urgent": pytest.approx(0.4)}


def test_fenced_answer() -> None:
    class Flag(BaseModel):
        ok: bool

    entries = [
        tok("```", 1.0),
        tok("json", 1.0),
        tok("\n", 1.0),
        tok('{"', 1.0),
        tok("ok", 1.0),
        tok('":', 1.0),
        tok(" false", 0.9, (" false", 0.9), (" true", 0.1)),
        tok("}\n", 1.0),
        tok("```", 1.0),
    ]
    found = run(spell(entries), entries, model_shape(Flag))
    assert found.values == {"ok": pytest.approx(0.9)}
    assert found.margins == {"ok": pytest.approx(0.8)}


def test_a_character_split_across_tokens() -> None:
    class Place(BaseModel):
        city: str

    content = '{"city": "Zürich"}'
    raw = [b'{"', b"city", b'": "', b"Z", b"\xc3", b"\xbc", b"rich", b'"}']
    probabilities = [1.0, 1.0, 0.9, 0.5, 0.8, 0.9, 0.7, 1.0]
    entries = [
        {"token": b.decode("utf-8", "replace"), "logprob": math.log(p), "bytes": list(b)}
        for b, p in zip(raw, probabilities, strict=True)
    ]
    found = run(content, entries, model_shape(Place))
    assert found.values == {"city": pytest.approx(0.5 * 0.8 * 0.9 * 0.7)}
    # without bytes, the lossy texts ("\ufffd") do not spell the answer
    for entry in entries:
        del entry["bytes"]
    tokens = tokens_from_reply({"content": entries})
    assert tokens is not None
    assert value_confidence(content, tokens, model_shape(Place)) is None


def test_empty_string_and_null_have_their_own_tokens() -> None:
    class Note(BaseModel):
        text: str
        note: str | None

    entries = [
        tok('{"text": ', 1.0),
        tok('"', 0.6),
        tok('"', 0.5),
        tok(', "note": ', 1.0),
        tok("null", 0.3),
        tok("}", 1.0),
    ]
    found = run(spell(entries), entries, model_shape(Note))
    assert found.values == {"text": pytest.approx(0.3), "note": pytest.approx(0.3)}
    assert found.margins == {}


def test_missing_keys_are_none() -> None:
    entries = [tok('{"name": "', 1.0), tok("Ada", 0.5), tok('"}', 1.0)]
    found = run(spell(entries), entries, model_shape(Person))
    assert found == Confidence(
        values={"name": pytest.approx(0.5), "age": None, "priority": None, "urgent": None},
        margins={},
        minimum=pytest.approx(0.5),
    )


def test_lists_of_models() -> None:
    class Line(BaseModel):
        item: str
        status: Literal["ok", "bad"]

    class Order(BaseModel):
        lines: list[Line]
        notes: list[str] | None

    entries = [
        tok('{"lines": [{"item": "', 1.0),
        tok("a", 0.9),
        tok('", "status": "', 1.0),
        tok("ok", 0.6, ("ok", 0.6), ("bad", 0.4)),
        tok('"}, {"item": "', 1.0),
        tok("b", 0.8),
        tok('", "status": "', 1.0),
        tok("bad", 0.7, ("ok", 0.2)),
        tok('"}], "notes": null}', 1.0),
    ]
    found = run(spell(entries), entries, model_shape(Order))
    assert found.values == {
        "lines": [
            {"item": pytest.approx(0.9), "status": pytest.approx(0.6)},
            {"item": pytest.approx(0.8), "status": pytest.approx(0.7)},
        ],
        "notes": None,  # a null list has no items to mirror
    }
    assert found.margins == {
        "lines[0].status": pytest.approx(0.2),
        "lines[1].status": pytest.approx(0.5),
    }
    assert found.minimum == pytest.approx(0.6)


def test_a_dict_field_is_one_json_leaf_over_its_pairs() -> None:
    class Tagged(BaseModel):
        counts: dict[str, int]
        label: str

    entries = [
        tok('{"counts": ', 1.0),
        tok("[{", 0.9),
        tok('"key": "a", "value": ', 1.0),
        tok("1", 0.5),
        tok("}]", 0.8),
        tok(', "label": "', 1.0),
        tok("x", 0.7),
        tok('"}', 1.0),
    ]
    shape = model_shape(Tagged)
    assert shape.fields[0] == ("counts", Leaf("json"))
    found = run(spell(entries), entries, shape)
    assert found.values == {"counts": pytest.approx(0.9 * 0.5 * 0.8), "label": pytest.approx(0.7)}


def test_aliases_are_the_keys() -> None:
    class Aliased(BaseModel):
        kind: Literal["bug", "feature"] = Field(alias="type")

    entries = [tok('{"type": "', 1.0), tok("bug", 0.75, ("feature", 0.25)), tok('"}', 1.0)]
    found = run(spell(entries), entries, model_shape(Aliased))
    assert (found.values, found.margins) == (
        {"type": pytest.approx(0.75)},
        {"type": pytest.approx(0.5)},
    )


@pytest.mark.parametrize(
    "entries",
    [
        [tok("x", 1.0), *PERSON_TOKENS],  # a token the content does not have
        PERSON_TOKENS[:-1],  # one missing
        PERSON_TOKENS[::-1],  # out of order
        [],
    ],
)
def test_tokens_that_do_not_spell_the_content_give_none(entries: list[dict[str, Any]]) -> None:
    tokens = [
        TokenLogprob(e["token"], e["logprob"], bytes(e["bytes"]))
        for e in entries  # built directly: tokens_from_reply refuses an empty list
    ]
    assert value_confidence(PERSON, tokens, model_shape(Person)) is None


def test_content_without_json_gives_none() -> None:
    tokens = [TokenLogprob("I cannot help with that.", -0.1)]
    assert value_confidence("I cannot help with that.", tokens, model_shape(Person)) is None


def test_tokens_from_reply_reads_llama_server_and_openai_entries() -> None:
    llama = {
        "id": 1,
        "token": "é",
        "logprob": -0.5,
        "bytes": [195, 169],
        "top_logprobs": [{"id": 2, "token": "e", "logprob": -1.5, "bytes": [101]}],
    }
    openai = {"token": "ok", "logprob": 0, "bytes": None, "top_logprobs": []}
    bare = {"token": "!", "logprob": -2.25}
    tokens = tokens_from_reply({"content": [llama, openai, bare], "refusal": None})
    assert tokens == [
        TokenLogprob("é", -0.5, "é".encode(), (llama["top_logprobs"][0],)),
        TokenLogprob("ok", 0.0, None, ()),
        TokenLogprob("!", -2.25, None, ()),
    ]
    assert [t.top for t in tokens] == [(Alternative("e", b"e", -1.5),), (), ()]


def test_malformed_alternatives_are_no_alternatives() -> None:
    class Flag(BaseModel):
        ok: bool

    entries = [
        tok('{"ok": ', 1.0),
        {"token": "true", "logprob": math.log(0.6), "top_logprobs": [{"token": "false"}]},
        tok("}", 1.0),
    ]
    tokens = tokens_from_reply({"content": entries})
    assert tokens is not None and tokens[1].top == ()
    found = value_confidence(spell(entries), tokens, model_shape(Flag))
    assert found is not None and found.margins == {"ok": pytest.approx(0.6)}


@pytest.mark.parametrize(
    "logprobs",
    [
        None,
        {},
        {"content": None},
        {"content": []},
        [],
        "logprobs",
        {"content": "x"},
        {"content": [None]},
        {"content": [{"token": "a"}]},
        {"content": [{"token": 1, "logprob": -1.0}]},
        {"content": [{"token": "a", "logprob": "-1"}]},
        {"content": [{"token": "a", "logprob": True}]},
        {"content": [{"token": "a", "logprob": float("nan")}]},
        {"content": [{"token": "a", "logprob": -(10**400)}]},
        {"content": [{"token": "a", "logprob": -1.0, "bytes": [256]}]},
        {"content": [{"token": "a", "logprob": -1.0, "bytes": ["a"]}]},
        {"content": [{"token": "a", "logprob": -1.0, "bytes": "a"}]},
        {"content": [{"token": "a", "logprob": -1.0, "top_logprobs": {"b": -2.0}}]},
    ],
)
def test_tokens_from_reply_none_when_absent_empty_or_malformed(logprobs: Any) -> None:
    assert tokens_from_reply(logprobs) is None


def test_after_grammar_drops_what_the_grammar_refused_and_renormalises() -> None:
    from extract.trust.confidence import after_grammar

    def alt(text: str, p: float) -> dict[str, Any]:
        return {"token": text, "bytes": list(text.encode()), "logprob": math.log(p)}

    tokens = [
        # the grammar refused "\n" and "Anna" (ranked above the chosen "{"): 0.2 / (0.2 + 0.05)
        TokenLogprob("{", math.log(0.2), b"{", (alt("\n", 0.5), alt("Anna", 0.25), alt("{", 0.2),
                                                alt("[", 0.05))),
        # forced: every alternative ranked above it
        TokenLogprob("ORD-", math.log(1e-9), b"ORD-", (alt("order", 0.6), alt("#", 0.3))),
        # the top choice stays the top choice, renormalised over the alternatives shown
        TokenLogprob("a", math.log(0.9), b"a", (alt("a", 0.9), alt("b", 0.06))),
    ]  # fmt: skip
    first, forced, top = after_grammar(tokens)
    assert math.isclose(math.exp(first.logprob), 0.2 / 0.25)
    assert [(a.token, round(math.exp(a.logprob), 9)) for a in first.top] == [("[", 0.2)]
    assert forced.logprob == 0.0 and forced.top == ()
    assert math.isclose(math.exp(top.logprob), 0.9 / 0.96)
    assert [a.token for a in top.top] == ["b"]


def test_whitespace_the_server_stripped_from_content_is_allowed_for() -> None:
    class Small(BaseModel):
        name: str

    shape = model_shape(Small)
    pieces = [('{"name": "', -0.1), ("Ann", math.log(0.5)), ('"}', -0.1), ("\n\n", -0.2)]
    tokens = [TokenLogprob(t, lp, t.encode()) for t, lp in pieces]
    found = value_confidence('{"name": "Ann"}', tokens, shape)
    assert found is not None and math.isclose(found.values["name"], 0.5)
    lead = [TokenLogprob(" \n", -0.1, b" \n"), *tokens[:3]]
    found = value_confidence('{"name": "Ann"}', lead, shape)
    assert found is not None and math.isclose(found.values["name"], 0.5)
    # anything but whitespace left over: the tokens are of something else
    other = [*tokens[:3], TokenLogprob("x", -0.1, b"x")]
    assert value_confidence('{"name": "Ann"}', other, shape) is None
