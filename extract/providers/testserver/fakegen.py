"""Deterministic fake answers that conform to a strict JSON schema.

The test server (`extract.providers.testserver`) answers every chat completion with
`generate(schema, answer_seed(messages, seed))`: the same row always gets the same answer, whatever
re-ask turns were appended, so tests can compute the exact values that land in the output table
with `expected_answer(request_body)`.

A schema is compiled once into a tree of small closures (cached by its JSON text), because the
benchmark runs the server at hundreds of requests per second and walking the raw schema dict on
every request would cost more than the HTTP handling itself.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import random
import string
from collections.abc import Callable
from typing import Any

__all__ = ["answer_seed", "compile_schema", "expected_answer", "generate", "response_schema"]

# The regex parser behind `re` (sre_parse); the public `sre_parse` alias warns on import and
# typeshed has no stubs for the private modules, so they are loaded untyped.
sre_parse: Any = importlib.import_module("re._parser")
sre_c: Any = importlib.import_module("re._constants")

#: a generator node: (rng, depth) -> JSON value
Node = Callable[[random.Random, int], Any]

#: past this nesting depth, anyOf prefers null and arrays take their fewest items
SOFT_DEPTH = 6
#: past this depth the schema cannot be satisfied finitely (e.g. required recursion)
HARD_DEPTH = 40
#: extra repetitions a regex `*`, `+` or `{n,}` may add beyond its minimum
PATTERN_EXTRA = 3
#: default item count range for arrays without bounds
DEFAULT_MAX_ITEMS = 3
#: plain strings are kept at most this long (descriptions may ask for a maximum length)
PLAIN_MAX_CHARS = 24

WORDS = (
    "acme", "alpha", "amber", "atlas", "basil", "birch", "blue", "cedar", "coral", "delta",
    "ember", "fern", "frost", "gamma", "harbor", "iris", "jade", "juniper", "kilo", "lemon",
    "lunar", "maple", "mint", "nova", "oak", "olive", "orbit", "pearl", "pine", "quartz",
    "river", "sage", "slate", "solar", "stone", "tango", "topaz", "umber", "violet", "willow",
)  # fmt: skip

_PRINTABLE = [chr(c) for c in range(32, 127)]
_CATEGORY_CHARS: dict[Any, str] = {
    sre_c.CATEGORY_DIGIT: string.digits,
    sre_c.CATEGORY_NOT_DIGIT: string.ascii_letters + "_- ",
    sre_c.CATEGORY_SPACE: " ",
    sre_c.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
    sre_c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre_c.CATEGORY_NOT_WORD: " -.,:;!?",
    sre_c.CATEGORY_LINEBREAK: "\n",
    sre_c.CATEGORY_NOT_LINEBREAK: string.ascii_letters + string.digits,
}


def generate(schema: dict[str, Any], seed: bytes | int) -> Any:
    """Return a deterministic JSON value conforming to `schema`, drawn from `seed`."""
    # Keys are not sorted: property order is part of the schema (answers follow it).
    node = compile_schema(json.dumps(schema, separators=(",", ":")))
    return node(random.Random(seed), 0)


def answer_seed(messages: list[Any], seed: int | None) -> bytes:
    """Identify the row a request is about.

    Hashes the first system message, the first user message (text parts and image URLs) and the
    request `seed`. Later turns (a re-ask appending the bad answer and the errors) are ignored, so
    every attempt at a row draws the same canonical answer.
    """
    h = hashlib.blake2b(digest_size=16)
    seen_system = seen_user = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "system" and not seen_system:
            seen_system = True
            h.update(b"\x00system\x00")
        elif role == "user" and not seen_user:
            seen_user = True
            h.update(b"\x00user\x00")
        else:
            continue
        _hash_content(h, message.get("content"))
        if seen_system and seen_user:
            break
    h.update(b"\x00seed\x00" + str(seed).encode())
    return h.digest()


def expected_answer(request_body: dict[str, Any]) -> Any:
    """The answer the test server gives (without faults) to a chat-completion request body."""
    schema = response_schema(request_body)
    seed = answer_seed(request_body.get("messages") or [], request_body.get("seed"))
    if schema is None:
        return {}
    return generate(schema, seed)


def response_schema(request_body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema asked for by `response_format`, or None when no schema was given."""
    fmt = request_body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        return None
    schema: dict[str, Any] = spec["schema"]
    return schema


