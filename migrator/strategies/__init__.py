"""Strategy implementations. Each route in :data:`migrator.routes.ROUTES` names its module here,
which supplies the phase actions its `states/<strategy>.yaml` names (and nothing else);
:func:`build` puts one together for the runner, with what the engine needs from the route (how
to pass its gates) handed over as data in the registry.

Only `migrator.commands` (the composition root) calls :func:`build` and the few public helpers
below (a session on the source, the AWS clients, the new cluster's placement, the probe, the
production-name check); it reaches no strategy module directly. The engine never imports a
strategy. The helpers import their strategy code when called, so reading commands stay quick.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from migrator import routes
from migrator.engine.definitions import MachineDef
from migrator.engine.registry import Registry
from migrator.errors import DefinitionError, UsageError
from migrator.routes import Route

if TYPE_CHECKING:
    from datetime import datetime

    # The runner (and through it the state-machine library) is imported by build(), not by
    # the readers of the store records below (`status` imports swap_record and stray_record).
    from migrator.engine.runner import Reconciler, RollbackRefusal, Undo

    from migrator.aws.clients import AwsClients
    from migrator.config import LoadedConfig, Settings
    from migrator.store import MigrationView, Store
    from migrator.strategies.client_census import Census
    from migrator.strategies.mirror import Mirror
    from migrator.warehouse.connection import Session
    from migrator.strategies.probe import ProbeReport


@dataclass(frozen=True)
class Strategy:
    """Everything the runner needs from a strategy, checked against its YAML when built."""

    name: str
    route: Route
    registry: Registry
    definition: MachineDef
    table_definition: MachineDef
    reconciler: Reconciler | None = None
    undo: Undo | None = None
    rollback_refusal: RollbackRefusal | None = None


def registry_for(strategy: str) -> Registry:
    """The engine's guards and actions extended with the strategy's own, checked against its YAML:
    every action (and table step) the YAML names is registered, every registered one is named."""
    from migrator.engine.runner import default_registry, load_machines

    module = _module(strategy)
    own: Registry = module.registry()
    route = routes.route(strategy)
    registry = replace(default_registry().extended(own), gates=dict(route.gates))
    definition, table_definition = load_machines(route.machine, registry)
    named = {s.action for s in definition.states.values() if s.action}
    named_steps = {s.step for s in table_definition.states.values() if s.step}
    unused = sorted(set(own.actions) - named) + sorted(set(own.steps) - named_steps)
    if unused:
        raise DefinitionError(f"strategy {strategy!r} registers actions its states/{strategy}.yaml never names: "
                              f"{', '.join(unused)}", hint="a misspelt registration? fix the name or the YAML")
    return registry


def build(strategy: str, config: "LoadedConfig | None" = None) -> Strategy:
    from migrator.engine.runner import load_machines

    module = _module(strategy)
    route = routes.route(strategy)
    registry = registry_for(strategy)
    definition, table_definition = load_machines(route.machine, registry)
    make_reconciler = getattr(module, "reconciler", None)
    return Strategy(strategy, route, registry, definition, table_definition,
                    reconciler=make_reconciler(config) if make_reconciler and config is not None else None,
                    undo=getattr(module, "undo", None), rollback_refusal=getattr(module, "rollback_refusal", None))


def _module(strategy: str):  # type: ignore[no-untyped-def]
    if strategy not in routes.ROUTES:
        raise UsageError(f"unknown strategy {strategy!r}", hint=f"one of: {', '.join(routes.names())}")
    return importlib.import_module(routes.ROUTES[strategy].module_path)


# -- what the composition root needs besides a built strategy (imported when called) --

def clients_for(settings: "Settings") -> "AwsClients":
    """The AWS clients a migration with these settings talks through."""
    from migrator.strategies.recorded import clients_for as clients

    return clients(settings)


def source_session(config: "LoadedConfig") -> AbstractContextManager["Session"]:
    """A warehouse session on the source cluster, closed when the block ends."""
    from migrator.strategies.sessions import session

    return session(config, "source")


def new_cluster_placement(source: Mapping[str, Any], settings: "Settings") -> "Mirror":
    """How the route's new cluster mirrors ``source``: CreateCluster or RestoreFromClusterSnapshot
    parameters (as the route provisions it), what is not copied and why."""
    from migrator.strategies.mirror import mirror_source

    return mirror_source(source, settings, restore=settings.route.provisioning == "restore-snapshot")


def clients_census(config: "LoadedConfig", **kwargs: Any) -> "Census":
    """Who connects to the source; after the cutover, who moved (strategies.client_census)."""
    from migrator.strategies.client_census import census

    return census(config, **kwargs)


def renamed_source_name(source_id: str) -> str:
    """The name cutover gives the source cluster today (`<source>-unencrypted-<yyyymmdd>`)."""
    from migrator.strategies.cutover import old_name_for

    return old_name_for(source_id)


def probe_source(settings: "Settings") -> "ProbeReport":
    """Every statement shape the migration will use, tried on the source (strategies.probe)."""
    from migrator.strategies.preflight_checks import probe_source as probe

    return probe(settings, clients_for(settings))


def production_answered_at(store: "Store", migration: "MigrationView") -> "datetime | None":
    """When the cutover saw the production name answer from the new cluster (None before). Reads only the store."""
    from migrator.strategies.swap_record import PRODUCTION_ANSWERS_KEY

    found = store.get_action(migration, PRODUCTION_ANSWERS_KEY)
    return found.finished_at if found is not None else None


def production_gap(store: "Store", migration: "MigrationView") -> str | None:
    """What `status` must say first: the production name may have no cluster (cutover, rollback).
    Reads only the store (no AWS, no strategy module)."""
    from migrator.strategies.swap_record import production_gap as gap

    return gap(store, migration)


__all__ = ["Strategy", "build", "clients_for", "new_cluster_placement", "probe_source",
           "production_gap", "registry_for", "renamed_source_name", "source_session"]
