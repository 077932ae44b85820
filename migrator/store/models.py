"""The checkpoint store's tables. Column names are chosen for the people who
will query them by hand during an incident.

Declared in the ORM's syntax, built as SQLAlchemy Core tables: the store uses Core statements
only, and importing the ORM cost every `migrator status` about a third of SQLAlchemy's own import
time. ``Model.column`` is the Column, ``Model.__table__`` the Table, and the class stands for its
table wherever SQLAlchemy takes one (``insert(Model)``, ``update(Model)``). Type checkers see
the ORM's declarations, which describe the same tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, UniqueConstraint)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

if TYPE_CHECKING:
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING)
else:
    metadata = MetaData(naming_convention=NAMING)
    Mapped = Any  # annotations are text here (from __future__ import annotations): never evaluated

    class _Spec:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.args, self.kwargs = args, kwargs

    def mapped_column(*args: Any, **kwargs: Any) -> Any:
        return _Spec(*args, **kwargs)

    _BY_ANNOTATION = {"int": Integer}

    class _Declared(type):
        """Builds ``__table__`` from the class body; ``Model.name`` is then its column."""

        def __new__(mcs, name: str, bases: tuple[type, ...], body: dict[str, Any]) -> Any:
            cls = super().__new__(mcs, name, bases, body)
            if "__tablename__" not in body:
                return cls
            columns = []
            for attr, annotation in body.get("__annotations__", {}).items():
                spec = body.get(attr)
                if not isinstance(spec, _Spec):
                    continue
                args = list(spec.args)
                if args and isinstance(args[0], ForeignKey):  # the ORM takes the type from Mapped[int]
                    args.insert(0, _BY_ANNOTATION[annotation.split("[", 1)[1].rstrip("]").strip()])
                nullable = "None" in annotation and not spec.kwargs.get("primary_key")
                columns.append(Column(attr, *args, nullable=nullable, **spec.kwargs))
                delattr(cls, attr)
            cls.__table__ = Table(body["__tablename__"], metadata, *columns, *body.get("__table_args__", ()))
            return cls

        def __getattr__(cls, attr: str) -> Any:
            table = cls.__dict__.get("__table__")
            if table is None or attr not in table.c:  # SQLAlchemy probes for attributes it may use
                raise AttributeError(attr)
            return table.c[attr]

    class Base(metaclass=_Declared):
        metadata = metadata

        @classmethod
        def __clause_element__(cls) -> Table:
            return cls.__table__  # type: ignore[attr-defined, no-any-return]


UTCDateTime = DateTime(timezone=True)


class Migration(Base):
    __tablename__ = "migration"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    strategy: Mapped[str] = mapped_column(String(40))
    config_hash: Mapped[str] = mapped_column(String(64))
    config_fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    phase: Mapped[str] = mapped_column(String(60))
    #: Bumped on every phase change; the compare-and-set token.
    version: Mapped[int] = mapped_column(Integer, default=1)
    approvals: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TableTask(Base):
    __tablename__ = "table_task"
    __table_args__ = (
        UniqueConstraint("migration_id", "schema_name", "table_name"),
        # The next table to work on: one index probe per state, largest first (store.pick_table);
        # its (migration_id, state) prefix serves the counts by state too. The former index on that
        # prefix alone is gone: PostgreSQL, with no statistics yet on a freshly added catalogue,
        # picked it and sorted every table a pick (120 ms at 100k tables instead of 0.05 ms).
        Index("ix_table_task_pick", "migration_id", "state", "size_mb", "id"),
        # Claimed tables (orphan recovery, lease renewal) without a scan of every table.
        Index("ix_table_task_owner", "migration_id", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migration.id", ondelete="CASCADE"))
    schema_name: Mapped[str] = mapped_column(String(128))
    table_name: Mapped[str] = mapped_column(String(128))
    size_mb: Mapped[int] = mapped_column(BigInteger, default=0)
    source_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staging_prefix: Mapped[str | None] = mapped_column(Text)
    manifest_url: Mapped[str | None] = mapped_column(Text)
    unload_format: Mapped[str | None] = mapped_column(String(20))
    format_reason: Mapped[str | None] = mapped_column(Text)
    rows_unloaded: Mapped[int | None] = mapped_column(BigInteger)
    bytes_unloaded: Mapped[int | None] = mapped_column(BigInteger)
    rows_loaded: Mapped[int | None] = mapped_column(BigInteger)
    source_checksum: Mapped[str | None] = mapped_column(String(64))
    target_checksum: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Per-step wall times, e.g. {"unload": {"started": ..., "finished": ..., "seconds": ...}}.
    step_timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A table that failed transiently may be picked again from this time on (None: not in this pass).
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Base):
    """Append-only audit log: every move, takeover, approval and remote action."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_migration_subject", "migration_id", "subject"),
                      # status reads the newest event of a kind (progress, gate waiting, stray writes).
                      Index("ix_event_migration_trigger", "migration_id", "trigger", "id"),
                      # the live panel's "anything new?" (the newest event of a migration).
                      Index("ix_event_migration_id", "migration_id", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migration.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    subject: Mapped[str] = mapped_column(String(300))
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str | None] = mapped_column(String(60))
    trigger: Mapped[str] = mapped_column(String(60))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)


