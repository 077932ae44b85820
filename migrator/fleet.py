"""`migrator status --all`: every migration in one store, one line each (reads, never writes).

A team migrating a fleet of clusters keeps their migrations in one PostgreSQL store; this is the
view of all of them: phase, tables, parts (of tables split into parts) and rows done, ETA, the
gate waiting, the workers alive and their last heartbeat, what needs an operator, and stray
writes. The store URL's password is never shown (db.redact)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from migrator import routes
from migrator.config import load_config
from migrator.engine.definitions import PART_MACHINE, TABLE_MACHINE, MachineDef, load_definition
from migrator.errors import DefinitionError, UsageError
from migrator.results import Result
from migrator.store import MigrationView, Store, utcnow
from migrator.store.db import redact
from migrator.store.store import lease_dead_reason, pid_alive


@dataclass
class WorkerRow:
    role: str
    host: str
    pid: int
    heartbeat_at: datetime


@dataclass
class FleetRow:
    migration: str
    strategy: str
    phase: str
    tables_done: int
    tables_total: int
    rows_done: int
    rows_total: int
    eta_seconds: float | None
    gate_waiting: str | None
    workers_alive: list[WorkerRow]
    last_heartbeat_at: datetime | None
    needs_operator: int
    last_error: str | None
    stray_writes: list[str] = field(default_factory=list)
    finished_at: datetime | None = None
    #: Over the migration's tables split into parts (0/0: none is): parts done and planned.
    parts_done: int = 0
    parts_total: int = 0


@dataclass
class FleetResult(Result):
    store: str
    migrations: list[FleetRow]
    at: datetime

    def render(self) -> RenderableType:
        grid = Table(title=f"migrations in {self.store}", title_justify="left")
        for col in ("migration", "phase", "tables", "parts", "rows", "ETA", "gate", "workers", "heartbeat",
                    "operator", "stray writes"):
            grid.add_column(col)
        for r in self.migrations:
            grid.add_row(*(Text(cell) for cell in (
                r.migration, r.phase, f"{r.tables_done}/{r.tables_total}",
                f"{r.parts_done}/{r.parts_total}" if r.parts_total else "-", f"{r.rows_done}/{r.rows_total}",
                _duration(r.eta_seconds) if r.finished_at is None else "done",
                r.gate_waiting or "",
                ", ".join(f"{w.role} {w.pid}@{w.host}" for w in r.workers_alive) or "none",
                _ago(r.last_heartbeat_at, self.at),
                "; ".join(x for x in (f"{r.needs_operator} table(s)" if r.needs_operator else "",
                                      r.last_error or "") if x),
                "; ".join(r.stray_writes[:1]))))
        if not self.migrations:
            return Text(f"no migrations in {self.store}")
        return grid


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=round(seconds)))


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    return f"{_duration(max(0.0, (now - at).total_seconds()))} ago"


def store_url_of(config_path: Path | None, url: str | None) -> str:
    if url:
        return url
    if config_path is None:
        raise UsageError("`status --all` needs the store: give -c CONFIG or --store URL")
    return load_config(config_path).store_url


def status_all(config_path: Path | None = None, url: str | None = None) -> FleetResult:
    """Every migration in the store that ``config_path`` names (or ``url``), read-only."""
    store_url = store_url_of(config_path, url)
    table = load_definition(TABLE_MACHINE, guards=None, actions=None)
    done_states = set(table.tagged("done"))
    operator_states = set(table.tagged("needs_operator"))
    part_done = load_definition(PART_MACHINE, guards=None, actions=None).tagged("done")
    machines: dict[str, MachineDef | None] = {}
    with Store.open(store_url, read_only=True) as store:
        now = utcnow()
        rows = [_row(store, m, machines, done_states, operator_states, part_done, now)
                for m in store.list_migrations()]
    return FleetResult(redact(store_url), rows, now)


def _machine(strategy: str, cache: dict[str, MachineDef | None]) -> MachineDef | None:
    if strategy not in cache:
        try:
            cache[strategy] = load_definition(routes.route(strategy).machine, guards=None, actions=None)
        except (KeyError, DefinitionError):  # a strategy this version does not know: shown without its gates
            cache[strategy] = None
    return cache[strategy]


def _row(store: Store, m: MigrationView, machines: dict[str, MachineDef | None], done_states: set[str],
         operator_states: set[str], part_done: list[str], now: datetime) -> FleetRow:
    counts = store.count_by_state(m)
    parts = store.part_counts(m, part_done).values()
    tables_total = sum(c.tables for c in counts)
    tables_done = sum(c.tables for c in counts if c.state in done_states)
    rows_total = sum(c.rows for c in counts)
    rows_done = sum(c.rows for c in counts if c.state in done_states)
    started = store.first_event_time(m, "start_unload")
    eta = None
    if started is not None and rows_done and m.finished_at is None:
        elapsed = (now - started).total_seconds()
        eta = (rows_total - rows_done) / (rows_done / elapsed) if elapsed > 0 else None
    definition = machines.get(m.strategy) if m.strategy in machines else _machine(m.strategy, machines)
    gate = None
    if definition is not None and m.phase in definition.states:
        state = definition.state(m.phase)
        if state.approval and state.approval not in m.approvals:
            gate = state.approval
    alive: list[WorkerRow] = []
    beats: list[datetime] = []
    lease = store.get_run_lease(m)
    if lease is not None:
        beats.append(lease.heartbeat_at)
    for w in store.list_workers(m):
        beats.append(w.heartbeat_at)
        if w.stopped_at is None and w.expires_at > now and (w.host != store.identity.host or pid_alive(w.pid, None)):
            alive.append(WorkerRow(w.role, w.host, w.pid, w.heartbeat_at))
    if lease is not None and lease_dead_reason(lease, store.identity.host, now) is None \
            and not any(w.role == "leader" and w.pid == lease.pid for w in alive):
        alive.insert(0, WorkerRow("leader", lease.host, lease.pid, lease.heartbeat_at))
    from migrator.strategies import stray_record

    return FleetRow(
        migration=m.name, strategy=m.strategy, phase=m.phase, tables_done=tables_done, tables_total=tables_total,
        rows_done=rows_done, rows_total=rows_total, eta_seconds=eta, gate_waiting=gate, workers_alive=alive,
        last_heartbeat_at=max(beats) if beats else None,
        needs_operator=sum(c.tables for c in counts if c.state in operator_states), last_error=m.last_error,
        stray_writes=stray_record.alert(store, m), finished_at=m.finished_at,
        parts_done=sum(d for _, d in parts), parts_total=sum(n for n, _ in parts))
