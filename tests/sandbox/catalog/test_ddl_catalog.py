"""Redshift DDL through the dialect, read back through pg_table_def and svv_table_info."""

from __future__ import annotations

import psycopg
import pytest

from migrator.sandbox.interfaces import BackendError
from tests.sandbox.catalog.conftest import Cluster

SALES = """
create table public.sales (
    id bigint identity(100, 5) encode az64,
    region varchar(max) not null encode lzo distkey,
    note text,
    amount numeric encode zstd,
    ratio float,
    flag bool,
    sold_at timestamp,
    code bpchar,
    primary key (id)
) backup no diststyle key compound sortkey (sold_at, id)
"""


def table_def(c: Cluster, table: str) -> dict[str, tuple[object, ...]]:
    rows = c.rows('select "column", type, trim(encoding), distkey, sortkey, "notnull"'
                  " from pg_table_def where tablename = %s", (table,))
    return {r[0]: r[1:] for r in rows}  # type: ignore[misc]


def table_info(c: Cluster, table: str) -> dict[str, object]:
    cur = c.conn.execute('select * from svv_table_info where "table" = %s', (table,))
    row = cur.fetchone()
    assert row is not None, f"{table} missing from svv_table_info"
    return {d.name: v for d, v in zip(cur.description or [], row)}


def test_create_table_attributes_reported(cluster: Cluster) -> None:
    assert cluster.run(SALES).tag == "CREATE TABLE"
    cols = table_def(cluster, "sales")
    assert cols["id"] == ("bigint", "az64", False, 2, True)
    assert cols["region"] == ("character varying(65535)", "lzo", True, 0, True)
    assert cols["note"] == ("character varying(256)", "lzo", False, 0, False)
    assert cols["amount"] == ("numeric(18,0)", "zstd", False, 0, False)
    assert cols["ratio"][0] == "double precision"
    assert cols["flag"][:2] == ("boolean", "none")
    assert cols["sold_at"] == ("timestamp without time zone", "none", False, 1, False)
    assert cols["code"][0] == "character(256)"
    cluster.run("insert into sales (region, sold_at) values ('eu', now()), ('us', now())")
    info = table_info(cluster, "sales")
    assert info["diststyle"] == "KEY(region)"
    assert info["sortkey1"] == "sold_at"
    assert info["sortkey_num"] == 2
    assert info["encoded"] == "Y"
    assert info["tbl_rows"] == 2
    assert info["max_varchar"] == 65535
    assert info["size"] >= 1
    # IDENTITY(100, 5) became a PostgreSQL identity with that seed and step.
    assert [r[0] for r in cluster.rows("select id from sales order by id")] == [100, 105]


def test_interleaved_and_even_and_encode_auto(cluster: Cluster) -> None:
    cluster.run("create table ev (a int, b int, c date, d varchar(10)) diststyle even "
                "interleaved sortkey (a, b, c) encode auto")
    cluster.run("insert into ev values (1, 2, current_date, 'x')")
    cols = table_def(cluster, "ev")
    # Interleaved sort key positions alternate in sign, as AWS documents.
    assert [cols[n][3] for n in "abcd"] == [1, -2, 3, 0]
    info = table_info(cluster, "ev")
    assert info["diststyle"] == "EVEN"
    assert info["encoded"] == "Y, AUTO(ENCODE)"
    assert info["sortkey_num"] == 3


def test_defaults_column_level_sortkey_and_diststyle_all(cluster: Cluster) -> None:
    cluster.run("create table d1 (k int sortkey, v varchar)")
    cluster.run("create table d2 (k int) diststyle all")
    cluster.run("insert into d1 values (1, 'a')")
    cluster.run("insert into d2 values (1)")
    assert table_info(cluster, "d1")["diststyle"] == "AUTO(ALL)"
    assert table_info(cluster, "d1")["sortkey1"] == "k"
    assert table_def(cluster, "d1")["v"][0] == "character varying(256)"
    assert table_info(cluster, "d2")["diststyle"] == "ALL"
    assert table_info(cluster, "d2")["sortkey1"] is None


def test_empty_tables_omitted_and_tbl_rows_exact(cluster: Cluster) -> None:
    cluster.run("create table e (a int)")
    assert cluster.rows("""select count(*) from svv_table_info where "table" = 'e'""")[0][0] == 0
    cluster.conn.execute("insert into e select generate_series(1, 12345)")
    assert table_info(cluster, "e")["tbl_rows"] == 12345