class RunLease(Base):
    """Who runs a migration right now. One row per migration; taken over only from the provably dead."""

    __tablename__ = "run_lease"

    migration_id: Mapped[int] = mapped_column(ForeignKey("migration.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    #: The holder's process start time (from /proc), so a recycled pid is not mistaken for the holder.
    pid_started: Mapped[str | None] = mapped_column(String(40))
    token: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RunWorker(Base):
    """A process working on a migration's tables (`migrator run --worker`, or the leader's own
    table workers), with its own heartbeat; the row stays after it stops (for the fleet view)."""

    __tablename__ = "run_worker"
    __table_args__ = (UniqueConstraint("migration_id", "holder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migration.id", ondelete="CASCADE"))
    holder: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))  # leader | worker
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RemoteAction(Base):
    """A call that changes something remote, recorded before it is sent and after it answers.

    `action_key` is the idempotency key (e.g. "provision-target"): on resume a
    pending row means "find out whether it happened" before anything is re-sent.
    """

    __tablename__ = "remote_action"
    __table_args__ = (UniqueConstraint("migration_id", "action_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migration.id", ondelete="CASCADE"))
    action_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # pending | done | failed
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TablePart(Base):
    """One part of a big table: a range of its part column (or a group of its staged files),
    with its own checkpoint, load marker and rows + checksum on both sides. Boundaries are
    written once, before the first part starts, and never change for that copy."""

    __tablename__ = "table_part"
    __table_args__ = (
        UniqueConstraint("table_id", "part_no"),
        # The next part: one index probe per part state, largest first across all parts of all
        # tables (store.pick_part); its (migration_id, state) prefix serves the counts too.
        Index("ix_table_part_pick", "migration_id", "state", "est_mb", "id"),
        # Held parts (lease renewal, a dead worker's parts, work held elsewhere) without a scan.
        Index("ix_table_part_owner", "migration_id", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("migration.id", ondelete="CASCADE"))
    table_id: Mapped[int] = mapped_column(ForeignKey("table_task.id", ondelete="CASCADE"))
    part_no: Mapped[int] = mapped_column(Integer)
    parts_total: Mapped[int] = mapped_column(Integer)
    #: The column whose ranges the parts are (None: the parts are groups of one UNLOAD's files).
    part_column: Mapped[str | None] = mapped_column(String(128))
    #: Range bounds as text (the column's own text form, bound as parameters): lower inclusive,
    #: upper exclusive; None is open. The first part also holds the column's NULLs.
    lower_bound: Mapped[str | None] = mapped_column(Text)
    upper_bound: Mapped[str | None] = mapped_column(Text)
    est_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    est_mb: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staging_prefix: Mapped[str | None] = mapped_column(Text)
    manifest_url: Mapped[str | None] = mapped_column(Text)
    rows_unloaded: Mapped[int | None] = mapped_column(BigInteger)
    bytes_unloaded: Mapped[int | None] = mapped_column(BigInteger)
    files_unloaded: Mapped[int | None] = mapped_column(Integer)
    rows_loaded: Mapped[int | None] = mapped_column(BigInteger)
    source_checksum: Mapped[str | None] = mapped_column(String(64))
    target_checksum: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: A part that failed transiently may be picked again from this time on (None: not in this pass).
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
