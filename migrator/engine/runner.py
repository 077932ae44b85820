"""`migrator run`: take the run lease, rebuild the machines from the store, hand
back work whose owner died, then drive the migration phase by phase."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from migrator import interrupt
from migrator.config import LoadedConfig
from migrator.engine.definitions import TABLE_MACHINE, MachineDef, load_definition
from migrator.engine.flows import MigrationFlow, TableFlow
from migrator.engine.guards import BUILTIN
from migrator.engine.phases import BUILTIN_ACTIONS
from migrator.engine.context import PhaseContext, RunOptions
from migrator.engine.registry import Registry
from migrator.errors import (ApprovalRequired, ConcurrentUpdate, ConfigChanged, LeaseHeld, MigratorError, RemoteError,
                             TransientError, UsageError)
from migrator.store import LeaseView, MigrationView, Store, TableView

log = logging.getLogger("migrator.engine")

RUN_LEASE_TTL_SECONDS = 60.0
#: How often a worker waiting for the leader looks at the migration's phase again.
WORKER_POLL_SECONDS = 1.0
#: The tag of the phase whose tables workers (`migrator run --worker`) share.
TABLE_WORK_TAG = "table_work"


def default_registry() -> Registry:
    """The engine's own guards and actions; a strategy's registry extends it (see migrator.strategies)."""
    return BUILTIN.extended(BUILTIN_ACTIONS)


def load_machines(strategy: str, registry: Registry) -> tuple[MachineDef, MachineDef]:
    """The strategy's machine and the table machine, every name checked against ``registry``."""
    guards, actions = registry.guards.keys(), registry.actions.keys()
    # Strategies that move tables supply the table machine's steps; the others run no table.
    steps = registry.steps.keys() if registry.steps else None
    return (load_definition(strategy, guards=guards, actions=actions),
            load_definition(TABLE_MACHINE, guards=guards, actions=actions, steps=steps))


Reconciler = Callable[[TableView], dict[str, Any]]
#: Undoes what a migration did to production (returns what it did, recorded with the move).
Undo = Callable[["PhaseContext"], dict[str, Any]]
#: Why a migration cannot be rolled back from where it stands (strategy-specific wording).
RollbackRefusal = Callable[["PhaseContext"], MigratorError]
ROLLBACK_TRIGGER = "rolled_back"
INTERRUPTED_EVENT = "interrupted"
#: What a phase cut short by a stop request raises (a wait's "stopped while waiting", a table
#: phase's "did not copy"): a stop, not a failure, when a signal asked for it.
_STOP_ERRORS = (TransientError, RemoteError)


@dataclass
class RunReport:
    migration: str
    strategy: str
    start_phase: str
    end_phase: str
    moves: list[str]
    recovered_tables: list[str]
    took_over_from: str | None


