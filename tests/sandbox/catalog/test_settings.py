"""Session settings as Redshift reports them: search_path ("search_path", "PG_TABLE_DEF") and
extra_float_digits ("extra_float_digits")."""

from __future__ import annotations

import pytest

from migrator.sandbox.interfaces import BackendError
from migrator.sandbox.redshift.settings import rewrite
from tests.sandbox.catalog.conftest import Cluster


def scalar(c: Cluster, sql: str) -> object:
    return c.run(sql).rows[0][0]


def test_search_path_default_and_reports_as_redshift(cluster: Cluster) -> None:
    assert scalar(cluster, "show search_path") == "$user, public"
    assert scalar(cluster, "SHOW SEARCH_PATH;") == "$user, public"
    assert scalar(cluster, "select current_setting('search_path')") == "$user, public"
    assert scalar(cluster, "select pg_catalog.current_setting('search_path') as p") == "$user, public"


def test_set_search_path_keeps_system_views_reachable(cluster: Cluster) -> None:
    cluster.run('create schema "Ops Data"')
    cluster.run("set search_path to '$user', \"Ops Data\", public")
    assert scalar(cluster, "show search_path") == '$user, "Ops Data", public'
    # The emulation's schema is still on PostgreSQL's path, so system views resolve unqualified.
    assert scalar(cluster, "select count(*) from svv_table_info") == "0"
    cluster.run("set session search_path = public")
    assert scalar(cluster, "select current_setting('search_path')") == "public"
    cluster.run("set search_path to default")
    assert scalar(cluster, "show search_path") == "$user, public"


def test_pg_table_def_only_search_path_first_match_wins(cluster: Cluster) -> None:
    cluster.run("create schema s1")
    cluster.run("create schema s2")
    cluster.run("create schema off_path")
    cluster.run("create table s1.t (a int)")
    cluster.run("create table s2.t (b int, c int)")
    cluster.run("create table s2.only2 (x int)")
    cluster.run("create table off_path.hidden (y int)")
    cluster.run("set search_path to s1, s2")
    rows = cluster.run("select schemaname, tablename, \"column\" from pg_table_def "
                       "where schemaname in ('s1', 's2', 'off_path') order by 1, 2, 3").rows
    # s2.t is shadowed by s1.t; off_path is not on the path at all.
    assert rows == [("s1", "t", "a"), ("s2", "only2", "x")]


def test_extra_float_digits_default_zero_and_maximum_two(cluster: Cluster) -> None:
    assert scalar(cluster, "show extra_float_digits") == "0"
    assert scalar(cluster, "select 0.1::float8 + 0.2::float8") == "0.3"
    cluster.run("set extra_float_digits to 2")
    with pytest.raises(BackendError) as err:
        cluster.run("set extra_float_digits = 3")
    assert err.value.sqlstate == "22023"
    assert '3 is outside the valid range for parameter "extra_float_digits" (-15 .. 2)' in err.value.message
    assert scalar(cluster, "show extra_float_digits") == "2"


def test_rewrite_leaves_other_text_alone() -> None:
    assert rewrite("select 'search_path' as x") is None
    assert rewrite("select 1") is None
    sql = "select current_setting('search_path'), 'current_setting(''search_path'')'"
    assert rewrite(sql) == "select pg_sandbox.rs_search_path(), 'current_setting(''search_path'')'"
