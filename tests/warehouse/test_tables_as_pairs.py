"""A table is the pair (schema, table): same-named tables in two schemas, dotted names, and
exact counts (issue 9, items 2.2, 2.3 and 2.4).

Each test uses clusters of its own module, so the shared seeded source stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from migrator.names import split_table_key, table_key
from migrator.warehouse import baseline as bl
from migrator.warehouse import checksum
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import read_inventory
from migrator.warehouse.sql import staging_prefix

CLUSTER = "pairs-src"


@pytest.fixture(scope="module")
def pairs(sb: Any) -> Iterator[str]:
    sb.create_cluster(CLUSTER)
    conn = sb.connect(CLUSTER, autocommit=True)
    cur = conn.cursor()
    for sql in (
        'create schema "s1"', 'create schema "s2"',
        'create table "s1"."t" ("a" integer)',
        'create table "s2"."t" ("b" varchar(10), "c" bigint not null)',
        'insert into "s1"."t" values (1), (2)',
        "insert into \"s2\".\"t\" values ('x', 1)",
        # "a.b"."c" and "a"."b.c": one naive "schema.table" text for both.
        'create schema "a.b"', 'create schema "a"',
        'create table "a.b"."c" ("v" integer)', 'create table "a"."b.c" ("w" varchar(5))',
        'insert into "a.b"."c" values (1), (2), (3)',
        "insert into \"a\".\"b.c\" values ('q')",
        # A path naming both schemas: pg_table_def shows only the first "t".
        'alter user current_user set search_path to "s1", "s2", public',
    ):
        cur.execute(sql.replace("current_user", sb.cluster_info(CLUSTER).user))
    conn.close()
    yield CLUSTER


@pytest.fixture
def pairs_session(sb: Any, pairs: str) -> Iterator[Session]:
    with Session.of(sb.connect(pairs, autocommit=True)) as s:
        yield s


def test_same_name_in_two_schemas_each_get_their_own_columns(pairs_session: Session) -> None:
    before = pairs_session.run("show search_path")[0][0]
    inv = {(t.schema, t.name): t for t in read_inventory(pairs_session)}
    assert inv[("s1", "t")].column_names == ["a"]
    assert inv[("s2", "t")].column_names == ["b", "c"]
    assert [c.not_null for c in inv[("s2", "t")].columns] == [False, True]
    assert inv[("s2", "t")].columns[0].type == "character varying(10)"
    # The session's path is as it was, and was never rebuilt from current_setting's text
    # (Redshift reports $user unquoted there, which SET would not take back).
    assert pairs_session.run("show search_path")[0][0] == before
    assert not any("$user" in s for s in pairs_session.statements)


def test_baseline_counts_every_table_and_keys_them_unambiguously(sb: Any, pairs: str) -> None:
    conn = sb.connect(pairs, autocommit=True)
    try:
        taken = bl.take(conn, checksum=lambda _c, s, t: f"{s}|{t}")
    finally:
        conn.close()
    assert taken.user_tables == 4
    assert taken.rows == {table_key("s1", "t"): 2, table_key("s2", "t"): 1,
                          table_key("a.b", "c"): 3, table_key("a", "b.c"): 1}
    # The checksum hook gets the real pair back, not a split of a dotted text.
    assert taken.checksums[table_key("a.b", "c")] == "a.b|c"
    assert taken.checksums[table_key("a", "b.c")] == "a|b.c"
    assert bl.Baseline.from_dict(taken.to_dict()) == taken


def test_dotted_names_are_two_tables_everywhere(sb: Any, pairs_session: Session) -> None:
    inv = {(t.schema, t.name): t for t in read_inventory(pairs_session)}
    one, other = inv[("a.b", "c")], inv[("a", "b.c")]
    assert one.ref != other.ref and one.pair != other.pair
    assert (one.rows, other.rows) == (3, 1)
    assert split_table_key(one.ref) == ("a.b", "c") and split_table_key(other.ref) == ("a", "b.c")
    for schema, table in (("a.b", "c"), ("a", "b.c"), ('q"s', "t'x"), ("%2E", "."), ("a/b", "c")):
        assert split_table_key(table_key(schema, table)) == (schema, table)
    assert table_key("public", "customers") == "public.customers"  # plain names stay readable
    stage = "s3://bucket/stage/"
    prefixes = {staging_prefix(stage, "m", "a.b", "c", 1), staging_prefix(stage, "m", "a", "b.c", 1),
                staging_prefix(stage, "m", "a", "b%2Ec", 1), staging_prefix(stage, "m", "a%2Eb", "c", 1)}
    assert len(prefixes) == 4
    labels = {checksum.compare_table(pairs_session, pairs_session, t.schema, t.name, t.columns).table
              for t in (one, other)}
    assert len(labels) == 2


def test_row_counts_are_exact_after_deletes(sb: Any, pairs: str) -> None:
    """svv_table_info.tbl_rows still counts deleted rows until VACUUM on Redshift; the
    validation must count what a SELECT sees."""
    conn = sb.connect(pairs, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute('insert into "s1"."t" values (3), (4), (5)')
        cur.execute('delete from "s1"."t" where "a" >= 3')
        rows = bl.rows_per_table(cur)
    finally:
        conn.close()
    assert rows[table_key("s1", "t")] == 2
    assert "tbl_rows" not in " ".join(bl.SQL.values())


def test_physical_attributes_come_from_svv_redshift_columns_by_schema(sb: Any) -> None:
    """Real Redshift has SVV_REDSHIFT_COLUMNS (the sandbox does not yet): stood in here by a view
    with the documented columns, it is the source of encodings and keys, schema by schema."""
    cluster = "rscols-src"
    sb.create_cluster(cluster)
    with Session.of(sb.connect(cluster, autocommit=True)) as s:
        s.run('create schema "s1"')
        s.run('create schema "s2"')
        s.run('create table "s1"."t" ("a" integer)')
        s.run('create table "s2"."t" ("b" integer, "c" integer)')
        s.run("create view public.svv_redshift_columns as select * from (values "
              "(current_database(), 's1', 't', 'a', 1, 'integer', '', 'YES', 'zstd', true, 1, '', ''), "
              "(current_database(), 's2', 't', 'b', 1, 'integer', '', 'YES', 'az64', false, 0, '', ''), "
              "(current_database(), 's2', 't', 'c', 2, 'integer', '', 'YES', 'raw', false, -1, '', ''), "
              "('other_db', 's2', 't', 'c', 2, 'integer', '', 'YES', 'lzo', false, 0, '', '')"
              ") as v(database_name, schema_name, table_name, column_name, ordinal_position, data_type, "
              "column_default, is_nullable, encoding, distkey, sortkey, column_acl, remarks)")
        inv = {t.pair: t for t in read_inventory(s)}
        assert not any("from pg_table_def" in x for x in s.statements)
    one, two = inv[("s1", "t")], inv[("s2", "t")]
    assert [(c.name, c.encoding, c.distkey, c.sortkey) for c in one.columns] == [("a", "zstd", True, 1)]
    assert [(c.name, c.encoding, c.distkey, c.sortkey) for c in two.columns] == [
        ("b", "az64", False, 0), ("c", "raw", False, -1)]
