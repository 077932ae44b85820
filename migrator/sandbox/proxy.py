"""A PostgreSQL wire-protocol proxy that makes a local PostgreSQL look like a Redshift cluster.

One :class:`RedshiftProxy` per emulated cluster. It answers SSL/GSS requests with
``N``, authenticates clients itself (md5 or cleartext), logs in to PostgreSQL as
the sandbox superuser, strips the startup parameters PostgreSQL refuses, reports
``server_version`` 8.0.2 and otherwise relays messages unchanged — except for
statements the :class:`StatementInterceptor` claims: those never reach
PostgreSQL; the proxy answers the protocol itself and runs the intercept's work
on Execute, in a worker thread, over the client's own backend session.

Optional attributes an :class:`Intercept` may carry (read with getattr):
``atomic`` (default True): outside a transaction block the proxy wraps the
work in BEGIN/COMMIT, so it is all-or-nothing like one Redshift statement; set
False for work PostgreSQL refuses inside a block (VACUUM).
``handles_sql_error_faults`` (default False): the proxy then leaves
``sql_error`` faults to the emulation, which can match on the table.
``after_statement`` is called for intercepted statements too, after success.
An interceptor may also offer ``on_session(event, session)``: called (in a worker thread) with
"initiating session" once a client is in and "disconnecting session" when it leaves
(STL_CONNECTION_LOG).
An interceptor may also offer ``rewrite(sql, session) -> str | None``: a text rewrite
applied to every Parse and Query before anything else (Redshift's settings syntax).
An intercept raising ConnectionAbortedError makes the proxy drop the client
and backend connections there and then, as if the network failed mid-statement.

Client messages are handled strictly in order by one task per connection; one
relay task reads the backend. Every message forwarded to the backend records
what response ends it, so before the proxy answers a message itself it can wait
until everything forwarded earlier has been answered ("drain").
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import struct
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Awaitable, Callable, Literal, TypeVar

from migrator.sandbox import wire
from migrator.sandbox.redshift.sqltokens import literal as quote_literal
from migrator.sandbox.redshift.sqltokens import quote_ident
from migrator.sandbox.redshift.settings import extra_float_digits_error
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import (
    BackendError,
    Column,
    Intercept,
    QueryResult,
    SessionInfo,
    StatementInterceptor,
)

log = logging.getLogger("migrator.sandbox.proxy")

REDSHIFT_SERVER_VERSION = "8.0.2"
#: Startup parameters PostgreSQL understands; redshift_connector adds many it refuses.
PASSED_STARTUP_PARAMS = ("application_name", "client_encoding", "DateStyle", "TimeZone",
                         "extra_float_digits", "options")
WRITE_TAGS = frozenset({"INSERT", "UPDATE", "DELETE", "COPY", "CREATE", "DROP", "ALTER", "TRUNCATE"})
_COPY_CHUNK = 1 << 18
_T = TypeVar("_T")
_POOL_LOCK = threading.Lock()
_POOL: list[ThreadPoolExecutor] = []


def _intercept_pool() -> ThreadPoolExecutor:
    """Intercepts may run for minutes; they get their own threads so that short jobs on the
    loop's default executor (observers, fault checks) never queue behind them."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=64, thread_name_prefix="sandbox-intercept"))
        return _POOL[0]


def raise_statement(sqlstate: str, message: str, detail: str | None = None) -> str:
    """SQL that fails with exactly this error, to put the backend transaction in the failed state."""
    code = sqlstate if re.fullmatch(r"[0-9A-Z]{5}", sqlstate) and not sqlstate.startswith("00") else "XX000"
    options = f"ERRCODE = {quote_literal(code)}, MESSAGE = {quote_literal(message)}"
    if detail:
        options += f", DETAIL = {quote_literal(detail)}"
    body = f"BEGIN RAISE EXCEPTION USING {options}; END"
    tag = "proxy"
    while f"${tag}$" in body:
        tag += "x"
    return f"DO ${tag}${body}${tag}$"


SERIALIZATION_FAILURE = "40001"
#: Redshift reports a serialization conflict as error 1023 with SQLSTATE XX000 ("Isolation
#: levels in Amazon Redshift": "ERROR:1023 DETAIL: Serializable isolation violation on table").
REDSHIFT_ISOLATION_ERROR = ("XX000", "1023")


def redshift_error(sqlstate: str, message: str, detail: str | None) -> tuple[str, str, str | None]:
    """The error as Redshift words it; PostgreSQL's serialization failures become error 1023."""
    if sqlstate != SERIALIZATION_FAILURE:
        return sqlstate, message, detail
    code, text = REDSHIFT_ISOLATION_ERROR
    return code, text, ("Serializable isolation violation on table - 0, transactions forming the cycle are: "
                        f"unknown in the sandbox ({message})")


def _redshift_error_payload(payload: bytes) -> bytes:
    fields = wire.decode_fields(payload)
    if fields.get("C") != SERIALIZATION_FAILURE:
        return payload
    sqlstate, text, detail = redshift_error(fields["C"], fields.get("M", ""), fields.get("D"))
    return wire.error_response(sqlstate, text, detail)[5:]


