"""Strategy implementations. Each module supplies the phase actions its `states/<strategy>.yaml`
names (and nothing else); :func:`build` puts one together for the runner.

Only `migrator.commands` (the composition root) calls :func:`build`; the engine never imports
a strategy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrator.engine.definitions import MachineDef
from migrator.engine.registry import Registry
from migrator.engine.runner import Reconciler, RollbackRefusal, Undo, default_registry, load_machines
from migrator.errors import DefinitionError, UsageError

if TYPE_CHECKING:
    from migrator.config import LoadedConfig

MODULES = {"unload-copy": "unload_copy", "modify": "modify", "snapshot-restore": "snapshot_restore"}


@dataclass(frozen=True)
class Strategy:
    """Everything the runner needs from a strategy, checked against its YAML when built."""

    name: str
    registry: Registry
    definition: MachineDef
    table_definition: MachineDef
    reconciler: Reconciler | None = None
    undo: Undo | None = None
    rollback_refusal: RollbackRefusal | None = None


def registry_for(strategy: str) -> Registry:
    """The engine's guards and actions extended with the strategy's own, checked against its YAML:
    every action (and table step) the YAML names is registered, every registered one is named."""
    module = _module(strategy)
    own: Registry = module.registry()
    registry = default_registry().extended(own)
    definition, table_definition = load_machines(strategy, registry)
    named = {s.action for s in definition.states.values() if s.action}
    named_steps = {s.step for s in table_definition.states.values() if s.step}
    unused = sorted(set(own.actions) - named) + sorted(set(own.steps) - named_steps)
    if unused:
        raise DefinitionError(f"strategy {strategy!r} registers actions its states/{strategy}.yaml never names: "
                              f"{', '.join(unused)}", hint="a misspelt registration? fix the name or the YAML")
    return registry


def build(strategy: str, config: "LoadedConfig | None" = None) -> Strategy:
    module = _module(strategy)
    registry = registry_for(strategy)
    definition, table_definition = load_machines(strategy, registry)
    make_reconciler = getattr(module, "reconciler", None)
    return Strategy(strategy, registry, definition, table_definition,
                    reconciler=make_reconciler(config) if make_reconciler and config is not None else None,
                    undo=getattr(module, "undo", None), rollback_refusal=getattr(module, "rollback_refusal", None))


def _module(strategy: str):  # type: ignore[no-untyped-def]
    module_name = MODULES.get(strategy)
    if module_name is None:
        raise UsageError(f"unknown strategy {strategy!r}", hint=f"one of: {', '.join(MODULES)}")
    return importlib.import_module(f"migrator.strategies.{module_name}")
