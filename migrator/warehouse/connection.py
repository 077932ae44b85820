"""Connections to a cluster through redshift_connector, and a thin Session over one.

The Session runs statements, converts driver errors (see errors.py), and keeps how long
statements of each kind took, so callers can tell the tool's own overhead from the time
spent inside UNLOAD/COPY/validation.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Sequence

from migrator.config import ConnectionSection, Settings, is_loopback_host
from migrator.credentials import DbCredentials, forget, resolve
from migrator.errors import ConfigError, MigratorError, SecurityError, TransientError
from migrator.warehouse.sql import query, set_query_group
from migrator.warehouse.errors import classify, connection_lost, is_auth_failure, is_missing_column, sqlstate

log = logging.getLogger("migrator.warehouse")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    database: str


@dataclass(frozen=True)
class Tls:
    """How the connection is protected. ``sslmode`` is one redshift_connector supports
    (verify-ca: the chain only; verify-full: the chain and the host name)."""

    enabled: bool = True
    sslmode: str = "verify-full"

    def __str__(self) -> str:
        return f"TLS ({self.sslmode})" if self.enabled else "plaintext (sandbox only)"


#: Only for the local sandbox, whose wire proxy does not speak TLS (see config.sandbox_plaintext).
SANDBOX_PLAINTEXT = Tls(enabled=False, sslmode="")


@dataclass(frozen=True)
class Keepalive:
    """TCP keepalive: how a dead peer is noticed while a statement runs for hours without a byte
    on the wire. A connection silent for ``idle`` seconds is probed every ``interval`` seconds;
    ``count`` unanswered probes end it (here: after about five minutes of a dead network). The
    probes also keep a silent connection alive through NAT gateways and load balancers, which
    drop idle flows (an AWS NAT gateway after 350 seconds)."""

    idle: int = 60
    interval: int = 30
    count: int = 8


KEEPALIVE = Keepalive()
#: The settings every session of the tool runs with, each made once when the connection opens
#: (sql/<name>.sql), outside any transaction. timezone and datestyle are pinned: a user's own
#: default (ALTER USER ... SET) or the parameter group's would change how dates and timestamps
#: render in checksums and text files.
SESSION_SETTINGS = ("session_setup", "exact_float_text", "session_timezone", "session_datestyle")
#: What prepare() set on each connection: a statement repeating one of them is not sent again.
_IN_EFFECT: "weakref.WeakKeyDictionary[Any, frozenset[str]]" = weakref.WeakKeyDictionary()
#: How many of its latest statements a session remembers (for messages and tests).
STATEMENT_MEMORY = 256
#: Limit for establishing a connection (TCP, TLS and authentication), never for statements.
CONNECT_TIMEOUT = 30
#: Statement kinds that only read: a connection lost while one runs leaves nothing to reconcile.
READ_ONLY_KINDS = frozenset({"catalog", "validate"})

#: The server process behind each open connection (to find or end a statement whose client died).
_BACKEND_PIDS: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()


def connect(endpoint: Endpoint, creds: DbCredentials, *, tls: Tls, autocommit: bool = False,
            connect_timeout: int = CONNECT_TIMEOUT, keepalive: Keepalive = KEEPALIVE) -> Any:
    """A redshift_connector connection with no client-side statement timeout.

    redshift_connector's ``timeout`` is a socket timeout for the connection's whole life: any
    statement longer than it would fail, and UNLOAD, COPY and checksums run for hours on real
    clusters. It is used here for connecting only and removed once connected; a dead
    connection is detected by TCP keepalive instead."""
    import redshift_connector

    what = f"connect to {endpoint.host}:{endpoint.port}/{endpoint.database} as {creds.user}"
    try:
        conn = redshift_connector.connect(
            host=endpoint.host, port=endpoint.port, database=endpoint.database, user=creds.user,
            password=creds.password, ssl=tls.enabled, sslmode=tls.sslmode if tls.enabled else None,
            timeout=connect_timeout, tcp_keepalive=True, tcp_keepalive_idle=keepalive.idle,
            tcp_keepalive_interval=keepalive.interval, tcp_keepalive_count=keepalive.count,
            application_name="migrator")
    except Exception as exc:  # the driver raises many kinds; classify() sorts them
        raise classify(exc, what) from None
    try:
        _without_statement_timeout(conn)
        conn.autocommit = True
        prepare(conn)
        cur = conn.cursor()
        cur.execute("select pg_backend_pid()")
        _BACKEND_PIDS[conn] = int(cur.fetchall()[0][0])
        cur.close()
    except Exception as exc:
        close_quietly(conn)
        raise classify(exc, what) from None
    conn.autocommit = autocommit
    return conn


def tls_for(settings: Settings, section: ConnectionSection, host: str, *, where: str = "source") -> Tls:
    """TLS with the section's sslmode, always; plaintext only when the config asks for the local
    sandbox (sandbox_plaintext, itself allowed only with a loopback aws_endpoint_url) and the
    host really is on this machine. An AWS endpoint override alone never turns TLS off."""
    if not settings.migration.sandbox_plaintext:
        return Tls(enabled=True, sslmode=section.sslmode)
    if not is_loopback_host(host):
        raise SecurityError(f"{where}: sandbox_plaintext is set but {host} is not a loopback address; refusing to "
                            "connect without TLS", hint="remove [migration] sandbox_plaintext outside the sandbox")
    return SANDBOX_PLAINTEXT


def connect_section(settings: Settings, section: ConnectionSection, host: str, port: int, *, where: str,
                    aws: Any = None, autocommit: bool = False) -> Any:
    """connect() for a config section: its credentials (resolved once per run, see credentials.py),
    its database and its TLS mode."""
    tls = tls_for(settings, section, host, where=where)
    endpoint = Endpoint(host, port, section.database)
    creds = resolve(section, where, aws)
    try:
        return in_query_group(connect(endpoint, creds, tls=tls, autocommit=autocommit), section.query_group)
    except ConfigError as exc:
        # A cached secret may have been rotated since it was read: read it once more, and retry
        # only if it changed (a wrong password stays one clear error, not a retry loop).
        if not is_auth_failure(exc) or section.password_env:
            raise
        forget()
        fresh = resolve(section, where, aws)
        if fresh.password == creds.password and fresh.user == creds.user:
            raise
        log.info("%s: the database refused the cached credentials; connecting with the re-read ones", where)
        return in_query_group(connect(endpoint, fresh, tls=tls, autocommit=autocommit), section.query_group)


def in_query_group(conn: Any, group: str | None) -> Any:
    """SET query_group for the whole session (outside any transaction, so no ROLLBACK undoes it):
    WLM then routes every statement of the tool to that group's queue, and STL_QUERY labels them."""
    if not group:
        return conn
    autocommit = conn.autocommit
    conn.autocommit = True
    cur = conn.cursor()
    try:
        cur.execute(set_query_group(group))
    except Exception as exc:
        close_quietly(conn)
        raise classify(exc, f"set query_group to {group}") from None
    finally:
        cur.close()
    conn.autocommit = autocommit
    return conn


