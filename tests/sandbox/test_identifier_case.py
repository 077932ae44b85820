"""Quoted identifiers fold to lower case unless enable_case_sensitive_identifier is on
("Names and identifiers", "enable_case_sensitive_identifier"), through the real driver."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import redshift_connector

from migrator.sandbox.client import SandboxClient

_ids = itertools.count()


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()] if cur.description else []


def _tables(conn: Any, schema: str) -> set[str]:
    cur = conn.cursor()
    cur.execute("select tablename from pg_tables where schemaname = %s", (schema,))
    return {r[0] for r in cur.fetchall()}


@pytest.fixture
def conn(sandbox: SandboxClient) -> Any:
    connection = sandbox.connect(sandbox.info.source_cluster_id, autocommit=True)
    yield connection
    connection.close()


def test_quoted_identifiers_fold_by_default(conn: Any) -> None:
    schema = f"case_default_{next(_ids)}"
    assert _rows(conn, "show enable_case_sensitive_identifier") == [("false",)]
    _rows(conn, f'create schema "{schema.upper()}"')
    _rows(conn, f'create table "{schema.upper()}"."MiXed Name" ("ID" int)')
    assert _tables(conn, schema) == {"mixed name"}
    _rows(conn, f'insert into "{schema}"."MIXED NAME" ("id") values (1)')
    assert _rows(conn, f'select "Id" from {schema}."mixed name"') == [(1,)]
    # String literals are values, never folded.
    assert _rows(conn, "select 'KEEP \"Case\"'") == [('KEEP "Case"',)]


def test_case_sensitive_session_keeps_case_and_tells_names_apart(conn: Any, sandbox: SandboxClient) -> None:
    schema = f"case_on_{next(_ids)}"
    _rows(conn, f'create schema "{schema}"')
    _rows(conn, "set enable_case_sensitive_identifier to true")
    assert _rows(conn, "show enable_case_sensitive_identifier") == [("true",)]
    _rows(conn, f'create table "{schema}"."Orders" (n int)')
    _rows(conn, f'create table "{schema}"."orders" (n int)')
    assert _tables(conn, schema) == {"Orders", "orders"}
    _rows(conn, f'insert into "{schema}"."Orders" values (7)')
    assert _rows(conn, f'select count(*) from "{schema}"."orders"') == [(0,)]

    other = sandbox.connect(sandbox.info.source_cluster_id, autocommit=True)
    try:
        # Another session with the default reaches only the lower-case one, whatever it quotes.
        assert _rows(other, f'select count(*) from "{schema}"."Orders"') == [(0,)]
    finally:
        other.close()

    _rows(conn, "reset enable_case_sensitive_identifier")
    assert _rows(conn, f'select count(*) from "{schema}"."Orders"') == [(0,)]


def test_bad_setting_value_is_refused(conn: Any) -> None:
    with pytest.raises(redshift_connector.ProgrammingError, match="Boolean"):
        _rows(conn, "set enable_case_sensitive_identifier to maybe")


def test_the_tools_connections_reach_mixed_case_names_from_the_catalog(sandbox: SandboxClient, conn: Any) -> None:
    """A cluster whose users made mixed-case names (with the setting on): the catalog lists them
    so, and the tool quotes them as listed; its sessions must keep their case to find them."""
    from migrator.credentials import DbCredentials
    from migrator.warehouse.connection import SANDBOX_PLAINTEXT, Endpoint, Session, connect

    schema = f"Case Mixed {next(_ids)}"
    _rows(conn, "set enable_case_sensitive_identifier to true")
    _rows(conn, f'create schema "{schema}"')
    _rows(conn, f'create table "{schema}"."Order Lines" (n int)')
    _rows(conn, f'insert into "{schema}"."Order Lines" values (1), (2)')
    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    tool = connect(Endpoint(info.host, info.port, info.database), DbCredentials(info.user, info.password, "the sandbox"),
                   tls=SANDBOX_PLAINTEXT, autocommit=True)
    with Session(tool) as session:
        listed = session.run("select schemaname, tablename from pg_tables where schemaname = %s", (schema,))
        assert listed == [(schema, "Order Lines")]
        assert session.run(f'select count(*) from "{schema}"."Order Lines"') == [(2,)]


def _folds(conn: Any, schema: str) -> bool:
    """Whether the session folds quoted names: "Orders" reaches the lower-case table."""
    return _rows(conn, f'select count(*) from "{schema}"."Orders"') == [(1,)]


def test_a_set_lasts_only_as_long_as_its_transaction_commits(sandbox: SandboxClient) -> None:
    """SET in a transaction that is rolled back is undone, SET LOCAL ends with its transaction,
    a committed SET stays for the session (PostgreSQL's SET semantics, which Redshift's SET
    follows; the PostgreSQL copy of the value the sandbox keeps is rolled back the same way)."""
    schema = f"case_tx_{next(_ids)}"
    setup = sandbox.connect(sandbox.info.source_cluster_id, autocommit=True)
    try:
        _rows(setup, f'create schema "{schema}"')
        _rows(setup, f'create table "{schema}"."orders" (n int)')
        _rows(setup, f'insert into "{schema}"."orders" values (1)')
    finally:
        setup.close()
    conn = sandbox.connect(sandbox.info.source_cluster_id)  # not autocommit: the driver opens transactions
    try:
        _rows(conn, "set enable_case_sensitive_identifier to true")
        conn.rollback()
        assert _rows(conn, "show enable_case_sensitive_identifier") == [("false",)]
        assert _folds(conn, schema)
        conn.rollback()

        _rows(conn, "set local enable_case_sensitive_identifier to true")
        assert _rows(conn, "show enable_case_sensitive_identifier") == [("true",)]
        conn.commit()
        assert _folds(conn, schema)
        conn.rollback()

        _rows(conn, "set enable_case_sensitive_identifier to true")
        conn.commit()
        assert _rows(conn, "show enable_case_sensitive_identifier") == [("true",)]
        with pytest.raises(redshift_connector.ProgrammingError):
            _rows(conn, f'select count(*) from "{schema}"."Orders"')  # case kept: no such table
        conn.rollback()
        assert _rows(conn, "show enable_case_sensitive_identifier") == [("true",)]
    finally:
        conn.close()
