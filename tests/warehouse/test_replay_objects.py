"""Object replay of what the table copy does not carry: SQL UDFs, stored procedures,
materialized views, default privileges, and what cannot be recreated (reported, with why).

A private source ("rp-src", seeded: one UDF, one procedure, one MV, one default privilege)
gets a few more objects straight through PostgreSQL (admin DSN) where the sandbox cannot make
them through Redshift SQL: a Python UDF (a language named plpythonu is registered with the
PL/pgSQL handler and no validator, so the function exists in the catalog exactly as a
plpythonu one would, though it could never run) and an external schema with one table (rows in
the sandbox's svv_external_schemas/svv_external_tables metadata).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from migrator.sandbox.client import SandboxClient
from migrator.warehouse import pipeline, replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import read_inventory
from migrator.warehouse.replay import ReplayResult
from migrator.warehouse.replay.routines import Routine, cannot_recreate, routine_sql
from migrator.warehouse.replay.views import mv_sql
from tests.warehouse.helpers import load, stage

SRC, DST = "rp-src", "rp-dst"
UDF = '"public"."f_region_label"'
PROC = '"Ops Data"."sp_count_regions"'
MV = '"sales"."mv_region_buckets"'


@dataclass
class Replayed:
    src: Session
    dst: Session
    first: ReplayResult
    second: ReplayResult
    before: list[ReplayResult]  # replay_objects + foreign keys, first run


def _admin(sandbox: SandboxClient, cluster: str, *statements: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    with psycopg.connect(sandbox.admin_dsn(cluster), autocommit=True) as conn:
        for sql in statements:
            cur = conn.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
    return rows


@pytest.fixture(scope="module")
def replayed(sandbox: SandboxClient) -> Iterator[Replayed]:
    sandbox.create_seeded_cluster(SRC, tables=3, rows=40)
    sandbox.create_cluster(DST)
    _admin(sandbox, SRC,
           "create language plpythonu handler plpgsql_call_handler",
           "create function public.f_py_upper(s varchar) returns varchar immutable"
           " as $$ return s.upper() $$ language plpythonu",
           "insert into pg_sandbox.rs_external_schema (schemaname, databasename, esoptions)"
           " values ('spectrum', 'glue_events', '{\"IAM_ROLE\":\"arn:aws:iam::123456789012:role/spectrum\"}')",
           "insert into pg_sandbox.rs_external_table values ('spectrum', 'clicks', 's3://lake/clicks/')")
    with Session.of(sandbox.connect(SRC, autocommit=True)) as src, Session.of(sandbox.connect(DST, autocommit=True)) as dst, \
            Session.of(sandbox.connect(DST, autocommit=False)) as dst_tx:
        # Through the proxy, as a user would: an overload, an MV over an MV (named to sort
        # before the MV it reads, so the first attempt fails and is retried), a default
        # privilege for functions, a grant on the UDF.
        src.run("create function public.f_twice(integer) returns integer immutable as $$ select $1 * 2 $$ language sql")
        src.run("create function public.f_twice(numeric) returns numeric immutable as $$ select $1 * 2.5 $$ language sql")
        src.run(f"create materialized view sales.a_mv_top as select max(regions) as most from {MV}")
        src.run('alter default privileges grant execute on functions to "Seed Reader"')
        src.run(f'grant execute on function {UDF}(integer, varchar) to group seed_readers')
        # The target's own version of one signature must survive (no CREATE OR REPLACE).
        dst.run("create function public.f_twice(integer) returns integer immutable as $$ select $1 * 3 $$ language sql")

        inventory = read_inventory(src)
        before = [replay.replay_objects(src, dst, tables=inventory)]
        pipeline.ensure_bookkeeping(dst)
        regions = next(t for t in inventory if t.key == "public.regions")
        load(sandbox, dst_tx, regions, stage(sandbox, src, regions, migration="rp"), migration="rp")
        before.append(replay.replay_foreign_keys(src, dst, inventory))
        first = replay.replay_after_data(src, dst)
        second = replay.replay_after_data(src, dst)
        yield Replayed(src, dst, first, second, before)


def _both(r: Replayed, sql: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return r.src.run(sql), r.dst.run(sql)


def test_udf_gives_the_same_answer_on_the_target(replayed: Replayed) -> None:
    assert any(s.startswith(f"CREATE FUNCTION {UDF}(integer, character varying)") for s in replayed.first.statements)
    src, dst = _both(replayed, f"select {UDF}(7, 'nord ñ')")
    assert src == dst == [("R7: nord ñ",)]
    # EXECUTE granted to the group as on the source; PUBLIC already has it by default
    assert [s for s in replayed.first.statements if s.startswith("GRANT EXECUTE")] == [
        f'GRANT EXECUTE ON FUNCTION {UDF}(integer, character varying) TO GROUP "seed_readers"']
    sql = "select has_function_privilege('Seed Reader', 'public.f_region_label(integer, varchar)', 'execute')"
    assert replayed.src.run(sql) == replayed.dst.run(sql) == [(True,)]


def test_only_missing_signatures_are_created(replayed: Replayed) -> None:
    created = [s for s in replayed.first.statements if '"f_twice"' in s]
    assert created == ['CREATE FUNCTION "public"."f_twice"(numeric) RETURNS numeric IMMUTABLE AS $$ select $1 * 2.5 $$'
                       " LANGUAGE sql"]
    assert replayed.dst.run("select public.f_twice(2), public.f_twice(2.0)") == [(6, 5.0)]  # target's own kept


def test_procedure_call_works_on_the_target(replayed: Replayed) -> None:
    assert any(s.startswith(f'CREATE PROCEDURE {PROC}("min_id" integer, "total" INOUT bigint) AS $$')
               for s in replayed.first.statements)
    src, dst = _both(replayed, f"call {PROC}(4, 0)")
    assert src == dst == [(7,)]


def test_materialized_views_created_after_views_refreshed_and_equal(replayed: Replayed) -> None:
    statements = replayed.first.statements
    creates = [i for i, s in enumerate(statements) if s.startswith("CREATE MATERIALIZED VIEW")]
    assert [statements[i].split(" AS ")[0] for i in creates] == [
        f"CREATE MATERIALIZED VIEW {MV}", 'CREATE MATERIALIZED VIEW "sales"."a_mv_top"']
    assert statements[creates[0] + 1] == f"REFRESH MATERIALIZED VIEW {MV}"
    assert max(i for i, s in enumerate(statements) if s.startswith("CREATE VIEW")) < creates[0]
    for sql in (f"select * from {MV} order by bucket", "select * from sales.a_mv_top"):
        src, dst = _both(replayed, sql)
        assert src == dst and dst
    assert not any(s.object == "materialized view sales.a_mv_top" for s in replayed.first.skipped)


def test_default_privileges_visible_in_the_target_catalog(replayed: Replayed, sandbox: SandboxClient) -> None:
    assert [s for s in replayed.first.statements if s.startswith("ALTER DEFAULT PRIVILEGES")] == [
        'ALTER DEFAULT PRIVILEGES FOR USER "awsuser" GRANT EXECUTE ON FUNCTIONS TO "Seed Reader"',
        'ALTER DEFAULT PRIVILEGES FOR USER "awsuser" IN SCHEMA "sales" GRANT SELECT ON TABLES TO GROUP "seed_readers"',
    ]
    # Independently, straight from PostgreSQL's catalog on each side.
    sql = ("select pg_get_userbyid(d.defaclrole), coalesce(n.nspname, ''), d.defaclobjtype::text, d.defaclacl::text"
           " from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace order by 1, 2, 3")
    src, dst = _admin(sandbox, SRC, sql), _admin(sandbox, DST, sql)
    assert src == dst and ("awsuser", "sales", "r", "{seed_readers=r/awsuser}") in dst


def test_what_cannot_be_recreated_is_reported_with_reasons(replayed: Replayed) -> None:
    skipped = {s.object: s.reason for s in replayed.first.skipped}
    assert "Python UDF" in skipped["function public.f_py_upper(character varying)"]
    assert "CREATE EXTERNAL SCHEMA" in skipped["external schema spectrum"]
    assert "glue_events" in skipped["external schema spectrum"]
    assert "s3://lake/clicks/" in skipped["external table spectrum.clicks"]
    assert not any("f_py_upper" in s for s in replayed.first.statements)


def test_second_run_changes_nothing(replayed: Replayed) -> None:
    assert replayed.first.statements and replayed.second.statements == []
    assert replayed.second.skipped == replayed.first.skipped  # still reported, every time
    again = [replay.replay_objects(replayed.src, replayed.dst),
             replay.replay_foreign_keys(replayed.src, replayed.dst, read_inventory(replayed.src))]
    assert [r.statements for r in again] == [[], []]


# ------------------------------------------------------------------ builders, no database

def _routine(**kw: Any) -> Routine:
    base: dict[str, Any] = dict(schema="s", name="p", kind="p", language="plpgsql", arg_types=("integer",),
                                args=(("a b", "i", "integer"), ("out", "o", "character varying")), returns="void",
                                volatility="v", security_definer=True, body=" begin out := 'x'; end; ",
                                owner="o", acl=None)
    base.update(kw)
    return Routine(**base)


def test_routine_sql_procedure_and_function() -> None:
    assert routine_sql(_routine()) == ('CREATE PROCEDURE "s"."p"("a b" integer, "out" OUT character varying)'
                                       " AS $$ begin out := 'x'; end; $$ LANGUAGE plpgsql SECURITY DEFINER")
    f = _routine(kind="f", language="sql", name='f"q', args=(("", "i", "integer"),), returns="integer",
                 volatility="s", body=" select $1 ")
    assert routine_sql(f) == 'CREATE FUNCTION "s"."f""q"(integer) RETURNS integer STABLE AS $$ select $1 $$ LANGUAGE sql'


def test_cannot_recreate_reasons() -> None:
    assert cannot_recreate(_routine()) is None
    assert "Lambda" in (cannot_recreate(_routine(kind="f", language="exfunc")) or "")
    assert "aggregate" in (cannot_recreate(_routine(kind="a", language="internal")) or "")
    assert "plpgsql" in (cannot_recreate(_routine(kind="f", language="plpgsql")) or "")
    assert "$$" in (cannot_recreate(_routine(body="select '$$'")) or "")


def test_mv_sql_keeps_a_full_statement_and_wraps_a_select() -> None:
    full = "create materialized view s.m backup no diststyle even auto refresh yes as select 1;"
    assert mv_sql("s", "m", full, True) == full.rstrip(";")
    assert mv_sql("s", "m x", " SELECT 1 AS a;", True) == 'CREATE MATERIALIZED VIEW "s"."m x" AUTO REFRESH YES AS SELECT 1 AS a'


def test_generated_ddl_parses_as_redshift() -> None:
    import sqlglot
    from sqlglot import exp

    f = _routine(kind="f", language="sql", args=(("", "i", "integer"),), returns="integer", volatility="i",
                 body=" select $1 + 1 ")
    for sql, kind in ((routine_sql(_routine()), "PROCEDURE"), (routine_sql(f), "FUNCTION"),
                      (mv_sql("s", "m", "select 1 as a", False), "VIEW")):
        tree = sqlglot.parse_one(sql, read="redshift")
        assert isinstance(tree, exp.Create) and tree.kind == kind, sql