def _hash_content(h: Any, content: Any) -> None:
    if isinstance(content, str):
        h.update(b"t" + content.encode())
        return
    if not isinstance(content, list):
        return
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            h.update(b"\x01t" + str(part.get("text", "")).encode())
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else image
            h.update(b"\x01i" + str(url).encode())


# --------------------------------------------------------------------------- schema compilation


@functools.lru_cache(maxsize=256)
def compile_schema(schema_text: str) -> Node:
    """Compile a schema (given as JSON text, the cache key) into a generator node."""
    root = json.loads(schema_text)
    if not isinstance(root, dict):
        raise ValueError("schema must be a JSON object")
    return _Compiler(root).node(root)


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Node] = {}

    def node(self, schema: Any) -> Node:
        if schema is True or schema == {}:
            return lambda rng, depth: None
        if not isinstance(schema, dict):
            raise ValueError(f"cannot generate from schema {schema!r}")
        if "$ref" in schema:
            return self.ref(schema["$ref"])
        if "const" in schema:
            return _const(schema["const"])
        if "enum" in schema:
            return _enum(list(schema["enum"]))
        if "anyOf" in schema or "oneOf" in schema:
            return self.any_of(schema.get("anyOf") or schema["oneOf"])
        if "allOf" in schema:
            # Older Pydantic wrapped a lone $ref in allOf; merging the general case is out of scope.
            return self.node(schema["allOf"][0])
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.any_of([{**schema, "type": t} for t in kind])
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        if kind == "object":
            return self.object(schema)
        if kind == "array":
            return self.array(schema)
        if kind == "string":
            return _string(schema)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return lambda rng, depth: rng.random() < 0.5
        if kind == "null":
            return _const(None)
        raise ValueError(f"unknown schema type {kind!r}")

    def ref(self, ref: str) -> Node:
        if ref not in self.refs:
            # Placeholder first, so a recursive reference finds itself while being compiled.
            self.refs[ref] = _const(None)
            target = self.resolve(ref)
            compiled = self.node(target)
            self.refs[ref] = compiled
        refs = self.refs
        return lambda rng, depth: refs[ref](rng, depth)

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, got {ref!r}")
        target: Any = self.root
        for part in ref[1:].split("/"):
            if part:
                target = target[part.replace("~1", "/").replace("~0", "~")]
        return target

    def any_of(self, options: list[Any]) -> Node:
        nodes = [self.node(o) for o in options]
        nulls = [n for o, n in zip(options, nodes, strict=True) if _is_null(o)]
        others = [n for o, n in zip(options, nodes, strict=True) if not _is_null(o)]
        shallow = others[0] if others else nodes[0]
        deep = nulls[0] if nulls else shallow

        def gen(rng: random.Random, depth: int) -> Any:
            if depth >= SOFT_DEPTH:
                return deep(rng, depth)
            # Real answers mostly fill optional fields; a quarter null keeps both paths exercised.
            if nulls and others and rng.random() < 0.75:
                return rng.choice(others)(rng, depth)
            return rng.choice(nodes)(rng, depth)

        return gen

    def object(self, schema: dict[str, Any]) -> Node:
        props = [(name, self.node(sub)) for name, sub in (schema.get("properties") or {}).items()]

        def gen(rng: random.Random, depth: int) -> Any:
            if depth > HARD_DEPTH:
                raise ValueError("schema recursion has no finite instance")
            return {name: node(rng, depth + 1) for name, node in props}

        return gen

    def array(self, schema: dict[str, Any]) -> Node:
        items = self.node(schema.get("items", {}))
        lo = int(schema.get("minItems", 0))
        hi = int(schema.get("maxItems", max(lo, DEFAULT_MAX_ITEMS)))
        hi = min(hi, lo + DEFAULT_MAX_ITEMS)

        def gen(rng: random.Random, depth: int) -> Any:
            if depth > HARD_DEPTH:
                raise ValueError("schema recursion has no finite instance")
            count = lo if depth >= SOFT_DEPTH else rng.randint(lo, hi)
            return [items(rng, depth + 1) for _ in range(count)]

        return gen


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _const(value: Any) -> Node:
    text = json.dumps(value)
    if isinstance(value, (dict, list)):
        # A fresh copy each time, so callers may mutate the answer.
        return lambda rng, depth: json.loads(text)
    return lambda rng, depth: value


