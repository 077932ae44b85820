"""Each CLI command as a plain function: settings in, result object out.

`cli.py` only parses arguments, calls one of these and renders what it returns.
Reading commands (`status`, `history`, `graph`) open the store read-only.

This is the composition root: the one place that builds a strategy (its registry, checked
against its YAML, its reconciler and its undo steps) and hands it to the engine's runner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from migrator import routes
from migrator.config import LoadedConfig, Settings, load_config
from migrator.engine import gates
from migrator.engine.definitions import TABLE_MACHINE, MachineDef, StateDef, load_definition
from migrator.errors import (ApprovalRequired, ConcurrentUpdate, ConfigError, MigratorError, PreflightFailed, UsageError,
                             masked)
from migrator.results import (ClientsResult, DbResult, EventRow, GraphResult, HistoryResult, IamPolicyResult, InitResult,
                              InventoryResult, PlanResult, ProbeResult, ReportResult, RollbackResult, RunResult, SandboxEnvResult, WorkResult,
                              StatusResult, TableRow)
from migrator.store import MigrationView, Store, TableView, db, utcnow
from migrator.store.views import EventView, StateCount
from migrator.store.db import redact
from migrator.store.store import lease_dead_reason

if TYPE_CHECKING:
    from migrator import notify
    from migrator.engine.context import RunOptions

# The engine's runner, its table walker (and through them the state-machine library), the
# strategies, boto3 and the warehouse driver are imported by the commands that run something:
# `status`, `history` and `graph` start without them (bench/startup.py; tests/cli/test_cli.py
# checks what a reading command imports).


def init(config_path: Path) -> InitResult:
    from migrator import strategies
    from migrator.engine.runner import ensure_migration

    config = load_config(config_path)
    url = config.store_url
    revision = db.upgrade(url)
    strategy = strategies.build(config.settings.migration.strategy)
    settings = config.settings
    with Store.open(url) as store:
        created = False
        if store.get_migration(settings.migration.name) is None:
            # "created" is said by the one process whose insert won, never by one that merely looked
            # first (three `init` at once: one creates, two find it).
            try:
                store.create_migration(settings.migration.name, settings.migration.strategy, config.config_hash(),
                                       config.work_fingerprint(), strategy.definition.initial)
                created = True
            except ConcurrentUpdate:
                pass
        migration = ensure_migration(store, config, strategy.definition, strategy.table_definition.initial)
    return InitResult(migration.name, migration.strategy, redact(url), migration.phase, created, revision)


def db_upgrade(config_path: Path | None = None, url: str | None = None) -> DbResult:
    url = _store_url(config_path, url)
    engine = db.create_store_engine(url, create=True)
    try:
        before = db.current_revision(engine)
    finally:
        engine.dispose()
    after = db.upgrade(url)
    return DbResult(redact(url), before, after)


def db_downgrade(revision: str, config_path: Path | None = None, url: str | None = None, *,
                 confirm: bool = False) -> DbResult:
    """Take the store's schema back to ``revision``. Tables dropped by it take their rows along, so
    while the store holds a migration this needs ``confirm`` (the refusal says what would be lost),
    and a SQLite store is copied next to itself before anything is dropped."""
    url = _store_url(config_path, url)
    engine = db.create_store_engine(url)
    try:
        before = db.current_revision(engine)
        target = db.downgrade_target(before, revision)
        if target == before:
            return DbResult(redact(url), before, before)
        held = _held_by(engine)
    finally:
        engine.dispose()
    if held and not confirm:
        raise UsageError(f"downgrading {redact(url)} from schema {before} to {target} drops its tables: "
                         f"{held} would be lost", hint="add --confirm to go ahead (a SQLite store is copied "
                         "first), or leave the store as it is")
    backup = db.backup_sqlite(url)
    after = db.downgrade(url, target)
    return DbResult(redact(url), before, after, backup=str(backup) if backup else None)


def _held_by(engine: "db.Engine") -> str | None:
    """What the store holds (migrations with their phases, table tasks, history events), or None."""
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import DatabaseError

    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if "migration" not in tables:
                return None
            rows = conn.execute(text("select name, phase from migration order by id")).all()
            if not rows:
                return None
            count = {t: int(conn.execute(text(f'select count(*) from "{t}"')).scalar_one())  # fixed names
                     for t in ("table_task", "event", "remote_action") if t in tables}
    except DatabaseError as exc:
        raise db.store_failure(exc, engine) from None
    except UnicodeDecodeError as exc:
        raise db.damaged(exc, engine) from None
    shown = ", ".join(f"{name!r} in phase {phase}" for name, phase in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return (f"{len(rows)} migration(s) ({shown}{more}), {count.get('table_task', 0)} table task(s), "
            f"{count.get('remote_action', 0)} ownership record(s) of remote actions and "
            f"{count.get('event', 0)} history event(s)")


def _store_url(config_path: Path | None, url: str | None) -> str:
    if url:
        return url
    if config_path is None:
        raise UsageError("give --config or --url")
    return load_config(config_path).store_url


def _open_read_only(config: LoadedConfig) -> Store:
    return Store.open(config.store_url, read_only=True)


def status(config_path: Path, *, with_tables: bool = False) -> StatusResult:
    config = load_config(config_path)
    with _open_read_only(config) as store:
        return _status(store, config, config_path, with_tables=with_tables)


class StatusWatch:
    """What the live progress panel reads each beat: the store stays open, and the status is read
    again only when the migration's history grew (one index probe for its newest event) or
    ``refresh_seconds`` passed (for the ETA's clock); otherwise the last one is shown again."""

    def __init__(self, config_path: Path, refresh_seconds: float = 10.0) -> None:
        self.config_path, self.refresh_seconds = config_path, refresh_seconds
        self._store: Store | None = None
        self._config: LoadedConfig | None = None
        self._seen: int | None = None
        self._at = 0.0
        self.last: StatusResult | None = None
        self.reads = 0

    def read(self) -> StatusResult:
        import time

        if self._store is None:
            self._config = load_config(self.config_path)
            self._store = _open_read_only(self._config)
        assert self._config is not None
        migration = self._store.get_migration(self._config.settings.migration.name)
        newest = self._store.newest_event_id(migration) if migration is not None else None
        now = time.monotonic()
        if self.last is None or newest != self._seen or now - self._at >= self.refresh_seconds:
            self.last = _status(self._store, self._config, self.config_path)
            self._seen, self._at = newest, now
            self.reads += 1
        return self.last

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def _status(store: Store, config: LoadedConfig, config_path: Path, *, with_tables: bool = False) -> StatusResult:
    name = config.settings.migration.name
    definition = _displayed(config.settings.route.machine)
    done_states = set(_displayed(TABLE_MACHINE).tagged("done"))
    migration = store.get_migration(name)
    if migration is None:
        raise UsageError(f"migration {name!r} has not been initialised in {redact(config.store_url)}",
                         hint=f"run `migrator init {config_path}`")
    lease = store.get_run_lease(migration)
    died = lease_dead_reason(lease, store.identity.host, utcnow()) if lease else None
    counts = store.count_by_state(migration)
    tables = store.list_tables(migration, order_by_size=True) if with_tables else []
    retries = store.latest_by_subject(migration, _retry_event()) if with_tables else {}
    copy_started = store.first_event_time(migration, "start_unload")
    bytes_done = store.bytes_moved(migration)
    progress = store.latest_event(migration, "progress")
    waiting = store.latest_event(migration, gates.WAITING_EVENT)
    alert = _production_alert(store, migration)
    stray = _stray_alert(store, migration)
    downtime = _write_downtime(store, migration, config.settings, by_state_of(counts))
    part_counts = store.part_counts(migration, _displayed("part").tagged("done"))
    names = {t.id: t.qualified_name for t in (tables or store.list_tables(migration))} if part_counts else {}
    state = definition.state(migration.phase) if migration.phase in definition.states else None
    by_state = {c.state: c.tables for c in counts}
    rows_total = sum(c.rows for c in counts)
    rows_done = sum(c.rows for c in counts if c.state in done_states)
    rate, eta = _throughput(copy_started, rows_done, rows_total, migration.finished_at)
    return StatusResult(
        migration=migration.name, strategy=migration.strategy, phase=migration.phase,
        phase_tags=sorted(state.tags) if state else [], updated_at=migration.updated_at,
        finished_at=migration.finished_at, last_error=masked(migration.last_error),
        run_holder=f"pid {lease.pid} on {lease.host}" if lease and not died else None,
        run_heartbeat_at=lease.heartbeat_at if lease else None,
        tables_total=sum(by_state.values()), tables_by_state=by_state, rows_total=rows_total, rows_done=rows_done,
        approvals=[_approval_line(gate, a) for gate, a in sorted(migration.approvals.items())],
        next_step=(f"wait: a run is in progress (pid {lease.pid} on {lease.host})" if lease and not died
                   else _after_death(died, config_path, _next_step(
                       state, migration.approvals, config_path,
                       waiting.detail if waiting and waiting.from_state == migration.phase else None))),
        tables=[TableRow(t.qualified_name, t.state, t.attempt, t.source_rows, t.rows_loaded, t.size_mb, t.owner,
                         masked(t.last_error), _retry_line(retries.get(t.subject), t, lease is not None and not died),
                         *part_counts.get(t.id, (0, 0)), schema=t.schema_name, name=t.table_name)
                for t in tables],
        parts={names[i]: {"parts_total": n, "parts_done": d} for i, (n, d) in part_counts.items()},
        bytes_done=bytes_done, rows_per_second=rate, eta_seconds=eta,
        progress=dict(progress.detail) if progress else {}, progress_at=progress.at if progress else None,
        alert=alert, run_died=died, stray_writes=stray, write_downtime=downtime,
        clients_not_moved=_clients_not_moved(config, migration, store),
    )


def _retry_event() -> str:
    from migrator.engine.tables import RETRY_EVENT

    return RETRY_EVENT


def by_state_of(counts: list[StateCount]) -> dict[str, StateCount]:
    return {c.state: c for c in counts}


def _write_downtime(store: Store, migration: MigrationView, settings: Settings,
                    counts: dict[str, StateCount]) -> str | None:
    """What the write downtime is made of (before the window) or was (once the production name
    answered from the new cluster), from the store alone."""
    route = settings.route
    if not route.new_cluster:
        return None
    from migrator import strategies

    answered_at = strategies.production_answered_at(store, migration)
    if not route.stages_in_s3:
        return route.freeze_window.format(span="restore time")
    approved = store.first_event_time(migration, "approved")
    if answered_at is not None and approved is not None:
        return (f"{(answered_at - approved).total_seconds():.0f} s, from the cutover approval "
                f"({approved:%Y-%m-%d %H:%M:%S}) to the production name answering from the new cluster")
    quiet = settings.freeze.quiet_seconds
    left_for_window = {t.dest for t in _displayed(TABLE_MACHINE).transitions if t.trigger == "defer"}
    deferred = next((counts[state] for state in left_for_window if state in counts), None)
    left = (f"{deferred.tables} table(s) left for the window ({deferred.rows:,} rows)" if deferred
            else "no table left for the window so far")
    tables = sum(c.tables for c in counts.values())
    return (f"expected: production stays writable until `migrator cutover`; then the freeze check "
            f"(at least {quiet:.0f} s without writes), one comparison pass over {tables} table(s), the copy of "
            f"what changed ({left}, plus any table written since its copy) and the swap (two renames)")


def _after_death(died: str | None, config_path: Path, next_step: str) -> str:
    """A dead run's lease is no obstacle: say the run died and that the next run takes its lease
    over (status itself never writes the store)."""
    if died is None:
        return next_step
    said = f"the last run died ({died}); the next `migrator run -c {config_path}` takes over its lease"
    return f"{said} and continues from here" if next_step.startswith("`migrator run") else f"{said}; {next_step}"


def clients(config_path: Path) -> ClientsResult:
    """The systems that connect to the source, from its logs (read-only); after the cutover, for
    each, whether it moved to the new cluster and whether it still reaches the old one."""
    from migrator import strategies

    config = load_config(config_path)
    renamed_at, old_cluster, writers = _cutover_facts(config)
    found = strategies.clients_census(config, renamed_at=renamed_at, old_cluster=old_cluster, stray_writers=writers)
    window = (f"sessions started {found.window_start:%Y-%m-%d %H:%M} to {found.window_end:%Y-%m-%d %H:%M} UTC, "
              "as far back as STL_CONNECTION_LOG and STL_QUERY keep (about 7 days)")
    return ClientsResult(found.cluster, found.window_start.isoformat(timespec="seconds"),
                         found.window_end.isoformat(timespec="seconds"), window, found.clients,
                         renamed_at.isoformat(timespec="seconds") if renamed_at else None, found.old_cluster,
                         found.not_moved, found.notes)


def _clients_for_report(config_path: Path) -> dict[str, object]:
    """The report's clients section: `migrator clients` as it answers now, or why it could not."""
    try:
        found = clients(config_path)
    except MigratorError as exc:
        return {"note": f"clients not listed: {exc.one_line()}", "clients": []}
    return {"window": found.window, "clients": found.clients, "renamed_at": found.renamed_at,
            "old_cluster": found.old_cluster, "not_moved": found.not_moved}


def _cutover_facts(config: LoadedConfig, store: Store | None = None
                   ) -> tuple[datetime | None, str | None, list[tuple[str | None, str | None, str]]]:
    """From the store (read-only, if there is one; ``store`` when the caller has it open): when
    the source was renamed away, its name since, and who the stray-write watch saw writing to it."""
    if store is None:
        try:
            opened = _open_read_only(config)
        except MigratorError:
            return None, None, []
        with opened:
            return _cutover_facts(config, opened)
    from migrator.strategies import stray_record
    from migrator.strategies.swap_record import PLAN_KEY

    migration = store.get_migration(config.settings.migration.name)
    if migration is None:
        return None, None, []
    renamed = stray_record.rename_time(store, migration)
    plan = store.get_action(migration, PLAN_KEY)
    old = (plan.response or {}).get("old_name") if plan is not None else None
    record = stray_record.read(store, migration)
    writers = [(w.get("user"), w.get("host"), str(w.get("table"))) for check in record.checks for w in check.writes]
    return renamed, str(old) if old else None, writers


def _clients_not_moved(config: LoadedConfig, migration: MigrationView, store: Store) -> str | None:
    """For `status` after the cutover: how many clients of the old cluster have not moved (this
    reads the clusters' logs, only once the source was renamed away; a failure is said, never raised)."""
    if migration.finished_at is not None:
        return None
    renamed_at, old_cluster, writers = _cutover_facts(config, store)
    if renamed_at is None:
        return None
    from migrator import strategies

    try:
        found = strategies.clients_census(config, renamed_at=renamed_at, old_cluster=old_cluster,
                                         stray_writers=writers)
    except MigratorError as exc:
        return f"cannot tell which clients moved: {exc.one_line()}"
    stuck = [c for c in found.clients if not c.get("moved")]
    if not stuck:
        return f"all {len(found.clients)} clients of the old cluster have connected to the new one"
    names = ", ".join(sorted({f"{c.get('user')}@{c.get('host')}" + (f" ({c['application']})" if c.get("application")
                                                                     else "") for c in stuck}))
    return (f"{len(stuck)} of {len(found.clients)} clients have not moved to the new cluster: {names} "
            "(`migrator clients` for details)")


def _production_alert(store: Store, migration: MigrationView) -> str | None:
    """What `status` must say first: the production name may have no cluster (cutover, rollback)."""
    from migrator import strategies

    return strategies.production_gap(store, migration)


def _stray_alert(store: Store, migration: MigrationView) -> list[str]:
    """What `status` says before anything else: writes to the old source after the cutover."""
    from migrator.strategies import stray_record

    return stray_record.alert(store, migration)


def _throughput(started: datetime | None, done: int, total: int,
                finished: datetime | None) -> tuple[float | None, float | None]:
    if started is None or done == 0:
        return None, None
    elapsed = ((finished or utcnow()) - started).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = done / elapsed
    return rate, (total - done) / rate if total > done else 0.0


def _retry_line(event: EventView | None, task: TableView, running: bool) -> str | None:
    """The in-run retry of this table: the one a live run scheduled, or the one in progress."""
    if event is None:
        return None
    d = event.detail
    attempt, limit, reason = int(d.get("attempt", 0)), d.get("max_attempts"), d.get("reason")
    if task.attempt == attempt and running and event.at >= task.updated_at:
        due = event.at + timedelta(seconds=float(d.get("wait_seconds", 0)))
        return f"attempt {attempt + 1}/{limit} at {due:%H:%M:%S} (wait {d.get('wait_seconds')}s; reason: {reason})"
    if task.attempt == attempt + 1 and task.owner is not None:
        return f"attempt {attempt + 1}/{limit} in progress (retried after: {reason})"
    return None


def _approval_line(gate: str, approval: object) -> str:
    if not isinstance(approval, dict):
        return gate
    return f"{gate} by {approval.get('user', '?')}@{approval.get('host', '?')} at {approval.get('at', '?')}"


def _next_step(state: StateDef | None, approvals: dict[str, object], config_path: Path,
               waiting: dict[str, object] | None = None) -> str:
    if state is None:
        return "unknown phase for this version of migrator; upgrade migrator"
    if state.final:
        return "nothing: the migration has ended"
    if state.approval and state.approval not in approvals:
        what = f"{waiting['summary']}; " if waiting and waiting.get("summary") else ""
        return f"{what}waiting for {state.approval} approval: {routes.how_to_pass(state.approval)}"
    return f"`migrator run -c {config_path}` continues from here"


def history(config_path: Path, *, table: str | None = None, limit: int | None = None) -> HistoryResult:
    config = load_config(config_path)
    with _open_read_only(config) as store:
        migration = store.require_migration(config.settings.migration.name)
        subject = None
        if table is not None:
            subject = _table_subject(store, migration, table)
        events = store.events(migration, subject=subject, limit=limit, newest_first=limit is not None)
    if limit is not None:
        events.reverse()
    # masked again on the way out: a store written by an older migrator may hold a URL's password
    return HistoryResult(migration.name, [EventRow(e.at, e.subject, e.trigger, e.from_state, e.to_state,
                                                   masked(e.detail), e.host, e.pid) for e in events])


def _table_subject(store: Store, migration: MigrationView, table: str) -> str:
    """The events subject of the table named ``table``, spelled as `status --tables` prints it
    (names.table_key: ``"a.b".c`` and ``a."b.c"`` are two tables)."""
    from migrator.names import split_table_key

    hint = 'name it as schema.table, quoting a part that holds "." or \'"\' as `migrator status --tables` prints it'
    try:
        pair = split_table_key(table)
    except ValueError:
        raise UsageError(f"--table {table!r} is not a schema.table name", hint=hint) from None
    for task in store.list_tables(migration):
        if task.pair == pair:
            return task.subject
    raise UsageError(f"no table {table!r} in migration {migration.name!r}", hint=hint)


def _definition(name: str) -> MachineDef:
    """A machine for reading (status, graph), its names checked against the registry that runs it."""
    from migrator import strategies

    if name == TABLE_MACHINE:
        from migrator.engine.runner import default_registry

        registry = default_registry()
        return load_definition(name, guards=registry.guards.keys(), actions=registry.actions.keys())
    return strategies.build(name).definition


def _displayed(name: str) -> MachineDef:
    """A machine read only to show where things stand (`status`): its names are checked by every
    run that executes it, so reading it needs no registry (and none of the strategies' imports)."""
    return load_definition(name, guards=None, actions=None)


def table_machine() -> MachineDef:
    """The per-table machine, for readers that count by its tags."""
    return _definition(TABLE_MACHINE)


def graph(strategy: str = "unload-copy", fmt: str = "mermaid") -> GraphResult:
    if strategy not in (*routes.names(), TABLE_MACHINE):
        raise UsageError(f"unknown strategy {strategy!r}",
                         hint=f"one of: {', '.join((*routes.names(), TABLE_MACHINE))}")
    if fmt not in ("mermaid", "dot"):
        raise UsageError(f"unknown graph format {fmt!r}", hint="mermaid or dot")
    definition = _definition(strategy)
    return GraphResult(strategy, fmt, to_mermaid(definition) if fmt == "mermaid" else to_dot(definition))


def _edge_label(trigger: str, conditions: tuple[str, ...], unless: tuple[str, ...]) -> str:
    guards = list(conditions) + [f"!{g}" for g in unless]
    return f"{trigger} [{', '.join(guards)}]" if guards else trigger


def to_mermaid(definition: MachineDef) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {definition.initial}"]
    for t in definition.transitions:
        for src in t.sources:
            lines.append(f"    {src} --> {t.dest}: {_edge_label(t.trigger, t.conditions, t.unless)}")
    for state in definition.states.values():
        if state.final:
            lines.append(f"    {state.name} --> [*]")
        if state.approval:
            lines.append(f"    note right of {state.name}: needs {state.approval} approval")
    return "\n".join(lines)


def to_dot(definition: MachineDef) -> str:
    lines = [f'digraph "{definition.name}" {{', "    rankdir=LR;"]
    for state in definition.states.values():
        shape = "doublecircle" if state.final else ("octagon" if state.approval else "ellipse")
        lines.append(f'    "{state.name}" [shape={shape}];')
    for t in definition.transitions:
        for src in t.sources:
            lines.append(f'    "{src}" -> "{t.dest}" [label="{_edge_label(t.trigger, t.conditions, t.unless)}"];')
    lines.append("}")
    return "\n".join(lines)


def approve(config_path: Path, gate: str, via: str) -> None:
    """Record an operator's approval of ``gate``, accepted only while the migration waits there
    (otherwise one line saying where it stands, exit 8, nothing recorded). Past the gate, in a
    phase its approval started (the command was interrupted), there is nothing to approve: the
    run that follows continues it."""
    config = load_config(config_path)
    definition = _definition(config.settings.migration.strategy)
    with Store.open(config.store_url) as store:
        migration = store.require_migration(config.settings.migration.name)
        if gates.check_open(definition, migration, gate) and gate not in migration.approvals:
            store.record_approval(migration, gate, {"via": via})


def rollback(config_path: Path, *, delete_target: bool = False, confirm: bool = False,
             skip_final_snapshot: bool = False) -> RollbackResult:
    """Undo the migration under the run lease. ``delete_target`` also deletes the new cluster, only
    with ``confirm`` (otherwise one line saying what would be deleted, exit 2, nothing changed) and
    only when this migration created it (see migrator.strategies.cutover)."""
    config = load_config(config_path)
    if skip_final_snapshot and not delete_target:
        raise UsageError("--skip-final-snapshot applies only with --delete-target", hint="drop it, or add "
                         "--delete-target")
    if delete_target and not confirm:
        from migrator.aws.clusters import final_snapshot_id

        target = config.settings.target.cluster_id
        after = ("without a final snapshot" if skip_final_snapshot else
                 f"after a final snapshot {final_snapshot_id(target, config.settings.migration.name)}")
        raise UsageError(f"rollback --delete-target would delete cluster {target} {after} (only if this migration "
                         "created it); nothing was done", hint="add --confirm to go ahead")
    from migrator import strategies

    strategy = strategies.build(config.settings.migration.strategy, config)
    with Store.open(config.store_url) as store:
        from migrator.engine.context import RunOptions
        from migrator.engine.runner import Runner

        options = RunOptions(delete_target=delete_target, skip_final_snapshot=skip_final_snapshot)
        runner = Runner(config, store, strategy.registry, options, reconciler=strategy.reconciler)
        report = runner.rollback(strategy.undo or _no_undo, strategy.rollback_refusal)
    return RollbackResult(report.migration, report.phase, {"phase": report.from_phase, **report.done})


def _no_undo(ctx: object) -> dict[str, object]:
    return {}


def inventory(config_path: Path) -> InventoryResult:
    """The source's user tables as the migration would see them (read-only)."""
    return _read_inventory(load_config(config_path))[0]


def _read_inventory(config: LoadedConfig) -> tuple[InventoryResult, list[str]]:
    """The inventory, and (from the same login) one line per system view that login sees only in
    part (preflight_checks.access_warning_lines: a non-superuser), which `plan` shows too."""
    from migrator import strategies
    from migrator.strategies.preflight_checks import access_warning_lines
    from migrator.warehouse.inventory import read_inventory

    tables = config.settings.tables
    with strategies.source_session(config) as source:
        found = read_inventory(source, include=tables.include, exclude=tables.exclude)
        if found and found[0].usage is not None:
            window = found[0].usage
        else:  # no table: the window is still stated
            from migrator.warehouse.inventory import read_usage

            window = read_usage(source)[2]
        partial = access_warning_lines(source, "source")
    return InventoryResult(config.settings.source.cluster_id, [t.to_dict() for t in found], window.describe(),
                           window.days, window.source), partial


class _WarningsToHistory(logging.Handler):
    """Every warning a run logs (retries, hiccups) also becomes a `warning` event in the history."""

    def __init__(self, store: Store, migration_name: str) -> None:
        super().__init__(level=logging.WARNING)
        self.store, self.name = store, migration_name
        self._inside = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._inside, "busy", False):
            return  # a warning raised while recording a warning must not recurse
        self._inside.busy = True
        try:
            migration = self.store.get_migration(self.name)
            if migration is not None:
                self.store.add_event(migration, "run", "warning",
                                     {"logger": record.name, "message": record.getMessage()})
        except Exception:  # the history is best effort here; the log file still has the line
            pass
        finally:
            self._inside.busy = False


