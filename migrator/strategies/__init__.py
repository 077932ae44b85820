"""Strategy implementations: each module registers the phase actions its
`states/<strategy>.yaml` names. Unimplemented phases keep the engine's placeholders."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from migrator.engine.registry import Registry

if TYPE_CHECKING:
    from migrator.config import LoadedConfig
    from migrator.store import TableView

MODULES = {"unload-copy": "unload_copy", "modify": "modify", "snapshot-restore": "snapshot_restore"}


def _module(strategy: str) -> Any:
    module_name = MODULES.get(strategy)
    if module_name is None:
        return None
    try:
        return importlib.import_module(f"migrator.strategies.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"migrator.strategies.{module_name}":
            return None
        raise


def reconciler_for(strategy: str, config: LoadedConfig) -> Callable[[TableView], dict[str, Any]] | None:
    """How the strategy decides where a table whose worker died goes (e.g. from load markers)."""
    module = _module(strategy)
    make = getattr(module, "reconciler", None)
    return make(config) if make else None  # type: ignore[no-any-return]


def registry_for(strategy: str) -> Registry:
    """The strategy's own actions and guards (empty where none are written yet)."""
    module = _module(strategy)
    return module.registry() if module is not None else Registry()  # type: ignore[no-any-return]
