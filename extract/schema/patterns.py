"""String lengths as a strict-mode `pattern`: strict mode refuses `minLength`/`maxLength`.

`length_pattern(constraints)` gives a pattern that allows exactly the lengths the constraints
allow, combined with the user's own pattern when that is possible without lookahead (which strict
mode refuses): an anchored pattern of one atom and a quantifier, such as `^[A-Z0-9]+$`, takes the
intersection of the two ranges (`^[A-Z0-9]{3,8}$`). Any other pattern stays as it is and the
lengths are only described. Regex engines count UTF-16 code units where Pydantic counts code
points, so a string with characters outside the BMP may still fail validation; Pydantic has the
last word.
"""

from __future__ import annotations

import re

__all__ = ["length_pattern"]

# one atom: a character class, an escape, a dot or a plain character
_ATOM = r"(?:\[(?:[^\]\\]|\\.)+\]|\\.|\.|[^\\^$.|?*+()\[\]{}])"
_QUANT = r"(?:[*+?]|\{\d+\}|\{\d+,\d*\})?"
_SIMPLE = re.compile(rf"^\^({_ATOM})({_QUANT})\$$")
# any character, newlines included (a dot stops at a line break)
_ANY = r"[\s\S]"


def _range(quant: str) -> tuple[int, int | None]:
    if quant == "":
        return 1, 1
    if quant == "*":
        return 0, None
    if quant == "+":
        return 1, None
    if quant == "?":
        return 0, 1
    lo, _, hi = quant[1:-1].partition(",")
    if "," not in quant:
        return int(lo), int(lo)
    return int(lo), int(hi) if hi else None


def _quantifier(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{{{lo},}}"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def length_pattern(
    min_length: int | None, max_length: int | None, pattern: str | None
) -> str | bool | None:
    """The pattern that states the lengths (with the user's `pattern` folded in); None when the
    lengths cannot be combined with `pattern`, False when no string satisfies both."""
    lo, hi = min_length or 0, max_length
    if lo == 0 and hi is None:
        return None
    if pattern is None:
        return f"^{_ANY}{_quantifier(lo, hi)}$"
    m = _SIMPLE.match(pattern)
    if m is None:
        return None
    atom, quant = m.groups()
    plo, phi = _range(quant)
    new_lo = max(lo, plo)
    new_hi = hi if phi is None else phi if hi is None else min(hi, phi)
    if new_hi is not None and new_hi < new_lo:
        return False
    return f"^{atom}{_quantifier(new_lo, new_hi)}$"
