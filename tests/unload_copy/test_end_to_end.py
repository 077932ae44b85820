"""The unload-copy route through the CLI, checked by independent queries and describe calls."""

from __future__ import annotations

import json

from tests.unload_copy.conftest import Migration


def test_full_migration_through_the_cli(migration: Migration) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    first = m.cli("run")
    assert first.returncode == 8, first.stderr  # stops at the cutover gate
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


def _objects(m: Migration, cluster_id: str) -> list[tuple[str, ...]]:
    import psycopg

    with psycopg.connect(m.sb.admin_dsn(cluster_id)) as pg:
        return [tuple(r) for r in pg.execute(
            "select 'view', schemaname, viewname from pg_views where schemaname not in "
            "('pg_catalog', 'information_schema', 'redshift_sys') union all "
            "select 'matview', schemaname, matviewname from pg_matviews union all "
            "select 'routine', n.nspname, p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
            "where n.nspname not in ('pg_catalog', 'information_schema', 'redshift_sys') order by 1, 2, 3").fetchall()]


def test_inventory_lists_largest_first(migration: Migration) -> None:
    migration.init()
    out = migration.cli("inventory", "--json")
    assert out.returncode == 0, out.stderr
    tables = json.loads(out.stdout)["tables"]
    assert tables and [t["size_mb"] for t in tables] == sorted((t["size_mb"] for t in tables), reverse=True)
    assert {"unused", "diststyle", "sortkeys", "identity_columns"} <= set(tables[0])
