"""The checkpoint store: every legal move is one transaction with a compare-and-set.

A move names the state (and version) it expects to leave. If zero rows match,
somebody else moved the item first: the move raises ConcurrentUpdate and writes
nothing. The state change and its event row commit together or not at all.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, replace
from dataclasses import fields as dc_fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Integer, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import DatabaseError, IntegrityError

from migrator.errors import ConcurrentUpdate, LeaseHeld, StoreError, UsageError, masked
from migrator.procinfo import ProcessIdentity, me, pid_alive
from migrator.store import db
from migrator.store.models import Event, Migration, RemoteAction, RunLease, RunWorker, TablePart, TableTask
from migrator.store.views import (EventView, LeaseView, MigrationView, PartSpec, PartView, RemoteActionView,
                                  StateCount, TableSpec, TableView, WorkerView)

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
        if f.name not in mapping and f.default is not MISSING:
            continue  # not a column (e.g. PartView.taken_from): its default
        value = mapping[f.name]
        kwargs[f.name] = _utc(value) if isinstance(value, datetime) else value
    return cls(**kwargs)


@dataclass(frozen=True)
class Probe:
    """One probe of a pick (`Store.pick_work`): a table or part state to take work from.

    ``max_attempts`` set: failed ones whose retry time has come and with attempts left.
    ``joinable`` (tables): only a table none of whose parts is left to do.
    ``table_states`` (parts): only a part whose table rests in one of these states."""

    kind: str  # "table" | "part"
    state: str
    max_attempts: int | None = None
    joinable: bool = False
    #: (parts) the states their table may rest in for the part to be picked.
    table_states: tuple[str, ...] = ()


@dataclass(frozen=True)
class EarlierMove:
    """A table move taken in memory and written with the next one (`Store.move_table` ``earlier``)."""

    trigger: str
    to_state: str
    fields: Mapping[str, Any]
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class ExtraEvent:
    """One more event written with a table move (`Store.move_table` ``events``)."""

    trigger: str
    detail: Mapping[str, Any]
    state: str | None = None


@dataclass(frozen=True)
class HeldMoves:
    """Moves of a table taken in memory, written with the next pick (`Store.pick_work` ``settle``):
    ``task`` as stored before them; the last releases the table."""

    task: TableView
    moves: Sequence[EarlierMove]


@dataclass(frozen=True)
class PickedMove:
    """The first move of a table as it is picked (`Store.pick_work` ``advance``): into an in-flight
    state, taking the lease."""

    trigger: str
    to_state: str
    lease_seconds: float
    new_attempt: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[ExtraEvent] = ()


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
        except IntegrityError:
            raise  # a lost compare-and-set race: the caller says what it means
        except DatabaseError as exc:  # unreachable, locked, read-only or damaged: one line, exit 3
            raise db.store_failure(exc, self.engine) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # a damaged page inside a text or JSON value
            raise db.damaged(exc, self.engine) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except DatabaseError as exc:
            raise db.store_failure(exc, self.engine) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise db.damaged(exc, self.engine) from None

    def _event(self, conn: Connection, migration_id: int, subject: str, trigger: str,
               from_state: str | None, to_state: str | None, detail: Mapping[str, Any] | None = None) -> None:
        ident = self.identity
        # A constant statement with parameters hits SQLAlchemy's compiled cache: events are the hot path.
        conn.execute(_INSERT_EVENT, {
            "migration_id": migration_id, "at": utcnow(), "subject": subject, "from_state": from_state,
            "to_state": to_state, "trigger": trigger, "detail": masked(dict(detail or {})), "host": ident.host,
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
            ).values(phase=to_phase, version=Migration.version + 1, updated_at=now, last_error=masked(error),
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
                         .values(last_error=masked(error), updated_at=utcnow()))
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
                   new_attempt: bool = False, earlier: Sequence[EarlierMove] = (),
                   events: Sequence[ExtraEvent] = ()) -> TableView:
        """The one compare-and-set every table move goes through. ``earlier``: moves the caller
        took in memory since ``task`` was stored (a step's completing move into a resting state,
        followed at once by the next move), written with this one: their fields in the same row
        update, their events first; ``task`` is then the table as stored before them. ``events``:
        more events (trigger, detail) recorded with this move, after its own (e.g. the statement
        the step entered now is about to run), so one transaction carries them all."""
        with self._tx() as conn:
            return self._move(conn, task, trigger, to_state, fields=fields, detail=detail,
                              take_lease_seconds=take_lease_seconds, release_lease=release_lease,
                              new_attempt=new_attempt, earlier=earlier, events=events)

    def _move(self, conn: Connection, task: TableView, trigger: str, to_state: str, *,
              fields: Mapping[str, Any] | None = None, detail: Mapping[str, Any] | None = None,
              take_lease_seconds: float | None = None, release_lease: bool = False,
              new_attempt: bool = False, earlier: Sequence[EarlierMove] = (),
              events: Sequence[ExtraEvent] = ()) -> TableView:
        values: dict[str, Any] = {}
        for move in earlier:
            values.update(move.fields)
        values.update(fields or {})
        now = utcnow()
        values.update(state=to_state, updated_at=now)
        if take_lease_seconds is not None:
            values.update(owner=self.owner_label(), lease_expires_at=now + timedelta(seconds=take_lease_seconds))
        elif release_lease:
            values.update(owner=None, lease_expires_at=None)
        statement = _table_move_statement(frozenset(values), new_attempt)
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(w_id=task.id, w_state=task.state, w_version=task.version)
        row = conn.execute(statement, params).first()
        if row is None:
            raise ConcurrentUpdate(
                f"table {task.qualified_name} is no longer {task.state!r} (version {task.version}): "
                "another worker moved it; nothing was written")
        from_state = task.state
        for move in earlier:
            self._event(conn, task.migration_id, task.subject, move.trigger, from_state, move.to_state, move.detail)
            from_state = move.to_state
        event_detail = dict(detail or {})
        if new_attempt:
            event_detail["attempt"] = task.attempt + 1
        self._event(conn, task.migration_id, task.subject, trigger, from_state, to_state, event_detail)
        for extra in events:
            self._event(conn, task.migration_id, task.subject, extra.trigger, extra.state, extra.state,
                        extra.detail)
        return _view(TableView, row)

    # Named moves: what the table machine does, spelled as the store sees it.

    def claim_table(self, task: TableView, trigger: str, to_state: str, lease_seconds: float,
                    fields: Mapping[str, Any] | None = None, new_attempt: bool = False,
                    earlier: Sequence[EarlierMove] = (), events: Sequence[ExtraEvent] = ()) -> TableView:
        return self.move_table(task, trigger, to_state, fields=fields, take_lease_seconds=lease_seconds,
                               new_attempt=new_attempt, detail={"owner": self.owner_label()}, earlier=earlier,
                               events=events)

    def complete_step(self, task: TableView, trigger: str, to_state: str,
                      fields: Mapping[str, Any] | None = None, detail: Mapping[str, Any] | None = None) -> TableView:
        return self.move_table(task, trigger, to_state, fields=fields, detail=detail, release_lease=True)

    def fail_table(self, task: TableView, error: str, to_state: str, trigger: str,
                   detail: Mapping[str, Any] | None = None, fields: Mapping[str, Any] | None = None,
                   earlier: Sequence[EarlierMove] = ()) -> TableView:
        # A failed table waits for the next pass unless the worker schedules a retry (schedule_retry).
        return self.move_table(task, trigger, to_state,
                               fields={**(fields or {}), "last_error": masked(error), "ready_at": None},
                               detail={"error": error, **(detail or {})}, release_lease=True, earlier=earlier)

    def _table_lease_renewal(self, lease_seconds: float, migration_id: int | None) -> Any:
        query = update(TableTask).where(TableTask.owner == self.owner_label())
        if migration_id is not None:  # served by ix_table_task_owner
            query = query.where(TableTask.migration_id == migration_id)
        return query.values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))

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
        """Reserve the next table (no parts): `pick_work` with table probes only."""
        probes = [Probe("table", s) for s in states] + [Probe("table", s, max_attempts) for s in retry_states]
        found = self.pick_work(migration, probes, lease_seconds)
        assert found is None or isinstance(found, TableView)
        return found

    def pick_part(self, migration: MigrationView, states: Sequence[str], retry_states: Sequence[str],
                  max_attempts: int, lease_seconds: float, parted_states: Sequence[str]) -> PartView | None:
        """Reserve the next part (of a table resting in one of ``parted_states``): `pick_work`."""
        within = tuple(parted_states)
        probes = [Probe("part", s, table_states=within) for s in states] + [
            Probe("part", s, max_attempts, table_states=within) for s in retry_states]
        found = self.pick_work(migration, probes, lease_seconds)
        assert found is None or isinstance(found, PartView)
        return found

    def pick_work(self, migration: MigrationView, probes: Sequence["Probe"], lease_seconds: float, *,
                  part_done_states: Sequence[str] = (),
                  advance: Callable[[TableView], PickedMove | None] | None = None,
                  settle: HeldMoves | None = None) -> TableView | PartView | None:
        """Reserve the next table or part to work on for this process, or None when none is free now.

        The store is the one queue of a pass, for tables and parts alike. ``probes`` are tried in
        order (the caller puts work further along first); a probe names a table state or a part
        state, and with ``max_attempts`` it asks for failed ones whose retry time has come. Within
        a probe the largest goes first: tables by size, parts by their estimated share, across all
        parts of all tables. Each probe is one walk of an index (ix_table_task_pick /
        ix_table_part_pick; O(log n), not a scan); on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets
        concurrent pickers pass over each other's rows instead of queueing on them. The reservation
        (owner + lease) is the compare-and-set: a row someone holds under a live lease is never
        picked; one whose lease ran out is (an in-flight part so picked is its dead owner's, which
        the walk reconciles through the state's `lost` move).

        A part is picked only while its table rests in one of the probe's ``table_states``; a table probe with
        ``joinable`` set takes a table only when none of its parts is outside ``part_done_states``
        (a table in its `parted` state goes on once its parts are done).

        ``advance``: given a table as picked, the move its walk takes first (or None), taken in the
        same transaction (its compare-and-set, its event and ``events``), so a pick and the start
        of the table's first step cost one transaction; the table is returned as moved.

        ``settle``: the moves that ended this worker's previous table (its last step's completing
        move into a done state), held back by its walk and written first in this transaction, so
        finishing a table and picking the next cost one; written even when nothing is picked."""
        now = utcnow()
        with self._tx() as conn:
            if settle is not None and settle.moves:
                *earlier, last = settle.moves
                self._move(conn, settle.task, last.trigger, last.to_state, fields=last.fields, detail=last.detail,
                           release_lease=True, earlier=earlier)
            for probe in probes:
                if probe.kind == "part":
                    found = self._probe_part(conn, migration, probe, now)
                    if found is None:
                        continue
                    row = conn.execute(update(TablePart).where(
                        TablePart.id == found.id, TablePart.version == found.version,
                    ).values(owner=self.owner_label(), lease_expires_at=now + timedelta(seconds=lease_seconds),
                             ready_at=None, version=TablePart.version + 1).returning(*TablePart.__table__.c)).first()
                    if row is not None:
                        # Who held it before (a dead worker, for a part picked in flight): its walk says so.
                        return replace(_view(PartView, row), taken_from=found.owner)
                    continue
                found = self._probe_table(conn, migration, probe, part_done_states, now)
                if found is None:
                    continue
                row = conn.execute(update(TableTask).where(
                    TableTask.id == found.id, TableTask.version == found.version,
                ).values(owner=self.owner_label(), lease_expires_at=now + timedelta(seconds=lease_seconds),
                         ready_at=None, version=TableTask.version + 1).returning(*TableTask.__table__.c)).first()
                if row is not None:
                    picked = _view(TableView, row)
                    move = advance(picked) if advance is not None else None
                    if move is not None:
                        return self._take(conn, picked, move, now)
                    return picked
        return None

    def _take(self, conn: Connection, task: TableView, move: PickedMove, now: datetime) -> TableView:
        """A picked table's first move, inside the pick's transaction (the row is locked by it)."""
        values: dict[str, Any] = dict(move.fields)
        values.update(state=move.to_state, updated_at=now, owner=self.owner_label(),
                      lease_expires_at=now + timedelta(seconds=move.lease_seconds))
        statement = _table_move_statement(frozenset(values), move.new_attempt)
        params = {f"v_{k}": v for k, v in values.items()}
        params.update(w_id=task.id, w_state=task.state, w_version=task.version)
        row = conn.execute(statement, params).first()
        if row is None:  # the pick holds the row: nobody can have moved it
            raise ConcurrentUpdate(f"table {task.qualified_name} moved while it was picked; nothing was written")
        detail = {"owner": self.owner_label(), **move.detail}
        if move.new_attempt:
            detail["attempt"] = task.attempt + 1
        self._event(conn, task.migration_id, task.subject, move.trigger, task.state, move.to_state, detail)
        for extra in move.events:
            self._event(conn, task.migration_id, task.subject, extra.trigger, extra.state, extra.state, extra.detail)
        return _view(TableView, row)

    @staticmethod
    def _probe_table(conn: Connection, migration: MigrationView, probe: "Probe", part_done_states: Sequence[str],
                     now: datetime) -> Any:
        free = or_(TableTask.owner.is_(None), TableTask.lease_expires_at < now)
        query = select(TableTask.id, TableTask.version).where(
            TableTask.migration_id == migration.id, TableTask.state == probe.state, free)
        if probe.max_attempts is not None:
            query = query.where(TableTask.attempt < probe.max_attempts, TableTask.ready_at.is_not(None),
                                TableTask.ready_at <= now)
        if probe.joinable:
            # Every part done (one probe of uq_table_part per candidate; parted tables are few).
            open_part = select(TablePart.id).where(TablePart.table_id == TableTask.id,
                                                   TablePart.state.not_in(list(part_done_states)))
            query = query.where(~open_part.exists())
        # size_mb DESC, id DESC: one backward walk of the index (mixed directions would sort).
        query = (query.order_by(TableTask.size_mb.desc(), TableTask.id.desc()).limit(1)
                 .with_for_update(skip_locked=True, of=TableTask.__table__))
        return conn.execute(query).first()

    @staticmethod
    def _probe_part(conn: Connection, migration: MigrationView, probe: "Probe", now: datetime) -> Any:
        free = or_(TablePart.owner.is_(None), TablePart.lease_expires_at < now)
        query = select(TablePart.id, TablePart.version, TablePart.owner).join(
            TableTask.__table__, TableTask.id == TablePart.table_id).where(
            TablePart.migration_id == migration.id, TablePart.state == probe.state, free,
            TableTask.state.in_(list(probe.table_states)))
        if probe.max_attempts is not None:
            query = query.where(TablePart.attempt < probe.max_attempts, TablePart.ready_at.is_not(None),
                                TablePart.ready_at <= now)
        # est_mb DESC, id DESC: largest first across all parts of all tables, one index walk;
        # only the part's row is locked (the table's row is shared by its parts' pickers).
        query = (query.order_by(TablePart.est_mb.desc(), TablePart.id.desc()).limit(1)
                 .with_for_update(skip_locked=True, of=TablePart.__table__))
        return conn.execute(query).first()

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
                       retry_states: Sequence[str], max_attempts: int, *,
                       part_not_done: Sequence[str] = (), part_retry_states: Sequence[str] = (),
                       parted_states: Sequence[str] = ()) -> int:
        """Tables and parts not done that this process cannot pick now but a pass must wait for:
        held by another process, or failed with a retry scheduled. All read through the indexes."""
        mine = self.owner_label()
        held = select(func.count()).where(
            TableTask.migration_id == migration.id, TableTask.owner.is_not(None), TableTask.owner != mine,
            TableTask.state.in_(list(not_done_states)))
        waiting = select(func.count()).where(
            TableTask.migration_id == migration.id, TableTask.state.in_(list(retry_states)),
            TableTask.ready_at.is_not(None), TableTask.attempt < max_attempts, TableTask.owner.is_(None))
        queries = [held, waiting]
        if part_not_done:
            queries.append(select(func.count()).where(
                TablePart.migration_id == migration.id, TablePart.owner.is_not(None), TablePart.owner != mine,
                TablePart.state.in_(list(part_not_done))))
        if part_retry_states:  # only parts a pick can take: their table rests in its parted state
            queries.append(select(func.count()).select_from(TablePart.__table__).join(
                TableTask.__table__, TableTask.id == TablePart.table_id).where(
                TablePart.migration_id == migration.id, TablePart.state.in_(list(part_retry_states)),
                TablePart.ready_at.is_not(None), TablePart.attempt < max_attempts, TablePart.owner.is_(None),
                TableTask.state.in_(list(parted_states))))
        with self._read() as conn:
            return sum(int(conn.execute(q).scalar_one()) for q in queries)

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

    def _renew_worker(self, conn: Connection, migration_id: int, ttl_seconds: float) -> None:
        now = utcnow()
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

    # -- table parts -------------------------------------------------------------------------

    def add_parts(self, task: TableView, specs: Sequence[PartSpec], initial_state: str) -> list[PartView]:
        """Record a table's parts (boundaries) once, before the first part starts: a table that has
        parts keeps them (the compare-and-set is "no part recorded yet"); returns the stored parts."""
        now = utcnow()
        with self._tx() as conn:
            known = conn.execute(select(func.count()).select_from(TablePart)
                                 .where(TablePart.table_id == task.id)).scalar_one()
            if not known and specs:
                conn.execute(insert(TablePart), [{
                    "migration_id": task.migration_id, "table_id": task.id, "part_no": s.part_no,
                    "parts_total": s.parts_total, "part_column": s.part_column, "lower_bound": s.lower_bound,
                    "upper_bound": s.upper_bound, "est_rows": s.est_rows, "est_mb": s.est_mb,
                    "state": initial_state, "version": 1, "attempt": 0, "updated_at": now} for s in specs])
                self._event(conn, task.migration_id, task.subject, "parts_planned", task.state, task.state,
                            {"parts": len(specs), "column": specs[0].part_column,
                             "bounds": [[s.lower_bound, s.upper_bound] for s in specs][:64]})
        return self.list_parts(task.id)

    def list_parts(self, table_id: int) -> list[PartView]:
        query = select(TablePart.__table__).where(TablePart.table_id == table_id).order_by(TablePart.part_no)
        with self._read() as conn:
            return [_view(PartView, r) for r in conn.execute(query).all()]

    def migration_parts(self, migration: MigrationView) -> list[PartView]:
        query = (select(TablePart.__table__).where(TablePart.migration_id == migration.id)
                 .order_by(TablePart.table_id, TablePart.part_no))
        with self._read() as conn:
            return [_view(PartView, r) for r in conn.execute(query).all()]

    def has_parts(self, migration: MigrationView) -> bool:
        """Whether any table of the migration has parts (one probe of ix_table_part_pick)."""
        query = select(TablePart.id).where(TablePart.migration_id == migration.id).limit(1)
        with self._read() as conn:
            return conn.execute(query).first() is not None

    def get_part(self, part_id: int) -> PartView:
        with self._read() as conn:
            row = conn.execute(select(TablePart.__table__).where(TablePart.id == part_id)).first()
        if row is None:
            raise UsageError(f"no table part with id {part_id}")
        return _view(PartView, row)

    def part_counts(self, migration: MigrationView, done_states: Sequence[str]) -> dict[int, tuple[int, int]]:
        """table id -> (parts total, parts in one of ``done_states``): for status (read-only)."""
        done = func.sum(func.cast(TablePart.state.in_(list(done_states)), Integer)) if done_states else None
        query = (select(TablePart.table_id, func.count(), func.coalesce(done, 0))
                 .where(TablePart.migration_id == migration.id).group_by(TablePart.table_id))
        with self._read() as conn:
            return {int(t): (int(n), int(d)) for t, n, d in conn.execute(query)}

    def move_part(self, part: PartView, subject: str, trigger: str, to_state: str, *,
                  fields: Mapping[str, Any] | None = None, detail: Mapping[str, Any] | None = None,
                  take_lease_seconds: float | None = None, release_lease: bool = False,
                  new_attempt: bool = False, event: str | None = None,
                  event_detail: Mapping[str, Any] | None = None) -> PartView:
        """The one compare-and-set every part move goes through (state and version). ``event``
        adds a second event row in the same transaction (e.g. `part_loaded`)."""
        values: dict[str, Any] = dict(fields or {})
        now = utcnow()
        values.update(state=to_state, updated_at=now, version=TablePart.version + 1)
        if take_lease_seconds is not None:
            values.update(owner=self.owner_label(), lease_expires_at=now + timedelta(seconds=take_lease_seconds))
        elif release_lease:
            values.update(owner=None, lease_expires_at=None)
        if new_attempt:
            values["attempt"] = TablePart.attempt + 1
        with self._tx() as conn:
            row = conn.execute(update(TablePart).where(
                TablePart.id == part.id, TablePart.state == part.state, TablePart.version == part.version,
            ).values(**values).returning(*TablePart.__table__.c)).first()
            if row is None:
                raise ConcurrentUpdate(f"part {part.label} of {subject} is no longer {part.state!r} "
                                       f"(version {part.version}): another worker moved it; nothing was written")
            self._event(conn, part.migration_id, subject, trigger, part.state, to_state,
                        {"part": part.part_no, **(detail or {})})
            if event is not None:
                self._event(conn, part.migration_id, subject, event, to_state, to_state,
                            {"part": part.part_no, **(event_detail or {})})
        return _view(PartView, row)

    def drop_parts(self, task: TableView, reason: str) -> int:
        """Forget a table's parts (the table was made again, so a new copy plans new boundaries)."""
        from sqlalchemy import delete

        with self._tx() as conn:
            result = conn.execute(delete(TablePart).where(TablePart.table_id == task.id))
            if result.rowcount:
                self._event(conn, task.migration_id, task.subject, "parts_dropped", task.state, task.state,
                            {"parts": int(result.rowcount), "reason": reason})
        return int(result.rowcount)

    def renew_part_leases(self, lease_seconds: float, migration_id: int | None = None) -> int:
        with self._tx() as conn:
            result = conn.execute(self._part_lease_renewal(lease_seconds, migration_id))
        return int(result.rowcount)

    def _part_lease_renewal(self, lease_seconds: float, migration_id: int | None) -> Any:
        query = update(TablePart).where(TablePart.owner == self.owner_label())
        if migration_id is not None:  # served by ix_table_part_owner
            query = query.where(TablePart.migration_id == migration_id)
        return query.values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))

    def release_part(self, part: PartView) -> bool:
        """Give back a part this process reserved, in a resting state (compare-and-set on version and owner)."""
        with self._tx() as conn:
            result = conn.execute(update(TablePart).where(
                TablePart.id == part.id, TablePart.version == part.version, TablePart.owner == part.owner,
            ).values(owner=None, lease_expires_at=None, version=TablePart.version + 1))
        return result.rowcount == 1

    def arm_part_retries(self, migration: MigrationView, retry_states: Sequence[str], max_attempts: int) -> int:
        """A new pass: failed parts with attempts left may be picked again (once their table is parted)."""
        with self._tx() as conn:
            result = conn.execute(update(TablePart).where(
                TablePart.migration_id == migration.id, TablePart.state.in_(list(retry_states)),
                TablePart.attempt < max_attempts, TablePart.owner.is_(None),
            ).values(ready_at=utcnow()))
        return int(result.rowcount)

    def schedule_part_retry(self, part: PartView, subject: str, wait_seconds: float, trigger: str,
                            detail: Mapping[str, Any]) -> None:
        """A part that failed transiently is picked again after ``wait_seconds`` (by any worker);
        the scheduled retry and its event commit together."""
        with self._tx() as conn:
            conn.execute(update(TablePart).where(TablePart.id == part.id, TablePart.owner.is_(None))
                         .values(ready_at=utcnow() + timedelta(seconds=wait_seconds)))
            self._event(conn, part.migration_id, subject, trigger, None, None, {"part": part.part_no, **detail})

    def expire_dead_part_leases(self, migration: MigrationView) -> list[PartView]:
        """Parts held by a process provably gone (its pid is dead on this host): their leases end
        now, so the next pick takes them on (a lease that ran out anywhere is already free)."""
        mine = self.owner_label()
        query = select(TablePart.__table__).where(TablePart.migration_id == migration.id,
                                                  TablePart.owner.is_not(None), TablePart.owner != mine)
        with self._read() as conn:
            held = [_view(PartView, r) for r in conn.execute(query).all()]
        dead = [p for p in held if p.owner and owner_is_dead(p.owner, self.identity.host)]
        expired = []
        for part in dead:
            with self._tx() as conn:
                result = conn.execute(update(TablePart).where(
                    TablePart.id == part.id, TablePart.version == part.version, TablePart.owner == part.owner,
                ).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
            if result.rowcount == 1:
                expired.append(part)
        return expired

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

    @staticmethod
    def _renew_run_lease(conn: Connection, lease: LeaseView, ttl_seconds: float) -> None:
        now = utcnow()
        result = conn.execute(update(RunLease).where(
            RunLease.migration_id == lease.migration_id, RunLease.token == lease.token,
        ).values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl_seconds)))
        if result.rowcount != 1:
            raise LeaseHeld("this run lost its lease to another process; stopping without further writes")

    def heartbeat(self, migration_id: int, lease: LeaseView | None, ttl_seconds: float,
                  held_seconds: float) -> None:
        """One beat of a running process, in one transaction: its run lease (a leader's, compare-
        and-set on the token: LeaseHeld, and nothing renewed, if another process took it), its worker
        row, and the leases (``held_seconds``) of the tables and parts it holds. One transaction a
        beat, not four: what a beat costs the store is the same at any number of tables."""
        with self._tx() as conn:
            if lease is not None:
                self._renew_run_lease(conn, lease, ttl_seconds)
            self._renew_worker(conn, migration_id, ttl_seconds)
            conn.execute(self._table_lease_renewal(held_seconds, migration_id))
            conn.execute(self._part_lease_renewal(held_seconds, migration_id))

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