def run(config_path: Path, options: "RunOptions | None" = None) -> RunResult:
    from migrator import strategies
    from migrator.engine.runner import Runner

    config = load_config(config_path)
    _check_approvals(config.settings, options)
    with Store.open(config.store_url) as store:
        strategy = strategies.build(config.settings.migration.strategy, config)
        runner = Runner(config, store, strategy.registry, options, reconciler=strategy.reconciler)
        to_history = _WarningsToHistory(store, config.settings.migration.name)
        package_log = logging.getLogger("migrator")
        package_log.addHandler(to_history)
        checked = _stray_mark(store, config)
        try:
            report = runner.run()
        except ApprovalRequired as exc:
            _notify_stray(config, store, checked)
            _notify(config, store, "gate_waiting", exc.one_line())
            raise
        except MigratorError as exc:
            _notify_stray(config, store, checked)
            _notify(config, store, "run_failed", exc.one_line())
            raise
        finally:
            package_log.removeHandler(to_history)
        _notify_stray(config, store, checked)
        final = runner.definition.state(report.end_phase).final
        if final and report.moves:
            _notify(config, store, "migration_ended", f"migration ended in phase {report.end_phase!r}")
        migration = store.require_migration(report.migration)
        last = store.events(migration, subject="migration", limit=1, newest_first=True)
        note = str(last[0].detail["reason"]) if final and last and "reason" in last[0].detail else None
    return RunResult(report.migration, report.strategy, report.start_phase, report.end_phase, final, report.moves,
                     report.recovered_tables, report.took_over_from, note)


