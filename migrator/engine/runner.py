"""`migrator run`: take the run lease, rebuild the machines from the store, hand
back work whose owner died, then drive the migration phase by phase."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrator.config import LoadedConfig
from migrator.engine.definitions import MachineDef, StateDef, load_definition
from migrator.engine.flows import MigrationFlow, TableFlow
from migrator.engine.guards import BUILTIN
from migrator.engine.phases import BUILTIN_ACTIONS
from migrator.engine.registry import Registry
from migrator.errors import ApprovalRequired, ConfigChanged, LeaseHeld, MigratorError
from migrator.store import LeaseView, MigrationView, Store, TableView

log = logging.getLogger("migrator.engine")

RUN_LEASE_TTL_SECONDS = 60.0
TABLE_MACHINE = "table"


def default_registry(strategy: str | None = None) -> Registry:
    """Built-in guards and actions, overlaid with the strategy's own when one is named."""
    base = BUILTIN.extended(BUILTIN_ACTIONS)
    if strategy is None:
        return base
    from migrator.strategies import registry_for

    return base.extended(registry_for(strategy))


def load_machines(strategy: str, registry: Registry) -> tuple[MachineDef, MachineDef]:
    guards, actions = registry.guards.keys(), registry.actions.keys()
    return (load_definition(strategy, guards=guards, actions=actions),
            load_definition(TABLE_MACHINE, guards=guards, actions=actions))


@dataclass
class RunOptions:
    approve_cutover: bool = False
    assume_frozen: bool = False
    #: Stop after this many phase moves (tests and `--step`); None runs to the end or a gate.
    max_steps: int | None = None


@dataclass
class PhaseContext:
    """What a phase action gets: the config, the store, the flows, and a scratch dict of facts."""

    config: LoadedConfig
    store: Store
    flow: MigrationFlow
    table_definition: MachineDef
    registry: Registry
    options: RunOptions
    should_stop: Callable[[], bool]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def migration(self) -> MigrationView:
        return self.flow.migration

    @property
    def state_def(self) -> StateDef:
        return self.flow.definition.state(self.flow.state)

    def table_flow(self, task: TableView) -> TableFlow:
        return TableFlow(self.table_definition, self.registry, self.store, task, self.config.settings)


@dataclass
class RunReport:
    migration: str
    strategy: str
    start_phase: str
    end_phase: str
    moves: list[str]
    recovered_tables: list[str]
    took_over_from: str | None


