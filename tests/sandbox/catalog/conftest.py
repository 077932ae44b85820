"""Fixtures: one real PostgreSQL for the directory, a fresh catalog-installed database per test."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from migrator.sandbox.interfaces import QueryResult, SessionInfo
from migrator.sandbox.postgres import PostgresServer
from migrator.sandbox.redshift import catalog, settings
from migrator.sandbox.redshift.dialect import RedshiftDialect
from migrator.sandbox.redshift.psycopg_backend import PsycopgBackend

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    # Not under pytest's tmp_path: its parents are private to root, and the server may run
    # as an unprivileged user (PostgresServer hands base_dir itself to that user).
    base = Path(tempfile.mkdtemp(prefix="sandbox-catalog-"))
    try:
        with PostgresServer(base) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


class Cluster:
    """A catalog-installed database plus a client session driven through the dialect."""

    def __init__(self, pg: PostgresServer, name: str) -> None:
        self.pg = pg
        self.name = name
        self.dsn = pg.dsn(name)
        pg.create_database(name)
        catalog.install(self.dsn, name)
        self.conn = psycopg.connect(self.dsn, autocommit=True)
        self.backend = PsycopgBackend(self.conn)
        self.session = SessionInfo(cluster_id=name, database=name, user="sandbox_admin",
                                   pid=self.conn.info.backend_pid)
        self.dialect = RedshiftDialect()

    def run(self, sql: str) -> QueryResult:
        """What the proxy does: Redshift settings syntax rewritten, intercept when the dialect
        says so, else pass through."""
        sql = settings.rewrite(sql) or sql
        intercept = self.dialect.classify(sql, self.session)
        if intercept is None:
            return self.backend.query(sql)
        return intercept.execute(self.backend, self.session)  # type: ignore[attr-defined]

    def rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        return self.conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture()
def cluster(pg: PostgresServer) -> Iterator[Cluster]:
    c = Cluster(pg, f"cl{next(_counter)}")
    try:
        yield c
    finally:
        c.close()
        pg.drop_database(c.name)