def _check_approvals(settings: Settings, options: "RunOptions | None") -> None:
    """An approval flag for a gate this route does not have is a mistake, not a no-op: the
    operator believes they approved something."""
    if options is None:
        return
    route = settings.route
    for gate, flag in (("modify", "--approve-modify"), ("cutover", "--approve-cutover")):
        if options.approves(gate) and gate not in route.gates:
            have = ", ".join(route.gates) or "none"
            raise UsageError(f"{flag}: the {route.name} strategy has no {gate} gate (its gates: {have})",
                             hint=f"leave {flag} out")


def run_worker(config_path: Path, say: Callable[[str], None] | None = None) -> WorkResult:
    """`migrator run --worker`: join the migration a `migrator run` leads and share its tables."""
    from migrator import strategies
    from migrator.engine.runner import Runner

    config = load_config(config_path)
    with Store.open(config.store_url) as store:
        strategy = strategies.build(config.settings.migration.strategy, config)
        runner = Runner(config, store, strategy.registry, reconciler=strategy.reconciler)
        report = runner.work(say or logging.getLogger("migrator.worker").info)
    return WorkResult(report.migration, report.phase, report.waited_for, report.tables_done,
                      report.recovered_tables, report.note)


def _stray_mark(store: Store, config: LoadedConfig) -> int:
    """The newest stray-write check recorded before this run (its event id; 0 for none)."""
    from migrator.strategies import stray_record

    migration = store.get_migration(config.settings.migration.name)
    found = store.latest_event(migration, stray_record.CHECK_EVENT) if migration is not None else None
    return found.id if found is not None else 0