def test_like_copies_distribution_and_sort(cluster: Cluster) -> None:
    cluster.run(SALES)
    cluster.run("create table sales_copy (like sales)")
    cluster.run("insert into sales_copy (id, region) values (1, 'x')")
    info = table_info(cluster, "sales_copy")
    assert (info["diststyle"], info["sortkey1"], info["sortkey_num"]) == ("KEY(region)", "sold_at", 2)


def test_alter_distkey_and_sortkey(cluster: Cluster) -> None:
    cluster.run("create table al (a int, b int) diststyle even")
    cluster.run("insert into al values (1, 2)")
    cluster.run("alter table al alter distkey b")
    cluster.run("alter table al alter compound sortkey (b, a)")
    cluster.run("alter table al alter column a encode zstd")
    info = table_info(cluster, "al")
    assert (info["diststyle"], info["sortkey1"]) == ("KEY(b)", "b")
    assert table_def(cluster, "al")["a"][1] == "zstd"


def test_drop_removes_metadata(cluster: Cluster) -> None:
    cluster.run("create table gone (a int distkey)")
    cluster.run("drop table gone")
    assert cluster.rows("select count(*) from pg_sandbox.rs_table")[0][0] == 0


def test_conflicting_attributes_rejected(cluster: Cluster) -> None:
    with pytest.raises(BackendError, match="DISTKEY"):
        cluster.run("create table bad (a int) diststyle even distkey(a)")
    with pytest.raises(BackendError, match="does not exist"):
        cluster.run("create table bad2 (a int) sortkey(nope)")
    # The failed CREATE left nothing behind: the DDL and its metadata are one transaction.
    assert cluster.rows("select to_regclass('bad2')")[0][0] is None


def test_hostile_identifiers_survive(cluster: Cluster) -> None:
    cluster.run('create schema "My Schema"')
    cluster.run('create table "My Schema"."a""b; drop table x" ("select" int distkey, "Mixed Col" varchar(5) encode zstd)'
                ' sortkey("Mixed Col")')
    cluster.run('insert into "My Schema"."a""b; drop table x" values (1, \'v\')')
    cluster.conn.execute('set search_path = "$user", public, "My Schema", pg_sandbox')
    cols = table_def(cluster, 'a"b; drop table x')
    assert cols["select"][2] is True
    assert cols["Mixed Col"][1:4] == ("zstd", False, 1)
    info = table_info(cluster, 'a"b; drop table x')
    assert (info["schema"], info["diststyle"]) == ("My Schema", 'KEY(select)')


def test_pg_table_def_follows_search_path(cluster: Cluster) -> None:
    cluster.run("create schema hidden")
    cluster.run("create table hidden.t (a int)")
    assert cluster.rows("select count(*) from pg_table_def where schemaname = 'hidden'")[0][0] == 0
    cluster.conn.execute("set search_path = hidden, pg_sandbox")
    assert cluster.rows("select count(*) from pg_table_def where schemaname = 'hidden'")[0][0] == 1


def test_truncate_commits_open_transaction(cluster: Cluster) -> None:
    cluster.run("create table keep (a int)")
    cluster.run("create table wipe (a int)")
    cluster.run("insert into wipe values (1)")
    cluster.run("begin")
    cluster.run("insert into keep values (42)")
    cluster.run("truncate wipe")
    assert cluster.backend.transaction_status == "T"
    cluster.run("rollback")
    # The insert before TRUNCATE was committed by it; the rollback could not undo it.
    assert cluster.rows("select a from keep") == [(42,)]
    assert cluster.rows("select count(*) from wipe") == [(0,)]


def test_late_binding_view_recorded(cluster: Cluster) -> None:
    cluster.run("create table base (a int)")
    cluster.run("create view lbv as select a from public.base with no schema binding")
    cluster.run("create view plain as select a from base")
    assert cluster.rows("select viewname from svv_late_binding_views") == [("lbv",)]
    assert cluster.rows("select count(*) from lbv") == [(0,)]


