"""System-log emulation: stl_* rows appear for what statements did, outside transactions."""

from __future__ import annotations

from typing import Iterator

import pytest

from migrator.sandbox.redshift.syslog import SystemLog, referenced_tables
from tests.sandbox.catalog.conftest import Cluster


@pytest.fixture()
def logged(cluster: Cluster) -> Iterator[tuple[Cluster, SystemLog]]:
    log = SystemLog(cluster.dsn)
    cluster.dialect = type(cluster.dialect)(observer=log.after_statement)
    try:
        yield cluster, log
    finally:
        log.close()


def run_logged(c: Cluster, sql: str) -> str:
    tag = c.run(sql).tag
    c.dialect.after_statement(sql, tag, c.session)
    return tag


def test_referenced_tables_excludes_ctes_and_keeps_quoting() -> None:
    read, written = referenced_tables(
        'with x as (select 1) insert into s."T" select * from x join "My Schema"."a b" on true join plain p on true')
    assert written == ['s."T"']
    assert read == ['"My Schema"."a b"', "plain"]


def test_select_logs_scan_with_padded_table_name(logged: tuple[Cluster, SystemLog]) -> None:
    c, _ = logged
    c.run("create table orders (id int)")
    c.run("insert into orders values (1), (2)")
    run_logged(c, "select count(*) from orders o join (select 1) s on true")
    rows = c.rows("select perm_table_name, octet_length(perm_table_name), tbl, type, userid"
                  " from stl_scan where tbl = 'orders'::regclass::oid::int")
    assert len(rows) == 1
    name, width, _tbl, scan_type, userid = rows[0]
    assert name == "orders" + " " * 130 and width == 136
    assert scan_type == 2
    assert userid == c.rows("select usesysid from pg_user where usename = current_user")[0][0]
    q = c.rows("select trim(substring) from svl_qlog order by query desc limit 1")[0][0]
    assert q.startswith("select count(*) from orders")


def test_insert_logged_even_when_rolled_back(logged: tuple[Cluster, SystemLog]) -> None:
    c, _ = logged
    c.run("create table events (id int)")
    c.run("begin")
    assert run_logged(c, "insert into events select generate_series(1, 3)") == "INSERT 0 3"
    c.run("rollback")
    assert c.rows("select count(*) from events") == [(0,)]
    assert c.rows("select rows from stl_insert where tbl = 'events'::regclass::oid::int") == [(3,)]
    run_logged(c, "insert into events values (1), (2)")
    run_logged(c, "delete from events where id = 1")
    run_logged(c, "update events set id = 5")
    ins = c.rows("select rows from stl_insert where tbl = 'events'::regclass::oid::int order by query")
    dels = c.rows("select rows from stl_delete where tbl = 'events'::regclass::oid::int order by query")
    assert ins == [(3,), (2,), (1,)]
    assert dels == [(1,), (1,)]
    recent = c.rows("select trim(status), trim(query) from stv_recents where trim(status) = 'Done' order by starttime desc limit 1")
    assert recent[0][0] == "Done" and "update events" in recent[0][1]


def test_engine_hooks(logged: tuple[Cluster, SystemLog]) -> None:
    """Each statement's hooks log under its one query id, which closes with the statement."""
    c, log = logged
    c.run("create table loaded (id int)")
    unload = "unload ('select 1') to 's3://b/p/'"
    q1 = log.on_unload(c.session, unload, "s3://b/p/0000_part_00", 10, 123)
    assert log.on_unload(c.session, unload, "s3://b/p/0001_part_00", 0, 0) == q1  # one UNLOAD, one query
    assert log.after_statement(unload, "UNLOAD", c.session) == q1
    copy = "copy loaded from 's3://b/p/'"
    q2 = log.on_load_commit(c.session, "loaded", [("s3://b/p/0000_part_00", 6), ("s3://b/p/0001_part_00", 4)], 10,
                            query_text=copy)
    assert log.after_statement(copy, "COPY", c.session) == q2
    q3 = log.on_load_error(c.session, "loaded", 3, "id", "Invalid digit, Value 'x'", raw_field_value="x",
                           query_text=copy)
    log.after_failure(copy, c.session)
    assert q1 < q2 < q3
    assert c.rows("select query, querytxt, aborted from pg_sandbox.query_log where query >= %s order by query",
                  (q1,)) == [(q1, unload, 0), (q2, copy, 0), (q3, copy, 1)]
    assert c.rows("select trim(path), line_count, transfer_size from stl_unload_log where query = %s order by 1",
                  (q1,)) == [("s3://b/p/0000_part_00", 10, 123), ("s3://b/p/0001_part_00", 0, 0)]
    assert c.rows("select trim(filename), lines_scanned from stl_load_commits where query = %s order by 1", (q2,)) == [
        ("s3://b/p/0000_part_00", 6), ("s3://b/p/0001_part_00", 4)]
    assert c.rows("select rows from stl_insert where query = %s", (q2,)) == [(10,)]
    assert c.rows("select line_number, trim(colname), trim(err_reason), tbl = 'loaded'::regclass::oid::int"
                  " from stl_load_errors where query = %s", (q3,)) == [(3, "id", "Invalid digit, Value 'x'", True)]


def test_a_statement_never_takes_over_another_ones_query(logged: tuple[Cluster, SystemLog]) -> None:
    """A COPY whose end was never reported (its row stays as its hooks left it) lends its id to
    nothing: the next statement gets its own row, and so does the same COPY sent again."""
    c, log = logged
    c.run("create table loaded (id int)")
    copy = "copy loaded from 's3://b/p/'"
    lost = log.on_load_error(c.session, "loaded", 1, "id", "Invalid digit", query_text=copy)
    other = log.after_statement("select 1", "SELECT 1", c.session)
    assert other > lost
    again = log.on_load_commit(c.session, "loaded", ["s3://b/p/0000_part_00"], 1, query_text=copy)
    assert again > other
    tolerated = log.on_load_error(c.session, "loaded", 2, "id", "Invalid digit", query_text=copy)
    assert tolerated == again  # a load error of a COPY that goes on (MAXERROR) is that COPY's
    assert log.after_statement(copy, "COPY", c.session) == again
    assert c.rows("select query, querytxt, aborted from pg_sandbox.query_log where query >= %s order by query",
                  (lost,)) == [(lost, copy, 1), (other, "select 1", 0), (again, copy, 0)]


def test_stv_sessions_lists_client(cluster: Cluster) -> None:
    pids = [r[0] for r in cluster.rows("select process from stv_sessions")]
    assert cluster.session.pid in pids