def _notify_stray(config: LoadedConfig, store: Store, after_event_id: int) -> None:
    """A check of this run found stray writes no earlier check had: tell people."""
    from migrator.strategies import stray_record

    migration = store.get_migration(config.settings.migration.name)
    news = stray_record.news(store, migration, after_event_id) if migration is not None else None
    if news:
        _notify(config, store, "stray_writes", news)


def _notify(config: LoadedConfig, store: Store, event: "notify.Event", summary: str) -> None:
    from migrator import notify
    """Tell the configured channels; each delivery is recorded in the history. Never raises."""
    channels = notify.Channels(config.settings.notify.sns_topic_arn, config.settings.notify.webhook_url())
    if not channels.any:
        return
    migration = store.get_migration(config.settings.migration.name)
    if migration is None:
        return

    def sns() -> object:
        from migrator import strategies

        return strategies.clients_for(config.settings).brief_client("sns", timeout=notify.timeout_seconds(),
                                                         attempts=notify.SNS_ATTEMPTS)

    note = notify.Notification(event, migration.name, migration.phase, summary)
    for delivery in notify.send(channels, note, sns_client=sns):
        try:
            store.add_event(migration, "run", "notified", {"event": event, "channel": delivery.channel,
                                                          "target": delivery.target, "ok": delivery.ok,
                                                          "error": delivery.error})
        except MigratorError:
            pass  # the history is best effort here; the log has the delivery