_LEADING_NOISE = re.compile(r"(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()*", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def first_keyword(sql: str) -> str:
    """The statement's first word, lower-case ('select', 'copy', 'unload', ...)."""
    rest = sql[_LEADING_NOISE.match(sql).end():]  # type: ignore[union-attr]
    match = _WORD.match(rest)
    return match.group(0).lower() if match else ""


def split_statements(sql: str) -> list[str]:
    """Split a query string at top-level semicolons (quotes, dollar quotes and comments respected)."""
    parts: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'" or ch == '"':
            backslashes = ch == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            i += 1
            while i < n:
                if backslashes and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == ch:
                    if i + 1 < n and sql[i + 1] == ch:
                        i += 2
                        continue
                    break
                i += 1
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif ch == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        elif ch == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                end = sql.find(tag.group(0), tag.end())
                i = n if end < 0 else end + len(tag.group(0))
                continue
        elif ch == ";":
            parts.append(sql[start:i])
            start = i + 1
        i += 1
    parts.append(sql[start:])
    return [p.strip() for p in parts if p.strip()]


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def is_write_tag(tag: str) -> bool:
    return tag.split(" ", 1)[0].upper() in WRITE_TAGS


@dataclass
class ProxyStats:
    """What a proxy has seen; the control plane turns these into CloudWatch metrics."""

    connections_total: int = 0
    connections_open: int = 0
    statements: int = 0
    write_statements: int = 0

    def count_statement(self, tag: str) -> None:
        self.statements += 1
        if is_write_tag(tag):
            self.write_statements += 1

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Statement:
    sql: str
    intercept: Intercept | None
    param_oids: list[int] = field(default_factory=list)


@dataclass
class _Portal:
    statement: _Statement
    result_formats: list[int]


@dataclass
class _Expect:
    """One forwarded message still waiting for the backend message that ends it."""

    kind: Literal["parse", "bind", "describe", "execute", "close", "sync", "query"]
    sql: str | None = None
    internal: bool = False  # its ReadyForQuery is the proxy's, not the client's
    failed: bool = False


@dataclass
class _RoundTrip:
    tag: str = ""
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    copy_out: bytearray = field(default_factory=bytearray)
    error: BackendError | None = None


class _Dropped(Exception):
    """A drop_connection fault closed the session."""


class _BackendHandle:
    """The :class:`Backend` an intercept drives, from its worker thread, over the session's backend."""

    def __init__(self, session: "_Session", loop: asyncio.AbstractEventLoop) -> None:
        self._session = session
        self._loop = loop
        self.active = True

    def _run(self, sql: str, copy_in: bytes | None = None) -> _RoundTrip:
        if not self.active:
            raise BackendError("55000", "backend handle used after its statement finished")
        future = asyncio.run_coroutine_threadsafe(self._session.roundtrip(sql, copy_in), self._loop)
        result = future.result()
        if result.error is not None:
            raise result.error
        return result

    def query(self, sql: str) -> QueryResult:
        result = self._run(sql)
        return QueryResult(result.tag, result.columns, result.rows)

    def copy_in(self, sql: str, data: bytes) -> str:
        return self._run(sql, copy_in=data).tag

    def copy_out(self, sql: str) -> bytes:
        return bytes(self._run(sql).copy_out)

    @property
    def transaction_status(self) -> str:
        return self._session.tx_status


class _Session:
    """One client connection and the PostgreSQL connection behind it."""

    def __init__(self, proxy: "RedshiftProxy", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = wire.MessageReader(reader)
        self.client_writer = writer
        self.backend: wire.MessageReader | None = None
        self.backend_writer: asyncio.StreamWriter | None = None
        self.backend_key: tuple[int, int] = (0, 0)
        self.info = SessionInfo(proxy.cluster_id, "", "", 0)
        self.tx_status = "I"
        #: Since the last ReadyForQuery: the last CommandComplete tag, and whether an error came.
        self._last_tag: str | None = None
        self._cycle_failed = False
        self._started = False
        self._counted = False
        self._expect: deque[_Expect] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._skipping = False  # after an error in the extended protocol, until Sync
        self._capture: asyncio.Queue[tuple[bytes, bytes]] | None = None
        self._backend_dead = False
        self._relay_task: asyncio.Task[None] | None = None
        self._statements: dict[str, _Statement] = {}
        self._portals: dict[str, _Portal] = {}
        self._startup_params: dict[str, str] = {}

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        peer = self.client_writer.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.info.remote_host, self.info.remote_port = str(peer[0]), int(peer[1])
        try:
            if await self._startup():
                log.info("cluster %s: session pid=%s user=%s from %s", self.proxy.cluster_id,
                         self.info.pid, self.info.user, peer)
                await self._session_event("initiating session")
                await self._serve()
        except _Dropped:
            log.warning("cluster %s: connection pid=%s dropped by fault", self.proxy.cluster_id, self.info.pid)
        except (ConnectionError, asyncio.IncompleteReadError, wire.ProtocolError, OSError) as exc:
            log.info("cluster %s: connection pid=%s ended: %s", self.proxy.cluster_id, self.info.pid, exc,
                     exc_info=log.isEnabledFor(logging.DEBUG))
        except Exception:  # a proxy bug must end one session, not the server
            log.exception("cluster %s: session pid=%s failed", self.proxy.cluster_id, self.info.pid)
        finally:
            if self._counted:
                self.proxy.stats.connections_open -= 1
            await self.close()
            if self._started:
                await self._session_event("disconnecting session")

    async def _session_event(self, event: str) -> None:
        """The interceptor's optional connection log (STL_CONNECTION_LOG); its failure ends nothing."""
        hook = getattr(self.proxy.interceptor, "on_session", None)
        if hook is None:
            return
        try:
            await asyncio.to_thread(hook, event, self.info)
        except Exception:
            log.exception("cluster %s: on_session observer failed", self.proxy.cluster_id)

    async def close(self) -> None:
        if self._relay_task is not None and self._relay_task is not asyncio.current_task():
            self._relay_task.cancel()
        self.abort()
        if self._relay_task is not None and self._relay_task is not asyncio.current_task():
            await asyncio.gather(self._relay_task, return_exceptions=True)

    def abort(self) -> None:
        """Close both sockets at once; PostgreSQL rolls back what the client left open."""
        for writer in (self.backend_writer, self.client_writer):
            if writer is not None and not writer.transport.is_closing():
                writer.transport.abort()
        self._backend_dead = True
        self._idle.set()
        if self._capture is not None:
            self._capture.put_nowait((b"", b""))

    # ------------------------------------------------------------ startup

    async def _startup(self) -> bool:
        while True:
            code, rest = await self.client.read_startup()
            log.debug("cluster %s: startup packet code %s", self.proxy.cluster_id, code)
            if code in (wire.SSL_REQUEST, wire.GSSENC_REQUEST):
                self.client_writer.write(b"N")
                continue
            if code == wire.CANCEL_REQUEST:
                pid, key = struct.unpack("!Ii", rest[:8])
                await self.proxy.forward_cancel(pid, key)
                return False
            if code >> 16 != 3:
                await self._fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
                return False
            break
        params = wire.decode_startup_params(rest)
        extensions = [k for k in params if k.startswith("_pq_.")]
        if code != wire.PROTOCOL_3 or extensions:
            # Like PostgreSQL: offer 3.0 and name the protocol options we ignore.
            self.client_writer.write(wire.negotiate_protocol_version(0, extensions))
        user = params.get("user", "")
        self.info.user = user
        self.info.database = params.get("database") or user
        if not await self._authenticate(user):
            return False
        expected_db = self.proxy.database
        if expected_db is not None and self.info.database != expected_db:
            await self._fatal("3D000", f'database "{self.info.database}" does not exist')
            return False
        if not await self._connect_backend(params):
            return False
        self._started = True
        # Counted before the client can see it is connected, so stats never lag behind it.
        self._counted = True
        self.proxy.stats.connections_total += 1
        self.proxy.stats.connections_open += 1
        out = [wire.auth_request(wire.AUTH_OK)]
        out += [wire.parameter_status(k, v) for k, v in self._startup_params.items()]
        out.append(wire.message(b"K", struct.pack("!Ii", *self.backend_key)))
        out.append(wire.ready_for_query(self.tx_status))
        self.client_writer.write(b"".join(out))
        await self.client_writer.drain()
        return True

    async def _fatal(self, sqlstate: str, text: str) -> None:
        self.client_writer.write(wire.error_response(sqlstate, text, severity="FATAL"))
        await self.client_writer.drain()

    async def _authenticate(self, user: str) -> bool:
        expected = self.proxy.users.get(user)
        if self.proxy.auth == "md5":
            salt = secrets.token_bytes(4)
            self.client_writer.write(wire.auth_request(wire.AUTH_MD5, salt))
        else:
            self.client_writer.write(wire.auth_request(wire.AUTH_CLEARTEXT))
        await self.client_writer.drain()
        kind, payload = await self.client.read()
        supplied = payload.rstrip(b"\x00").decode("utf-8", "replace")
        if expected is None or kind != b"p":
            ok = False
        elif self.proxy.auth == "md5":
            ok = hmac.compare_digest(supplied.encode("utf-8"), wire.md5_password(user, expected, salt).encode("ascii"))
        else:
            ok = hmac.compare_digest(supplied.encode("utf-8"), expected.encode("utf-8"))
        if not ok:
            log.warning("cluster %s: password authentication failed for user %r", self.proxy.cluster_id, user)
            await self._fatal("28P01", f'password authentication failed for user "{user}"')
        return ok

    async def _connect_backend(self, client_params: dict[str, str]) -> bool:
        proxy = self.proxy
        try:
            reader, self.backend_writer = await asyncio.open_connection(proxy.pg_host, proxy.pg_port)
        except OSError as exc:
            log.error("cluster %s: cannot reach PostgreSQL at %s:%s: %s", proxy.cluster_id, proxy.pg_host,
                      proxy.pg_port, exc)
            await self._fatal("57P03", "the database system is not accepting connections")
            return False
        self.backend = wire.MessageReader(reader)
        digits = client_params.get("extra_float_digits")
        refused = extra_float_digits_error(digits) if digits is not None else None
        if refused is not None:
            await self._fatal(*refused)
            return False
        params = {"user": proxy.pg_user, "database": proxy.pg_database}
        params.update({k: client_params[k] for k in PASSED_STARTUP_PARAMS if k in client_params})
        self.backend_writer.write(wire.startup_message(params))
        scram: wire.ScramClient | None = None
        while True:
            kind, payload = await self.backend.read()
            if kind == b"R":
                (code,) = struct.unpack_from("!I", payload)
                if code == wire.AUTH_CLEARTEXT:
                    self.backend_writer.write(wire.password_message(proxy.pg_password))
                elif code == wire.AUTH_MD5:
                    self.backend_writer.write(wire.password_message(
                        wire.md5_password(proxy.pg_user, proxy.pg_password, payload[4:8])))
                elif code == wire.AUTH_SASL:
                    scram = wire.ScramClient(proxy.pg_password)
                    self.backend_writer.write(scram.initial())
                elif code == wire.AUTH_SASL_CONTINUE and scram is not None:
                    self.backend_writer.write(scram.respond(payload[4:]))
                elif code == wire.AUTH_SASL_FINAL and scram is not None:
                    scram.verify(payload[4:])
                elif code != wire.AUTH_OK:
                    raise wire.ProtocolError(f"unsupported backend authentication request {code}")
            elif kind == b"S":
                self._note_parameter(payload)
            elif kind == b"K":
                self.backend_key = wire.decode_backend_key(payload)
                self.info.pid = self.backend_key[0]
            elif kind == b"E":
                fields = wire.decode_fields(payload)
                log.error("cluster %s: backend login failed: %s", proxy.cluster_id, fields.get("M"))
                self.client_writer.write(wire.message(kind, payload))
                return False
            elif kind == b"Z":
                self.tx_status = payload.decode("ascii")
                break
        self._relay_task = asyncio.create_task(self._relay(), name=f"relay-{proxy.cluster_id}-{self.info.pid}")
        if self.info.user != proxy.pg_user:
            await self._become_client_user()
        return True

    async def _become_client_user(self) -> None:
        """current_user is the client's when PostgreSQL knows that role, else the superuser's."""
        async with self._owning_backend():
            found = await self.roundtrip(
                f"select 1 from pg_catalog.pg_roles where rolname = {quote_literal(self.info.user)}")
            if found.rows:
                result = await self.roundtrip(f"SET SESSION AUTHORIZATION {quote_ident(self.info.user)}")
                if result.error is not None:
                    log.warning("cluster %s: cannot act as role %r: %s", self.proxy.cluster_id,
                                self.info.user, result.error.message)

    def _note_parameter(self, payload: bytes) -> bytes:
        name, value = wire.decode_parameter_status(payload)
        if name == "server_version":
            value = REDSHIFT_SERVER_VERSION
        self._startup_params[name] = value
        return wire.parameter_status(name, value)

    # ------------------------------------------------------------ backend side

    def _send_backend(self, raw: bytes, expect: _Expect | None = None) -> None:
        if self._backend_dead or self.backend_writer is None:
            raise ConnectionResetError("backend connection is closed")
        if expect is not None:
            self._expect.append(expect)
            self._idle.clear()
        self.backend_writer.write(raw)

    async def _relay(self) -> None:
        assert self.backend is not None
        try:
            while True:
                if self._capture is None:
                    run = self.backend.take_run(b"Dd")
                    if run:
                        self.client_writer.write(run)
                        if not self.backend.buffered():
                            await self.client_writer.drain()
                        continue
                kind, payload = await self.backend.read()
                if self._capture is not None:
                    self._capture.put_nowait((kind, payload))
                    continue
                out = await self._account(kind, payload)
                if out is not None:
                    self.client_writer.write(out)
                if not self.backend.buffered():
                    await self.client_writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, wire.ProtocolError, OSError) as exc:
            log.info("cluster %s: backend pid=%s gone: %s", self.proxy.cluster_id, self.info.pid, exc)
        finally:
            self.abort()

    async def _account(self, kind: bytes, payload: bytes) -> bytes | None:
        """Match a relayed backend message to what it answers; return what the client gets."""
        head = self._expect[0] if self._expect else None
        if kind == b"E":
            payload = _redshift_error_payload(payload)
            self._cycle_failed = True
        out: bytes | None = wire.message(kind, payload)
        if kind == b"S":
            out = self._note_parameter(payload)
        elif kind in (b"1", b"2", b"3") or (kind in (b"T", b"n") and head is not None and head.kind == "describe"):
            self._pop()
        elif kind in (b"C", b"I", b"s"):
            if kind == b"C":
                self._last_tag = wire.decode_command_complete(payload)
            if kind == b"C" and head is not None:
                await self._completed(head.sql or "", self._last_tag)
            if head is not None and head.kind == "execute":
                self._pop()
        elif kind == b"E" and head is not None and head.kind == "query":
            head.failed = True
        elif kind == b"E" and head is not None and head.kind != "sync":
            # The backend now ignores everything up to the next Sync.
            while self._expect and self._expect[0].kind != "sync":
                self._expect.popleft()
            if not self._expect:
                self._skipping = True
        elif kind == b"Z":
            self.tx_status = payload.decode("ascii")
            self._settle_transaction()
            if head is not None and head.kind in ("sync", "query"):
                self._pop()
                if head.internal:
                    out = None
        if not self._expect:
            self._idle.set()
        return out

    def _settle_transaction(self) -> None:
        """At ReadyForQuery: if no transaction is open any more, the one that ended committed
        (COMMIT, or a statement of its own that did not fail) or rolled back (ROLLBACK, which is
        also the tag of a COMMIT of a failed transaction, or a failed statement of its own)."""
        tag = (self._last_tag or "").split(" ", 1)[0].upper()
        if self.tx_status == "I":
            self.info.end_transaction(tag == "COMMIT" or (tag != "ROLLBACK" and not self._cycle_failed))
        self._last_tag, self._cycle_failed = None, False

    def _pop(self) -> None:
        if self._expect:
            self._expect.popleft()

    async def _completed(self, sql: str, tag: str) -> None:
        self.proxy.stats.count_statement(tag)
        interceptor = self.proxy.interceptor
        if interceptor is not None:
            try:
                await asyncio.to_thread(interceptor.after_statement, sql, tag, self.info)
            except Exception:
                log.exception("cluster %s: after_statement observer failed", self.proxy.cluster_id)

    async def _drain(self) -> None:
        """Wait until every forwarded message has been answered."""
        if self._expect and self._expect[-1].kind not in ("sync", "query"):
            # Without a Sync the backend may hold its answers back, and a failed
            # pipeline would swallow our own queries.
            log.debug("cluster %s: pid=%s syncing pending pipeline before answering locally",
                      self.proxy.cluster_id, self.info.pid)
            self._send_backend(wire.SYNC, _Expect("sync", internal=True))
        await self._idle.wait()
        if self._backend_dead:
            raise ConnectionResetError("backend connection is closed")

    def _owning_backend(self) -> "_Owning":
        return _Owning(self)

    async def roundtrip(self, sql: str, copy_in: bytes | None = None) -> _RoundTrip:
        """Run one simple Query on the backend for the proxy itself; the client sees nothing of it."""
        capture = self._capture
        if capture is None:
            raise RuntimeError("roundtrip outside _owning_backend")
        result = _RoundTrip()
        if self._backend_dead:
            result.error = BackendError("08006", "connection to the database was lost")
            return result
        self._send_backend(wire.query(sql))
        while True:
            kind, payload = await capture.get()
            if kind == b"":
                capture.put_nowait((b"", b""))
                result.error = result.error or BackendError("08006", "connection to the database was lost")
                return result
            if kind == b"T":
                result.columns = [Column(c.name, c.type_oid) for c in wire.decode_row_description(payload)]
                result.rows = []
            elif kind == b"D":
                result.rows.append(wire.decode_data_row(payload))
            elif kind == b"C":
                result.tag = wire.decode_command_complete(payload)
            elif kind == b"E" and result.error is None:
                fields = wire.decode_fields(payload)
                result.error = BackendError(fields.get("C", "XX000"), fields.get("M", ""), fields.get("D"))
            elif kind == b"G":
                await self._feed_copy(copy_in)
            elif kind == b"d":
                result.copy_out += payload
            elif kind == b"S":
                status = self._note_parameter(payload)
                if self._started:
                    self.client_writer.write(status)
            elif kind == b"Z":
                self.tx_status = payload.decode("ascii")
                return result

    async def _feed_copy(self, data: bytes | None) -> None:
        assert self.backend_writer is not None
        if data is None:
            self._send_backend(wire.copy_fail("COPY FROM STDIN needs data from the sandbox"))
            return
        view = memoryview(data)
        for start in range(0, len(view), _COPY_CHUNK):
            self._send_backend(wire.copy_data(bytes(view[start:start + _COPY_CHUNK])))
            await self.backend_writer.drain()
        self._send_backend(wire.COPY_DONE)

    async def _flush_backend(self) -> None:
        if self.backend_writer is not None:
            await self.backend_writer.drain()

    # ------------------------------------------------------------ client side

    async def _serve(self) -> None:
        handlers: dict[bytes, Callable[[bytes], Awaitable[None]]] = {
            b"Q": self._on_query, b"P": self._on_parse, b"B": self._on_bind, b"D": self._on_describe,
            b"E": self._on_execute, b"C": self._on_close, b"S": self._on_sync,
        }
        while True:
            run = b"" if self._skipping else self.client.take_run(b"d")
            if run:  # COPY FROM STDIN data from psql: relayed in bulk
                self._send_backend(run)
                await self._flush_backend()
                continue
            kind, payload = await self.client.read()
            if kind == b"X":
                if not self._backend_dead and self.backend_writer is not None:
                    self.backend_writer.write(wire.TERMINATE)
                    self.backend_writer.close()  # graceful: PostgreSQL reads the Terminate first
                return
            handler = handlers.get(kind)
            if handler is not None:
                await handler(payload)
            elif kind == b"F":
                self._forward(kind, payload, _Expect("query"))
            else:  # Flush, CopyData/CopyDone/CopyFail and anything else PostgreSQL judges
                self._send_backend(wire.message(kind, payload))
            if self._backend_dead:
                return
            await self.client_writer.drain()
            await self._flush_backend()

    def _forward(self, kind: bytes, payload: bytes, expect: _Expect) -> None:
        if not self._skipping:
            self._send_backend(wire.message(kind, payload), expect)

    def _reply(self, *messages: bytes) -> None:
        self.client_writer.write(b"".join(messages))

    def _classify(self, sql: str) -> Intercept | None:
        interceptor = self.proxy.interceptor
        if interceptor is None or not sql.strip():
            return None
        return interceptor.classify(sql, self.info)

    def _rewrite(self, sql: str) -> str | None:
        """The interceptor's optional text rewrite (Redshift settings syntax); None keeps ``sql``."""
        rewrite = getattr(self.proxy.interceptor, "rewrite", None)
        if rewrite is None or not sql.strip():
            return None
        result: str | None = rewrite(sql, self.info)
        return result

    async def _on_parse(self, payload: bytes) -> None:
        parse = wire.decode_parse(payload)
        rewritten = self._rewrite(parse.sql)
        if rewritten is not None:
            parse = wire.Parse(parse.statement, rewritten, parse.param_oids)
            payload = wire.parse_payload(parse)
        try:
            intercept = self._classify(parse.sql)
        except BackendError as err:
            # A recognised statement with bad options: the client sees the error on Parse.
            await self._drain()
            if not self._skipping:
                await self._fail(*redshift_error(err.sqlstate, err.message, err.detail))
                self._skipping = True
            return
        if intercept is None:
            if not self._skipping:
                self._statements[parse.statement] = _Statement(parse.sql, None, parse.param_oids)
            self._forward(b"P", payload, _Expect("parse"))
            return
        await self._drain()
        if not self._skipping:
            self._statements[parse.statement] = _Statement(parse.sql, intercept, parse.param_oids)
            self._reply(wire.PARSE_COMPLETE)

    async def _on_bind(self, payload: bytes) -> None:
        bind = wire.decode_bind(payload)
        statement = self._statements.get(bind.statement)
        if statement is None or statement.intercept is None:
            if statement is not None and not self._skipping:
                self._portals[bind.portal] = _Portal(statement, bind.result_formats)
            self._forward(b"B", payload, _Expect("bind"))
            return
        await self._drain()
        if not self._skipping:
            self._portals[bind.portal] = _Portal(statement, bind.result_formats)
            self._reply(wire.BIND_COMPLETE)

    async def _on_describe(self, payload: bytes) -> None:
        target, name = wire.decode_target(payload)
        if target == "S":
            statement = self._statements.get(name)
            formats: list[int] = []
        else:
            portal = self._portals.get(name)
            statement = portal.statement if portal else None
            formats = portal.result_formats if portal else []
        if statement is None or statement.intercept is None:
            self._forward(b"D", payload, _Expect("describe"))
            return
        await self._drain()
        if self._skipping:
            return
        columns = [wire.ColumnSpec(c.name, c.type_oid) for c in statement.intercept.columns]
        described = wire.row_description(columns, formats) if columns else wire.NO_DATA
        if target == "S":
            self._reply(wire.parameter_description(statement.param_oids), described)
        else:
            self._reply(described)

    async def _on_close(self, payload: bytes) -> None:
        target, name = wire.decode_target(payload)
        if target == "S":
            statement = self._statements.get(name)
        else:
            portal = self._portals.get(name)
            statement = portal.statement if portal else None
        if statement is None or statement.intercept is None:
            self._forward(b"C", payload, _Expect("close"))
        else:
            await self._drain()
            if self._skipping:
                return
            self._reply(wire.CLOSE_COMPLETE)
        if self._skipping:
            return
        if target == "S":
            self._statements.pop(name, None)
        else:
            self._portals.pop(name, None)

    async def _on_sync(self, payload: bytes) -> None:
        self._skipping = False
        self._send_backend(wire.message(b"S", payload), _Expect("sync"))

    async def _on_execute(self, payload: bytes) -> None:
        if self._skipping:
            return
        portal_name, _max_rows = wire.decode_execute(payload)
        portal = self._portals.get(portal_name)
        statement = portal.statement if portal else None
        failure = await self._faults(first_keyword(statement.sql) if statement else "",
                                     statement.intercept if statement else None)
        if failure is not None:
            await self._fail(*failure)
            self._skipping = True
        elif statement is None or statement.intercept is None:
            self._forward(b"E", payload, _Expect("execute", statement.sql if statement else None))
        else:
            await self._drain()
            if not self._skipping:
                assert portal is not None
                if not await self._intercepted(statement.sql, statement.intercept, portal.result_formats,
                                               simple=False):
                    self._skipping = True

    async def _on_query(self, payload: bytes) -> None:
        if self._skipping:
            return  # PostgreSQL ignores even simple queries until Sync
        sql = wire.decode_query(payload)
        rewritten = self._rewrite(sql)
        if rewritten is not None:
            sql = rewritten
            payload = wire.cstr(sql)
        try:
            intercept = self._classify(sql)
            parts = [(sql, intercept)]
            if intercept is None:
                pieces = split_statements(sql)
                if len(pieces) > 1:
                    classified = [(piece, self._classify(piece)) for piece in pieces]
                    if any(claimed is not None for _, claimed in classified):
                        parts = classified
        except BackendError as err:
            await self._fail(*redshift_error(err.sqlstate, err.message, err.detail))
            self._reply(wire.ready_for_query(self.tx_status))
            return
        if len(parts) == 1 and intercept is None:
            failure = await self._faults(first_keyword(sql), None)
            if failure is None:
                self._send_backend(wire.message(b"Q", payload), _Expect("query", sql))
                return
            await self._fail(*failure)
        else:
            # A query string mixing intercepted and normal statements runs one
            # statement at a time, stopping at the first error as PostgreSQL does.
            for part_sql, part_intercept in parts:
                if not await self._simple_statement(part_sql, part_intercept):
                    break
        self._reply(wire.ready_for_query(self.tx_status))

    async def _simple_statement(self, sql: str, intercept: Intercept | None) -> bool:
        failure = await self._faults(first_keyword(sql), intercept)
        if failure is not None:
            await self._fail(*failure)
            return False
        if intercept is not None:
            await self._drain()
            return await self._intercepted(sql, intercept, [], simple=True)
        expect = _Expect("query", sql, internal=True)
        self._send_backend(wire.query(sql), expect)
        await self._drain()
        return not expect.failed

    # ------------------------------------------------------------ faults and intercepts

    async def _faults(self, keyword: str, intercept: Intercept | None) -> tuple[str, str, str | None] | None:
        """Apply the fault plan before a statement runs; returns an error to report instead, if any."""
        plan = self.proxy.faults
        if plan is None:
            return None
        attrs = {"statement": keyword, "cluster": self.proxy.cluster_id}
        if await asyncio.to_thread(plan.take, "drop_connection", **attrs):
            self.abort()
            raise _Dropped()
        latency = await asyncio.to_thread(plan.take, "latency", **attrs)
        if latency is not None:
            log.warning("cluster %s: pid=%s injected latency %s before %s", self.proxy.cluster_id,
                        self.info.pid, latency.params, keyword)
            await asyncio.sleep(float(latency.params.get("seconds", 1.0)))
        if getattr(intercept, "handles_sql_error_faults", False):
            return None  # the emulation matches sql_error faults itself (it knows the table)
        error = await asyncio.to_thread(plan.take, "sql_error", **attrs)
        if error is not None:
            log.warning("cluster %s: pid=%s injected error %s for %s", self.proxy.cluster_id, self.info.pid,
                        error.params, keyword)
            return (str(error.params.get("sqlstate", "XX000")),
                    str(error.params.get("message", "injected failure")), error.params.get("detail"))
        return None

    async def _fail(self, sqlstate: str, text: str, detail: str | None) -> None:
        """Report an error the backend never raised, leaving its transaction as PostgreSQL would."""
        await self._drain()
        if self.tx_status == "T":
            async with self._owning_backend():
                await self.roundtrip(raise_statement(sqlstate, text, detail))
        self._reply(wire.error_response(sqlstate, text, detail))

    async def _intercepted(self, sql: str, intercept: Intercept, formats: list[int], *, simple: bool) -> bool:
        """Run an intercepted statement and answer the client; False when it failed."""
        if self.tx_status == "E":
            self._reply(wire.error_response(
                "25P02", "current transaction is aborted, commands ignored until end of transaction block"))
            return False
        try:
            result = await self._run_intercept(intercept)
            columns = list(intercept.columns) or result.columns
            out = []
            if simple and columns:
                out.append(wire.row_description([wire.ColumnSpec(c.name, c.type_oid) for c in columns]))
            for row in result.rows:
                out.append(wire.data_row([
                    wire.encode_value(v, columns[i].type_oid if i < len(columns) else 25,
                                      wire.result_format(formats, i))
                    for i, v in enumerate(row)]))
        except BackendError as err:
            self._reply(wire.error_response(*redshift_error(err.sqlstate, err.message, err.detail)))
            return False
        except (ValueError, IndexError) as exc:
            self._reply(wire.error_response("XX000", f"sandbox cannot encode the result: {exc}"))
            return False
        out.append(wire.command_complete(result.tag))
        self._reply(*out)
        await self._completed(sql, result.tag)
        return True

    async def _run_intercept(self, intercept: Intercept) -> QueryResult:
        """intercept.execute in a worker thread, atomic like one Redshift statement."""
        async with self._owning_backend():
            # Outside a transaction block the statement gets its own, as Redshift's
            # UNLOAD/COPY are atomic even in autocommit mode.
            own_transaction = self.tx_status == "I" and getattr(intercept, "atomic", True)
            if own_transaction:
                await self.roundtrip("BEGIN")
            handle = _BackendHandle(self, asyncio.get_running_loop())
            watcher = asyncio.create_task(self._abort_when_client_leaves())
            try:
                result = await asyncio.get_running_loop().run_in_executor(
                    _intercept_pool(), intercept.execute, handle, self.info)
            except BackendError as err:
                await self._after_failure(err, own_transaction)
                raise
            except ConnectionAbortedError:
                # The emulation asks to lose the connection mid-statement (a drop_connection
                # fault keyed on something only it knows, e.g. the table).
                self.abort()
                raise _Dropped() from None
            except Exception as exc:
                log.exception("cluster %s: intercepted statement crashed", self.proxy.cluster_id)
                err = BackendError("XX000", f"sandbox emulation failed: {exc}")
                await self._after_failure(err, own_transaction)
                raise err from exc
            finally:
                handle.active = False
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)  # before anyone reads the client again
            if own_transaction and self.tx_status != "I":
                done = await self.roundtrip("COMMIT")
                if done.error is not None:
                    raise done.error
            return result

    async def _abort_when_client_leaves(self) -> None:
        """While an intercept runs nobody reads the client; a client that leaves must still
        end the backend at once, so the work rolls back instead of committing."""
        await self.client.wait_eof()
        log.info("cluster %s: client of pid=%s left during an intercepted statement", self.proxy.cluster_id,
                 self.info.pid)
        self.abort()

    async def _after_failure(self, err: BackendError, own_transaction: bool) -> None:
        if own_transaction:
            await self.roundtrip("ROLLBACK")
        elif self.tx_status == "T":
            await self.roundtrip(raise_statement(err.sqlstate, err.message, err.detail))


