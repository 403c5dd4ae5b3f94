"""Importing the Pydantic model a pipeline names: `package.module:Class` or `file.py:Class`."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from pydantic import BaseModel

from ..errors import ConfigError

__all__ = ["load_model"]


def load_model(ref: str, base_dir: Path | None = None) -> type[BaseModel]:
    """Import the Pydantic model named by `ref`: `package.module:Class` or `path/to/file.py:Class`.

    A module ref is imported with `base_dir` and the working directory on `sys.path`; a file ref
    is read relative to `base_dir`. Every failure is a one-line `ConfigError` naming the ref.
    """
    module_ref, sep, cls_name = ref.rpartition(":")
    if not sep or not module_ref or not cls_name:
        raise ConfigError(f"schema {ref!r}: expected 'package.module:Class' or 'file.py:Class'")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        if module_ref.endswith(".py"):
            path = Path(module_ref)
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise ConfigError(f"schema {ref!r}: file {str(path)!r} does not exist")
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            module_name = f"_extract_schema_{digest}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"schema {ref!r}: cannot import {str(path)!r}")
            module = importlib.util.module_from_spec(spec)
            # registered before exec so pydantic can resolve the module's own forward references
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            where = f"file {module_ref!r}"
        else:
            for entry in (str(Path.cwd()), str(base)):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
            module = importlib.import_module(module_ref)
            where = f"module {module_ref!r}"
    except ConfigError:
        raise
    except ModuleNotFoundError as e:
        raise ConfigError(f"schema {ref!r}: no module named {e.name!r}") from e
    except Exception as e:
        raise ConfigError(f"schema {ref!r}: importing failed: {type(e).__name__}: {e}") from e
    obj = getattr(module, cls_name, None)
    if obj is None:
        raise ConfigError(f"schema {ref!r}: {where} has no class {cls_name!r}")
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise ConfigError(f"schema {ref!r}: {cls_name!r} is not a pydantic BaseModel subclass")
    return obj
