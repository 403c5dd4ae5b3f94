"""Merge the answers of a split row's parts into one answer, field by field.

Each field has a policy, set in the pipeline file (`split.merge: {path: policy}`) or chosen by
its type. Null is "not in this part" to every policy, and an empty list too:

- `first`: the first part's value that is not null;
- `vote`: the most common value (ties: the one an earlier part gave first);
- `union`: lists only: every part's items in order, each distinct item once;
- `min`, `max`: numbers, dates, datetimes and times: the smallest or largest;
- `concat`: strings only: the distinct values joined with a newline, in part order.

By type: a list is a `union`, an enum or a boolean a `vote` (a flag that one part of many
raises is more often noise than a finding; `first` follows one part for all), a nested model is
merged field by field, and every other value (strings, numbers, dates, opaque values) is the
`first`: a document states a total, a name or a date once, and its first part is where the
header is. A nested model given `first` or `vote` is taken whole from one part.

Values are merged in their wire form (the JSON the model answers with), so the merged answer is
validated by the same codec as any answer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from ..errors import ConfigError
from ..trust.grounding import DATE_KINDS, NUMBER_KINDS
from ..trust.shape import Fields, Items, Leaf, Shape, field_path

__all__ = ["POLICIES", "Merger", "Origins", "Policy"]

Policy = Literal["first", "vote", "union", "min", "max", "concat"]
POLICIES: tuple[Policy, ...] = ("first", "vote", "union", "min", "max", "concat")

#: kinds `min` and `max` can order
ORDERED_KINDS = NUMBER_KINDS | DATE_KINDS | {"time"}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _present(value: Any) -> bool:
    return value is not None and value != []


def _order_key(kind: str) -> Callable[[Any], Any]:
    if kind == "decimal":
        return lambda v: Decimal(str(v))
    if kind == "date":
        return lambda v: dt.date.fromisoformat(v) if isinstance(v, str) else v
    if kind == "time":
        return lambda v: dt.time.fromisoformat(v) if isinstance(v, str) else v
    if kind in DATE_KINDS:
        # an ISO `Z` is read by fromisoformat since 3.11
        return lambda v: dt.datetime.fromisoformat(v) if isinstance(v, str) else v
    return lambda v: v


def _absent(values: list[Any]) -> Any:
    """The merge of values none of which is present: an empty list if a part gave one (a
    required list stays a list), else null."""
    return next((v for v in values if v is not None), None)


# Each policy returns the merged value and the part it was taken from (None: no one part).


def first(values: list[Any]) -> tuple[Any, int | None]:
    for i, v in enumerate(values):
        if _present(v):
            return v, i
    return _absent(values), None


def vote(values: list[Any]) -> tuple[Any, int | None]:
    keys = [_canonical(v) if _present(v) else None for v in values]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return _absent(values), None
    top = max(counts.values())
    # the earliest value among the most common
    i = next(i for i, k in enumerate(keys) if k is not None and counts[k] == top)
    return values[i], i


def union(values: list[Any]) -> tuple[Any, list[tuple[int, int]]]:
    """The items, and for each the part and the index there it came from."""
    if not any(isinstance(v, list) for v in values):
        return None, []
    seen: set[str] = set()
    out, origins = [], []
    for i, items in enumerate(values):
        for k, item in enumerate(items if isinstance(items, list) else ()):
            key = _canonical(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
                origins.append((i, k))
    return out, origins


def concat(values: list[Any]) -> tuple[Any, int | None]:
    # distinct values only: the overlap between parts often gives the same sentence twice
    kept = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
    if not kept:
        return _absent(values), None
    if len(kept) == 1:
        return kept[0], values.index(kept[0])
    return "\n".join(kept), None


def extreme(values: list[Any], kind: str, *, largest: bool) -> tuple[Any, int | None]:
    key = _order_key(kind)
    best, best_key, at = None, None, None
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            k = key(v)
        except (ValueError, TypeError, InvalidOperation):
            continue  # not comparable: left to validation, which the merged answer meets again
        if best_key is None or (k > best_key if largest else k < best_key):
            best, best_key, at = v, k, i
    return best, at


#: where the merged answer's values came from: a value path (`lines[1]`, `vendor.city`) ->
#: (part, the path of the same value in that part's answer); a path not listed is under a
#: listed one, or came from no one part (a `concat` of several)
Origins = dict[str, tuple[int, str]]


class Merger:
    """The merge of one schema's answers, its policies checked against the schema."""

    def __init__(self, shape: Fields, policies: dict[str, Policy], *, where: str, model: str):
        self.shape = shape
        self.policies = dict(policies)
        problems = [f"{where}.{path}: {p}" for path, p in self._problems(model)]
        if problems:
            raise ConfigError("; ".join(problems), problems=problems)

    def _problems(self, model: str) -> list[tuple[str, str]]:
        out = []
        for path, policy in self.policies.items():
            shape, why = self._find(path)
            if shape is None:
                out.append((path, f"{why} of {model}"))
                continue
            problem = _fits(policy, shape)
            if problem:
                out.append((path, f"{policy}: {problem}"))
        return out

    def _find(self, path: str) -> tuple[Shape | None, str]:
        shape: Shape = self.shape
        walked: list[str] = []
        for part in path.split("."):
            if isinstance(shape, Items):
                inside = ".".join(walked)
                return None, (
                    f"is inside the list {inside!r}, whose items are merged whole (set the "
                    f"policy of {inside!r})"
                )
            if not isinstance(shape, Fields):
                return None, "is not a field"
            found = dict(shape.fields).get(part)
            if found is None:
                return None, "is not a field"
            shape = found
            walked.append(part)
        return shape, ""

    def policy(self, path: str, shape: Shape) -> Policy | None:
        """The policy of the value at `path` (None: a nested model merged field by field)."""
        chosen = self.policies.get(path)
        if chosen is not None:
            return chosen
        if isinstance(shape, Items):
            return "union"
        if isinstance(shape, Fields):
            return None
        return "vote" if shape.kind in ("bool", "enum") else "first"

    def policies_digest(self) -> str:
        """The policies in force, as they enter a split row's request hash."""
        return _canonical(sorted(self.policies.items()))

    def merge(self, answers: list[Any]) -> Any:
        """The parts' answers (wire form, in part order) merged into one."""
        return self.trace(answers)[0]

    def trace(self, answers: list[Any]) -> tuple[Any, Origins]:
        """The merged answer and where each of its values came from."""
        origins: Origins = {}
        return self._merge(self.shape, answers, "", origins), origins

    def _merge(self, shape: Shape, values: list[Any], path: str, origins: Origins) -> Any:
        """`values`: the value at `path` in each part's answer, in part order."""
        policy = self.policy(field_path(path), shape)
        if policy is None:
            assert isinstance(shape, Fields)
            if not any(isinstance(v, dict) for v in values):
                return None
            prefix = f"{path}." if path else ""
            return {
                k: self._merge(
                    s, [v.get(k) if isinstance(v, dict) else None for v in values], prefix + k,
                    origins,
                )
                for k, s in shape.fields
            }  # fmt: skip
        if policy == "union":
            merged, items = union(values)
            for n, (i, k) in enumerate(items):
                origins[f"{path}[{n}]"] = (i, f"{path}[{k}]")
            return merged
        if policy == "first":
            merged, at = first(values)
        elif policy == "vote":
            merged, at = vote(values)
        elif policy == "concat":
            merged, at = concat(values)
        else:
            assert isinstance(shape, Leaf)
            merged, at = extreme(values, shape.kind, largest=policy == "max")
        if at is not None:
            origins[path] = (at, path)
        return merged


def _fits(policy: Policy, shape: Shape) -> str:
    """What is wrong with `policy` for a value of `shape` ('' when nothing is)."""
    if isinstance(shape, Items):
        kind = "a list"
    elif isinstance(shape, Fields):
        kind = "a nested model"
    else:
        kind = f"{shape.kind} values"
    if policy in ("first", "vote"):
        return ""
    if policy == "union":
        return "" if isinstance(shape, Items) else f"needs a list; the field holds {kind}"
    if policy == "concat":
        ok = isinstance(shape, Leaf) and shape.kind == "str"
        return "" if ok else f"needs a string field; the field holds {kind}"
    ok = isinstance(shape, Leaf) and shape.kind in ORDERED_KINDS
    return "" if ok else f"needs a number, date or time field; the field holds {kind}"
