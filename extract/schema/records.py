"""Record classes as Pydantic reads them: models, dataclasses, TypedDicts and NamedTuples.

`record_kind` tells which kind a class is, `record_fields` lists its fields as Pydantic would
validate them (a `FieldInfo` each, and whether a TypedDict key may be missing), `record_doc` is
the docstring worth sending to a model, and `def_name` the class's unique `$defs` name.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin

import typing_extensions
from pydantic import AliasChoices, AliasPath, BaseModel
from pydantic.fields import FieldInfo

from ..errors import SchemaError

__all__ = ["def_name", "record_doc", "record_fields", "record_kind", "wire_key"]

#: one field of a record: its name, how Pydantic reads it, whether the key may be missing
RecordField = tuple[str, FieldInfo, bool]


def record_kind(tp: Any) -> str | None:
    """`model`, `dataclass`, `typeddict` or `namedtuple` when `tp` is a record class."""
    if not isinstance(tp, type):
        return None
    if issubclass(tp, BaseModel):
        return "model"
    if typing_extensions.is_typeddict(tp):
        return "typeddict"
    if dataclasses.is_dataclass(tp):
        return "dataclass"
    if issubclass(tp, tuple) and hasattr(tp, "_fields"):
        return "namedtuple"
    return None


def record_fields(
    cls: type[Any], kind: str, path: str, fail: Callable[[str, str], SchemaError]
) -> list[RecordField]:
    """Each field of a record as Pydantic would read it. `fail(path, reason)` builds the error
    for a class whose annotations do not resolve."""
    if kind == "model":
        return [(n, info, False) for n, info in cls.model_fields.items()]
    pydantic_fields = getattr(cls, "__pydantic_fields__", None)
    if kind == "dataclass" and isinstance(pydantic_fields, dict):
        return [(n, info, False) for n, info in pydantic_fields.items()]
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as e:
        raise fail(path, f"{cls.__name__} has unresolved annotations: {e}") from e
    out: list[RecordField] = []
    if kind == "dataclass":
        for f in dataclasses.fields(cls):
            if not f.init:
                continue  # Pydantic does not read these either
            default = f.default if f.default is not dataclasses.MISSING else ...
            out.append((f.name, FieldInfo.from_annotated_attribute(hints[f.name], default), False))
    elif kind == "namedtuple":
        defaults = getattr(cls, "_field_defaults", {})
        for name in cls._fields:
            info = FieldInfo.from_annotated_attribute(hints[name], defaults.get(name, ...))
            out.append((name, info, False))
    else:  # typeddict
        required = cls.__required_keys__
        for name, hint in hints.items():
            # the wrapper decides; `__required_keys__` alone is wrong when the annotations are
            # strings (`from __future__ import annotations`) on older Pythons
            origin = get_origin(hint)
            missing = origin is not typing_extensions.Required and (
                origin is typing_extensions.NotRequired or name not in required
            )
            if origin in (typing_extensions.Required, typing_extensions.NotRequired):
                hint = get_args(hint)[0]
            out.append((name, FieldInfo.from_annotation(hint), missing))
    return out


def record_doc(cls: type[Any], kind: str) -> str | None:
    """The class's docstring, unless it is one Python or Pydantic wrote (which says nothing to a
    model)."""
    doc = cls.__doc__
    if kind == "model" and doc == BaseModel.__doc__:
        return None
    # namedtuple and dataclass write their signature ("Point(x, y)") as the docstring
    if kind in ("namedtuple", "dataclass") and doc and doc.startswith(f"{cls.__name__}("):
        return None
    if kind == "typeddict" and doc == dict.__doc__:
        return None
    return (inspect.cleandoc(doc) or None) if doc else None


def def_name(cls: type[Any], taken: set[str]) -> str:
    """The class's name made a valid `$defs` key, numbered when another record took it."""
    base = re.sub(r"[^a-zA-Z0-9_-]", "_", cls.__name__).strip("_") or "Model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def wire_key(name: str, info: FieldInfo) -> str | None:
    """The key a field has in answers and in JSON columns: its validation alias (the first of
    `AliasChoices`), else its alias, else its name. An `AliasPath` describes where the value sits
    in some input document; an answer puts it under the field's name, which Pydantic also reads
    when told to validate by name. None: an alias strict mode cannot express."""
    alias = info.validation_alias
    if alias is None:
        return info.alias or name
    if isinstance(alias, AliasChoices):
        alias = alias.choices[0]
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasPath):
        return name
    return None
