"""ACLs in Redshift's letters ("PG_DEFAULT_ACL": arwdRxtXUCTDPA, D is DROP, P TRUNCATE,
"group name=..." for groups), as the select lists the product runs return them."""

from __future__ import annotations

from migrator.sandbox.redshift.settings import rewrite
from tests.sandbox.catalog.conftest import Cluster


def test_relacl_in_redshift_letters(cluster: Cluster) -> None:
    cluster.run("create table t (a int)")
    cluster.run("create user \"Seed Reader\" password disable")
    cluster.run("create group readers")
    cluster.run("grant select on t to \"Seed Reader\" with grant option")
    cluster.conn.execute("grant truncate on t to \"Seed Reader\"")
    cluster.run("grant select, insert on t to group readers")
    cluster.run("grant select on t to public")
    sql = rewrite("select c.relacl from pg_class c where c.relname = 't'")
    assert sql is not None
    cur = cluster.conn.execute(sql)
    assert [d.name for d in cur.description or []] == ["relacl"]
    res = cluster.run("select c.relacl from pg_class c where c.relname = 't'")
    acl = res.rows[0][0]
    assert acl is not None
    assert '"\\"Seed Reader\\"=r*P/sandbox_admin"' in acl
    assert '"group readers=ar/sandbox_admin"' in acl
    assert "=r/sandbox_admin" in acl
    assert "sandbox_admin=arwdxtP/sandbox_admin" in acl  # PostgreSQL's D (TRUNCATE) is Redshift's P
    joined = cluster.run("select array_to_string(relacl, ' + ') from pg_class where relname = 't'").rows[0][0]
    assert "group readers=ar/sandbox_admin" in (joined or "")


def test_rewrite_only_touches_select_lists() -> None:
    sql = "select n.nspname, n.nspacl, relacl as r from pg_namespace n, pg_class where relacl is not null"
    out = rewrite(sql)
    assert out == ("select n.nspname, pg_sandbox.rs_acl(n.nspacl) as nspacl, pg_sandbox.rs_acl(relacl) as r "
                   "from pg_namespace n, pg_class where relacl is not null")
    assert rewrite("select 'relacl'") is None
