"""Real PostgreSQL, a real moto server and boto3 clients for the UNLOAD/COPY tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer

from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import QueryResult, SessionInfo
from migrator.sandbox.postgres import PostgresServer, free_port
from migrator.sandbox.redshift.psycopg_backend import PsycopgBackend
from migrator.sandbox.redshift.statements import RedshiftDataStatements

ROLE = "arn:aws:iam::123456789012:role/RedshiftUnload"
BUCKET = "stage"
_db_names = itertools.count()


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(tmp_path_factory.mktemp("pgdata")) as server:
        yield server


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service: str, url: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def s3(moto_url: str) -> Any:
    client = _client("s3", moto_url)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="session")
def kms(moto_url: str) -> Any:
    return _client("kms", moto_url)


@dataclass
class Env:
    conn: psycopg.Connection
    backend: PsycopgBackend
    statements: RedshiftDataStatements
    session: SessionInfo
    faults: FaultPlan
    s3: Any
    kms: Any
    unloads: list[tuple[Any, ...]]
    load_errors: list[tuple[Any, ...]]
    commits: list[tuple[Any, ...]]
    prefix: str

    def run(self, sql: str) -> QueryResult:
        """What the proxy does: intercepted statements run through the Backend, others pass through."""
        intercept = self.statements.classify(sql, self.session)
        if intercept is None:
            return self.backend.query(sql)
        return intercept.execute(self.backend, self.session)

    def scalar(self, sql: str) -> str | None:
        return self.backend.query(sql).rows[0][0]

    def keys(self, prefix: str | None = None) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix or self.prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def url(self, suffix: str = "") -> str:
        return f"s3://{BUCKET}/{self.prefix}{suffix}"


@pytest.fixture
def env(pg: PostgresServer, s3: Any, kms: Any, moto_url: str, tmp_path: Path) -> Iterator[Env]:
    name = f"rsdata_{next(_db_names)}"
    pg.create_database(name)
    conn = psycopg.connect(pg.dsn(name), autocommit=True)
    faults = FaultPlan(tmp_path / "faults")
    (tmp_path / "faults").mkdir()
    unloads: list[tuple[Any, ...]] = []
    load_errors: list[tuple[Any, ...]] = []
    commits: list[tuple[Any, ...]] = []
    statements = RedshiftDataStatements(
        lambda: _client("s3", moto_url), lambda: _client("kms", moto_url), faults, {ROLE},
        on_unload=lambda *a: unloads.append(a),
        on_load_error=lambda *a: load_errors.append(a),
        on_load_commit=lambda *a: commits.append(a),
    )
    env = Env(conn, PsycopgBackend(conn), statements, SessionInfo("src", name, "sandbox_admin", conn.info.backend_pid),
              faults, s3, kms, unloads, load_errors, commits, f"{name}/")
    try:
        yield env
    finally:
        conn.close()
        pg.drop_database(name)
