"""Strategy implementations: each module registers the phase actions its
`states/<strategy>.yaml` names. Unimplemented phases keep the engine's placeholders."""

from __future__ import annotations

import importlib

from migrator.engine.registry import Registry

MODULES = {"unload-copy": "unload_copy", "modify": "modify", "snapshot-restore": "snapshot_restore"}


def registry_for(strategy: str) -> Registry:
    """The strategy's own actions and guards (empty where none are written yet)."""
    module_name = MODULES.get(strategy)
    if module_name is None:
        return Registry()
    try:
        module = importlib.import_module(f"migrator.strategies.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"migrator.strategies.{module_name}":
            return Registry()
        raise
    return module.registry()  # type: ignore[no-any-return]
