"""The fields an evaluation can name: dotted paths through the schema, and the values at them.

A path is field keys joined by dots, without list indexes: `vendor.name`, `line_items`,
`line_items.amount`. Its value in a row is the value there; a path that crosses a list
(`line_items.amount`) has a list as its value, one entry per item (lists below lists are
concatenated). A nested model's own path (`vendor`) is not compared as one value: a labels
column of that name holds an object whose keys are expanded into the model's field paths.

The trust columns mirror the schema (extract/trust/shape.py), so the same walk finds a value's
confidence and grounding slots.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..trust.shape import Fields, Items, Leaf, Shape

__all__ = ["FieldPath", "field_paths", "slots_at", "value_at"]


@dataclass(frozen=True)
class FieldPath:
    """One path of the schema: `shape` is what is found at its end."""

    path: str
    shape: Shape
    #: its value is a list: the field is a list, or the path crosses one
    listed: bool

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    @property
    def is_model(self) -> bool:
        """A nested model outside any list: expanded into its fields, never compared whole."""
        return isinstance(self.shape, Fields) and not self.listed

    @property
    def value_shape(self) -> Shape:
        """The shape of the path's value: a list of its end's values where it crosses one."""
        if self.listed and not isinstance(self.shape, Items):
            return Items(self.shape)
        return self.shape

    @property
    def item(self) -> Shape:
        """The shape of each entry of a listed path's value."""
        shape = self.shape
        return shape.item if isinstance(shape, Items) else shape


def field_paths(shape: Fields) -> dict[str, FieldPath]:
    """Every path of a model's mirror shape, in field order."""
    out: dict[str, FieldPath] = {}

    def walk(fields: Fields, prefix: str, crossed: bool) -> None:
        for key, sub in fields.fields:
            path = f"{prefix}.{key}" if prefix else key
            listed = crossed or isinstance(sub, Items)
            out[path] = FieldPath(path, sub, listed)
            inner = sub
            while isinstance(inner, Items):
                inner = inner.item
            if isinstance(inner, Fields):
                walk(inner, path, listed)

    walk(shape, "", False)
    return out


def _child(shape: Shape, key: str) -> Shape | None:
    if isinstance(shape, Fields):
        for k, sub in shape.fields:
            if k == key:
                return sub
    return None


def _is_list(shape: Shape | None, parts: tuple[str, ...]) -> bool:
    if isinstance(shape, Items):
        return True
    if not parts or shape is None:
        return False
    return _is_list(_child(shape, parts[0]), parts[1:])


def value_at(value: Any, shape: Shape, parts: tuple[str, ...]) -> Any:
    """The value at `parts` below `value` (a row's fields as a dict, shaped like `shape`)."""
    if not parts or value is None:
        return value
    if isinstance(shape, Items):
        if not isinstance(value, list):
            return None
        flatten = _is_list(shape.item, parts)
        out: list[Any] = []
        for item in value:
            found = value_at(item, shape.item, parts)
            if flatten:
                out.extend(found or [])
            else:
                out.append(found)
        return out
    child = _child(shape, parts[0])
    if child is None or not isinstance(value, dict):
        return None
    return value_at(value.get(parts[0]), child, parts[1:])


def slots_at(value: Any, shape: Shape, parts: tuple[str, ...]) -> list[Any]:
    """The leaf slots of a trust column (`_confidence`, `_grounding`) under `parts`: one per leaf
    value there, every item of every list crossed included; nulls for absent ones."""
    return list(_slots(value, shape, parts))


def _slots(value: Any, shape: Shape | None, parts: tuple[str, ...]) -> Iterator[Any]:
    if shape is None:
        return
    if isinstance(shape, Leaf):
        if not parts:
            yield value
        return
    if value is None:
        return
    if isinstance(shape, Items):
        if isinstance(value, list):
            for item in value:
                yield from _slots(item, shape.item, parts)
        return
    if not isinstance(value, dict):
        return
    if parts:
        yield from _slots(value.get(parts[0]), _child(shape, parts[0]), parts[1:])
        return
    for key, sub in shape.fields:
        yield from _slots(value.get(key), sub, ())
