"""Parse a JSON answer and keep where each value sits in the text.

A value's confidence is read from the tokens that wrote it, so the parser has to say which
characters every value came from. `parse_spans(text)` returns the parsed object as a tree of
`SpanDict` (a dict), `SpanList` (a list) and `Span` (a scalar), each with `start`..`end`
character offsets into `text` (end exclusive; brackets and quotes included). Because the
containers are a real dict and list, `shape.mirror` walks the tree as it walks parsed JSON.

The grammar is RFC 8259 JSON, decoded exactly as `json.loads` decodes it (every escape,
surrogate pairs combined, a lone escaped surrogate kept as is, integers as `int`, anything with
a fraction or exponent as `float`), except that `NaN` and `Infinity` are refused. Scalars are
matched with compiled regular expressions, so the Python loop runs once per value, not per
character.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Span", "SpanDict", "SpanList", "SpanNode", "parse_spans", "plain"]


class Span:
    """A scalar value and where it was written: `text[start:end]` is its JSON text (a string's
    quotes included). `value` is the decoded Python value; a number keeps its text as `raw`
    (`1.50e3`), which a float cannot give back; `raw` is None for other scalars."""

    __slots__ = ("end", "raw", "start", "value")

    def __init__(self, value: Any, start: int, end: int, raw: str | None = None) -> None:
        self.value = value
        self.start = start
        self.end = end
        self.raw = raw

    def __repr__(self) -> str:
        return f"Span({self.value!r}, {self.start}, {self.end})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Span):
            return NotImplemented
        return (self.value, self.start, self.end, self.raw) == (
            other.value,
            other.start,
            other.end,
            other.raw,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dict and list beside it


class SpanDict(dict[str, "SpanNode"]):
    """A JSON object: its members by key, and `start`..`end` covering the braces."""

    __slots__ = ("end", "start")
    start: int
    end: int


class SpanList(list["SpanNode"]):
    """A JSON array: its items, and `start`..`end` covering the brackets."""

    __slots__ = ("end", "start")
    start: int
    end: int


SpanNode = Span | SpanDict | SpanList


def plain(node: SpanNode) -> Any:
    """The tree without positions: what `json.loads` returns for the same text."""
    if isinstance(node, Span):
        return node.value
    if isinstance(node, SpanDict):
        return {k: plain(v) for k, v in node.items()}
    return [plain(v) for v in node]


class _Invalid(ValueError):
    """Invalid JSON; `pos` is where reading stopped, so a search for the object can go on past
    it."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(f"invalid JSON: {message} at character {pos}")
        self.pos = pos


_WS = re.compile(r"[ \t\n\r]*")
_WS_CHARS = frozenset(" \t\n\r")
# [0-9], not \d: \d also matches other scripts' digits, which JSON does not allow
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
# most strings have no escape: one match decodes them
_PLAIN_STRING = re.compile(r'"([^"\\\x00-\x1f]*)"')
_CHUNK = re.compile(r'[^"\\\x00-\x1f]*')
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _skip(text: str, i: int) -> int:
    """The offset after the whitespace at `i` (the caller has stepped over its first one)."""
    # one blank is by far the commonest run (`": "`, `", "`): no regex for it
    if text[i] not in _WS_CHARS:
        return i
    m = _WS.match(text, i)
    return m.end() if m else i


def _string(text: str, i: int) -> tuple[str, int]:
    """The string whose opening quote is at `i`, and the offset after its closing quote."""
    m = _PLAIN_STRING.match(text, i)
    if m is not None:
        return m.group(1), m.end()
    parts: list[str] = []
    j = i + 1
    while True:
        chunk = _CHUNK.match(text, j)
        if chunk is not None:
            parts.append(chunk.group())
            j = chunk.end()
        c = text[j]
        if c == '"':
            return "".join(parts), j + 1
        if c != "\\":
            raise _Invalid("control character in a string", j)
        e = text[j + 1 : j + 2]
        if e != "u":
            if e not in _ESCAPES:
                raise _Invalid("invalid escape", j)
            parts.append(_ESCAPES[e])
            j += 2
            continue
        if _HEX4.match(text, j + 2) is None:
            raise _Invalid("invalid \\u escape", j)
        code = int(text[j + 2 : j + 6], 16)
        j += 6
        # a high surrogate and the low one escaped right after it are one astral character;
        # either alone stays a lone surrogate, as json.loads keeps it
        if 0xD800 <= code < 0xDC00 and text.startswith("\\u", j) and _HEX4.match(text, j + 2):
            low = int(text[j + 2 : j + 6], 16)
            if 0xDC00 <= low < 0xE000:
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                j += 6
        parts.append(chr(code))


