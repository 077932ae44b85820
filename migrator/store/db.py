"""Opening the checkpoint store: engines, SQLite settings, and the schema-version gate.

The schema is only ever created or changed by alembic (`migrator db upgrade`);
opening a store checks its revision against the ones this code knows.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, InvalidatePoolError, SQLAlchemyError

from migrator.config import store_url_problem
from migrator.errors import SchemaVersionError, StoreError, StoreNotFound, UsageError, mask_userinfo, shorten
from migrator.paths import data_root, migrations_dir

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: A pooled PostgreSQL store connection is pinged (`SELECT 1`, its own committed transaction) before
#: reuse only when it sat idle in the pool at least this long. What kills connections kills idle
#: ones: NAT gateways (AWS NAT drops idle flows after 350 s), PgBouncer's and the server's idle
#: timeouts, and a failover while the connection waited. One given back seconds ago was just proven
#: alive by the work it did; a ping on every checkout doubled the store's transactions per table. A
#: connection that dies anyway fails its one call (one line, exit 3) and the pool reconnects for the
#: next (tests/store/test_store_ping.py).
STORE_PING_IDLE_SECONDS = 30.0
_CHECKED_IN_AT = "migrator_checked_in_at"


def redact(url: str) -> str:
    """The URL with any password masked: safe for messages and logs."""
    try:
        return mask_userinfo(make_url(url).render_as_string(hide_password=True))
    except (ArgumentError, ValueError):
        return shorten(mask_userinfo(url), 200)


#: What a damaged store file is said to be, and what to do about it.
DAMAGED_HINT = ("the file may be damaged: restore it from a backup (e.g. a state.db.backup-* copy beside it) or "
                "move it away and run `migrator init` again")


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_store_engine(url: str, *, read_only: bool = False, create: bool = False) -> Engine:
    """An engine for the store. ``read_only`` engines cannot write, by construction."""
    problem = store_url_problem(url)
    if problem and "backend" not in problem:
        raise StoreError(f"store URL {redact(url)} {problem}",
                         hint="e.g. sqlite:///.migrator/state.db or postgresql+psycopg://HOST/DB")
    parsed = make_url(url)
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
            # Read-only engines (status, reports) keep pinging on every checkout, as before.
            engine = create_engine(parsed, pool_pre_ping=read_only, connect_args=connect_args)
        except ImportError:
            raise StoreError("PostgreSQL store needs psycopg: pip install 'migrator[postgres]'") from None
        if not read_only:
            _ping_when_idle(engine)
        return engine
    raise StoreError(f"unsupported store backend {backend!r} in {redact(url)}",
                     hint="use sqlite:///PATH or postgresql+psycopg://...")


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pessimistic-disconnect recipe (pool events), limited to connections that sat in
    the pool for `STORE_PING_IDLE_SECONDS`: see there why."""
    dbapi_error = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is not None:  # None: invalidated, its info goes with it
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_CHECKED_IN_AT, None)
        if since is None or time.monotonic() - since < STORE_PING_IDLE_SECONDS:
            return  # a new connection, or one given back moments ago
        try:
            engine.dialect.do_ping(dbapi_conn)  # the dialect's own pre-ping (autocommit SELECT 1)
        except dbapi_error as exc:
            # The pool replaces this connection and every one pooled before now (a server that
            # restarted or failed over took them all), then retries the checkout on a new one.
            raise InvalidatePoolError(f"store connection idle for {time.monotonic() - since:.0f} s "
                                      f"failed its ping: {type(exc).__name__}") from exc


