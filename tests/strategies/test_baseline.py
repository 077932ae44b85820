"""The validation queries against a sandbox cluster (real redshift_connector through the proxy)."""

from __future__ import annotations

import psycopg
import pytest

from migrator.names import table_key
from migrator.sandbox.client import SandboxClient as Sandbox
from migrator.strategies.cutover import old_name_for
from migrator.strategies.snapshot_restore import snapshot_id
from migrator.warehouse import baseline as bl
from migrator.warehouse.connection import prepare
from tests.strategies.support import make_cluster


def test_quoting() -> None:
    assert bl.quote_ident('Ops "Data"') == '"Ops ""Data"""'
    assert bl.quote_literal("it's a \\ test") == "'it''s a \\\\ test'"
    with pytest.raises(ValueError):
        bl.quote_ident("a\x00b")


def test_counts_tables_outside_the_search_path_and_empty_ones(sb: Sandbox) -> None:
    make_cluster(sb, "bl-cluster", tables=2, rows=20)
    with psycopg.connect(sb.admin_dsn("bl-cluster"), autocommit=True) as admin:
        admin.execute('create schema "Hidden ""Schema"""')
        admin.execute('create table "Hidden ""Schema""".empty_one (id int)')
        admin.execute('create table "Hidden ""Schema""".two_rows (id int)')
        admin.execute('insert into "Hidden ""Schema""".two_rows values (1), (2)')
        tables = admin.execute("select count(*) from pg_tables where schemaname not in "
                               "('pg_catalog', 'information_schema', 'pg_sandbox')").fetchone()
    conn = prepare(sb.connect("bl-cluster"))  # as the tool's own connections are set up
    try:
        cursor = conn.cursor()
        cursor.execute("show search_path")
        path_before = cursor.fetchone()[0]
        taken = bl.take(conn)
        cursor.execute("show search_path")
        assert cursor.fetchone()[0] == path_before  # put back
    finally:
        conn.close()
    assert tables is not None and taken.user_tables == tables[0]
    assert taken.rows[table_key('Hidden "Schema"', 'empty_one')] == 0
    assert taken.rows[table_key('Hidden "Schema"', 'two_rows')] == 2
    assert bl.Baseline.from_dict(taken.to_dict()) == taken


def test_compare_names_every_difference() -> None:
    expected = bl.Baseline(3, {"a.x": 1, "a.y": 2, "a.z": 0}, {"a.x": "h1"})
    found = bl.Baseline(3, {"a.x": 1, "a.y": 3, "b.new": 4}, {"a.x": "h2"})
    diffs = bl.compare(expected, found)
    assert [(d.table, d.what) for d in diffs] == [("a.y", "rows"), ("a.z", "table"), ("b.new", "table"),
                                                  ("a.x", "checksum")]
    assert bl.compare(expected, expected) == []
    assert bl.compare(expected, bl.Baseline(4, expected.rows, expected.checksums))[0].what == "user tables"
    assert "(and 1 more)" in bl.summary(diffs, limit=3)


def test_generated_names_are_valid_identifiers() -> None:
    assert snapshot_id("Prod_Mig.2026", "analytics") == "migrator-prod-mig-2026-analytics"
    long = old_name_for("a" * 63)
    assert len(long) <= 63 and long.startswith("a") and "-unencrypted-" in long
