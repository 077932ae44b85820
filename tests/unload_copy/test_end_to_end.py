"""The unload-copy route through the CLI, checked by independent queries and describe calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from migrator.sandbox.seed import HARD_NAMES, HARD_ROWS
from tests.unload_copy.conftest import Migration

# Whole migrations through the CLI against the sandbox: minutes, not seconds.
pytestmark = pytest.mark.slow


def test_full_migration_through_the_cli(migration: Migration) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    first = m.cli("run")
    assert first.returncode == 8, first.stderr  # stops at the cutover gate
    # The hard seed's tables (names with dots, brackets, %, /, quotes; VARBYTE, SUPER, floats,
    # NULL-like strings, identity) arrived row for row, checked straight in PostgreSQL.
    hard = _hard_rows(m, m.source)
    assert hard == _hard_rows(m, m.target)
    assert [r[0] for r in hard["hard types"]] == [row[0] for row in HARD_ROWS]
    by_id = {r[0]: r for r in hard["hard types"]}
    assert by_id[1][8] == "\\N" and by_id[2][8] == "NULL" and by_id[3][8] == "" and by_id[4][7] is True
    assert by_id[2][3] is False and by_id[2][4] == "null"  # JSON null, not SQL NULL
    assert by_id[3][3] is True  # SQL NULL SUPER
    assert by_id[2][1] is False and by_id[2][2] == "" and by_id[3][1] is True  # empty VARBYTE is not NULL
    assert by_id[1][9] == 1000 and by_id[4][9] == 7
    assert {("a.b", "c"), ("a", "b.c"), ("public", "[/]")} <= set(hard["names"])
    assert "waiting for cutover approval" in first.stderr
    status = json.loads(m.cli("status", "--json").stdout)
    assert status["phase"] == "awaiting_cutover"
    assert status["tables_by_state"] == {"validated": len(before)}
    # Before cutover the source is untouched and the target holds the same data, encrypted.
    assert m.table_digests(m.target) == before
    cut = m.cli("cutover")
    assert cut.returncode == 8, cut.stderr  # now waiting for decommission approval
    rs = m.sb.client("redshift")
    new = rs.describe_clusters(ClusterIdentifier=m.source)["Clusters"][0]
    assert new["Encrypted"] and new["KmsKeyId"] == m.sb.info.kms_key_arn
    old_name = next(c for c in m.sb.cluster_ids() if c.startswith(f"{m.source}-unencrypted-"))
    assert rs.describe_clusters(ClusterIdentifier=old_name)["Clusters"][0]["Encrypted"] is False
    assert m.table_digests(m.source) == before  # the original name now serves the encrypted copy
    assert m.table_digests(old_name) == before
    # Views, routines and materialized views exist on the new cluster as on the old one.
    assert _objects(m, m.source) == _objects(m, old_name)
    creates = [c for c in m.sb.calls("CreateCluster") if c.get("cluster_id") == m.target]
    assert len(creates) == 1
    assert "MasterUserPassword" not in json.dumps(creates[0].get("params", {}))
    refused = m.cli("decommission")
    assert refused.returncode == 2 and "--confirm" in refused.stderr
    done = m.cli("decommission", "--confirm")
    assert done.returncode == 0, done.stderr
    assert old_name not in {c["ClusterIdentifier"] for c in rs.describe_clusters()["Clusters"]
                            if c["ClusterStatus"] != "deleting"}
    snapshots = rs.describe_cluster_snapshots(SnapshotType="manual")["Snapshots"]
    assert any(s["ClusterIdentifier"] == old_name for s in snapshots)
    assert json.loads(m.cli("status", "--json").stdout)["phase"] == "completed"
    history = json.loads(m.cli("history", "--json").stdout)["events"]
    replay = next(e for e in history if e["trigger"] == "objects_replayed")
    assert any(s.upper().startswith("CREATE TABLE") for s in replay["detail"]["statements"])
    after = next(e for e in history if e["trigger"] == "objects_replayed_after_data")
    assert any(s.upper().startswith("CREATE VIEW") for s in after["detail"]["statements"])


def _hard_rows(m: Migration, cluster_id: str) -> dict[str, Any]:
    """The hard seed's rows with every distinction made visible: NULL flags beside values, the
    exact bits of REAL/DOUBLE, VARBYTE as hex, SUPER as its JSON text."""
    import psycopg

    out: dict[str, Any] = {}
    with psycopg.connect(m.sb.admin_dsn(cluster_id)) as pg:
        out["hard types"] = [tuple(r) for r in pg.execute(
            'select id, vb is null, encode(vb::bytea, \'hex\'), sp is null, sp::jsonb::text, '
            'encode(float4send(r), \'hex\'), encode(float8send(d), \'hex\'), s is null, s, gid '
            'from public."hard types" order by id').fetchall()]
        names = {}
        for schema, table in HARD_NAMES:
            ident = psycopg.sql.Identifier(schema, table)
            names[(schema, table)] = [tuple(r) for r in pg.execute(
                psycopg.sql.SQL("select id, label from {} order by id").format(ident)).fetchall()]
        out["names"] = names
    return out


def _objects(m: Migration, cluster_id: str) -> list[tuple[str, ...]]:
    import psycopg

    with psycopg.connect(m.sb.admin_dsn(cluster_id)) as pg:
        return [tuple(r) for r in pg.execute(
            "select 'view', schemaname, viewname from pg_views where schemaname not in "
            "('pg_catalog', 'information_schema', 'pg_sandbox') union all "
            "select 'matview', schemaname, matviewname from pg_matviews union all "
            "select 'routine', n.nspname, p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname not in ('pg_catalog', 'information_schema', 'pg_sandbox') order by 1, 2, 3").fetchall()]


def test_inventory_lists_largest_first(migration: Migration) -> None:
    migration.init()
    out = migration.cli("inventory", "--json")
    assert out.returncode == 0, out.stderr
    tables = json.loads(out.stdout)["tables"]
    assert tables and [t["size_mb"] for t in tables] == sorted((t["size_mb"] for t in tables), reverse=True)
    assert {"unused", "diststyle", "sortkeys", "identity_columns"} <= set(tables[0])
