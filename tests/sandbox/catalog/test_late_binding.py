"""Late-binding views need schema-qualified relations ("CREATE VIEW", WITH NO SCHEMA BINDING)."""

from __future__ import annotations

import pytest

from migrator.sandbox.interfaces import BackendError
from migrator.sandbox.redshift.dialect import LATE_BINDING_UNQUALIFIED
from tests.sandbox.catalog.conftest import Cluster


@pytest.mark.parametrize("query", [
    "select a from base",
    "select b.a from public.base b join base c on b.a = c.a",
    "select a from public.base, base",
    "select a from (select a from base) s",
    "select a from public.base where a in (select a from base)",
])
def test_unqualified_relation_refused(cluster: Cluster, query: str) -> None:
    cluster.run("create table base (a int)")
    with pytest.raises(BackendError) as err:
        cluster.run(f"create view lbv as {query} with no schema binding")
    assert err.value.message == LATE_BINDING_UNQUALIFIED
    assert cluster.rows("select count(*) from pg_views where viewname = 'lbv'") == [(0,)]


@pytest.mark.parametrize("query", [
    "select a from public.base",
    'select b.a from "public"."base" b left join public.base c on b.a = c.a',
    "select x.a from public.base, public.base x",
    "with w as (select a from public.base) select a from w",
    "select extract(year from now()) as a from public.base",
])
def test_qualified_relations_accepted(cluster: Cluster, query: str) -> None:
    cluster.run("create table base (a int)")
    cluster.run(f"create view lbv as {query} with no schema binding")
    assert cluster.rows("select viewname from svv_late_binding_views") == [("lbv",)]


def test_late_binding_definition_stays_qualified(cluster: Cluster) -> None:
    cluster.run("create table base (a int)")
    cluster.run("create view lbv as select a from public.base with no schema binding")
    cluster.run("create view bound as select a from public.base")
    late = cluster.run("select pg_get_viewdef('lbv'::regclass, true)").rows[0][0]
    bound = cluster.run("select pg_catalog.pg_get_viewdef(c.oid) from pg_class c where relname = 'bound'").rows[0][0]
    assert "public.base" in (late or "")
    assert "public.base" not in (bound or "")  # an ordinary view reads as PostgreSQL prints it
    # Replaying the definition as a late-binding view works.
    cluster.run("drop view lbv")
    cluster.run(f"create view lbv as {late.rstrip(';')} with no schema binding")  # type: ignore[union-attr]


def test_pg_views_definition_of_late_binding_view_stays_qualified(cluster: Cluster) -> None:
    cluster.run("create table base (a int)")
    cluster.run("create view lbv as select a from public.base with no schema binding")
    rows = cluster.run("select schemaname, viewname, definition from pg_views where viewname = 'lbv'").rows
    assert rows[0][:2] == ("public", "lbv") and "public.base" in (rows[0][2] or "")
    aliased = cluster.run("select v.definition from pg_catalog.pg_views v where v.viewname = 'lbv'").rows
    assert "public.base" in (aliased[0][0] or "")