def _enum(values: list[Any]) -> Node:
    if not values:
        raise ValueError("enum without values")
    return lambda rng, depth: rng.choice(values)


# --------------------------------------------------------------------------- scalars


def _integer(schema: dict[str, Any]) -> Node:
    lo, hi = _int_bounds(schema)
    step = schema.get("multipleOf")
    if step is not None and float(step) == int(step) and int(step) > 0:
        m = int(step)
        klo, khi = -(-lo // m), hi // m
        if klo > khi:
            raise ValueError(f"no multiple of {m} in [{lo}, {hi}]")
        return lambda rng, depth: rng.randint(klo, khi) * m
    return lambda rng, depth: rng.randint(lo, hi)


def _int_bounds(schema: dict[str, Any]) -> tuple[int, int]:
    lo: int | None = None
    hi: int | None = None
    if "minimum" in schema:
        lo = math.ceil(schema["minimum"])
    if "exclusiveMinimum" in schema:
        x = math.floor(schema["exclusiveMinimum"]) + 1
        lo = x if lo is None else max(lo, x)
    if "maximum" in schema:
        hi = math.floor(schema["maximum"])
    if "exclusiveMaximum" in schema:
        x = math.ceil(schema["exclusiveMaximum"]) - 1
        hi = x if hi is None else min(hi, x)
    if lo is None and hi is None:
        lo, hi = 0, 100
    elif lo is None:
        assert hi is not None
        lo = hi - 100
    elif hi is None:
        hi = lo + 100
    if lo > hi:
        raise ValueError(f"empty integer range [{lo}, {hi}]")
    return lo, hi


def _number(schema: dict[str, Any]) -> Node:
    lo = float(schema.get("minimum", -math.inf))
    hi = float(schema.get("maximum", math.inf))
    xlo = schema.get("exclusiveMinimum")
    xhi = schema.get("exclusiveMaximum")
    if xlo is not None:
        lo = max(lo, float(xlo))
    if xhi is not None:
        hi = min(hi, float(xhi))
    if math.isinf(lo) and math.isinf(hi):
        lo, hi = 0.0, 100.0
    elif math.isinf(lo):
        lo = hi - 100.0
    elif math.isinf(hi):
        hi = lo + 100.0

    def ok(v: float) -> bool:
        if v < lo or v > hi:
            return False
        if xlo is not None and v <= xlo:
            return False
        return not (xhi is not None and v >= xhi)

    step = schema.get("multipleOf")
    if step is not None:
        m = float(step)
        klo, khi = math.ceil(lo / m), math.floor(hi / m)

        def gen_step(rng: random.Random, depth: int) -> Any:
            # Float multiples are checked as `v / m` being integral (jsonschema's rule), which
            # e.g. 0.3 / 0.01 fails; try a few candidates and keep one that passes exactly.
            v = 0.0
            for _ in range(16):
                k = rng.randint(klo, khi)
                v = float(round(k * m, 12))
                q = v / m
                if ok(v) and q == int(q):
                    return v
            return v

        return gen_step

    def gen(rng: random.Random, depth: int) -> Any:
        v = round(rng.uniform(lo, hi), 2)
        return v if ok(v) else (lo + hi) / 2

    return gen


def _string(schema: dict[str, Any]) -> Node:
    fmt = schema.get("format")
    if fmt in _FORMATS:
        return _FORMATS[fmt]
    if "pattern" in schema:
        return _pattern(schema["pattern"])
    min_len = int(schema.get("minLength", 0))
    max_len = int(schema.get("maxLength", PLAIN_MAX_CHARS))
    max_len = max(min(max_len, PLAIN_MAX_CHARS), min_len)

    def gen(rng: random.Random, depth: int) -> Any:
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 3))]
        text = " ".join(words).capitalize()
        while len(text) < min_len:
            text += " " + rng.choice(WORDS)
        return text[:max_len]

    return gen


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _date(rng: random.Random) -> str:
    return f"{rng.randint(2000, 2030):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _clock(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