def test_users_and_groups(cluster: Cluster) -> None:
    cluster.run("create user alice password 'Secret123'")
    cluster.run("create user bob password disable")
    cluster.run("create user carol with password 'Abcdefg1' createuser connection limit unlimited syslog access unrestricted")
    with pytest.raises(BackendError, match="uppercase"):
        cluster.run("create user weak password 'lowercase1'")
    cluster.run("create group analysts with user alice, bob")
    cluster.run("alter group analysts add user carol")
    cluster.run("alter user alice password disable")
    users = dict(cluster.rows("select usename, usesuper from pg_user where usename in ('alice', 'bob', 'carol')"))
    assert users == {"alice": False, "bob": False, "carol": True}
    members = cluster.rows("select array(select usename from pg_user u where u.usesysid = any(g.grolist) order by 1)"
                           " from pg_group g where groname = 'analysts'")
    assert members == [(["alice", "bob", "carol"],)]
    assert cluster.rows("select rolpassword is null from pg_authid where rolname = 'alice'") == [(True,)]
    # alice can log in with her password only before it was disabled; carol can now.
    with psycopg.connect(cluster.pg.dsn(cluster.name).replace("user=sandbox_admin", "user=carol")
                         .replace(f"password={cluster.pg.password}", "password=Abcdefg1")) as conn:
        assert conn.execute("select current_user").fetchone() == ("carol",)
    for u in ("alice", "bob", "carol"):
        cluster.conn.execute(f"drop owned by {u}")
    cluster.conn.execute("drop group analysts")
    cluster.conn.execute("drop user alice, bob, carol")


def test_functions(cluster: Cluster) -> None:
    assert cluster.rows("select pg_last_copy_count(), pg_last_copy_id()") == [(0, -1)]
    cluster.conn.execute("set redshift.last_copy_count = '7'")
    assert cluster.rows("select pg_last_copy_count()") == [(7,)]
    assert cluster.rows("select getdate() <= now() at time zone 'utc'") == [(True,)]


def test_passthrough_is_none(cluster: Cluster) -> None:
    for sql in ("select 1", "insert into t values (1)", "create schema s", "create function f() returns int as $$select 1$$ language sql",
                "alter table t add constraint c unique (a)", "alter table t rename to u"):
        assert cluster.dialect.classify(sql, cluster.session) is None, sql


def test_ctas_and_if_not_exists(cluster: Cluster) -> None:
    cluster.run("create table src (a int, b varchar(5))")
    cluster.run("insert into src values (1, 'x'), (2, 'y')")
    cluster.run("create table dst diststyle key distkey (b) sortkey (a) as select * from src")
    info = table_info(cluster, "dst")
    assert (info["diststyle"], info["sortkey1"], info["tbl_rows"]) == ("KEY(b)", "a", 2)
    # Re-declaring with IF NOT EXISTS leaves the existing table's attributes alone.
    cluster.run("create table if not exists dst (a int) diststyle all")
    assert table_info(cluster, "dst")["diststyle"] == "KEY(b)"


def test_add_column_with_redshift_type_and_encoding(cluster: Cluster) -> None:
    cluster.run("create table ac (a int)")
    cluster.run("alter table ac add column note varchar(max) encode zstd")
    assert table_def(cluster, "ac")["note"][:2] == ("character varying(65535)", "zstd")


def test_non_superuser_create_query_drop(cluster: Cluster) -> None:
    cluster.run("create user dana password 'Dana12345'")
    cluster.conn.execute("grant create on schema public to dana")
    try:
        dsn = cluster.dsn.replace("user=sandbox_admin", "user=dana").replace(
            f"password={cluster.pg.password}", "password=Dana12345")
        with psycopg.connect(dsn, autocommit=True) as conn:
            from migrator.sandbox.redshift.psycopg_backend import PsycopgBackend

            backend = PsycopgBackend(conn)
            intercept = cluster.dialect.classify("create table owned (a int distkey, b int) sortkey (b)", cluster.session)
            assert intercept is not None
            intercept.execute(backend, cluster.session)
            conn.execute("insert into owned values (1, 2)")
            # SVV_TABLE_INFO is visible only to superusers ("SVV_TABLE_INFO").
            assert conn.execute("""select diststyle, sortkey1 from svv_table_info where "table" = 'owned'""").fetchall() == []
            assert cluster.rows("""select diststyle, sortkey1 from svv_table_info where "table" = 'owned'""") == [
                ("KEY(a)", "b")]
            assert conn.execute("select fnv_hash(1)").fetchone() == (-5968735742475085980,)
            conn.execute("drop table owned")
        assert cluster.rows("select count(*) from pg_sandbox.rs_table") == [(0,)]
    finally:
        cluster.conn.execute("drop owned by dana")
        cluster.conn.execute("drop user dana")