def report(config_path: Path, fmt: str = "md", output: Path | None = None) -> ReportResult:
    """Evidence for an auditor, read from the store (never written)."""
    from migrator import evidence

    if fmt not in evidence.FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(evidence.FORMATS)}", hint="use md, html or json")
    config = load_config(config_path)
    with _open_read_only(config) as store:
        migration = store.require_migration(config.settings.migration.name)
        doc = evidence.collect(store, migration)
    doc["clients"] = _clients_for_report(config_path)
    text = evidence.render(doc, fmt)  # type: ignore[arg-type]
    if output is not None:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the report to {output}: {exc.strerror}",
                             hint="choose a writable path with -o") from None
    return ReportResult(migration.name, fmt, str(output) if output else None, doc["summary"],
                        None if output else text)


def iam_policy(config_path: Path, principal: str = "operator") -> IamPolicyResult:
    """Least-privilege IAM policy for the operator or for the clusters' UNLOAD/COPY role."""
    from migrator import iam_policy as policies

    if principal not in policies.PRINCIPALS:
        raise UsageError(f"--for {principal!r} is not one of {', '.join(policies.PRINCIPALS)}",
                         hint="use --for operator or --for cluster-role")
    config = load_config(config_path)
    policy = policies.policy_for(config.settings, principal)  # type: ignore[arg-type]
    trust = policies.trust_policy() if principal == "cluster-role" else None
    return IamPolicyResult(principal, policy, trust)


