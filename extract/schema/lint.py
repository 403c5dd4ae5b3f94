"""The schema linter: what strict mode does to each field of a model, and what a user can do.

`check_model(Model)` lists every field that is `rewritten` (sent in another form and decoded
back: dicts, mixed tuples, Json[...], string lengths as a pattern, aliases), `weakened` (a check
moved into the description and enforced by Pydantic only: set uniqueness, past/future dates,
bounds on decimals and dates, lengths that cannot join the user's pattern) or `refused` (with the
reason and the fix). `render_notes` gives the table `extract schema --check` prints, or JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel

from ..display import text_table
from ..errors import SchemaError
from .compiler import compile_schema
from .tree import Note
from .types import _reason, analyze

__all__ = ["Note", "check_model", "has_refusals", "render_notes"]


def check_model(model: type[BaseModel]) -> list[Note]:
    """Every rewritten, weakened or refused field of `model`, in field order (never raises
    `SchemaError`: a refusal is a note)."""
    try:
        notes = list(analyze(model, collect=True).notes)
    except SchemaError as e:  # the root itself cannot be sent (RootModel, extra="allow")
        return [Note(e.field_path or model.__name__, "refused", _reason(e), e.fix)]
    if not has_refusals(notes):
        try:
            compile_schema(model)
        except SchemaError as e:  # the size limits, or a bad schema name
            notes.append(Note(e.field_path or model.__name__, "refused", _reason(e), e.fix))
    return notes


def has_refusals(notes: Sequence[Note]) -> bool:
    """True when some field cannot be sent at all."""
    return any(n.action == "refused" for n in notes)


def render_notes(notes: Sequence[Note], fmt: str = "text") -> str:
    """`text`: a table of field, action, what happens and the fix; `json`: a JSON list."""
    rows = [
        {"field": n.path, "action": n.action, "what happens": n.detail, "fix": n.fix} for n in notes
    ]
    if fmt == "json":
        return json.dumps(
            [
                {"field": n.path, "action": n.action, "detail": n.detail, "fix": n.fix}
                for n in notes
            ],
            indent=2,
        )
    if not rows:
        return ""
    return text_table(rows, ["field", "action", "what happens", "fix"], cell_chars=None)
