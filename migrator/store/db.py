"""Opening the checkpoint store: engines, SQLite settings, and the schema-version gate.

The schema is only ever created or changed by alembic (`migrator db upgrade`);
opening a store checks its revision against the ones this code knows.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from migrator.errors import SchemaVersionError, StoreError, StoreNotFound
from migrator.paths import data_root, migrations_dir

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

SQLITE_BUSY_TIMEOUT_MS = 30_000


def redact(url: str) -> str:
    """The URL with any password masked: safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable store URL>"


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_store_engine(url: str, *, read_only: bool = False, create: bool = False) -> Engine:
    """An engine for the store. ``read_only`` engines cannot write, by construction."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"store URL {url!r} is not a valid SQLAlchemy URL",
                         hint="e.g. sqlite:///.migrator/state.db or postgresql+psycopg://user@host/db") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, read_only=read_only, create=create)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        if read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
        try:
            return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        except ImportError:
            raise StoreError("PostgreSQL store needs psycopg: pip install 'migrator[postgres]'") from None
    raise StoreError(f"unsupported store backend {backend!r} in {redact(url)}",
                     hint="use sqlite:///PATH or postgresql+psycopg://...")


def _sqlite_engine(url: str, *, read_only: bool, create: bool) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        if not path.exists():
            if not create:
                raise StoreNotFound(f"no checkpoint store at {path}",
                                    hint="run `migrator init CONFIG` first, or check [migration] store")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # The store names clusters, buckets and keys: keep it private from the start.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    if read_only and path is not None:
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    else:
        engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN (below) start transactions, not the sqlite3 module.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not read_only:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking on upgrade.
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def alembic_config(url: str) -> "AlembicConfig":
    # alembic is imported only where the schema is read or changed: reading commands stay quick.
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(data_root() / "alembic.ini")) if (data_root() / "alembic.ini").exists() \
        else AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:['\"]([^'\"]+)['\"]|None)", re.M)


@cache
def _revision_graph() -> dict[str, str | None]:
    """Each revision of `migrations_db/versions` and the one it revises, read from the files' own
    `revision`/`down_revision` lines: opening a store checks its revision without importing alembic."""
    graph: dict[str, str | None] = {}
    for path in sorted((migrations_dir() / "versions").glob("*.py")):
        found = {m.group(1): m.group(2) for m in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))}
        if found.get("revision"):
            graph[found["revision"]] = found.get("down_revision")
    return graph


def head_revision() -> str:
    graph = _revision_graph()
    heads = set(graph) - {down for down in graph.values() if down}
    if len(heads) != 1:
        raise SchemaVersionError(f"the store's migration scripts have {len(heads)} heads, not one",
                                 hint="reinstall migrator")
    return heads.pop()


def known_revisions() -> set[str]:
    return set(_revision_graph())


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(text("select version_num from alembic_version")).first()
            return str(row[0]) if row else None
    except OperationalError as exc:
        raise StoreError(f"cannot reach the checkpoint store {redact(str(engine.url))}: "
                         f"{_first_line(exc)}") from None


def check_schema(engine: Engine) -> str:
    """Refuse a store whose schema this code does not match; returns the revision."""
    rev = current_revision(engine)
    url = redact(str(engine.url))
    if rev is None:
        raise SchemaVersionError(f"the checkpoint store {url} has no schema",
                                 hint="run `migrator db upgrade`")
    if rev not in known_revisions():
        raise SchemaVersionError(
            f"the checkpoint store {url} has schema revision {rev}, newer than this migrator knows",
            hint="upgrade migrator to the version that wrote it; never downgrade a store in use")
    if rev != head_revision():
        raise SchemaVersionError(f"the checkpoint store {url} is at schema revision {rev}, not {head_revision()}",
                                 hint="run `migrator db upgrade`")
    return rev


def upgrade(url: str, revision: str = "head") -> str:
    engine = create_store_engine(url, create=True)
    try:
        rev = current_revision(engine)
        if rev is not None and rev not in known_revisions():
            raise SchemaVersionError(f"the checkpoint store {redact(url)} has schema revision {rev}, "
                                     "newer than this migrator knows", hint="upgrade migrator")
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            from alembic import command

            command.upgrade(cfg, revision)
        return current_revision(engine) or "base"
    except SQLAlchemyError as exc:
        raise StoreError(f"schema upgrade of {redact(url)} failed: {_first_line(exc)}") from None
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> str:
    engine = create_store_engine(url)
    try:
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            from alembic import command

            command.downgrade(cfg, revision)
        return current_revision(engine) or "base"
    finally:
        engine.dispose()


def has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
