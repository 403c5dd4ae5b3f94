"""Per-value confidence from the token log-probabilities of a reply.

A reply asked for with `logprobs: true` carries, per generated token, its text, its bytes and
its log-probability (and the top alternatives the model weighed). The answer is JSON, so every
value was written by a run of tokens; the value's confidence is the joint probability of that
run, `exp(sum of logprob)`. Tokens are placed on the UTF-8 bytes of the answer (a token may end
inside a multi-byte character; its `bytes` say exactly where), values on its characters
(`spans.parse_spans`), and the two meet on byte offsets.

For an enum or a boolean the runner-up matters more than the joint probability: a value the
model chose at 0.51 over 0.49 is a coin toss even though it is "likely". `margins` keeps, per
such value, p(chosen) minus p(best other choice) at the token where the value starts.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

from .shape import Fields, Leaf, mirror
from .spans import Span, SpanDict, SpanList, parse_spans

__all__ = [
    "Alternative",
    "Confidence",
    "TokenLogprob",
    "after_grammar",
    "tokens_from_reply",
    "value_confidence",
]


class Alternative(NamedTuple):
    """One of the `top_logprobs` the model weighed at a position."""

    token: str
    bytes: bytes | None
    logprob: float


def _decode(raw: Any) -> tuple[str, bytes | None, float] | None:
    """(token, bytes, logprob) of one `content` or `top_logprobs` item; None if it is not one.

    Exact type tests rather than isinstance: a JSON decoder makes exactly str, int, float and
    list, and `type(x) is int` also turns away bool (an int subclass)."""
    if type(raw) is not dict:
        return None
    token, logprob, data = raw.get("token"), raw.get("logprob"), raw.get("bytes")
    if type(token) is not str or (type(logprob) is not float and type(logprob) is not int):
        return None
    if logprob != logprob:  # NaN would poison every sum it enters
        return None
    if data is not None and type(data) is not list:
        return None
    try:
        return token, None if data is None else bytes(data), float(logprob)
    except (TypeError, ValueError, OverflowError):  # bytes not 0..255 ints; a huge int logprob
        return None


# not frozen: a frozen dataclass's __init__ costs three times as much, once per token of every
# reply, and nothing keeps these beyond one answer's assessment
@dataclass(slots=True)
class TokenLogprob:
    """One generated token. `bytes` is its exact UTF-8 bytes when the provider sent them (the
    text of a token that ends inside a multi-byte character is a lossy decode).

    `top_logprobs` is the provider's list of alternatives as sent, decoded by `top` on demand:
    only the first token of an enum or boolean value needs them, and decoding five alternatives
    for every token was three quarters of the cost of reading a reply.
    """

    token: str
    logprob: float
    bytes: bytes | None = None
    top_logprobs: tuple[Any, ...] = ()

    @property
    def top(self) -> tuple[Alternative, ...]:
        """The alternatives at this position (the chosen token often among them); empty when
        the provider sent none, or sent any of them malformed."""
        out = []
        for raw in self.top_logprobs:
            decoded = _decode(raw)
            if decoded is None:
                return ()
            out.append(Alternative(*decoded))
        return tuple(out)


@dataclass(frozen=True)
class Confidence:
    """The confidence of each value of one answer.

    `values` mirrors the output model (`shape.mirror`): a probability at each leaf, None where
    the answer lacks the value. `margins` maps the path of each enum and boolean value
    (`items[2].status`) to p(chosen) - p(runner-up). `minimum` is the lowest leaf probability,
    None when no leaf has one.
    """

    values: dict[str, Any]
    margins: dict[str, float]
    minimum: float | None


def after_grammar(tokens: list[TokenLogprob]) -> list[TokenLogprob]:
    """The tokens' probabilities renormalised over what a grammar let the model choose.

    llama-server reports the model's distribution *before* its grammar (the compiled schema)
    restricts the next token: a token the grammar forces, such as the `ORD-` a pattern demands,
    scores near 0 though it was the only choice. Decoding greedily (temperature 0), the chosen
    token is the likeliest one the grammar allowed, so every alternative ranked above it was
    refused: those are dropped, and the chosen token and the alternatives below it are
    renormalised among themselves (mass outside `top_logprobs` is unknown and left out). A token
    whose alternatives all ranked above it was forced: probability 1.
    """
    out = []
    for t in tokens:
        chosen = t.bytes if t.bytes is not None else t.token.encode("utf-8")
        below = [
            a
            for a in t.top
            if a.logprob <= t.logprob
            and (a.bytes if a.bytes is not None else a.token.encode("utf-8")) != chosen
        ]
        log_total = math.log(math.exp(t.logprob) + sum(math.exp(a.logprob) for a in below))
        kept = [
            {"token": a.token, "bytes": None if a.bytes is None else list(a.bytes),
             "logprob": a.logprob - log_total}
            for a in below
        ]  # fmt: skip
        out.append(TokenLogprob(t.token, t.logprob - log_total, t.bytes, tuple(kept)))
    return out


def tokens_from_reply(logprobs: Any) -> list[TokenLogprob] | None:
    """The tokens of `choices[0].logprobs` as an OpenAI-compatible endpoint sends it
    (`{"content": [{"token", "logprob", "bytes", "top_logprobs"}, ...]}`; llama-server's extra
    `id` is ignored). None when it is absent, null, empty or a token is malformed: a partial
    list could not spell the answer anyway. Alternatives are checked when `top` reads them.
    Never raises."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content:
        return None
    tokens: list[TokenLogprob] = []
    append = tokens.append
    for raw in content:
        decoded = _decode(raw)
        if decoded is None:
            return None
        token, data, logprob = decoded
        top = raw.get("top_logprobs")
        if top is None:
            append(TokenLogprob(token, logprob, data))
        elif type(top) is list:
            append(TokenLogprob(token, logprob, data, tuple(top)))
        else:
            return None
    return tokens


