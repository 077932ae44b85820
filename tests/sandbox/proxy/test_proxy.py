"""The Redshift wire proxy, driven by the real redshift_connector, psql and psycopg."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
import redshift_connector

from migrator.sandbox import wire
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import Backend, BackendError, Column, QueryResult, SessionInfo
from migrator.sandbox.proxy import ProxyThread, RedshiftProxy, first_keyword, raise_statement, split_statements
from migrator.sandbox.postgres import SUPERUSER, PostgresServer

DATABASE = "dev"
USERS = {"awsuser": "Master-Pass1", "analyst": "Analyst'Pass2", "nobody_role": "Nobody-Pass3"}


class FakeUnload:
    """Test intercept: uses all three Backend calls, then returns what the table holds."""

    columns = [Column("rows_in_table", 20), Column("dump", 25)]

    def __init__(self, owner: "FakeInterceptor", table: str, fail: bool = False, drop: bool = False) -> None:
        self.owner = owner
        self.table = table
        self.fail = fail
        self.drop = drop

    def execute(self, backend: Backend, session: SessionInfo) -> QueryResult:
        self.owner.executions += 1
        self.owner.statuses.append(backend.transaction_status)
        gate = self.owner.gate
        if gate is not None:
            self.owner.entered.set()
            if not gate.wait(timeout=20):
                raise BackendError("57014", "test gate never opened")
        backend.query(f"insert into {self.table} values (1, 'queried')")
        tag = backend.copy_in(f"copy {self.table} from stdin", b"2\tcopied\n3\t\\N\n")
        assert tag == "COPY 2", tag
        if self.fail:
            raise BackendError("22P04", "fake unload failed: it's broken", "detail with 'quotes' and $$")
        if self.drop:
            raise ConnectionAbortedError("emulated network failure half-way")
        dumped = backend.copy_out(f"copy (select * from {self.table} order by id) to stdout")
        count = backend.query(f"select count(*) from {self.table}").rows[0][0]
        return QueryResult("SELECT 1", rows=[(count, dumped.decode())])


class FakeVacuum:
    """Work PostgreSQL refuses inside a transaction block; it matches sql_error faults itself."""

    columns: list[Column] = []
    atomic = False
    handles_sql_error_faults = True

    def __init__(self, table: str) -> None:
        self.table = table

    def execute(self, backend: Backend, session: SessionInfo) -> QueryResult:
        return backend.query(f"vacuum {self.table}")


class FakeInterceptor:
    """Intercepts `fake_unload <table>` and `fake_fail <table>`; records completed statements."""

    def __init__(self) -> None:
        self.executions = 0
        self.statuses: list[str] = []
        self.completed: list[tuple[str, str, str]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def classify(self, sql: str, session: SessionInfo) -> FakeUnload | FakeVacuum | None:
        words = sql.split()
        if len(words) == 2 and words[0].lower() == "fake_vacuum":
            return FakeVacuum(words[1])
        if len(words) == 2 and words[0].lower() in ("fake_unload", "fake_fail", "fake_drop"):
            return FakeUnload(self, words[1], fail=words[0].lower() == "fake_fail",
                              drop=words[0].lower() == "fake_drop")
        return None

    def after_statement(self, sql: str, tag: str, session: SessionInfo) -> None:
        self.completed.append((sql, tag, session.user))


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(tmp_path_factory.mktemp("pg")) as server:
        server.create_database(DATABASE)
        with psycopg.connect(server.dsn(DATABASE), autocommit=True) as conn:
            conn.execute("create role analyst login")
            conn.execute("grant all on schema public to analyst")
        yield server


@pytest.fixture(scope="module")
def proxies() -> Iterator[ProxyThread]:
    with ProxyThread() as thread:
        yield thread


@pytest.fixture(scope="module")
def interceptor() -> FakeInterceptor:
    return FakeInterceptor()


@pytest.fixture(scope="module")
def proxy(pg: PostgresServer, proxies: ProxyThread, interceptor: FakeInterceptor) -> RedshiftProxy:
    cluster = RedshiftProxy("source-cluster", "127.0.0.1", pg.port, DATABASE, SUPERUSER, pg.password,
                            USERS, interceptor=interceptor)
    proxies.add(cluster)
    return cluster


@pytest.fixture()
def admin(pg: PostgresServer) -> Iterator[psycopg.Connection]:
    """A direct connection to PostgreSQL, to check what really got committed."""
    with psycopg.connect(pg.dsn(DATABASE), autocommit=True) as conn:
        yield conn


@pytest.fixture()
def table(admin: psycopg.Connection, request: pytest.FixtureRequest) -> str:
    """A fresh table per test, writable by every proxied user."""
    name = "t_" + request.node.name.replace("[", "_").replace("]", "").lower()[:50]
    admin.execute(f"drop table if exists {name}")
    admin.execute(f"create table {name} (id int, label text)")
    admin.execute(f"grant all on {name} to public")
    return name


@pytest.fixture()
def fault_dir(tmp_path: Path, proxy: RedshiftProxy) -> Iterator[Path]:
    proxy.faults = FaultPlan(tmp_path)
    yield tmp_path
    proxy.faults = None


PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


def connect(proxy: RedshiftProxy, user: str = "awsuser", password: str | None = None,
            autocommit: bool = False) -> Any:
    conn = redshift_connector.connect(host="127.0.0.1", port=proxy.port, database=DATABASE, user=user,
                                      password=USERS[user] if password is None else password, ssl=False)
    conn.autocommit = autocommit
    return conn


@pytest.fixture()
def conn(proxy: RedshiftProxy) -> Iterator[Any]:
    connection = connect(proxy)
    yield connection
    connection.close()


def fetch(conn: Any, sql: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    cursor.execute(sql, args)
    return [tuple(row) for row in cursor.fetchall()]


def run(conn: Any, sql: str, args: tuple[Any, ...] | None = None) -> None:
    conn.cursor().execute(sql, args)


def committed(admin: psycopg.Connection, table: str) -> list[tuple[Any, ...]]:
    return admin.execute(f"select id, label from {table} order by id").fetchall()


def wait_gone(admin: psycopg.Connection, pid: int, timeout: float = 10.0) -> bool:
    """Poll pg_stat_activity until the backend exits (bounded; PostgreSQL notices the closed socket)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if admin.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone() is None:
            return True
        time.sleep(0.02)
    return False