def sandbox_env(directory: Path) -> SandboxEnvResult:
    """Shell exports that let the sandbox's ready-made configs run by hand."""
    from migrator.sandbox.info import INFO_FILE, SandboxInfo

    if not (directory / INFO_FILE).is_file():
        raise ConfigError(f"no sandbox in {directory} ({INFO_FILE} not found)",
                          hint=f"start one with `migrator sandbox up --dir {directory}`")
    return SandboxEnvResult(str(directory), SandboxInfo.load(directory).env())


def plan(config_path: Path) -> PlanResult:
    """What the migration will do, read-only: no mutating AWS call, nothing written."""
    from migrator import planning, strategies
    from migrator.aws import clusters as aws

    config = load_config(config_path)
    settings = config.settings
    route = settings.route
    clients = strategies.clients_for(settings)
    source = aws.require_cluster(clients, settings.source.cluster_id)
    tables: list[dict[str, object]] | None = None
    table_error = None
    partial_views: list[str] = []
    if route.new_cluster:
        try:
            listed, partial_views = _read_inventory(config)
            tables = listed.tables
        except MigratorError as exc:
            table_error = exc.one_line()
    unmatched = _unmatched_includes(settings, tables)
    rehearsal = _recorded_fact(config, "rehearsal")
    peaks = None
    if route.new_cluster:
        peaks = aws.hourly_write_peaks(clients, settings.source.cluster_id, planning.QUIET_LOOKBACK_DAYS)
    blockers = planning.rename_blockers(source, aws.datashares_of(clients, source.get("ClusterNamespaceArn")))
    mirror = strategies.new_cluster_placement(source, settings)
    notes = [*blockers, *(f"not copied to the new cluster: {r}" for r in mirror.reported),
             *(f"overridden by the config: {o}" for o in mirror.overridden), *mirror.problems]
    from migrator.aws.metrics import hourly_metrics

    hourly, metrics_error = None, None
    try:
        hourly = hourly_metrics(clients, settings.source.cluster_id, planning.WINDOW_LOOKBACK_DAYS)
    except MigratorError as exc:
        metrics_error = exc.one_line()
    found_clients, clients_note = None, None
    try:
        found_clients = strategies.clients_census(config, renamed_at=None, old_cluster=None).clients
    except MigratorError as exc:
        clients_note = f"not listed: {exc.one_line()}"
    built = planning.build(config, source, placement=mirror.request, tables=tables,
                           table_error=table_error, rehearsal=rehearsal, hourly_write_peaks=peaks,
                           old_name=strategies.renamed_source_name(settings.source.cluster_id), rename_blockers=notes,
                           hourly=hourly, metrics_error=metrics_error, clients=found_clients,
                           clients_note=clients_note)
    built.warnings.extend(unmatched)
    # What preflight says of a non-superuser login (issue 20): a warning, not a problem.
    built.warnings.extend(partial_views)
    return built