class _ByteOffsets:
    """Character offset -> UTF-8 byte offset in one text. Each lookup encodes only the stretch
    between the offset and the nearest one already converted (either side); the walk asks in
    roughly document order, so the text is encoded about once in all."""

    def __init__(self, text: str, size: int) -> None:
        self.text = text
        self.chars = [0, len(text)]
        self.bytes = [0, size]

    def __call__(self, offset: int) -> int:
        k = bisect_right(self.chars, offset)
        below = self.chars[k - 1]
        if below == offset:
            return self.bytes[k - 1]
        above = self.chars[k]
        if offset - below <= above - offset:
            at = self.bytes[k - 1] + len(self.text[below:offset].encode("utf-8"))
        else:
            at = self.bytes[k] - len(self.text[offset:above].encode("utf-8"))
        self.chars.insert(k, offset)
        self.bytes.insert(k, at)
        return at


def _margin(token: TokenLogprob, data: bytes) -> float:
    """p(token) minus the best p among its alternatives other than itself (compared by bytes);
    p(token) when it had none."""
    best: float | None = None
    for alt in token.top:
        alt_data = alt.bytes
        if alt_data is None:
            alt_data = alt.token.encode("utf-8", "surrogatepass")
        if alt_data != data and (best is None or alt.logprob > best):
            best = alt.logprob
    chosen = min(1.0, math.exp(token.logprob))
    return chosen if best is None else chosen - min(1.0, math.exp(best))


def value_confidence(content: str, tokens: list[TokenLogprob], shape: Fields) -> Confidence | None:
    """The confidence of each value of the JSON answer `content`, written by `tokens`.

    A value's confidence is exp(sum of logprob) over every token that overlaps the UTF-8 bytes
    of its JSON text: inside the quotes for a string (the quotes themselves for ""), the literal
    for a number, boolean or `null`, the whole brackets for a `json` leaf (a dict, union or
    tuple stored whole). A token that also writes punctuation or a neighbour (`"high"` as one
    token, or ` true}`) counts whole: its probability is the probability of the value too. A
    key missing from the answer gives None. The result is capped at 1.0, so that a logprob a
    rounding error above 0 cannot make a probability above 1.

    None when the tokens' bytes do not spell `content` exactly, whitespace around it aside (the
    provider sent logprobs of something else, or dropped some) or `content` holds no JSON
    object: the caller stores nulls.
    """
    try:
        data = content.encode("utf-8")
        pieces = [t.token.encode("utf-8") if t.bytes is None else t.bytes for t in tokens]
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form, so no token spells it
        return None
    joined = b"".join(pieces)
    shift = 0
    if joined != data:
        # llama-server strips the whitespace a model writes after (or before) the object from
        # `content` but not from the tokens: the same answer, offset by what was stripped
        shift = joined.find(data) if data.strip() else -1
        if shift < 0 or joined[:shift].strip() or joined[shift + len(data) :].strip():
            return None
    try:
        tree = parse_spans(content)
    except ValueError:
        return None
    ends = list(accumulate(map(len, pieces)))
    starts = [0, *ends[:-1]]
    logprobs = [t.logprob for t in tokens]
    to_byte = None if content.isascii() else _ByteOffsets(content, len(data))
    margins: dict[str, float] = {}
    found: list[float] = []

    def leaf(kind: Leaf, node: Any, path: str) -> float | None:
        if not isinstance(node, Span | SpanDict | SpanList):
            return None  # the key is missing
        start, end = node.start, node.end
        if isinstance(node, Span) and isinstance(node.value, str) and end - start > 2:
            start, end = start + 1, end - 1  # quotes are one byte and one character each
        if to_byte is not None:
            start, end = to_byte(start), to_byte(end)
        start, end = start + shift, end + shift
        # tokens are in order and their ends never decrease, so the overlapping ones are the
        # run from the first ending after `start` to the last starting before `end`
        lo, hi = bisect_right(ends, start), bisect_left(starts, end)
        if lo >= hi:
            return None
        p = min(1.0, math.exp(math.fsum(logprobs[lo:hi])))
        if kind.kind in ("enum", "bool"):
            margins[path] = _margin(tokens[lo], pieces[lo])
        found.append(p)
        return p

    values: dict[str, Any] = mirror(shape, tree, leaf)
    return Confidence(values, margins, min(found) if found else None)