def _sqlite_engine(url: str, *, read_only: bool, create: bool) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        _sqlite_file(path, create=create)
    if read_only and path is not None:
        # The user's URL stays the engine's (messages name it); the connection opens the file read-only.
        uri = f"{path.absolute().as_uri()}?mode=ro"
        engine = create_engine(url, creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
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


def _sqlite_file(path: Path, *, create: bool) -> None:
    """The store file exists (created private when ``create``), or a StoreError says why not."""
    shown = shorten(str(path))
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise StoreError(f"checkpoint store {shown}: {_os_reason(exc)}",
                         hint="check [migration] store (or --url)") from None
    if info is not None:
        if not path.is_file():
            raise StoreError(f"checkpoint store {shown} is not a regular file", hint="check [migration] store")
        return
    if not create:
        raise StoreNotFound(f"no checkpoint store at {shown}",
                            hint="run `migrator init CONFIG` first, or check [migration] store")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The store names clusters, buckets and keys: keep it private from the start.
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot create the checkpoint store {shown}: {_os_reason(exc)}",
                         hint="choose a writable place in [migration] store") from None


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a part of its path is a file, not a directory"
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


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
    except DatabaseError as exc:
        raise store_failure(exc, engine) from None
    except UnicodeDecodeError as exc:  # a damaged schema page: its SQL text is no UTF-8
        raise damaged(exc, engine) from None


def damaged(exc: ValueError, engine: Engine) -> StoreError:
    """A value in the store that cannot be decoded (text that is no UTF-8, JSON that is no JSON)."""
    where = redact(engine.url.render_as_string(hide_password=False))
    return StoreError(f"the checkpoint store {where} holds a value that cannot be read ({type(exc).__name__})",
                      hint=DAMAGED_HINT)


def store_failure(exc: DatabaseError, engine: Engine | None = None) -> StoreError:
    """A database error as the one line a user sees: which store, what, and what to do."""
    where = redact(engine.url.render_as_string(hide_password=False)) if engine is not None else "the checkpoint store"
    reason = _first_line(exc)
    damaged = isinstance(getattr(exc, "orig", None), sqlite3.DatabaseError) and not isinstance(
        getattr(exc, "orig", None), sqlite3.OperationalError) or "malformed" in reason
    if damaged:
        return StoreError(f"the checkpoint store {where} cannot be read: {reason}", hint=DAMAGED_HINT)
    return StoreError(f"cannot reach the checkpoint store {where}: {reason}")


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
    except UnicodeDecodeError as exc:
        raise damaged(exc, engine) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"schema upgrade of {redact(url)} failed: {_first_line(exc)}",
                         hint=DAMAGED_HINT if "not a database" in str(exc) or "malformed" in str(exc) else None
                         ) from None
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> str:
    """Take the schema back to ``revision`` (callers check the revision and the data first:
    `commands.db_downgrade`)."""
    engine = create_store_engine(url)
    try:
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            from alembic import command

            command.downgrade(cfg, revision)
        return current_revision(engine) or "base"
    except UnicodeDecodeError as exc:
        raise damaged(exc, engine) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"schema downgrade of {redact(url)} failed: {_first_line(exc)}",
                         hint="nothing was changed; check the store is writable") from None
    finally:
        engine.dispose()


def downgrade_target(current: str | None, revision: str) -> str:
    """``revision`` checked as a downgrade from ``current``: "base" or a known revision below it
    (relative and partial names are refused: a typo must not pick a revision)."""
    graph = _revision_graph()
    if current is not None and current not in graph:
        raise SchemaVersionError(f"the checkpoint store is at schema revision {shorten(current, 40)!r}, "
                                 "which this migrator does not know", hint="upgrade migrator; never downgrade a "
                                 "store written by a newer one")
    below: list[str] = []
    rev = graph.get(current) if current else None
    while rev:
        below.append(rev)
        rev = graph.get(rev)
    allowed = ["base", *below]
    if revision == current:
        return revision
    if revision not in allowed:
        known = ", ".join(allowed) if current else "nothing (the store has no schema)"
        raise UsageError(f"cannot downgrade to {shorten(revision, 40)!r}: not a revision below the store's "
                         f"({current or 'none'})", hint=f"choose one of: {known}")
    return revision


def backup_sqlite(url: str) -> Path | None:
    """A consistent copy of a SQLite store next to it (the online backup API: safe while a reader
    holds it); None for other backends."""
    path = _sqlite_path(url)
    if path is None:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.backup-{stamp}")
    try:
        source = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
    except (OSError, sqlite3.Error) as exc:
        target.unlink(missing_ok=True)
        raise StoreError(f"cannot write a backup of {shorten(str(path))} before the downgrade: {exc}",
                         hint="nothing was changed; make its directory writable") from None
    return target


def has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
