"""The seed generator: advertised objects, every type, nasty values, determinism, speed."""

from __future__ import annotations

import time

from migrator.sandbox.postgres import PostgresServer
from migrator.sandbox.seed import SeedSummary, seed_cluster
from tests.sandbox.catalog.conftest import Cluster


def checksums(c: Cluster, summary: SeedSummary) -> dict[str, object]:
    return {t: c.rows(f"select count(*), sum(fnv_hash(x::text)) from {t} x")[0] for t in summary.tables}


def test_seed_objects_types_and_values(cluster: Cluster) -> None:
    s = seed_cluster(cluster.dsn, tables=6, rows=2000, seed=3)
    assert len(s.tables) == 7  # six plus the regions dimension
    for table, n in s.tables.items():
        assert cluster.rows(f"select count(*) from {table}") == [(n,)], table
    assert max(s.tables.values()) == 2000 and 0 in s.tables.values() and min(v for v in s.tables.values() if v) < 100
    cluster.conn.execute('set search_path = public, sales, "Ops Data", pg_sandbox')
    types = {r[0] for r in cluster.rows("select distinct type from pg_table_def")}
    for expected in ("smallint", "integer", "bigint", "numeric(18,4)", "numeric(38,10)", "real", "double precision",
                     "boolean", "character(10)", "character varying(65535)", "date", "timestamp without time zone",
                     "timestamp with time zone", "time without time zone"):
        assert expected in types, expected
    schemas = {r[0] for r in cluster.rows("select distinct schema from svv_table_info")}
    assert schemas == {"public", "sales", "Ops Data"}
    tables = {r[0] for r in cluster.rows('select "table" from svv_table_info')}
    assert {"Order Items", "select"} <= tables
    styles = {r[0] for r in cluster.rows("select diststyle from svv_table_info")}
    assert len(styles) >= 3
    assert cluster.rows("select count(*) from pg_table_def where sortkey < 0")[0][0] > 0 or \
        cluster.rows("select count(*) from pg_table_def where sortkey > 0")[0][0] > 0
    # Nasty values: NULL beside '', control characters, unicode, padded char(n).
    wide = '"public"."customers"'
    nulls, empties, tabs, newlines, unicode, long_ = cluster.rows(
        f"select count(*) filter (where c_varchar is null), count(*) filter (where c_varchar = ''),"
        f" count(*) filter (where c_varchar like '%%' || chr(9) || '%%'),"
        f" count(*) filter (where c_varchar like '%%' || chr(10) || '%%'),"
        f" count(*) filter (where c_varchar like '%%日本語%%'), max(octet_length(c_long)) from {wide}")[0]
    assert min(nulls, empties, tabs, newlines, unicode) > 0
    assert 50000 < long_ <= 65535  # type: ignore[operator]
    assert cluster.rows(f"select count(*) from {wide} where octet_length(c_char) = 10 and c_char = 'ab'")[0][0] > 0
    assert cluster.rows(f"select min(id), count(distinct id) from {wide}") == [(1, 2000)]
    views = {r[0] for r in cluster.rows("select table_schema || '.' || table_name from information_schema.views"
                                        " where table_schema in ('public', 'sales', 'Ops Data')")}
    assert len(views) == len(s.views)
    assert cluster.rows("select viewname from svv_late_binding_views") == [("Late Regions",)]
    assert cluster.rows("select count(*) from pg_user where usename in ('seed_etl', 'Seed Reader')") == [(2,)]
    assert cluster.rows("select has_table_privilege('Seed Reader', '\"sales\".\"Order Items\"', 'select')") == [(True,)]
    fks = cluster.rows("select count(*) from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace")
    assert fks[0][0] > 0


def test_seed_is_deterministic(cluster: Cluster, pg: PostgresServer) -> None:
    a = seed_cluster(cluster.dsn, tables=4, rows=500, seed=11)
    other = Cluster(pg, cluster.name + "_b")
    third = Cluster(pg, cluster.name + "_c")
    try:
        b = seed_cluster(other.dsn, tables=4, rows=500, seed=11)
        c = seed_cluster(third.dsn, tables=4, rows=500, seed=12)
        assert a.tables == b.tables
        assert checksums(cluster, a) == checksums(other, b)
        assert checksums(cluster, a) != checksums(third, c)
    finally:
        for extra in (other, third):
            extra.close()
            pg.drop_database(extra.name)


def test_seed_speed_10_tables_10k_rows(cluster: Cluster) -> None:
    start = time.perf_counter()
    s = seed_cluster(cluster.dsn, tables=10, rows=10_000, seed=0)
    print(f"\nseed 10 tables x 10k rows: {time.perf_counter() - start:.2f}s ({sum(s.tables.values())} rows)")
    assert sum(s.tables.values()) == cluster.rows(
        "select sum(tbl_rows) from svv_table_info")[0][0]


def test_hard_seed_types_and_names(cluster: Cluster) -> None:
    s = seed_cluster(cluster.dsn, tables=3, rows=50, seed=5, hard=True)
    for name in ('"a.b"."c"', '"a"."b.c"', '"public"."[/]"', "\"Ops Data\".\"per%cent/slash\"\"quote's\""):
        assert s.tables[name] == 2
        assert cluster.conn.execute(f"select count(*) from {name}").fetchall() == [(2,)]  # no placeholders: '%'
    assert cluster.rows('select label from "a.b"."c" where id = 1') == [("a.b / c",)]
    typed = '"public"."hard types"'
    assert s.tables[typed] == 6
    cluster.conn.execute("set search_path = public, pg_sandbox")
    types = dict(cluster.rows("""select "column", type from pg_table_def where tablename = 'hard types'"""))
    assert types["vb"] == "varbyte" and types["sp"] == "super"
    rows = cluster.rows(f"select id, to_hex(vb), json_serialize(sp), sp is null, s, gid from {typed} order by id")
    assert rows[0] == (1, "00ff61", '{"k": [1, null], "s": "x"}', False, "\\N", 1000)
    assert rows[1][2:5] == ("null", False, "NULL")  # JSON null is not SQL NULL
    assert rows[2][2:5] == ("null", True, "")  # JSON_SERIALIZE(NULL) is 'null' too ("JSON_SERIALIZE")
    # Explicit ids (1000, 7) do not move the identity: defaults go on from its seed.
    assert [r[5] for r in rows] == [1000, 1, 2, 7, 3, 4] and rows[5][4] == " "
    cluster.conn.execute("set extra_float_digits = 3")
    floats = cluster.rows(f"select r, d from {typed} order by id")
    assert floats[1] == (3.4028235e38, 1.7976931348623157e308)
    assert floats[2][1] == 5e-324 and floats[3][1] == 0.30000000000000004
    assert cluster.rows(f"select attidentity from pg_attribute where attrelid = '{typed}'::regclass "
                        "and attname = 'gid'") == [("d",)]