def prepare(conn: Any) -> Any:
    """Session settings every connection of the tool runs with (sql/session_setup.sql), set
    outside any transaction so a later ROLLBACK cannot undo them."""
    autocommit = conn.autocommit
    conn.autocommit = True
    cur = conn.cursor()
    try:
        for name in SESSION_SETTINGS:
            cur.execute(query(name))
    finally:
        cur.close()
        conn.autocommit = autocommit
    _IN_EFFECT[conn] = frozenset(query(name) for name in SESSION_SETTINGS)
    return conn


def _without_statement_timeout(conn: Any) -> None:
    """The driver keeps its socket in ``_usock`` (plain or TLS-wrapped); no public setter exists."""
    sock = getattr(conn, "_usock", None)
    if sock is None:
        raise RuntimeError("redshift_connector changed: cannot clear the connect timeout on its socket")
    sock.settimeout(None)


def backend_pid(conn: Any) -> int | None:
    """The server process id of a connection opened by connect(), or None."""
    try:
        return _BACKEND_PIDS.get(conn)
    except TypeError:  # not weak-referenceable: not one of ours
        return None


def close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # a connection that failed half-way may refuse to close politely
        pass


@dataclass
class Session:
    """One connection plus timing. ``statements`` holds the last STATEMENT_MEMORY statements this
    session ran (a worker's session runs for the whole pass: tens of thousands of tables must not
    grow it without bound); ``ran`` counts them all."""

    conn: Any
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    statements: deque[str] = field(default_factory=lambda: deque(maxlen=STATEMENT_MEMORY))
    ran: int = 0
    #: Statements not sent because prepare() already made them for the whole session.
    settled: int = 0
    #: Set once the connection died: nothing more is sent on it.
    lost: bool = False

    @classmethod
    def of(cls, conn: Any) -> "Session":
        """A session over a connection opened elsewhere (not by connect()), with the tool's
        session settings applied."""
        return cls(prepare(conn))

    @property
    def backend_pid(self) -> int | None:
        return backend_pid(self.conn)

    def run(self, sql: str, params: Sequence[Any] | None = None, *, kind: str = "other",
            what: str | None = None) -> list[tuple[Any, ...]]:
        """Execute one statement; return its rows (empty for statements without a result).

        If the connection dies while the statement runs, the error says whether its effect may
        have been committed: OutcomeUnknown for a statement of a kind not in READ_ONLY_KINDS in
        autocommit mode (it may have committed, or may still be running); TransientError
        otherwise (a read, or a statement inside a transaction, which the server rolls back
        because no COMMIT can reach it any more). A session whose connection was lost sends
        nothing more: its next statements fail at once with TransientError ("not sent")."""
        if sql in _IN_EFFECT.get(self.conn, ()):
            # A session setting prepare() made for the whole session (e.g. exact float text): the
            # SET a step sends before each use would be one more round trip per table for nothing.
            self.settled += 1
            return []
        self._refuse_if_lost(what or kind)
        started = time.perf_counter()
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        except Exception as exc:
            raise self._failure(exc, what or kind,
                                may_have_committed=kind not in READ_ONLY_KINDS and bool(self.conn.autocommit)
                                ) from None
        finally:
            self.timings[kind] += time.perf_counter() - started
            try:
                cur.close()
            except Exception:  # a dead connection cannot close its cursor; the error above matters
                pass
        self.statements.append(sql)
        self.ran += 1
        return rows

    def _refuse_if_lost(self, what: str) -> None:
        if self.lost:
            raise TransientError(f"{what}: not sent: this session's connection was lost earlier",
                                 hint="open a new session (reconnect) and retry")

    def _failure(self, exc: BaseException, what: str, *, may_have_committed: bool) -> MigratorError:
        if connection_lost(exc) or (sqlstate(exc) or "").startswith(("08", "57P")):
            self.lost = True
        return classify(exc, what, in_flight=may_have_committed, backend_pid=self.backend_pid)

    def try_run(self, sql: str, params: Sequence[Any] | None = None, *, kind: str = "catalog"
                ) -> list[tuple[Any, ...]] | None:
        """Like run(), but None when the catalog lacks a column/relation/function this query
        uses (so a caller can fall back to another catalog variant). Needs autocommit, or the
        failed statement would abort the open transaction."""
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        except Exception as exc:
            if is_missing_column(exc):
                if not self.conn.autocommit:
                    self.conn.rollback()
                log.debug("catalog variant not available: %s", exc)
                return None
            raise self._failure(exc, kind, may_have_committed=False) from None

    def commit(self) -> None:
        """COMMIT; a connection lost while it was in flight is OutcomeUnknown (it may have committed)."""
        self._refuse_if_lost("commit")
        try:
            self.conn.commit()
        except Exception as exc:
            raise self._failure(exc, "commit", may_have_committed=True) from None

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # rollback on a broken connection: the server rolls back on its own
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(endpoint: Endpoint, creds: DbCredentials, *, tls: Tls, autocommit: bool = True) -> Session:
    return Session(connect(endpoint, creds, tls=tls, autocommit=autocommit))


def end_backend(session: Session, pid: int) -> bool:
    """Make sure the statement of a lost connection is over before its outcome is reconciled:
    ask the server to end process ``pid`` (its open transaction rolls back). True if it was
    still there. Needs the same user or a superuser (Redshift's PG_TERMINATE_BACKEND)."""
    rows = session.run("select pg_terminate_backend(%s)", [pid], kind="control", what=f"end backend {pid}")
    return bool(rows and rows[0][0])


__all__ = ["CONNECT_TIMEOUT", "Endpoint", "KEEPALIVE", "Keepalive", "MigratorError", "SANDBOX_PLAINTEXT",
           "Session", "Tls", "backend_pid", "close_quietly", "connect", "connect_section", "end_backend",
           "open_session", "tls_for"]