def psql(proxy: RedshiftProxy, *args: str, stdin: str | None = None, user: str = "awsuser") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PGPASSWORD=USERS[user])
    conninfo = f"host=127.0.0.1 port={proxy.port} dbname={DATABASE} user={user} sslmode=disable"  # PGPASSWORD
    return subprocess.run([PSQL, conninfo, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=30)


# ---------------------------------------------------------------- redshift_connector basics

def test_connects_and_reports_redshift_server_version(conn: Any) -> None:
    assert "PostgreSQL" in fetch(conn, "select version()")[0][0]
    reported = dict(conn.parameter_statuses)
    assert reported[b"server_version"] == b"8.0.2"
    assert str(conn._server_version) == "8.0.2"


def test_bound_parameters_and_type_round_trips(conn: Any) -> None:
    assert fetch(conn, "select %s::int + 1", (41,)) == [(42,)]
    moment = datetime(2024, 2, 29, 23, 59, 58, 123456)
    row = fetch(conn, "select %s::numeric(12,3), %s::date, %s::timestamp, %s::text, %s::bigint",
                (Decimal("12345.678"), date(1999, 12, 31), moment, None, 2**40))[0]
    assert row == (Decimal("12345.678"), date(1999, 12, 31), moment, None, 2**40)


def test_catalog_query(conn: Any) -> None:
    rows = fetch(conn, "select relname, relkind from pg_class where relname = %s", ("pg_class",))
    assert rows == [("pg_class", "r")]


def test_cached_statement_reruns_with_new_parameters(conn: Any) -> None:
    sql = "select %s::int * 2 as doubled"
    assert fetch(conn, sql, (5,)) == [(10,)]
    assert fetch(conn, sql, (21,)) == [(42,)]
    prepared = fetch(conn, "select count(*) from pg_prepared_statements where statement like %s",
                     ("%::int * 2 as doubled%",))
    assert prepared == [(1,)]  # parsed once, bound twice: the driver's cached path


def test_rollback_undoes_insert(conn: Any, admin: psycopg.Connection, table: str) -> None:
    run(conn, f"insert into {table} values (%s, %s)", (1, "gone"))
    assert fetch(conn, f"select count(*) from {table}") == [(1,)]
    conn.rollback()
    assert fetch(conn, f"select count(*) from {table}") == [(0,)]
    run(conn, f"insert into {table} values (%s, %s)", (2, "kept"))
    conn.commit()
    assert committed(admin, table) == [(2, "kept")]


def test_autocommit_mode(proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    conn = connect(proxy, autocommit=True)
    try:
        run(conn, f"insert into {table} values (1, 'auto')")
        assert committed(admin, table) == [(1, "auto")]
        assert fetch(conn, "select %s::text", ("x",)) == [("x",)]
    finally:
        conn.close()


def test_client_user_becomes_current_user_when_role_exists(proxy: RedshiftProxy) -> None:
    known = connect(proxy, user="analyst")
    unknown = connect(proxy, user="nobody_role")
    try:
        assert fetch(known, "select current_user, session_user") == [("analyst", "analyst")]
        assert fetch(unknown, "select current_user") == [(SUPERUSER,)]
    finally:
        known.close()
        unknown.close()


def test_wrong_password_is_refused_and_proxy_keeps_serving(proxy: RedshiftProxy) -> None:
    with pytest.raises(redshift_connector.Error) as refused:
        connect(proxy, password="not-the-password")
    assert "authentication failed" in str(refused.value)
    assert "28P01" in str(refused.value)
    with pytest.raises(redshift_connector.Error):
        redshift_connector.connect(host="127.0.0.1", port=proxy.port, database=DATABASE, user="stranger",
                                   password="x", ssl=False)
    conn = connect(proxy)
    try:
        assert fetch(conn, "select 1") == [(1,)]
    finally:
        conn.close()


def test_cleartext_auth_proxy(pg: PostgresServer, proxies: ProxyThread) -> None:
    clear = RedshiftProxy("cleartext-cluster", "127.0.0.1", pg.port, DATABASE, SUPERUSER, pg.password,
                          USERS, auth="cleartext")
    proxies.add(clear)
    try:
        conn = connect(clear)
        assert fetch(conn, "select 7") == [(7,)]
        conn.close()
        with pytest.raises(redshift_connector.Error, match="authentication"):
            connect(clear, password="nope")
    finally:
        proxies.remove("cleartext-cluster")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", clear.port), timeout=2).recv(1)


def read_messages_until_ready(sock: socket.socket) -> list[tuple[bytes, bytes]]:
    reader = sock.makefile("rb")
    out: list[tuple[bytes, bytes]] = []
    while True:
        head = reader.read(5)
        assert len(head) == 5, out
        size = int.from_bytes(head[1:], "big")
        out.append((head[:1], reader.read(size - 4)))
        if head[:1] in (b"Z", b"E") or (head[:1] == b"R" and out[-1][1][:4] != b"\x00\x00\x00\x00"):
            return out


def test_raw_startup_negotiation(proxy: RedshiftProxy) -> None:
    """GSS and SSL refused with N, driver-only parameters dropped, newer protocol minor negotiated down."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(struct.pack("!II", 8, wire.GSSENC_REQUEST))
        assert sock.recv(1) == b"N"
        sock.sendall(struct.pack("!II", 8, wire.SSL_REQUEST))
        assert sock.recv(1) == b"N"
        params = {"user": "awsuser", "database": DATABASE, "client_protocol_version": "2",
                  "driver_version": "9.9", "plugin_name": "x", "_pq_.future": "on"}
        body = struct.pack("!I", (3 << 16) | 2) + b"".join(wire.cstr(k) + wire.cstr(v) for k, v in params.items())
        sock.sendall(struct.pack("!I", len(body) + 5) + body + b"\x00")
        first = read_messages_until_ready(sock)
        assert first[0][0] == b"v" and b"_pq_.future" in first[0][1]
        assert first[-1][0] == b"R" and struct.unpack("!I", first[-1][1][:4])[0] == wire.AUTH_MD5
        salt = first[-1][1][4:8]
        sock.sendall(wire.password_message(wire.md5_password("awsuser", USERS["awsuser"], salt)))
        rest = read_messages_until_ready(sock)
        statuses = dict(wire.decode_parameter_status(p) for k, p in rest if k == b"S")
        assert statuses["server_version"] == "8.0.2"
        assert statuses["session_authorization"] == SUPERUSER  # no awsuser role in PostgreSQL
        assert [k for k, _ in rest][-2:] == [b"K", b"Z"]
        sock.sendall(wire.TERMINATE)


def test_extra_proxy_database_check_drop_sessions_and_rename(pg: PostgresServer, proxies: ProxyThread) -> None:
    extra = RedshiftProxy("extra-cluster", "127.0.0.1", pg.port, DATABASE, SUPERUSER, pg.password, USERS,
                          database=DATABASE)
    proxies.add(extra)
    try:
        with pytest.raises(redshift_connector.Error, match="3D000"):
            redshift_connector.connect(host="127.0.0.1", port=extra.port, database="elsewhere", user="awsuser",
                                       password=USERS["awsuser"], ssl=False)
        conn = connect(extra)
        assert fetch(conn, "select 1") == [(1,)]
        proxies.drop_sessions("extra-cluster")
        assert extra.stats.connections_open == 0
        with pytest.raises((redshift_connector.InterfaceError, redshift_connector.OperationalError, OSError)):
            fetch(conn, "select 1")
        proxies.rename("extra-cluster", "renamed-cluster")
        assert proxies.get("renamed-cluster") is extra and extra.cluster_id == "renamed-cluster"
        again = connect(extra)
        assert fetch(again, "select 2") == [(2,)]
        again.close()
    finally:
        proxies.remove(extra.cluster_id)
    assert extra.stats.connections_open == 0


def test_asyncio_lifecycle_without_proxy_thread(pg: PostgresServer) -> None:
    async def scenario() -> tuple[int, int, int]:
        proxy = RedshiftProxy("async-cluster", "127.0.0.1", pg.port, DATABASE, SUPERUSER, pg.password, USERS)
        port = await proxy.start()
        dsn = (f"host=127.0.0.1 port={port} dbname={DATABASE} user=awsuser "
               f"password={USERS['awsuser']} sslmode=disable")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            cursor = await aconn.execute("select %s::int * 3", (14,))
            value = (await cursor.fetchone())[0]
            held_open = proxy.stats.connections_open
        await proxy.stop()
        return value, held_open, proxy.stats.connections_open

    assert asyncio.run(scenario()) == (42, 1, 0)


# ---------------------------------------------------------------- psql and psycopg

def test_psql_simple_and_multi_statement_queries(proxy: RedshiftProxy, table: str) -> None:
    result = psql(proxy, "-c", "select 1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    multi = psql(proxy, "-c", f"insert into {table} values (1, 'a'); select count(*) from {table}; select current_database()")
    assert multi.returncode == 0, multi.stderr
    assert multi.stdout.splitlines() == ["INSERT 0 1", "1", DATABASE]


def test_psql_copy_from_stdin(proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    result = psql(proxy, "-c", f"copy {table} from stdin", stdin="1\tone\n2\t\\N\n")
    assert result.returncode == 0, result.stderr
    assert committed(admin, table) == [(1, "one"), (2, None)]


def test_psycopg_cancel_reaches_the_backend(proxy: RedshiftProxy, pg: PostgresServer) -> None:
    dsn = (f"host=127.0.0.1 port={proxy.port} dbname={DATABASE} user=awsuser "
           f"password={USERS['awsuser']} sslmode=disable")
    with psycopg.connect(dsn) as conn:
        pid = conn.info.backend_pid

        def cancel_once_running() -> None:
            with psycopg.connect(pg.dsn(DATABASE), autocommit=True) as watcher:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    state = watcher.execute("select state, query from pg_stat_activity where pid = %s",
                                            (pid,)).fetchone()
                    if state is not None and state[0] == "active" and "pg_sleep" in state[1]:
                        break
                    time.sleep(0.01)
            # cancel() would run libpq's blocking PQcancel holding the GIL and starve the in-process proxy
            conn.cancel_safe(timeout=10)

        canceller = threading.Thread(target=cancel_once_running)
        canceller.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(20)")
        canceller.join()
        assert time.monotonic() - started < 15
        conn.rollback()
        assert conn.execute("select 3").fetchone() == (3,)


# ---------------------------------------------------------------- interception

def test_intercept_returns_rows_and_runs_inside_client_transaction(
        proxy: RedshiftProxy, conn: Any, admin: psycopg.Connection, table: str,
        interceptor: FakeInterceptor) -> None:
    rows = fetch(conn, f"fake_unload {table}")
    assert rows == [(3, "1\tqueried\n2\tcopied\n3\t\\N\n")]
    assert interceptor.statuses[-1] == "T"  # the driver's `begin transaction` is still open
    assert committed(admin, table) == []  # not yet committed: it is the client's transaction
    conn.rollback()
    assert committed(admin, table) == []
    assert fetch(conn, f"fake_unload {table}")[0][0] == 3
    conn.commit()
    assert len(committed(admin, table)) == 3


def test_intercept_cached_statement_executes_each_time(
        conn: Any, admin: psycopg.Connection, table: str, interceptor: FakeInterceptor) -> None:
    before = interceptor.executions
    cursor = conn.cursor()
    cursor.execute(f"fake_unload {table}")
    assert cursor.fetchall()[0][0] == 3
    cursor.execute(f"fake_unload {table}")
    assert cursor.fetchall()[0][0] == 6
    assert interceptor.executions == before + 2
    conn.commit()
    assert len(committed(admin, table)) == 6


def test_intercept_error_fails_the_transaction(
        conn: Any, admin: psycopg.Connection, table: str) -> None:
    run(conn, f"insert into {table} values (100, 'before')")
    with pytest.raises(redshift_connector.ProgrammingError) as failed:
        run(conn, f"fake_fail {table}")
    assert "22P04" in str(failed.value)
    assert "it's broken" in str(failed.value)
    with pytest.raises(redshift_connector.ProgrammingError, match="25P02"):
        run(conn, "select 1")
    conn.commit()  # PostgreSQL turns COMMIT of a failed transaction into ROLLBACK
    assert committed(admin, table) == []
    conn.rollback()
    assert fetch(conn, "select 5") == [(5,)]


def test_intercept_in_autocommit_is_atomic(
        proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    conn = connect(proxy, autocommit=True)
    try:
        with pytest.raises(redshift_connector.ProgrammingError, match="22P04"):
            run(conn, f"fake_fail {table}")
        assert committed(admin, table) == []
        assert fetch(conn, f"fake_unload {table}")[0][0] == 3
        assert len(committed(admin, table)) == 3
    finally:
        conn.close()


def test_non_atomic_intercept_runs_outside_transaction_blocks(
        proxy: RedshiftProxy, fault_dir: Path, conn: Any, table: str) -> None:
    plan = FaultPlan(fault_dir)
    plan.add("sql_error", match={"statement": "fake_vacuum"}, message="left to the emulation")
    auto = connect(proxy, autocommit=True)
    try:
        run(auto, f"fake_vacuum {table}")
    finally:
        auto.close()
    assert plan.fired("sql_error") == []
    with pytest.raises(redshift_connector.ProgrammingError, match="25001"):
        run(conn, f"fake_vacuum {table}")  # as on Redshift: VACUUM refuses a transaction block
    conn.rollback()


def test_intercept_through_psql_simple_query(proxy: RedshiftProxy, admin: psycopg.Connection,
                                             table: str) -> None:
    ok = psql(proxy, "-c", f"fake_unload {table}")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("3|1\tqueried")
    failed = psql(proxy, "-v", "VERBOSITY=verbose", "-c", f"fake_fail {table}")
    assert failed.returncode != 0
    assert "22P04" in failed.stderr
    assert len(committed(admin, table)) == 3


def test_psql_query_string_mixing_intercepted_and_normal_statements(
        proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    rolled_back = psql(proxy, "-c", f"begin; insert into {table} values (50, 'x'); fake_unload {table}; rollback")
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert "4|" in rolled_back.stdout  # the intercept saw the insert before it in the same string
    assert committed(admin, table) == []
    stopped = psql(proxy, "-c", f"insert into {table} values (60, 'kept'); fake_fail {table}; "
                                f"insert into {table} values (61, 'never')")
    assert stopped.returncode != 0 and "it's broken" in stopped.stderr
    assert committed(admin, table) == [(60, "kept")]


def test_pipelined_messages_after_intercept_keep_their_order(
        proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    """psycopg's pipeline mode sends everything before reading: intercepted and normal statements interleave."""
    dsn = (f"host=127.0.0.1 port={proxy.port} dbname={DATABASE} user=awsuser "
           f"password={USERS['awsuser']} sslmode=disable")
    with psycopg.connect(dsn) as pconn:
        with pconn.pipeline():
            first = pconn.execute(f"insert into {table} values (10, 'before') returning id")
            unload = pconn.execute(f"fake_unload {table}")
            after = pconn.execute(f"select count(*) from {table}")
        assert first.fetchone() == (10,)
        assert unload.fetchone()[0] == 4
        assert after.fetchone() == (4,)
        pconn.commit()
    assert len(committed(admin, table)) == 4


def test_after_statement_sees_normal_statements(conn: Any, table: str, interceptor: FakeInterceptor) -> None:
    run(conn, f"insert into {table} values (%s, %s)", (1, "x"))
    conn.commit()
    assert any(sql.startswith(f"insert into {table}") and tag == "INSERT 0 1" and user == "awsuser"
               for sql, tag, user in interceptor.completed)
    assert ("begin transaction", "BEGIN", "awsuser") in interceptor.completed


def test_intercept_does_not_block_other_connections(
        proxy: RedshiftProxy, table: str, interceptor: FakeInterceptor) -> None:
    interceptor.gate = threading.Event()
    interceptor.entered.clear()
    outcome: dict[str, Any] = {}

    def slow_client() -> None:
        slow = connect(proxy)
        try:
            outcome["rows"] = fetch(slow, f"fake_unload {table}")
        finally:
            slow.close()

    worker = threading.Thread(target=slow_client)
    worker.start()
    try:
        assert interceptor.entered.wait(timeout=20)
        other = connect(proxy)
        try:
            assert fetch(other, "select 99") == [(99,)]
        finally:
            other.close()
    finally:
        interceptor.gate.set()
        worker.join(timeout=30)
        interceptor.gate = None
    assert outcome["rows"][0][0] == 3


# ---------------------------------------------------------------- faults and robustness

def test_drop_connection_fault_rolls_back(
        proxy: RedshiftProxy, fault_dir: Any, admin: psycopg.Connection, table: str) -> None:
    plan = FaultPlan(fault_dir)
    plan.add("drop_connection", match={"statement": "update", "cluster": proxy.cluster_id})
    conn = connect(proxy)
    pid = fetch(conn, "select pg_backend_pid()")[0][0]
    run(conn, f"insert into {table} values (1, 'uncommitted')")
    with pytest.raises((redshift_connector.InterfaceError, redshift_connector.OperationalError, OSError)):
        run(conn, f"update {table} set label = 'never'")
    assert wait_gone(admin, pid)
    assert committed(admin, table) == []
    assert [e["attrs"]["statement"] for e in plan.fired("drop_connection")] == ["update"]
    survivor = connect(proxy)
    try:
        assert fetch(survivor, "select 1") == [(1,)]
    finally:
        survivor.close()


def test_drop_connection_fault_on_intercepted_statement(
        proxy: RedshiftProxy, fault_dir: Any, admin: psycopg.Connection, table: str,
        interceptor: FakeInterceptor) -> None:
    FaultPlan(fault_dir).add("drop_connection", match={"statement": "fake_unload"})
    before = interceptor.executions
    conn = connect(proxy)
    pid = fetch(conn, "select pg_backend_pid()")[0][0]
    with pytest.raises((redshift_connector.InterfaceError, redshift_connector.OperationalError, OSError)):
        run(conn, f"fake_unload {table}")
    assert wait_gone(admin, pid)
    assert interceptor.executions == before
    assert committed(admin, table) == []


def test_intercept_can_drop_the_connection_half_way(
        proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    conn = connect(proxy, autocommit=True)
    pid = fetch(conn, "select pg_backend_pid()")[0][0]
    with pytest.raises((redshift_connector.InterfaceError, redshift_connector.OperationalError, OSError)):
        run(conn, f"fake_drop {table}")
    assert wait_gone(admin, pid)
    assert committed(admin, table) == []  # its own transaction never committed


def test_client_vanishing_during_intercept_rolls_it_back(
        proxy: RedshiftProxy, admin: psycopg.Connection, table: str, interceptor: FakeInterceptor) -> None:
    interceptor.gate = threading.Event()
    interceptor.entered.clear()
    conn = connect(proxy, autocommit=True)
    pid = fetch(conn, "select pg_backend_pid()")[0][0]
    sock = conn._usock
    worker = threading.Thread(target=lambda: pytest.raises(Exception, run, conn, f"fake_unload {table}"))
    worker.start()
    try:
        assert interceptor.entered.wait(timeout=20)
        sock.shutdown(socket.SHUT_RDWR)
        assert wait_gone(admin, pid)
    finally:
        interceptor.gate.set()
        worker.join(timeout=30)
        interceptor.gate = None
    assert committed(admin, table) == []  # not even the statement's own autocommit transaction


def test_client_vanishing_mid_transaction_releases_backend(
        proxy: RedshiftProxy, admin: psycopg.Connection, table: str) -> None:
    conn = connect(proxy)
    pid = fetch(conn, "select pg_backend_pid()")[0][0]
    run(conn, f"insert into {table} values (1, 'orphan')")
    open_before = proxy.stats.connections_open
    conn._usock.shutdown(socket.SHUT_RDWR)
    conn._usock.close()
    assert wait_gone(admin, pid)
    assert committed(admin, table) == []
    deadline = time.monotonic() + 10
    while proxy.stats.connections_open != open_before - 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.stats.connections_open == open_before - 1


def test_sql_error_fault(proxy: RedshiftProxy, fault_dir: Any, conn: Any, admin: psycopg.Connection,
                         table: str) -> None:
    FaultPlan(fault_dir).add("sql_error", match={"statement": "fake_unload"}, sqlstate="53100",
                             message="injected: disk full")
    run(conn, f"insert into {table} values (1, 'x')")
    with pytest.raises(redshift_connector.ProgrammingError) as failed:
        run(conn, f"fake_unload {table}")
    assert "53100" in str(failed.value) and "injected: disk full" in str(failed.value)
    conn.commit()
    assert committed(admin, table) == []
    conn.rollback()
    assert fetch(conn, f"fake_unload {table}")[0][0] == 3  # the fault fired once only


def test_sql_error_fault_on_passthrough_statement(proxy: RedshiftProxy, fault_dir: Any, conn: Any) -> None:
    FaultPlan(fault_dir).add("sql_error", match={"statement": "select"}, sqlstate="XX000", message="boom")
    with pytest.raises(redshift_connector.ProgrammingError, match="boom"):
        run(conn, "select 1")
    conn.rollback()
    assert fetch(conn, "select 2") == [(2,)]


def test_latency_fault_fires_and_is_logged(proxy: RedshiftProxy, fault_dir: Any, conn: Any) -> None:
    plan = FaultPlan(fault_dir)
    plan.add("latency", match={"statement": "select"}, seconds=0.3)
    started = time.monotonic()
    assert fetch(conn, "select 11") == [(11,)]
    assert time.monotonic() - started >= 0.3
    fired = plan.fired("latency")
    assert len(fired) == 1 and fired[0]["attrs"] == {"statement": "select", "cluster": proxy.cluster_id}


def test_stats_count_connections_and_writes(proxy: RedshiftProxy, table: str) -> None:
    stats = proxy.stats
    total, open_now, statements, writes = (stats.connections_total, stats.connections_open,
                                           stats.statements, stats.write_statements)
    conn = connect(proxy)
    try:
        assert stats.connections_total == total + 1
        assert stats.connections_open == open_now + 1
        run(conn, f"insert into {table} values (1, 'a')")
        run(conn, f"update {table} set label = 'b'")
        run(conn, f"select * from {table}")
        conn.commit()
        assert stats.write_statements == writes + 2
        assert stats.statements >= statements + 5  # begin, insert, update, select, commit
    finally:
        conn.close()


def test_helpers() -> None:
    assert first_keyword("  /* hint */ -- note\n (SELECT 1)") == "select"
    assert first_keyword("UNLOAD ('select 1') TO 's3://b/p'") == "unload"
    assert first_keyword("") == ""
    assert split_statements("select ';'; do $x$ begin; end $x$;; -- a;b\nselect 2") == [
        "select ';'", "do $x$ begin; end $x$", "-- a;b\nselect 2"]
    sql = raise_statement("22P04", "it's $proxy$ odd", None)
    assert "'it''s $proxy$ odd'" in sql and not sql.startswith("DO $proxy$")
