"""The checkpoint store: every legal move is one transaction with a compare-and-set.

A move names the state (and version) it expects to leave. If zero rows match,
somebody else moved the item first: the move raises ConcurrentUpdate and writes
nothing. The state change and its event row commit together or not at all.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields as dc_fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from migrator.errors import ConcurrentUpdate, LeaseHeld, StoreError, UsageError
from migrator.procinfo import ProcessIdentity, me, pid_alive
from migrator.store import db
from migrator.store.models import Event, Migration, RemoteAction, RunLease, RunWorker, TableTask
from migrator.store.views import (EventView, LeaseView, MigrationView, RemoteActionView, StateCount, TableSpec,
                                  TableView, WorkerView)

V = TypeVar("V")
_INSERT_EVENT = insert(Event)
_KEEP: Any = object()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _view(cls: type[V], row: Any) -> V:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    kwargs = {}
    for f in dc_fields(cls):  # type: ignore[arg-type]
        value = mapping[f.name]
        kwargs[f.name] = _utc(value) if isinstance(value, datetime) else value
    return cls(**kwargs)


class Store:
    """Checkpoint store access. Create with :meth:`open`; ``read_only`` stores cannot write."""

    def __init__(self, engine: Engine, *, read_only: bool = False, identity: ProcessIdentity | None = None) -> None:
        self.engine = engine
        self.read_only = read_only
        self._identity = identity

    @classmethod
    def open(cls, url: str, *, read_only: bool = False) -> "Store":
        engine = db.create_store_engine(url, read_only=read_only)
        db.check_schema(engine)
        return cls(engine, read_only=read_only)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def identity(self) -> ProcessIdentity:
        return self._identity or me()

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        if self.read_only:
            raise StoreError("internal error: a read-only store was asked to write")
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"checkpoint store error: {db._first_line(exc)}") from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"checkpoint store error: {db._first_line(exc)}") from None

    def _event(self, conn: Connection, migration_id: int, subject: str, trigger: str,
               from_state: str | None, to_state: str | None, detail: Mapping[str, Any] | None = None) -> None:
        ident = self.identity
        # A constant statement with parameters hits SQLAlchemy's compiled cache: events are the hot path.
        conn.execute(_INSERT_EVENT, {
            "migration_id": migration_id, "at": utcnow(), "subject": subject, "from_state": from_state,
            "to_state": to_state, "trigger": trigger, "detail": dict(detail or {}), "host": ident.host,
            "pid": ident.pid})

    # -- migration ---------------------------------------------------------------------------

    def get_migration(self, name: str) -> MigrationView | None:
        with self._read() as conn:
            row = conn.execute(select(Migration.__table__).where(Migration.name == name)).first()
        return _view(MigrationView, row) if row else None

    def require_migration(self, name: str) -> MigrationView:
        found = self.get_migration(name)
        if found is None:
            raise UsageError(f"no migration named {name!r} in this store", hint="run `migrator init CONFIG` first")
        return found

    def list_migrations(self) -> list[MigrationView]:
        with self._read() as conn:
            rows = conn.execute(select(Migration.__table__).order_by(Migration.id)).all()
        return [_view(MigrationView, r) for r in rows]

    def create_migration(self, name: str, strategy: str, config_hash: str, fingerprint: Mapping[str, Any],
                         initial_phase: str) -> MigrationView:
        now = utcnow()
        try:
            with self._tx() as conn:
                result = conn.execute(insert(Migration).values(
                    name=name, strategy=strategy, config_hash=config_hash, config_fingerprint=dict(fingerprint),
                    phase=initial_phase, version=1, approvals={}, created_at=now, updated_at=now))
                assert result.inserted_primary_key is not None
                mid = int(result.inserted_primary_key[0])
                self._event(conn, mid, "migration", "created", None, initial_phase,
                            {"strategy": strategy, "config_hash": config_hash})
        except IntegrityError:
            raise ConcurrentUpdate(f"migration {name!r} was created by another process first") from None
        return self.require_migration(name)

    def update_config(self, migration: MigrationView, config_hash: str, fingerprint: Mapping[str, Any],
                      changed: Sequence[str]) -> MigrationView:
        with self._tx() as conn:
            result = conn.execute(update(Migration).where(
                Migration.id == migration.id, Migration.version == migration.version,
                Migration.config_hash == migration.config_hash,
            ).values(config_hash=config_hash, config_fingerprint=dict(fingerprint),
                     version=Migration.version + 1, updated_at=utcnow()))
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"migration {migration.name!r} changed while its config was updated")
            self._event(conn, migration.id, "migration", "config_changed", migration.phase, migration.phase,
                        {"from_hash": migration.config_hash, "to_hash": config_hash, "changed": list(changed)})
        return self.require_migration(migration.name)

    def advance_migration(self, migration: MigrationView, trigger: str, to_phase: str,
                          detail: Mapping[str, Any] | None = None, *, finished: bool = False,
                          error: str | None = None) -> MigrationView:
        """Move the phase. Approvals belong to the phase they were given in: every move clears them,
        and the move out of a gate names the approval it consumed in its event."""
        now = utcnow()
        event_detail = dict(detail or {})
        gate = event_detail.get("gate")
        if gate is not None and gate in migration.approvals:
            event_detail["approval"] = dict(migration.approvals[gate])
        with self._tx() as conn:
            result = conn.execute(update(Migration).where(
                Migration.id == migration.id, Migration.phase == migration.phase,
                Migration.version == migration.version,
            ).values(phase=to_phase, version=Migration.version + 1, updated_at=now, last_error=error,
                     finished_at=now if finished else None, approvals={}))
            if result.rowcount != 1:
                raise ConcurrentUpdate(
                    f"migration {migration.name!r} is no longer in phase {migration.phase!r}: another process "
                    "moved it; nothing was written", hint="run `migrator status` to see where it is")
            self._event(conn, migration.id, "migration", trigger, migration.phase, to_phase, event_detail)
        return self.require_migration(migration.name)

    def record_migration_error(self, migration: MigrationView, error: str, detail: Mapping[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute(update(Migration).where(Migration.id == migration.id)
                         .values(last_error=error, updated_at=utcnow()))
            self._event(conn, migration.id, "migration", "error", migration.phase, migration.phase,
                        {"error": error, **detail})

    def record_approval(self, migration: MigrationView, gate: str, detail: Mapping[str, Any]) -> MigrationView:
        """Record who approved ``gate`` and when, valid only in the phase the migration is in now:
        the compare-and-set on phase and version refuses it if the migration moved meanwhile."""
        from migrator.procinfo import os_user

        ident = self.identity
        approvals = dict(migration.approvals)
        approvals[gate] = {"at": utcnow().isoformat(), "user": os_user(), "host": ident.host, "pid": ident.pid,
                           "phase": migration.phase, **detail}
        with self._tx() as conn:
            result = conn.execute(update(Migration).where(
                Migration.id == migration.id, Migration.version == migration.version,
                Migration.phase == migration.phase,
            ).values(approvals=approvals, version=Migration.version + 1, updated_at=utcnow()))
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"migration {migration.name!r} changed while approving {gate!r}; "
                                       "nothing was recorded", hint="run `migrator status` to see where it is")
            self._event(conn, migration.id, "migration", f"approve:{gate}", migration.phase, migration.phase,
                        approvals[gate])
        return self.require_migration(migration.name)

    def add_event(self, migration: MigrationView, subject: str, trigger: str,
                  detail: Mapping[str, Any] | None = None, *, state: str | None = None) -> None:
        with self._tx() as conn:
            self._event(conn, migration.id, subject, trigger, state, state, detail)

    # -- tables ------------------------------------------------------------------------------

    def add_tables(self, migration: MigrationView, specs: Sequence[TableSpec], initial_state: str) -> int:
        """Insert the tables not yet known; returns how many were added."""
        now = utcnow()
        with self._tx() as conn:
            known = {(r.schema_name, r.table_name) for r in conn.execute(
                select(TableTask.schema_name, TableTask.table_name).where(TableTask.migration_id == migration.id))}
            fresh = [s for s in specs if (s.schema_name, s.table_name) not in known]
            if fresh:
                conn.execute(insert(TableTask), [{
                    "migration_id": migration.id, "schema_name": s.schema_name, "table_name": s.table_name,
                    "size_mb": s.size_mb, "source_rows": s.source_rows, "state": initial_state, "version": 1,
                    "attempt": 0, "step_timings": {}, "updated_at": now,
                } for s in fresh])
                self._event(conn, migration.id, "migration", "tables_added", None, None,
                            {"count": len(fresh), "state": initial_state})
        return len(fresh)

    def list_tables(self, migration: MigrationView, states: Sequence[str] | None = None,
                    order_by_size: bool = False) -> list[TableView]:
        query = select(TableTask.__table__).where(TableTask.migration_id == migration.id)
        if states is not None:
            query = query.where(TableTask.state.in_(list(states)))
        query = query.order_by(TableTask.size_mb.desc(), TableTask.id) if order_by_size else query.order_by(TableTask.id)
        with self._read() as conn:
            return [_view(TableView, r) for r in conn.execute(query).all()]

    def get_table(self, task_id: int) -> TableView:
        with self._read() as conn:
            row = conn.execute(select(TableTask.__table__).where(TableTask.id == task_id)).first()
        if row is None:
            raise UsageError(f"no table task with id {task_id}")
        return _view(TableView, row)

    def find_table(self, migration: MigrationView, schema: str, table: str) -> TableView | None:
        """The table (schema, table): a pair, never a dotted text (`"a.b".c` and `a."b.c"` differ)."""
        with self._read() as conn:
            row = conn.execute(select(TableTask.__table__).where(
                TableTask.migration_id == migration.id, TableTask.schema_name == schema,
                TableTask.table_name == table)).first()
        return _view(TableView, row) if row else None

    def count_by_state(self, migration: MigrationView) -> list[StateCount]:
        query = (select(TableTask.state, func.count(), func.coalesce(func.sum(TableTask.source_rows), 0),
                        func.coalesce(func.sum(TableTask.size_mb), 0))
                 .where(TableTask.migration_id == migration.id).group_by(TableTask.state))
        with self._read() as conn:
            return [StateCount(state, int(n), int(rows), int(size)) for state, n, rows, size in conn.execute(query)]

    def move_table(self, task: TableView, trigger: str, to_state: str, *,
                   fields: Mapping[str, Any] | None = None, detail: Mapping[str, Any] | None = None,
                   take_lease_seconds: float | None = None, release_lease: bool = False,
                   new_attempt: bool = False) -> TableView:
        """The one compare-and-set every table move goes through."""
        values: dict[str, Any] = dict(fields or {})
        now = utcnow()
        values.update(state=to_state, updated_at=now)
        if take_lease_seconds is not None:
            values.update(owner=self.owner_label(), lease_expires_at=now + timedelta(seconds=take_lease_seconds))
        elif release_lease:
            values.update(owner=None, lease_expires_at=None)
        statement = _table_move_statement(frozenset(values), new_attempt)
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(w_id=task.id, w_state=task.state, w_version=task.version)
        with self._tx() as conn:
            row = conn.execute(statement, params).first()
            if row is None:
                raise ConcurrentUpdate(
                    f"table {task.qualified_name} is no longer {task.state!r} (version {task.version}): "
                    "another worker moved it; nothing was written")
            event_detail = dict(detail or {})
            if new_attempt:
                event_detail["attempt"] = task.attempt + 1
            self._event(conn, task.migration_id, task.subject, trigger, task.state, to_state, event_detail)
        return _view(TableView, row)

    # Named moves: what the table machine does, spelled as the store sees it.

    def claim_table(self, task: TableView, trigger: str, to_state: str, lease_seconds: float,
                    fields: Mapping[str, Any] | None = None, new_attempt: bool = False) -> TableView:
        return self.move_table(task, trigger, to_state, fields=fields, take_lease_seconds=lease_seconds,
                               new_attempt=new_attempt, detail={"owner": self.owner_label()})

    def complete_step(self, task: TableView, trigger: str, to_state: str,
                      fields: Mapping[str, Any] | None = None, detail: Mapping[str, Any] | None = None) -> TableView:
        return self.move_table(task, trigger, to_state, fields=fields, detail=detail, release_lease=True)

    def fail_table(self, task: TableView, error: str, to_state: str, trigger: str,
                   detail: Mapping[str, Any] | None = None, fields: Mapping[str, Any] | None = None) -> TableView:
        # A failed table waits for the next pass unless the worker schedules a retry (schedule_retry).
        return self.move_table(task, trigger, to_state,
                               fields={**(fields or {}), "last_error": error, "ready_at": None},
                               detail={"error": error, **(detail or {})}, release_lease=True)

    def renew_table_leases(self, lease_seconds: float, migration_id: int | None = None) -> int:
        query = update(TableTask).where(TableTask.owner == self.owner_label())
        if migration_id is not None:  # served by ix_table_task_owner
            query = query.where(TableTask.migration_id == migration_id)
        with self._tx() as conn:
            result = conn.execute(query.values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds)))
        return int(result.rowcount)

    def claimed_tables(self, migration: MigrationView) -> list[TableView]:
        """Tables some process holds (owner set): read through ix_table_task_owner, never a scan."""
        query = select(TableTask.__table__).where(TableTask.migration_id == migration.id,
                                                  TableTask.owner.is_not(None)).order_by(TableTask.id)
        with self._read() as conn:
            return [_view(TableView, r) for r in conn.execute(query).all()]

    def orphaned_tables(self, migration: MigrationView) -> list[TableView]:
        """Claimed tables whose owner is provably gone (dead pid here, or lease expired)."""
        now = utcnow()
        mine = self.owner_label()
        orphans = []
        for task in self.claimed_tables(migration):
            if task.owner is None or task.owner == mine:
                continue
            if owner_is_dead(task.owner, self.identity.host) or (task.lease_expires_at and task.lease_expires_at < now):
                orphans.append(task)
        return orphans

    # -- picking work (several workers) ------------------------------------------------------

    def pick_table(self, migration: MigrationView, states: Sequence[str], retry_states: Sequence[str],
                   max_attempts: int, lease_seconds: float) -> TableView | None:
        """Reserve the next table to work on for this process, or None when none is free now.

        ``states`` are tried in order (tables further along first), then ``retry_states`` (failed
        tables whose retry time has come, attempts left). Within a state the largest table goes
        first. Each state costs one probe of ix_table_task_pick (O(log n), not a scan); on
        PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent pickers pass over each other's rows
        instead of queueing on them. The reservation (owner + lease) is the compare-and-set: a row
        someone holds under a live lease is never picked; one whose lease ran out is."""
        now = utcnow()
        free = or_(TableTask.owner.is_(None), TableTask.lease_expires_at < now)
        probes = [(state, None) for state in states] + [(state, max_attempts) for state in retry_states]
        with self._tx() as conn:
            for state, attempts in probes:
                query = select(TableTask.id, TableTask.version).where(
                    TableTask.migration_id == migration.id, TableTask.state == state, free)
                if attempts is not None:
                    query = query.where(TableTask.attempt < attempts, TableTask.ready_at.is_not(None),
                                        TableTask.ready_at <= now)
                # size_mb DESC, id DESC: one backward walk of the index (mixed directions would sort).
                query = (query.order_by(TableTask.size_mb.desc(), TableTask.id.desc()).limit(1)
                         .with_for_update(skip_locked=True))
                found = conn.execute(query).first()
                if found is None:
                    continue
                row = conn.execute(update(TableTask).where(
                    TableTask.id == found.id, TableTask.version == found.version,
                ).values(owner=self.owner_label(), lease_expires_at=now + timedelta(seconds=lease_seconds),
                         ready_at=None, version=TableTask.version + 1).returning(*TableTask.__table__.c)).first()
                if row is not None:
                    return _view(TableView, row)
        return None

    def release_table(self, task: TableView) -> bool:
        """Give back a table this process reserved (or whose owner is provably dead) in a resting
        state: the compare-and-set on version and owner leaves it alone if anybody moved it."""
        with self._tx() as conn:
            result = conn.execute(update(TableTask).where(
                TableTask.id == task.id, TableTask.version == task.version, TableTask.owner == task.owner,
            ).values(owner=None, lease_expires_at=None, version=TableTask.version + 1))
        return result.rowcount == 1

    def arm_retries(self, migration: MigrationView, retry_states: Sequence[str], max_attempts: int) -> int:
        """A new pass: failed tables with attempts left may be picked again from now on."""
        with self._tx() as conn:
            result = conn.execute(update(TableTask).where(
                TableTask.migration_id == migration.id, TableTask.state.in_(list(retry_states)),
                TableTask.attempt < max_attempts, TableTask.owner.is_(None),
            ).values(ready_at=utcnow()))
        return int(result.rowcount)

    def schedule_retry(self, task: TableView, wait_seconds: float, trigger: str,
                       detail: Mapping[str, Any]) -> None:
        """A table that failed transiently is picked again after ``wait_seconds`` (by any worker);
        the scheduled retry and its event commit together."""
        with self._tx() as conn:
            conn.execute(update(TableTask).where(TableTask.id == task.id, TableTask.owner.is_(None))
                         .values(ready_at=utcnow() + timedelta(seconds=wait_seconds)))
            self._event(conn, task.migration_id, task.subject, trigger, None, None, detail)

    def work_elsewhere(self, migration: MigrationView, not_done_states: Sequence[str],
                       retry_states: Sequence[str], max_attempts: int) -> int:
        """Tables not done that this process cannot pick now but a pass must wait for: held by
        another process, or failed with a retry scheduled. Both read through the indexes."""
        mine = self.owner_label()
        held = select(func.count()).where(
            TableTask.migration_id == migration.id, TableTask.owner.is_not(None), TableTask.owner != mine,
            TableTask.state.in_(list(not_done_states)))
        waiting = select(func.count()).where(
            TableTask.migration_id == migration.id, TableTask.state.in_(list(retry_states)),
            TableTask.ready_at.is_not(None), TableTask.attempt < max_attempts, TableTask.owner.is_(None))
        with self._read() as conn:
            return int(conn.execute(held).scalar_one()) + int(conn.execute(waiting).scalar_one())

    # -- workers -----------------------------------------------------------------------------

    def register_worker(self, migration: MigrationView, role: str, ttl_seconds: float) -> WorkerView:
        """This process works on ``migration``'s tables (a row per process, kept after it stops)."""
        ident = self.identity
        now = utcnow()
        holder = self.owner_label()
        values = dict(role=role, host=ident.host, pid=ident.pid, started_at=now, heartbeat_at=now,
                      expires_at=now + timedelta(seconds=ttl_seconds), stopped_at=None)
        with self._tx() as conn:
            result = conn.execute(update(RunWorker).where(
                RunWorker.migration_id == migration.id, RunWorker.holder == holder).values(**values))
            if result.rowcount == 0:
                conn.execute(insert(RunWorker).values(migration_id=migration.id, holder=holder, **values))
            if role != "leader":
                self._event(conn, migration.id, "run", "worker_joined", None, None, {"holder": holder, "role": role})
        return WorkerView(migration.id, holder, **values)  # type: ignore[arg-type]

    def renew_worker(self, migration_id: int, ttl_seconds: float) -> None:
        now = utcnow()
        with self._tx() as conn:
            conn.execute(update(RunWorker).where(
                RunWorker.migration_id == migration_id, RunWorker.holder == self.owner_label(),
            ).values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_seconds)))

    def stop_worker(self, migration_id: int, reason: str) -> None:
        now = utcnow()
        with self._tx() as conn:
            result = conn.execute(update(RunWorker).where(
                RunWorker.migration_id == migration_id, RunWorker.holder == self.owner_label(),
                RunWorker.stopped_at.is_(None)).values(stopped_at=now, heartbeat_at=now))
            if result.rowcount == 1:
                self._event(conn, migration_id, "run", "worker_left", None, None,
                            {"holder": self.owner_label(), "reason": reason})

    def list_workers(self, migration: MigrationView | None = None) -> list[WorkerView]:
        query = select(RunWorker.__table__).order_by(RunWorker.migration_id, RunWorker.id)
        if migration is not None:
            query = query.where(RunWorker.migration_id == migration.id)
        with self._read() as conn:
            return [_view(WorkerView, r) for r in conn.execute(query).all()]

    def owner_label(self) -> str:
        ident = self.identity
        return f"{ident.host}:{ident.pid}:{ident.started or '-'}"

    # -- events ------------------------------------------------------------------------------

    def events(self, migration: MigrationView, subject: str | None = None, limit: int | None = None,
               newest_first: bool = False) -> list[EventView]:
        query = select(Event.__table__).where(Event.migration_id == migration.id)
        if subject is not None:
            query = query.where(Event.subject == subject)
        query = query.order_by(Event.id.desc() if newest_first else Event.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_view(EventView, r) for r in conn.execute(query).all()]

    def latest_event(self, migration: MigrationView, trigger: str) -> EventView | None:
        query = (select(Event.__table__).where(Event.migration_id == migration.id, Event.trigger == trigger)
                 .order_by(Event.id.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(query).first()
        return _view(EventView, row) if row else None

    def latest_by_subject(self, migration: MigrationView, trigger: str) -> dict[str, EventView]:
        """The newest ``trigger`` event of each subject (e.g. each table's last scheduled retry)."""
        query = (select(Event.__table__).where(Event.migration_id == migration.id, Event.trigger == trigger)
                 .order_by(Event.id))
        with self._read() as conn:
            return {row.subject: _view(EventView, row) for row in conn.execute(query).all()}

    def first_event_time(self, migration: MigrationView, trigger: str) -> datetime | None:
        # The first one written (lowest id): one probe of ix_event_migration_trigger, where min(at)
        # read every such event (one per table).
        query = (select(Event.at).where(Event.migration_id == migration.id, Event.trigger == trigger)
                 .order_by(Event.id).limit(1))
        with self._read() as conn:
            return _utc(conn.execute(query).scalar())

    def newest_event_id(self, migration: MigrationView) -> int | None:
        """The id of the migration's newest event: whether anything happened since a reader looked."""
        query = select(func.max(Event.id)).where(Event.migration_id == migration.id)
        with self._read() as conn:
            found = conn.execute(query).scalar()
        return int(found) if found is not None else None

    def bytes_moved(self, migration: MigrationView) -> int:
        # Bytes of tables whose load is recorded: the store reads columns, the machine owns state names.
        query = select(func.coalesce(func.sum(TableTask.bytes_unloaded), 0)).where(
            TableTask.migration_id == migration.id, TableTask.rows_loaded.is_not(None))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one() or 0)

    # -- run lease ---------------------------------------------------------------------------

    def get_run_lease(self, migration: MigrationView) -> LeaseView | None:
        with self._read() as conn:
            row = conn.execute(select(RunLease.__table__).where(RunLease.migration_id == migration.id)).first()
        return _view(LeaseView, row) if row else None

    def acquire_run_lease(self, migration: MigrationView, ttl_seconds: float) -> LeaseView:
        """Take the run lease, or take it over from a provably dead holder; else LeaseHeld."""
        ident = self.identity
        now = utcnow()
        token = secrets.token_hex(16)
        values = dict(holder=self.owner_label(), host=ident.host, pid=ident.pid, pid_started=ident.started,
                      token=token, acquired_at=now, heartbeat_at=now,
                      expires_at=now + timedelta(seconds=ttl_seconds))
        current = self.get_run_lease(migration)
        if current is None:
            try:
                with self._tx() as conn:
                    conn.execute(insert(RunLease).values(migration_id=migration.id, **values))
                    self._event(conn, migration.id, "run", "lease_acquired", None, None, {"holder": values["holder"]})
            except IntegrityError:
                current = self.get_run_lease(migration)
                assert current is not None
                raise LeaseHeld(_held_message(migration.name, current)) from None
            return self._require_lease(migration)
        why = lease_dead_reason(current, ident.host, now)
        if why is None and current.holder != values["holder"]:
            raise LeaseHeld(_held_message(migration.name, current),
                            hint="wait for it to finish, or stop it; a dead holder is taken over automatically")
        with self._tx() as conn:
            result = conn.execute(update(RunLease).where(
                RunLease.migration_id == migration.id, RunLease.token == current.token).values(**values))
            if result.rowcount != 1:
                latest = self.get_run_lease(migration)
                raise LeaseHeld(_held_message(migration.name, latest or current))
            self._event(conn, migration.id, "run", "lease_taken_over", None, None,
                        {"previous_holder": current.holder, "reason": why or "same process"})
        return self._require_lease(migration)

    def renew_run_lease(self, lease: LeaseView, ttl_seconds: float) -> None:
        now = utcnow()
        with self._tx() as conn:
            result = conn.execute(update(RunLease).where(
                RunLease.migration_id == lease.migration_id, RunLease.token == lease.token,
            ).values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_seconds)))
        if result.rowcount != 1:
            raise LeaseHeld("this run lost its lease to another process; stopping without further writes")

    def release_run_lease(self, lease: LeaseView) -> None:
        from sqlalchemy import delete

        with self._tx() as conn:
            result = conn.execute(delete(RunLease).where(
                RunLease.migration_id == lease.migration_id, RunLease.token == lease.token))
            if result.rowcount == 1:
                self._event(conn, lease.migration_id, "run", "lease_released", None, None, {"holder": lease.holder})

    def _require_lease(self, migration: MigrationView) -> LeaseView:
        lease = self.get_run_lease(migration)
        assert lease is not None
        return lease

    # -- remote actions ----------------------------------------------------------------------

    def get_action(self, migration: MigrationView, key: str) -> RemoteActionView | None:
        with self._read() as conn:
            row = conn.execute(select(RemoteAction.__table__).where(
                RemoteAction.migration_id == migration.id, RemoteAction.action_key == key)).first()
        return _view(RemoteActionView, row) if row else None

    def list_actions(self, migration: MigrationView) -> list[RemoteActionView]:
        """Every recorded remote action and fact, oldest first (for reports; read-only)."""
        with self._read() as conn:
            rows = conn.execute(select(RemoteAction.__table__).where(
                RemoteAction.migration_id == migration.id).order_by(RemoteAction.started_at, RemoteAction.id)).all()
        return [_view(RemoteActionView, row) for row in rows]

    def begin_action(self, migration: MigrationView, key: str, request: Mapping[str, Any]) -> RemoteActionView:
        """Record the intent before the remote call; an existing record is returned untouched."""
        existing = self.get_action(migration, key)
        if existing is not None:
            return existing
        with self._tx() as conn:
            conn.execute(insert(RemoteAction).values(
                migration_id=migration.id, action_key=key, status="pending", request=dict(request),
                started_at=utcnow()))
            self._event(conn, migration.id, f"action:{key}", "action_started", None, "pending", {"request": dict(request)})
        action = self.get_action(migration, key)
        assert action is not None
        return action

    def finish_action(self, migration: MigrationView, key: str, response: Mapping[str, Any],
                      status: str = "done") -> RemoteActionView:
        with self._tx() as conn:
            result = conn.execute(update(RemoteAction).where(
                RemoteAction.migration_id == migration.id, RemoteAction.action_key == key,
                RemoteAction.status == "pending",
            ).values(status=status, response=dict(response), finished_at=utcnow()))
            if result.rowcount != 1:
                raise ConcurrentUpdate(f"remote action {key!r} is not pending; another process finished it")
            self._event(conn, migration.id, f"action:{key}", "action_finished", "pending", status,
                        {"response": dict(response)})
        action = self.get_action(migration, key)
        assert action is not None
        return action