def ensure_migration(store: Store, config: LoadedConfig, definition: MachineDef) -> MigrationView:
    """Create the migration on first use; refuse a config change that would alter finished work."""
    settings = config.settings
    found = store.get_migration(settings.migration.name)
    if found is None:
        return store.create_migration(settings.migration.name, settings.migration.strategy, config.config_hash(),
                                      config.work_fingerprint(), definition.initial)
    if found.strategy != settings.migration.strategy:
        raise ConfigChanged(
            f"migration {found.name!r} was started with strategy {found.strategy!r}, the config now says "
            f"{settings.migration.strategy!r}", hint="restore the original strategy or use a new migration name")
    if found.config_hash == config.config_hash():
        return found
    changed = _changed_keys(found.config_fingerprint, config.work_fingerprint())
    progressed = found.phase != definition.initial or any(
        t.state != "pending" for t in store.list_tables(found))
    if progressed:
        raise ConfigChanged(
            f"config for {found.name!r} changed ({', '.join(changed)}) after work was done in phase "
            f"{found.phase!r}; that would invalidate finished work",
            hint="restore the previous values, or start a new migration under another name")
    return store.update_config(found, config.config_hash(), config.work_fingerprint(), changed)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        out: list[str] = []
        for key in keys:
            out += _changed_keys(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if old == new else [prefix or "<root>"]


class _Heartbeat(threading.Thread):
    """Renews the run lease and our table leases; flags a lost lease so the run stops writing."""

    def __init__(self, store: Store, lease: LeaseView, ttl: float) -> None:
        super().__init__(name="migrator-heartbeat", daemon=True)
        self.store, self.lease, self.ttl = store, lease, ttl
        self.stopped = threading.Event()
        self.lost: str | None = None

    def run(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                self.store.renew_run_lease(self.lease, self.ttl)
                self.store.renew_table_leases(self.ttl * 2)
            except LeaseHeld as exc:
                self.lost = exc.message
                return
            except Exception as exc:  # a store hiccup must not kill the run; the next beat retries
                log.warning("lease heartbeat failed: %s", exc)


class Runner:
    def __init__(self, config: LoadedConfig, store: Store, registry: Registry | None = None,
                 options: RunOptions | None = None, lease_ttl: float = RUN_LEASE_TTL_SECONDS,
                 reconciler: Callable[[TableView], dict[str, Any]] | None = None) -> None:
        self.config = config
        if reconciler is None and registry is None:
            from migrator.strategies import reconciler_for

            reconciler = reconciler_for(config.settings.migration.strategy, config)
        self.reconciler = reconciler
        self.store = store
        self.registry = registry or default_registry(config.settings.migration.strategy)
        self.options = options or RunOptions()
        self.lease_ttl = lease_ttl
        self.definition, self.table_definition = load_machines(config.settings.migration.strategy, self.registry)

    def run(self) -> RunReport:
        migration = ensure_migration(self.store, self.config, self.definition)
        previous = self.store.get_run_lease(migration)
        lease = self.store.acquire_run_lease(migration, self.lease_ttl)
        took_over = previous.holder if previous and previous.token != lease.token else None
        heartbeat = _Heartbeat(self.store, lease, self.lease_ttl)
        heartbeat.start()
        try:
            recovered = self.recover_tables(migration)
            return self._drive(migration, heartbeat, recovered, took_over)
        finally:
            heartbeat.stopped.set()
            heartbeat.join()
            if heartbeat.lost is None:
                self.store.release_run_lease(lease)

    def recover_tables(self, migration: MigrationView) -> list[str]:
        """Hand back tables whose worker died, through each state's `lost` trigger."""
        recovered = []
        for task in self.store.orphaned_tables(migration):
            state = self.table_definition.state(task.state)
            if not state.lost:
                continue
            flow = TableFlow(self.table_definition, self.registry, self.store, task, self.config.settings)
            facts = self.reconcile_facts(task)
            flow.fire(state.lost, detail={"reason": "owner gone", "previous_owner": task.owner}, **facts)
            recovered.append(task.qualified_name)
        return recovered

    def reconcile_facts(self, task: TableView) -> dict[str, Any]:
        """Facts the lost-lease guards need (e.g. whether a load committed); strategies override."""
        return dict(self.reconciler(task)) if self.reconciler else {}

    def _drive(self, migration: MigrationView, heartbeat: _Heartbeat, recovered: list[str],
               took_over: str | None) -> RunReport:
        flow = MigrationFlow(self.definition, self.registry, self.store, migration, self.config.settings)
        if self.options.approve_cutover and "cutover" not in migration.approvals:
            migration = self.store.record_approval(migration, "cutover", {"via": "run --approve-cutover"})
            flow = MigrationFlow(self.definition, self.registry, self.store, migration, self.config.settings)
        start = flow.state
        moves: list[str] = []
        ctx = PhaseContext(self.config, self.store, flow, self.table_definition, self.registry, self.options,
                           should_stop=lambda: heartbeat.lost is not None)
        while not self.definition.state(flow.state).final:
            if heartbeat.lost:
                raise LeaseHeld(heartbeat.lost)
            if self.options.max_steps is not None and len(moves) >= self.options.max_steps:
                break
            state = self.definition.state(flow.state)
            assert state.action is not None, f"non-final state {state.name} without action"
            ctx.facts = {}
            before = flow.state
            try:
                trigger = self.registry.actions[state.action](ctx)
                flow.fire(trigger, **ctx.facts)
            except ApprovalRequired:
                raise
            except MigratorError as exc:
                self.store.record_migration_error(flow.migration, exc.one_line(),
                                                  {"phase": before, "exit_code": exc.exit_code})
                raise
            moves.append(f"{before} -{trigger}-> {flow.state}")
            log.info("%s: %s -%s-> %s", migration.name, before, trigger, flow.state)
        return RunReport(migration.name, migration.strategy, start, flow.state, moves, recovered, took_over)
