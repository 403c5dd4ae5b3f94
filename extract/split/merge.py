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
from ..trust.shape import Fields, Items, Leaf, Shape

__all__ = ["POLICIES", "Merger", "Policy"]

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


def first(values: list[Any]) -> Any:
    return next((v for v in values if _present(v)), _absent(values))


def vote(values: list[Any]) -> Any:
    present = [v for v in values if _present(v)]
    if not present:
        return _absent(values)
    counts = Counter(_canonical(v) for v in present)
    top = max(counts.values())
    # the earliest value among the most common: `present` is in part order
    return next(v for v in present if counts[_canonical(v)] == top)


def union(values: list[Any]) -> Any:
    lists = [v for v in values if isinstance(v, list)]
    if not lists:
        return None
    seen: set[str] = set()
    out = []
    for items in lists:
        for item in items:
            key = _canonical(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def concat(values: list[Any]) -> Any:
    # distinct values only: the overlap between parts often gives the same sentence twice
    kept = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
    return "\n".join(kept) if kept else _absent(values)


def extreme(values: list[Any], kind: str, *, largest: bool) -> Any:
    key = _order_key(kind)
    best, best_key = None, None
    for v in values:
        if v is None:
            continue
        try:
            k = key(v)
        except (ValueError, TypeError, InvalidOperation):
            continue  # not comparable: left to validation, which the merged answer meets again
        if best_key is None or (k > best_key if largest else k < best_key):
            best, best_key = v, k
    return best


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
        return self._merge(self.shape, answers, "")

    def _merge(self, shape: Shape, values: list[Any], path: str) -> Any:
        policy = self.policy(path, shape)
        if policy is None:
            assert isinstance(shape, Fields)
            dicts = [v for v in values if isinstance(v, dict)]
            if not dicts:
                return None
            prefix = f"{path}." if path else ""
            return {
                k: self._merge(s, [d.get(k) for d in dicts], prefix + k) for k, s in shape.fields
            }
        if policy == "first":
            return first(values)
        if policy == "vote":
            return vote(values)
        if policy == "union":
            return union(values)
        if policy == "concat":
            return concat(values)
        assert isinstance(shape, Leaf)
        return extreme(values, shape.kind, largest=policy == "max")


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
