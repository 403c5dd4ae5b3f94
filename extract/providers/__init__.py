"""Where requests go: one module per provider, one registry, the test server.

    base.py         `Provider` (capability flags, identity, request fields, start/stop) and
                    `Endpoint`; the base class is any OpenAI-compatible endpoint
    openai.py       `openai`: any OpenAI-compatible endpoint at `model.base_url`
    openrouter.py   `openrouter`: routing, `require_parameters`, reasoning details
    local/          `local`: llama-server built from source, running a GGUF model here
    mock.py         `mock`: the bundled test server, made-up answers
    testserver/     that test server (and `fakegen`, its answer generator)

`model.provider: api` (the default) picks `openrouter` when `model.base_url` is OpenRouter's,
else `openai`. A plug-in adds a provider with `register_provider("name", "pkg.module:Class")`
or an entry point in the group `extract.providers`; the built-in ones are registered the same way.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import PipelineConfig
    from .base import Provider

__all__ = ["get_provider", "provider_names", "register_provider"]

#: name -> "module:Class"; a module is imported only when its provider is used
_REGISTRY: dict[str, str] = {}


def register_provider(name: str, target: str) -> None:
    """Make `model.provider: name` use the Provider subclass at `target` ("pkg.module:Class")."""
    _REGISTRY[name] = target


for _name, _target in (
    ("openai", "extract.providers.openai:OpenAICompatible"),
    ("openrouter", "extract.providers.openrouter:OpenRouter"),
    ("local", "extract.providers.local.provider:Local"),
    ("mock", "extract.providers.mock:Mock"),
):
    register_provider(_name, _target)

_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in entry_points(group="extract.providers"):
            _REGISTRY.setdefault(ep.name, ep.value)


def provider_names() -> list[str]:
    """Every name `model.provider` accepts (`api` picks one by `model.base_url`)."""
    _load_plugins()
    return ["api", *sorted(_REGISTRY)]


def get_provider(config: PipelineConfig) -> Provider:
    """The provider the pipeline names, bound to its config."""
    from .openrouter import is_openrouter

    name = config.model.provider
    if name == "api":
        name = "openrouter" if is_openrouter(config.model.base_url) else "openai"
    if name not in _REGISTRY:
        _load_plugins()
    target = _REGISTRY.get(name)
    if target is None:
        raise ConfigError(
            f"{config.file}:model.provider: unknown provider {name!r}; "
            f"expected one of {', '.join(provider_names())}"
        )
    module_name, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"{config.file}:model.provider: provider {name!r} cannot be loaded from {target}: {e}"
        ) from e
    provider: Provider = cls(config)
    return provider
