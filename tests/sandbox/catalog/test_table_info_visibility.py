"""SVV_TABLE_INFO row counts until VACUUM ("SVV_TABLE_INFO", "VACUUM") and what a regular
user sees of the system views ("Visibility of data in system tables and views")."""

from __future__ import annotations

import pytest

from migrator.sandbox.interfaces import BackendError
from tests.sandbox.catalog.conftest import Cluster


def counts(c: Cluster, table: str) -> tuple[object, ...] | None:
    rows = c.rows('select tbl_rows, estimated_visible_rows from svv_table_info where "table" = %s', (table,))
    return rows[0] if rows else None


def test_tbl_rows_counts_deleted_rows_until_vacuum(cluster: Cluster) -> None:
    cluster.run("create table t (id int, v varchar(10))")
    cluster.run("insert into t select g, 'x' from generate_series(1, 5) g")
    assert counts(cluster, "t") == (5, 5)
    cluster.run("delete from t where id <= 2")
    assert counts(cluster, "t") == (5, 3)
    # An UPDATE marks the old row deleted and writes a new one.
    cluster.run("update t set v = 'y' where id = 3")
    assert counts(cluster, "t") == (6, 3)
    cluster.run("vacuum sort only t")
    assert counts(cluster, "t") == (6, 3)
    cluster.run("vacuum delete only public.t to 100 percent")
    assert counts(cluster, "t") == (3, 3)
    cluster.run("delete from t")
    # Deleted but not vacuumed: the table still has blocks, so it is still listed.
    assert counts(cluster, "t") == (3, 0)
    cluster.run("vacuum")
    assert counts(cluster, "t") is None  # empty tables are omitted


def test_truncate_and_ctas_tables_are_tracked(cluster: Cluster) -> None:
    cluster.run("create table src (id int)")
    cluster.run("insert into src select generate_series(1, 4)")
    cluster.run("create table copy_of as select * from src")
    cluster.run("delete from copy_of where id = 1")
    assert counts(cluster, "copy_of") == (4, 3)
    cluster.run("truncate copy_of")
    assert counts(cluster, "copy_of") is None


def test_vacuum_refuses_redshift_syntax_errors_and_transaction_blocks(cluster: Cluster) -> None:
    with pytest.raises(BackendError):
        cluster.run("vacuum reindex")
    with pytest.raises(BackendError):
        cluster.run("vacuum t to percent")
    cluster.run("create table v (id int)")
    cluster.conn.execute("begin")
    try:
        with pytest.raises(BackendError) as err:
            cluster.run("vacuum v")
        assert err.value.sqlstate == "25001"
    finally:
        cluster.conn.execute("rollback")


def test_regular_user_sees_no_table_info_and_only_its_own_queries(cluster: Cluster) -> None:
    cluster.run("create table shared (id int)")
    cluster.run("insert into shared values (1)")
    cluster.run("create user reader_u with password 'Reader-Pass1'")
    cluster.run("grant select on shared to reader_u")
    reader = cluster.rows("select oid::int from pg_roles where rolname = 'reader_u'")[0][0]
    admin = cluster.rows("select oid::int from pg_roles where rolname = current_user")[0][0]
    for uid, text in ((admin, "select 'admin secret'"), (reader, "select 'mine'")):
        cluster.conn.execute(
            "insert into pg_sandbox.query_log (query, userid, user_name, db_name, pid, starttime, endtime, querytxt)"
            " values (nextval('pg_sandbox.query_seq'), %s, 'u', 'd', 1, now(), now(), %s)", (uid, text))
        cluster.conn.execute(
            "insert into pg_sandbox.stl_scan (userid, query, tbl) values (%s, 1, 1)", (uid,))
    assert counts(cluster, "shared") == (1, 1)
    assert cluster.rows("select count(*) from stl_query") == [(2,)]
    cluster.conn.execute("set session authorization reader_u")
    try:
        assert cluster.rows("select count(*) from svv_table_info") == [(0,)]
        assert [r[0].strip() for r in cluster.rows("select querytxt from stl_query")] == ["select 'mine'"]
        assert cluster.rows("select count(*) from svl_qlog") == [(1,)]
        assert cluster.rows("select userid from stl_scan") == [(reader,)]
        assert cluster.rows("select count(*) from stv_sessions where user_name <> 'reader_u'") == [(0,)]
    finally:
        cluster.conn.execute("reset session authorization")