def ensure_migration(store: Store, config: LoadedConfig, definition: MachineDef,
                     table_initial: str) -> MigrationView:
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
        c.state != table_initial for c in store.count_by_state(found))
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
    """Renews this process's leases: the run lease (the leader's), its worker row and the tables it
    holds; flags a lost run lease so the run stops writing."""

    def __init__(self, store: Store, lease: LeaseView | None, ttl: float, migration_id: int) -> None:
        super().__init__(name="migrator-heartbeat", daemon=True)
        self.store, self.lease, self.ttl, self.migration_id = store, lease, ttl, migration_id
        self.stopped = threading.Event()
        self.lost: str | None = None

    def run(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            try:
                self.store.heartbeat(self.migration_id, self.lease, self.ttl, held_seconds=self.ttl * 2)
            except LeaseHeld as exc:
                self.lost = exc.message
                return
            except Exception as exc:  # a store hiccup must not kill the run; the next beat retries
                log.warning("lease heartbeat failed: %s", exc)


@dataclass
class WorkReport:
    """What `migrator run --worker` did: how long it waited for the leader and what it worked on."""

    migration: str
    phase: str
    waited_for: list[str]
    tables_done: int
    recovered_tables: list[str]
    note: str


@dataclass
class RollbackReport:
    migration: str
    from_phase: str
    phase: str
    done: dict[str, Any]


class Runner:
    """Drives one migration under its run lease. Built by `migrator.commands`, the one place that
    knows which strategy supplies the registry, the reconciler and the undo steps."""

    def __init__(self, config: LoadedConfig, store: Store, registry: Registry,
                 options: RunOptions | None = None, lease_ttl: float = RUN_LEASE_TTL_SECONDS,
                 reconciler: Reconciler | None = None) -> None:
        self.config = config
        self.reconciler = reconciler
        self.store = store
        self.registry = registry
        self.options = options or RunOptions()
        self.lease_ttl = lease_ttl
        self.definition, self.table_definition = load_machines(config.settings.route.machine, self.registry)

    def ensure_migration(self) -> MigrationView:
        return ensure_migration(self.store, self.config, self.definition, self.table_definition.initial)

    @contextmanager
    def _leased(self, migration: MigrationView) -> Iterator[tuple["_Heartbeat", str | None]]:
        """Hold the run lease (renewed by a heartbeat) for the duration of the block."""
        previous = self.store.get_run_lease(migration)
        lease = self.store.acquire_run_lease(migration, self.lease_ttl)
        took_over = previous.holder if previous and previous.token != lease.token else None
        self.store.register_worker(migration, "leader", self.lease_ttl)
        heartbeat = _Heartbeat(self.store, lease, self.lease_ttl, migration.id)
        heartbeat.start()
        try:
            yield heartbeat, took_over
        finally:
            heartbeat.stopped.set()
            heartbeat.join()
            if heartbeat.lost is None:
                self.store.stop_worker(migration.id, "run ended")
                self.store.release_run_lease(lease)

    def run(self) -> RunReport:
        migration = self.ensure_migration()
        with self._leased(migration) as (heartbeat, took_over):
            recovered = self.recover_tables(migration)
            return self._drive(self.store.require_migration(migration.name), heartbeat, recovered, took_over)

    def rollback(self, undo: Undo, refusal: RollbackRefusal | None = None) -> RollbackReport:
        """`migrator rollback`: under the run lease, with its heartbeat and the config-change check,
        undo what the migration did to production, then take the `rolled_back` move."""
        migration = self.ensure_migration()
        with self._leased(migration) as (heartbeat, _):
            migration = self.store.require_migration(migration.name)
            flow = MigrationFlow(self.definition, self.registry, self.store, migration, self.config.settings)
            ctx = PhaseContext(self.config, self.store, flow, self.table_definition, self.registry, self.options,
                               should_stop=_stop_check(heartbeat))
            start = flow.state
            if not self.definition.transitions_from(start, ROLLBACK_TRIGGER):
                if refusal is not None:
                    raise refusal(ctx)
                raise UsageError(f"migration {migration.name!r} is in phase {start!r}, from which it cannot be "
                                 "rolled back", hint="`migrator status` shows where it stands")
            if interrupt.requested():
                raise self._interrupted(flow, f"before rolling back from phase {start!r}")
            try:
                done = undo(ctx)
                if heartbeat.lost:
                    raise LeaseHeld(heartbeat.lost)
                flow.fire(ROLLBACK_TRIGGER, detail=done)
            except MigratorError as exc:
                if interrupt.requested() and isinstance(exc, _STOP_ERRORS):
                    raise self._interrupted(flow, f"while rolling back from phase {start!r}") from exc
                self.store.record_migration_error(flow.migration, exc.one_line(),
                                                  {"phase": start, "exit_code": exc.exit_code,
                                                   "during": "rollback"})
                raise
            return RollbackReport(migration.name, start, flow.state, done)

    def recover_tables(self, migration: MigrationView) -> list[str]:
        """Hand back tables whose worker died: an in-flight one through its state's `lost` trigger,
        one reserved between steps by releasing the reservation. Another process recovering the
        same table first is no error (the compare-and-set lets one of them do it)."""
        recovered = []
        for task in self.store.orphaned_tables(migration):
            state = self.table_definition.state(task.state)
            if not state.lost:
                if "in_flight" not in state.tags and self.store.release_table(task):
                    recovered.append(task.qualified_name)
                continue
            flow = TableFlow(self.table_definition, self.registry, self.store, task, self.config.settings)
            # Only a lost move that guards decide (a load that may have committed) asks the
            # clusters; `requeue` from unloading or validating starts nothing remote.
            facts = self.reconcile_facts(task) if self._guarded_move(task.state, state.lost) else {}
            try:
                flow.fire(state.lost, detail={"reason": "owner gone", "previous_owner": task.owner}, **facts)
            except ConcurrentUpdate:
                continue
            recovered.append(task.qualified_name)
        # A dead worker's parts: their leases end now and the next pick takes them on; the walk
        # of one picked in flight reconciles it (its load marker) through the state's `lost` move.
        for part in self.store.expire_dead_part_leases(migration):
            recovered.append(f"{self.store.get_table(part.table_id).qualified_name} part {part.label}")
        return recovered

    def _guarded_move(self, state: str, trigger: str) -> bool:
        return any(t.conditions or t.unless for t in self.table_definition.transitions_from(state, trigger))

    def reconcile_facts(self, task: TableView) -> dict[str, Any]:
        """Facts the lost-lease guards need (e.g. whether a load committed), from the strategy's reconciler."""
        return dict(self.reconciler(task)) if self.reconciler else {}

    def _drive(self, migration: MigrationView, heartbeat: _Heartbeat, recovered: list[str],
               took_over: str | None) -> RunReport:
        flow = MigrationFlow(self.definition, self.registry, self.store, migration, self.config.settings)
        start = flow.state
        moves: list[str] = []
        ctx = PhaseContext(self.config, self.store, flow, self.table_definition, self.registry, self.options,
                           should_stop=_stop_check(heartbeat), recover=lambda: self.recover_tables(migration))
        while not self.definition.state(flow.state).final:
            if heartbeat.lost:
                raise LeaseHeld(heartbeat.lost)
            if interrupt.requested():
                raise self._interrupted(flow, f"in phase {flow.state!r}")
            if self.options.max_steps is not None and len(moves) >= self.options.max_steps:
                break
            state = self.definition.state(flow.state)
            assert state.action is not None, f"non-final state {state.name} without action"
            ctx.facts = {}
            before = flow.state
            try:
                trigger = self.registry.actions[state.action](ctx)
                # Facts the engine's guards decide from, whatever the action claims.
                ctx.facts["tables_not_done"] = ctx.tables_not_done()
                flow.fire(trigger, **ctx.facts)
            except ApprovalRequired:
                raise
            except MigratorError as exc:
                if interrupt.requested() and isinstance(exc, _STOP_ERRORS):
                    raise self._interrupted(flow, f"during phase {before!r}") from exc
                self.store.record_migration_error(flow.migration, exc.one_line(),
                                                  {"phase": before, "exit_code": exc.exit_code})
                raise
            moves.append(f"{before} -{trigger}-> {flow.state}")
            log.info("%s: %s -%s-> %s", migration.name, before, trigger, flow.state)
        return RunReport(migration.name, migration.strategy, start, flow.state, moves, recovered, took_over)

    # -- workers ---------------------------------------------------------------------------

    def work(self, say: Callable[[str], None] = log.info, poll_seconds: float = WORKER_POLL_SECONDS) -> WorkReport:
        """`migrator run --worker`: join the migration a `migrator run` leads and work on its tables.

        The leader alone runs the control plane (provisioning, gates, cutover); a worker only
        walks tables, in the phase tagged `table_work`, sharing the pass through the store's picks.
        Started before the leader reaches that phase it waits (saying so); it works while any table
        is left and returns once none is (the leader moves the phase on)."""
        settings = self.config.settings
        if self.store.engine.dialect.name != "postgresql":
            raise UsageError(
                f"--worker needs a PostgreSQL store; {settings.migration.name!r} uses "
                f"{self.store.engine.dialect.name}, which lets one process write at a time, so workers "
                "cannot share its tables", hint="run a single `migrator run`, or move the store to PostgreSQL")
        work_state = _table_work_state(self.definition)
        depth = _depths(self.definition)
        waited: list[str] = []
        name = settings.migration.name
        while True:
            if interrupt.requested():
                raise interrupt.Interrupted.by(interrupt.stop_signal() or 2, "while waiting for table work")
            migration = self.store.get_migration(name)
            phase = migration.phase if migration else None
            if migration is not None and phase == work_state:
                return self._work_tables(migration, waited)
            past = migration is not None and (depth.get(migration.phase, -1) > depth[work_state]
                                              or self.definition.state(migration.phase).final)
            if past:
                assert migration is not None
                return WorkReport(name, migration.phase, waited, 0, [],
                                  f"no table work left: the migration is in phase {migration.phase!r}, past "
                                  f"{work_state!r}")
            where = phase or "(not initialised)"
            if where not in waited:
                waited.append(where)
                say(f"waiting: migration {name!r} is in phase {where!r}; tables are copied in phase "
                    f"{work_state!r}, which the leader (`migrator run`) has not reached yet")
            interrupt.sleep(poll_seconds)

    def _work_tables(self, migration: MigrationView, waited: list[str]) -> WorkReport:
        self.store.register_worker(migration, "worker", self.lease_ttl)
        heartbeat = _Heartbeat(self.store, None, self.lease_ttl, migration.id)
        heartbeat.start()
        reason = "no tables left"
        try:
            flow = MigrationFlow(self.definition, self.registry, self.store, migration, self.config.settings)
            ctx = PhaseContext(self.config, self.store, flow, self.table_definition, self.registry, self.options,
                               should_stop=_stop_check(heartbeat), recover=lambda: self.recover_tables(migration),
                               role="worker")
            recovered = self.recover_tables(migration)
            state = self.definition.state(migration.phase)
            assert state.action is not None
            done_before = self.store.count_by_state(migration)
            try:
                # The phase's own action walks the tables; only the leader fires the move out of it.
                self.registry.actions[state.action](ctx)
            except MigratorError as exc:
                if interrupt.requested() and isinstance(exc, _STOP_ERRORS):
                    reason = "stopped"
                    raise interrupt.Interrupted.by(interrupt.stop_signal() or 2, "while working on tables") from exc
                reason = exc.one_line()
                raise
            done_after = self.store.count_by_state(migration)
            done = set(self.table_definition.tagged("done"))
            moved = sum(c.tables for c in done_after if c.state in done) - \
                sum(c.tables for c in done_before if c.state in done)
            return WorkReport(migration.name, migration.phase, waited, moved, recovered,
                              "no tables left in this pass; the leader moves the migration on")
        finally:
            heartbeat.stopped.set()
            heartbeat.join()
            self.store.stop_worker(migration.id, reason)

    def _interrupted(self, flow: MigrationFlow, where: str) -> interrupt.Interrupted:
        """The stop a signal asked for, recorded in the history (not as an error: nothing failed)."""
        signum = interrupt.stop_signal()
        assert signum is not None
        self.store.add_event(flow.migration, "run", INTERRUPTED_EVENT,
                             {"signal": interrupt.signal_name(signum), "where": where}, state=flow.state)
        return interrupt.Interrupted.by(signum, where)


def _stop_check(heartbeat: _Heartbeat) -> Callable[[], bool]:
    """A phase's `should_stop`: the run lost its lease, or a signal asked it to stop."""
    return lambda: heartbeat.lost is not None or interrupt.requested()


def _table_work_state(definition: MachineDef) -> str:
    found = definition.tagged(TABLE_WORK_TAG)
    if len(found) != 1:
        raise UsageError(f"route {definition.name!r} has no phase that copies tables, so there is nothing for a "
                         "worker to do", hint="run `migrator run` alone for this route")
    return found[0]


def _depths(definition: MachineDef) -> dict[str, int]:
    """Each phase's distance from the initial one: a phase nearer than the table work comes before it
    (the leader will reach it), a farther one after it (a loop back to copying is the leader's)."""
    depth = {definition.initial: 0}
    frontier = [definition.initial]
    while frontier:
        following = []
        for state in frontier:
            for t in definition.transitions_from(state):
                if t.dest not in depth:
                    depth[t.dest] = depth[state] + 1
                    following.append(t.dest)
        frontier = following
    return depth
