"""Lazy exports: a package names what it exports and the module each lives in, and imports a
module only when one of its names is first used. `import extract` then costs a few milliseconds,
and `extract --help` never pays for duckdb, pyarrow or aiohttp."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `table[name]` (a module path relative to `package`)."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    return __getattr__