class _Owning:
    """While held, backend messages go to the proxy (roundtrip), not to the client."""

    def __init__(self, session: _Session) -> None:
        self._session = session

    async def __aenter__(self) -> None:
        session = self._session
        await session._drain()
        session._capture = asyncio.Queue()

    async def __aexit__(self, *exc: object) -> None:
        self._session._capture = None


class RedshiftProxy:
    """One emulated cluster endpoint: an asyncio server in front of one PostgreSQL database."""

    def __init__(
        self,
        cluster_id: str,
        pg_host: str,
        pg_port: int,
        pg_database: str,
        pg_user: str,
        pg_password: str,
        users: dict[str, str],
        interceptor: StatementInterceptor | None = None,
        faults: FaultPlan | None = None,
        auth: Literal["md5", "cleartext"] = "md5",
        host: str = "127.0.0.1",
        port: int = 0,
        database: str | None = None,
    ) -> None:
        """``database``: the name clients must ask for (None: any name reaches ``pg_database``)."""
        if auth not in ("md5", "cleartext"):
            raise ValueError(f"unsupported auth method {auth!r}")
        self.cluster_id = cluster_id
        self.pg_host = pg_host
        self.pg_port = pg_port
        self.pg_database = pg_database
        self.pg_user = pg_user
        self.pg_password = pg_password
        self.users = dict(users)  # mutable: the emulation may add users or change passwords
        self.interceptor = interceptor
        self.faults = faults
        self.auth = auth
        self.database = database
        self.host = host
        self.port = port
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"RedshiftProxy({self.cluster_id!r}, {self.host}:{self.port} -> {self.pg_host}:{self.pg_port}/{self.pg_database})"

    def set_password(self, user: str, password: str) -> None:
        self.users[user] = password

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("cluster %s: proxy listening on %s:%s", self.cluster_id, self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every session (their transactions roll back)."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.abort()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("cluster %s: proxy stopped", self.cluster_id)

    async def drop_sessions(self) -> None:
        """Disconnect every client (a reboot); open transactions roll back, the listener stays."""
        sessions = list(self._sessions)
        for session in sessions:
            session.abort()
        await asyncio.gather(*(t for t in list(self._tasks)), return_exceptions=True)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(session)
        self._tasks.add(task)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self._tasks.discard(task)

    async def forward_cancel(self, pid: int, key: int) -> None:
        """Clients see the backend's own pid and key, so a cancel request maps one to one."""
        if not any(s.backend_key == (pid, key) for s in self._sessions):
            log.info("cluster %s: ignoring cancel request for unknown pid %s", self.cluster_id, pid)
            return
        try:
            reader, writer = await asyncio.open_connection(self.pg_host, self.pg_port)
            writer.write(wire.cancel_request(pid, key))
            await writer.drain()
            # PostgreSQL closes the socket once the cancel is delivered; the client waits for that too.
            await asyncio.wait_for(reader.read(), timeout=10)
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            log.warning("cluster %s: cancel for pid %s failed: %s", self.cluster_id, pid, exc)


class ProxyThread:
    """An event loop in a background thread hosting any number of proxies, driven from sync code."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._proxies: dict[str, RedshiftProxy] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop.run_forever, name="redshift-proxies", daemon=True)
        self._thread.start()

    def __enter__(self) -> "ProxyThread":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def call(self, coro: Awaitable[_T], timeout: float | None = 60.0) -> _T:
        """Run a coroutine on the proxies' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def add(self, proxy: RedshiftProxy) -> int:
        with self._lock:
            if proxy.cluster_id in self._proxies:
                raise ValueError(f"a proxy for cluster {proxy.cluster_id!r} is already running")
            self._proxies[proxy.cluster_id] = proxy
        try:
            return self.call(proxy.start())
        except BaseException:
            with self._lock:
                self._proxies.pop(proxy.cluster_id, None)
            raise

    def get(self, cluster_id: str) -> RedshiftProxy:
        with self._lock:
            return self._proxies[cluster_id]

    def proxies(self) -> dict[str, RedshiftProxy]:
        with self._lock:
            return dict(self._proxies)

    def remove(self, cluster_id: str) -> None:
        with self._lock:
            proxy = self._proxies.pop(cluster_id, None)
        if proxy is not None:
            self.call(proxy.stop())

    def drop_sessions(self, cluster_id: str) -> None:
        self.call(self.get(cluster_id).drop_sessions())

    def rename(self, old_id: str, new_id: str) -> None:
        """The cluster changed identifier; its proxy (and port) follow it."""
        with self._lock:
            if new_id in self._proxies:
                raise ValueError(f"a proxy for cluster {new_id!r} is already running")
            proxy = self._proxies.pop(old_id)
            proxy.cluster_id = new_id
            self._proxies[new_id] = proxy

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        for cluster_id in list(self.proxies()):
            self.remove(cluster_id)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


__all__ = ["ProxyStats", "ProxyThread", "RedshiftProxy", "first_keyword", "quote_ident", "quote_literal",
           "raise_statement", "split_statements"]
