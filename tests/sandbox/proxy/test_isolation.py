"""Isolation per cluster database ("Isolation levels in Amazon Redshift", "ALTER DATABASE",
"STV_DB_ISOLATION_LEVEL"): SNAPSHOT by default, SERIALIZABLE on request; conflicts are
Redshift's error 1023 with SQLSTATE XX000."""

from __future__ import annotations

from typing import Any, Iterator

import psycopg
import pytest
import redshift_connector

from migrator.sandbox.interfaces import Intercept, SessionInfo
from migrator.sandbox.postgres import SUPERUSER, PostgresServer
from migrator.sandbox.proxy import ProxyThread, RedshiftProxy
from migrator.sandbox.redshift import catalog, settings
from migrator.sandbox.redshift.dialect import RedshiftDialect

DATABASE = "analytics"
USERS = {"awsuser": "Master-Pass1"}


class Cluster:
    def __init__(self) -> None:
        self.dialect = RedshiftDialect()

    def rewrite(self, sql: str, session: SessionInfo) -> str | None:
        return settings.rewrite(sql)

    def classify(self, sql: str, session: SessionInfo) -> Intercept | None:
        return self.dialect.classify(sql, session)

    def after_statement(self, sql: str, tag: str, session: SessionInfo) -> None:
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(tmp_path_factory.mktemp("pg")) as pg:
        pg.create_database(DATABASE)
        pg.create_database("dev")
        for db in (DATABASE, "dev"):
            catalog.install(pg.dsn(db), "iso-cluster")
        with psycopg.connect(pg.dsn(DATABASE), autocommit=True) as conn:
            conn.execute("create role awsuser login superuser")
            conn.execute("create table ledger (id int, amount int)")
        yield pg


@pytest.fixture(scope="module")
def proxy(server: PostgresServer) -> Iterator[RedshiftProxy]:
    with ProxyThread() as thread:
        cluster = RedshiftProxy("iso-cluster", "127.0.0.1", server.port, DATABASE, SUPERUSER, server.password,
                                USERS, interceptor=Cluster())
        thread.add(cluster)
        yield cluster


def connect(proxy: RedshiftProxy, autocommit: bool = False) -> Any:
    conn = redshift_connector.connect(host="127.0.0.1", port=proxy.port, database=DATABASE, user="awsuser",
                                      password=USERS["awsuser"], ssl=False)
    conn.autocommit = autocommit
    return conn


def run(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()] if cur.description else []


def write_skew(proxy: RedshiftProxy) -> None:
    """Each transaction reads the table, then writes to it; the second commit is the conflict."""
    a, b = connect(proxy), connect(proxy)
    try:
        run(a, "select count(*) from ledger")
        run(b, "select count(*) from ledger")
        run(a, "insert into ledger values (1, 10)")
        run(b, "insert into ledger values (2, 20)")
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()


def test_snapshot_is_the_default_and_tolerates_concurrent_inserts(proxy: RedshiftProxy) -> None:
    admin = connect(proxy, autocommit=True)
    try:
        assert run(admin, "select trim(isolation_level) from stv_db_isolation_level "
                          f"where trim(db_name) = '{DATABASE}'") == [("Snapshot Isolation",)]
        assert run(admin, "show transaction_isolation") == [("repeatable read",)]
    finally:
        admin.close()
    write_skew(proxy)


def test_serializable_conflict_is_error_1023(proxy: RedshiftProxy) -> None:
    admin = connect(proxy, autocommit=True)
    try:
        with pytest.raises(redshift_connector.ProgrammingError) as dev:
            run(admin, "alter database dev isolation level serializable")
        assert "dev database" in str(dev.value)
        run(admin, f"alter database {DATABASE} isolation level serializable")
        assert run(admin, "select trim(isolation_level) from stv_db_isolation_level "
                          f"where trim(db_name) = '{DATABASE}'") == [("Serializable",)]
    finally:
        admin.close()
    try:
        with pytest.raises(redshift_connector.ProgrammingError) as err:
            write_skew(proxy)
        fields = err.value.args[0]
        assert fields["C"] == "XX000" and fields["M"] == "1023"
        assert fields["D"].startswith("Serializable isolation violation on table")
    finally:
        admin = connect(proxy, autocommit=True)
        run(admin, f"alter database {DATABASE} isolation level snapshot")
        admin.close()