@lru_cache(maxsize=64)
def _table_move_statement(columns: frozenset[str], new_attempt: bool) -> Any:
    """One compare-and-set UPDATE per column set, built once so SQLAlchemy's compiled cache serves it."""
    values: dict[str, Any] = {name: bindparam(f"v_{name}") for name in sorted(columns)}
    values["version"] = TableTask.version + 1
    if new_attempt:
        values["attempt"] = TableTask.attempt + 1
    return (update(TableTask)
            .where(TableTask.id == bindparam("w_id"), TableTask.state == bindparam("w_state"),
                   TableTask.version == bindparam("w_version"))
            .values(**values).returning(*TableTask.__table__.c))


def owner_is_dead(owner: str, this_host: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != this_host or not pid_text.isdigit():
        return False
    return not pid_alive(int(pid_text), None if started in ("", "-") else started)


def lease_dead_reason(lease: LeaseView, this_host: str, now: datetime) -> str | None:
    if lease.host == this_host and not pid_alive(lease.pid, lease.pid_started):
        return f"holder pid {lease.pid} on {lease.host} is no longer running"
    if lease.expires_at < now:
        return f"holder's heartbeat expired at {lease.expires_at.isoformat(timespec='seconds')}"
    return None


def _held_message(name: str, lease: LeaseView) -> str:
    return (f"migration {name!r} is being run by pid {lease.pid} on {lease.host} "
            f"(since {lease.acquired_at.isoformat(timespec='seconds')}, last heartbeat "
            f"{lease.heartbeat_at.isoformat(timespec='seconds')})")