# date-time and time carry "Z": RFC 3339 requires an offset, and Pydantic's plain `datetime`
# accepts it (only `NaiveDatetime` would refuse, and a schema cannot say which of the two it is).
_FORMATS: dict[str, Node] = {
    "date": lambda rng, depth: _date(rng),
    "date-time": lambda rng, depth: f"{_date(rng)}T{_clock(rng)}Z",
    "time": lambda rng, depth: f"{_clock(rng)}Z",
    "duration": lambda rng, depth: (
        f"P{rng.randint(0, 9)}DT{rng.randint(0, 23)}H{rng.randint(0, 59)}M"
    ),
    "uuid": lambda rng, depth: (
        f"{_hex(rng, 8)}-{_hex(rng, 4)}-4{_hex(rng, 3)}-{rng.choice('89ab')}{_hex(rng, 3)}-"
        f"{_hex(rng, 12)}"
    ),
    "email": lambda rng, depth: f"{rng.choice(WORDS)}.{rng.choice(WORDS)}@example.com",
    "hostname": lambda rng, depth: f"{rng.choice(WORDS)}.example.com",
    "ipv4": lambda rng, depth: ".".join(str(rng.randint(1, 254)) for _ in range(4)),
    "ipv6": lambda rng, depth: "2001:db8:" + ":".join(_hex(rng, 4) for _ in range(6)),
}


# --------------------------------------------------------------------------- regex patterns


def _pattern(pattern: str) -> Node:
    parsed = sre_parse.parse(pattern)

    def gen(rng: random.Random, depth: int) -> Any:
        out: list[str] = []
        _emit(list(parsed), rng, out, {})
        return "".join(out)

    return gen


def _emit(items: list[Any], rng: random.Random, out: list[str], groups: dict[int, str]) -> None:
    for op, arg in items:
        if op is sre_c.LITERAL:
            out.append(chr(arg))
        elif op is sre_c.NOT_LITERAL:
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != arg]))
        elif op is sre_c.ANY:
            out.append(rng.choice(string.ascii_letters + string.digits))
        elif op is sre_c.IN:
            out.append(_class_char(arg, rng))
        elif op is sre_c.BRANCH:
            _emit(list(rng.choice(arg[1])), rng, out, groups)
        elif op is sre_c.SUBPATTERN:
            group, sub = arg[0], arg[-1]
            start = len(out)
            _emit(list(sub), rng, out, groups)
            if group is not None:
                groups[group] = "".join(out[start:])
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            lo, hi, sub = arg
            top = lo + PATTERN_EXTRA if hi >= sre_c.MAXREPEAT else min(hi, lo + PATTERN_EXTRA)
            for _ in range(rng.randint(lo, top)):
                _emit(list(sub), rng, out, groups)
        elif op is sre_c.ATOMIC_GROUP:
            _emit(list(arg), rng, out, groups)
        elif op is sre_c.GROUPREF:
            out.append(groups.get(arg, ""))
        elif op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
            # Anchors and lookarounds produce no text; a generated full match satisfies anchors.
            continue
        else:
            raise ValueError(f"unsupported regex construct {op}")


def _class_char(items: list[Any], rng: random.Random) -> str:
    negate = bool(items) and items[0][0] is sre_c.NEGATE
    if negate:
        allowed = [c for c in _PRINTABLE if not _in_class(c, items[1:])]
        return rng.choice(allowed)
    op, arg = rng.choice(items)
    if op is sre_c.LITERAL:
        return chr(arg)
    if op is sre_c.RANGE:
        return chr(rng.randint(arg[0], arg[1]))
    if op is sre_c.CATEGORY:
        return rng.choice(_CATEGORY_CHARS[arg])
    raise ValueError(f"unsupported regex class item {op}")


def _in_class(c: str, items: list[Any]) -> bool:
    code = ord(c)
    for op, arg in items:
        if op is sre_c.LITERAL and code == arg:
            return True
        if op is sre_c.RANGE and arg[0] <= code <= arg[1]:
            return True
        if op is sre_c.CATEGORY and c in _category_members(arg):
            return True
    return False


def _category_members(category: Any) -> str:
    if category is sre_c.CATEGORY_DIGIT:
        return string.digits
    if category is sre_c.CATEGORY_WORD:
        return string.ascii_letters + string.digits + "_"
    if category is sre_c.CATEGORY_SPACE:
        return string.whitespace
    if category is sre_c.CATEGORY_NOT_DIGIT:
        return "".join(c for c in _PRINTABLE if c not in string.digits)
    if category is sre_c.CATEGORY_NOT_WORD:
        return "".join(c for c in _PRINTABLE if not (c.isalnum() or c == "_"))
    if category is sre_c.CATEGORY_NOT_SPACE:
        return "".join(c for c in _PRINTABLE if c != " ")
    return ""