def _value(text: str, i: int) -> SpanNode:
    """The value that starts at `i` (not whitespace)."""
    c = text[i]
    if c == '"':
        value, end = _string(text, i)
        return Span(value, i, end)
    if c == "{":
        return _object(text, i)
    if c == "[":
        return _array(text, i)
    if c == "t" and text.startswith("true", i):
        return Span(True, i, i + 4)
    if c == "f" and text.startswith("false", i):
        return Span(False, i, i + 5)
    if c == "n" and text.startswith("null", i):
        return Span(None, i, i + 4)
    m = _NUMBER.match(text, i)
    if m is None:
        raise _Invalid("expected a value", i)
    raw = m.group()
    if m.group(1) or m.group(2):
        return Span(float(raw), i, m.end(), raw)
    try:
        return Span(int(raw), i, m.end(), raw)
    except ValueError as e:  # more digits than int() converts (sys.int_info.str_digits_check)
        raise _Invalid(str(e), i) from e


def _object(text: str, i: int) -> SpanDict:
    node = SpanDict()
    node.start = i
    i += 1
    if text[i] in _WS_CHARS:
        i = _skip(text, i + 1)
    if text[i] == "}":
        node.end = i + 1
        return node
    while True:
        if text[i] != '"':
            raise _Invalid("expected a key", i)
        key, i = _string(text, i)
        if text[i] in _WS_CHARS:
            i = _skip(text, i + 1)
        if text[i] != ":":
            raise _Invalid("expected ':'", i)
        i += 1
        if text[i] in _WS_CHARS:
            i = _skip(text, i + 1)
        value = _value(text, i)
        node[key] = value  # a repeated key keeps its last value, as json.loads does
        i = value.end
        if text[i] in _WS_CHARS:
            i = _skip(text, i + 1)
        c = text[i]
        if c == "}":
            node.end = i + 1
            return node
        if c != ",":
            raise _Invalid("expected ',' or '}'", i)
        i += 1
        if text[i] in _WS_CHARS:
            i = _skip(text, i + 1)


def _array(text: str, i: int) -> SpanList:
    node = SpanList()
    node.start = i
    i += 1
    if text[i] in _WS_CHARS:
        i = _skip(text, i + 1)
    if text[i] == "]":
        node.end = i + 1
        return node
    while True:
        value = _value(text, i)
        node.append(value)
        i = value.end
        if text[i] in _WS_CHARS:
            i = _skip(text, i + 1)
        c = text[i]
        if c == "]":
            node.end = i + 1
            return node
        if c != ",":
            raise _Invalid("expected ',' or ']'", i)
        i += 1
        if text[i] in _WS_CHARS:
            i = _skip(text, i + 1)


def parse_spans(text: str) -> SpanDict:
    """The JSON object in `text`, with the character offsets of every value.

    `text` is the object itself, or prose or a ``` fence around one: the first `{` that starts
    a valid object is taken and whatever follows its closing `}` is ignored. When an attempt
    fails, the search resumes after the point where it failed, so a `{` nested inside a broken
    (say, truncated) object is never mistaken for the answer. Raises ValueError when no object
    parses.
    """
    pos = text.find("{")
    error: ValueError = ValueError("no JSON object in the text")
    while pos != -1:
        try:
            return _object(text, pos)
        except _Invalid as e:
            error, resume = e, max(e.pos, pos + 1)
        except IndexError:  # reading ran off the end: the object is truncated
            error, resume = _Invalid("the text ends inside the object", len(text)), len(text)
        except RecursionError:
            raise ValueError("invalid JSON: nested too deeply") from None
        pos = text.find("{", resume)
    raise error
