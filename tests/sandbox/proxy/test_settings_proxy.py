"""Redshift's settings syntax through the wire proxy: the rewrite hook on Parse and Query,
and extra_float_digits refused above 2 at startup ("search_path", "extra_float_digits")."""

from __future__ import annotations

import socket
import struct
from typing import Any, Iterator

import psycopg
import pytest
import redshift_connector

from migrator.sandbox import wire
from migrator.sandbox.interfaces import Intercept, SessionInfo
from migrator.sandbox.postgres import SUPERUSER, PostgresServer
from migrator.sandbox.proxy import ProxyThread, RedshiftProxy
from migrator.sandbox.redshift import catalog, settings
from migrator.sandbox.redshift.statements import RedshiftDataStatements

DATABASE = "dev"
USERS = {"awsuser": "Master-Pass1"}


class SettingsOnly:
    """The cluster's rewrite hook and its UNLOAD/COPY parser (S3 is never reached here)."""

    def __init__(self) -> None:
        self.data = RedshiftDataStatements(lambda: None)

    def rewrite(self, sql: str, session: SessionInfo) -> str | None:
        return settings.rewrite(sql)

    def classify(self, sql: str, session: SessionInfo) -> Intercept | None:
        return self.data.classify(sql, session)

    def after_statement(self, sql: str, tag: str, session: SessionInfo) -> None:
        return None


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedshiftProxy]:
    with PostgresServer(tmp_path_factory.mktemp("pg")) as server, ProxyThread() as thread:
        server.create_database(DATABASE)
        catalog.install(server.dsn(DATABASE), "settings-cluster")
        with psycopg.connect(server.dsn(DATABASE), autocommit=True) as conn:
            conn.execute("create role awsuser login superuser")
        cluster = RedshiftProxy("settings-cluster", "127.0.0.1", server.port, DATABASE, SUPERUSER, server.password,
                                USERS, interceptor=SettingsOnly())
        thread.add(cluster)
        yield cluster


def fetch(proxy: RedshiftProxy, sql: str) -> list[tuple[Any, ...]]:
    conn = redshift_connector.connect(host="127.0.0.1", port=proxy.port, database=DATABASE, user="awsuser",
                                      password=USERS["awsuser"], ssl=False)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def test_search_path_reported_as_redshift_through_the_proxy(proxy: RedshiftProxy) -> None:
    assert fetch(proxy, "show search_path") == [("$user, public",)]
    assert fetch(proxy, "select current_setting('search_path')") == [("$user, public",)]
    assert fetch(proxy, "select current_setting('extra_float_digits')") == [("0",)]


def _read_until_ready(sock: socket.socket) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    reader = sock.makefile("rb")
    while True:
        head = reader.read(5)
        if len(head) < 5:
            return out
        out.append((head[:1], reader.read(int.from_bytes(head[1:], "big") - 4)))
        if head[:1] in (b"Z", b"E") or (head[:1] == b"R" and out[-1][1][:4] != b"\x00\x00\x00\x00"):
            return out


def test_startup_extra_float_digits_above_two_is_fatal(proxy: RedshiftProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        params = {"user": "awsuser", "database": DATABASE, "extra_float_digits": "3"}
        body = struct.pack("!I", 3 << 16) + b"".join(wire.cstr(k) + wire.cstr(v) for k, v in params.items())
        sock.sendall(struct.pack("!I", len(body) + 5) + body + b"\x00")
        first = _read_until_ready(sock)
        salt = first[-1][1][4:8]
        sock.sendall(wire.password_message(wire.md5_password("awsuser", USERS["awsuser"], salt)))
        rest = _read_until_ready(sock)
        errors = [wire.decode_fields(p) for k, p in rest if k == b"E"]
        assert errors and errors[0]["S"] == "FATAL" and errors[0]["C"] == "22023"
        assert "(-15 .. 2)" in errors[0]["M"]


BAD_COPY = "copy t from 's3://bucket/key' iam_role 'arn:aws:iam::123456789012:role/R' format parquet compupdate off"


def test_refused_copy_options_are_an_error_not_a_dropped_connection(proxy: RedshiftProxy) -> None:
    conn = redshift_connector.connect(host="127.0.0.1", port=proxy.port, database=DATABASE, user="awsuser",
                                      password=USERS["awsuser"], ssl=False)
    try:
        conn.autocommit = True
        cur = conn.cursor()
        with pytest.raises(redshift_connector.ProgrammingError) as err:
            cur.execute(BAD_COPY)  # extended protocol
        assert "COMPUPDATE argument is not supported for PARQUET based COPY" in str(err.value)
        cur.execute("select 1")  # the session is still usable
        assert cur.fetchall()[0][0] == 1
        conn.autocommit = False
        cur.execute("select 2")
        with pytest.raises(redshift_connector.ProgrammingError):
            cur.execute(BAD_COPY)
        with pytest.raises(redshift_connector.ProgrammingError) as aborted:
            cur.execute("select 3")  # inside a transaction the error aborted it, as on Redshift
        assert "25P02" in str(aborted.value)
        conn.rollback()
    finally:
        conn.close()


def test_refused_copy_options_in_simple_query(tmp_path_factory: pytest.TempPathFactory, proxy: RedshiftProxy) -> None:
    import os
    import shutil
    import subprocess

    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    env = dict(os.environ, PGPASSWORD=USERS["awsuser"])
    conninfo = f"host=127.0.0.1 port={proxy.port} dbname={DATABASE} user=awsuser sslmode=disable"  # PGPASSWORD
    out = subprocess.run([psql, conninfo, "-X", "-A", "-t", "-c", BAD_COPY, "-c", "select 41 + 1"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert "COMPUPDATE argument is not supported" in out.stderr
    assert out.stdout.strip() == "42"