def _unmatched_includes(settings: Settings, tables: list[dict[str, object]] | None) -> list[str]:
    """`plan` says what `run` would refuse: no table selected (exit 7, as run's preflight), and
    warns of each include pattern that selects nothing (a typo hides a table from the copy)."""
    if tables is None:
        return []
    include, exclude = settings.tables.include, settings.tables.exclude
    if not tables:
        raise PreflightFailed(f"no source table matches [tables] include {include} / exclude {exclude}",
                              hint="fix the patterns (schema.table globs, case-sensitive); `migrator inventory` "
                                   "lists the tables")
    import fnmatch

    keys = [f"{t['schema']}.{t['table']}" for t in tables]
    return [f"[tables] include pattern {p!r} matches no table" for p in include
            if not any(fnmatch.fnmatchcase(k, p) for k in keys)]


def probe(config_path: Path) -> ProbeResult:
    """Every statement shape the migration will use, tried on the source on a tiny sample, leaving
    nothing behind (strategies.probe). Never writes the store."""
    from migrator import strategies

    config = load_config(config_path)
    settings = config.settings
    report = strategies.probe_source(settings)
    data = report.to_dict()
    return ProbeResult(settings.migration.name, settings.source.cluster_id, report.route, report.ok, data["catalog"],
                       data["groups"], data["notes"], data["failures"])


def _recorded_fact(config: LoadedConfig, key: str) -> dict[str, object] | None:
    """A fact an earlier run recorded (e.g. the rehearsal), if the store and migration exist."""
    try:
        with _open_read_only(config) as store:
            migration = store.get_migration(config.settings.migration.name)
            action = store.get_action(migration, key) if migration else None
    except MigratorError:
        return None
    return dict(action.response) if action and action.response else None
