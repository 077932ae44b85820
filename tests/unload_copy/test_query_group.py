"""The migration's own WLM queue: a query group routed by the cluster's parameter group (applied at
reboot into STV_WLM_*), every session of the run labelled with it (STL_QUERY.label), and a group
WLM routes nowhere refused in preflight."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
import redshift_connector

from migrator.sandbox.client import SandboxClient
from tests.harness import Migration, sandbox_migration, wait_for

WLM = [{"query_group": ["data_migrate"], "query_concurrency": 4, "memory_percent_to_use": 95,
        "name": "data_migrate"},
       {"query_concurrency": 5, "memory_percent_to_use": 5}]


def _status(sb: SandboxClient, cluster_id: str) -> str:
    return str(sb.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]["ClusterStatus"])


def give_migration_queue(sb: SandboxClient, cluster_id: str) -> None:
    """What an operator does: a custom parameter group with a data_migrate queue, then a reboot."""
    rs = sb.client("redshift")
    group = f"wlm-{uuid.uuid4().hex[:8]}"
    rs.create_cluster_parameter_group(ParameterGroupName=group, ParameterGroupFamily="redshift-1.0",
                                      Description="migration queue")
    rs.modify_cluster_parameter_group(ParameterGroupName=group, Parameters=[
        {"ParameterName": "wlm_json_configuration", "ParameterValue": json.dumps(WLM)}])
    rs.modify_cluster(ClusterIdentifier=cluster_id, ClusterParameterGroupName=group)
    wait_for(lambda: _status(sb, cluster_id) == "available", "modify")
    rs.reboot_cluster(ClusterIdentifier=cluster_id)
    wait_for(lambda: _status(sb, cluster_id) == "available", "reboot")


def _migration(sb: SandboxClient, tmp_path: Path, group: str | None, target_group: str | None = "") -> Migration:
    n = uuid.uuid4().hex[:5]
    source, target = f"qg{n}-src", f"qg{n}-enc"
    info = sb.create_seeded_cluster(source, tables=3, rows=50, seed=7)
    return sandbox_migration(
        sb, tmp_path, name=f"qg{n}", strategy="unload-copy",
        source={"cluster_id": source, "user": info.user, "password_env": "QG_SOURCE_PASSWORD",
                **({"query_group": group} if group else {})},
        target={"cluster_id": target, "password_env": "QG_TARGET_PASSWORD",
                "query_group": group if target_group == "" else target_group},
        env={"QG_SOURCE_PASSWORD": info.password, "QG_TARGET_PASSWORD": "TargetPassw0rd",
             "MIGRATOR_FREEZE_QUIET_SECONDS": "2", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30"})


def test_parameter_group_wlm_reaches_the_system_tables_at_reboot(sandbox: SandboxClient) -> None:
    cluster_id = f"wlm-{uuid.uuid4().hex[:6]}"
    sandbox.create_cluster(cluster_id)
    with psycopg.connect(sandbox.admin_dsn(cluster_id)) as pg:
        assert pg.execute("select count(*) from pg_sandbox.stv_wlm_classification_config"
                          " where condition like '(query group: data_migrate)%'").fetchone() == (0,)
    give_migration_queue(sandbox, cluster_id)
    with psycopg.connect(sandbox.admin_dsn(cluster_id)) as pg:
        row = pg.execute(
            "select s.num_query_tasks, s.query_working_mem, trim(s.name) from pg_sandbox.stv_wlm_classification_config c"
            " join pg_sandbox.stv_wlm_service_class_config s on s.service_class = c.action_service_class"
            " where trim(c.condition) = '(query group: data_migrate)'").fetchone()
    assert row is not None and row[0] == 4 and row[1] > 0 and row[2] == "data_migrate"
    with pytest.raises(Exception, match="InvalidParameterValue"):
        sandbox.client("redshift").modify_cluster_parameter_group(
            ParameterGroupName=sandbox.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)[
                "Clusters"][0]["ClusterParameterGroups"][0]["ParameterGroupName"],
            Parameters=[{"ParameterName": "wlm_json_configuration", "ParameterValue": "[{\"query_concurrency\": 99}]"}])


def test_set_query_group_labels_queries_and_rolls_back(sandbox: SandboxClient) -> None:
    cluster_id = f"qgl-{uuid.uuid4().hex[:6]}"
    sandbox.create_cluster(cluster_id)
    info = sandbox.cluster_info(cluster_id)
    conn = redshift_connector.connect(host=info.host, port=info.port, database=info.database, user=info.user,
                                      password=info.password, ssl=False, timeout=60)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("select 'unlabelled'")
    cur.execute("set query_group to 'etl_batch'")
    cur.execute("select 'labelled'")
    cur.execute("show query_group")
    assert cur.fetchone()[0] == "etl_batch"
    conn.autocommit = False
    cur.execute("set query_group to 'rolled_back'")
    conn.rollback()
    conn.autocommit = True
    cur.execute("select 'after rollback'")
    cur.execute("reset query_group")
    cur.execute("select 'after reset'")
    conn.close()
    with psycopg.connect(sandbox.admin_dsn(cluster_id)) as pg:
        labels = dict(pg.execute("select trim(querytxt), trim(label) from pg_sandbox.stl_query"
                                 " where querytxt like 'select ''%'").fetchall())
    assert labels == {"select 'unlabelled'": "default", "select 'labelled'": "etl_batch",
                      "select 'after rollback'": "etl_batch", "select 'after reset'": "default"}


def test_unknown_query_group_is_refused_in_preflight(sandbox: SandboxClient, tmp_path: Path) -> None:
    m = _migration(sandbox, tmp_path, "no_such_group")
    m.init()
    refused = m.cli("run")
    assert refused.returncode == 7, refused.stderr
    assert "source.query_group 'no_such_group' is routed to no WLM queue" in refused.stderr
    assert not m.sb.calls("CreateCluster") or all(c.get("cluster_id") != m.target for c in m.sb.calls("CreateCluster"))


def test_a_target_group_the_mirrored_parameter_group_lacks_is_refused(sandbox: SandboxClient, tmp_path: Path) -> None:
    m = _migration(sandbox, tmp_path, None, target_group="nightly_copy")
    give_migration_queue(sandbox, m.source)
    m.init()
    refused = m.cli("run")
    assert refused.returncode == 7, refused.stderr
    assert "target.query_group 'nightly_copy' is routed to no WLM queue" in refused.stderr
    assert "source.query_group" not in refused.stderr


def test_every_unload_and_copy_runs_in_the_query_group(sandbox: SandboxClient, tmp_path: Path) -> None:
    m = _migration(sandbox, tmp_path, "data_migrate")
    give_migration_queue(sandbox, m.source)
    m.init()
    first = m.cli("run")
    assert first.returncode == 8, first.stderr  # at the cutover gate: every table copied and validated
    with psycopg.connect(sandbox.admin_dsn(m.source)) as pg:
        unloads = pg.execute("select trim(label) from pg_sandbox.query_log where querytxt ilike 'unload%'").fetchall()
    assert target_id(m)
    with psycopg.connect(sandbox.admin_dsn(target_id(m))) as pg:
        copies = pg.execute("select trim(label) from pg_sandbox.query_log where querytxt ilike 'copy%'").fetchall()
    assert len(unloads) >= 3 and len(copies) >= 3
    assert {r[0] for r in unloads} == {"data_migrate"} and {r[0] for r in copies} == {"data_migrate"}
    history = json.loads(m.cli("history", "--json").stdout)["events"]
    queue = next(e for e in history if e["trigger"] == "wlm_queue")["detail"]
    assert (queue["queue"], queue["slots"]) == ("data_migrate", 4) and queue["memory_mb_per_slot"] > 0


def target_id(m: Migration) -> str:
    assert m.target is not None
    return m.target


def test_a_malformed_query_group_is_one_config_line(tmp_path: Path) -> None:
    from tests.harness import cli, one_line_error, write_config

    config = write_config(tmp_path / "migrator.toml", complete=False, migration={"name": "qg-bad"},
                          source={"cluster_id": "prod", "query_group": "data_migrate"})
    config.write_text(config.read_text().replace('query_group = "data_migrate"',
                                                 'query_group = "data\'; drop table x"'))
    one_line_error(cli("init", str(config), cwd=tmp_path), 2, "source.query_group", "a WLM query group name")
    assert not (tmp_path / ".migrator").exists()


def test_route_of_reads_rules_in_order_with_wildcards(sandbox: SandboxClient) -> None:
    from migrator.warehouse.connection import Session
    from migrator.warehouse.wlm import route_of

    cluster_id = f"wild-{uuid.uuid4().hex[:6]}"
    sandbox.create_cluster(cluster_id)
    rs = sandbox.client("redshift")
    group = f"wild-{uuid.uuid4().hex[:8]}"
    rs.create_cluster_parameter_group(ParameterGroupName=group, ParameterGroupFamily="redshift-1.0", Description="w")
    rs.modify_cluster_parameter_group(ParameterGroupName=group, Parameters=[{
        "ParameterName": "wlm_json_configuration", "ParameterValue": json.dumps([
            {"query_group": ["etl"], "query_concurrency": 2, "memory_percent_to_use": 20},
            {"query_group": ["data_*"], "query_group_wild_card": 1, "query_concurrency": 4,
             "memory_percent_to_use": 70, "name": "migration"},
            {"query_concurrency": 5, "memory_percent_to_use": 10}])}])
    rs.modify_cluster(ClusterIdentifier=cluster_id, ClusterParameterGroupName=group)
    wait_for(lambda: _status(sandbox, cluster_id) == "available", "modify")
    rs.reboot_cluster(ClusterIdentifier=cluster_id)
    wait_for(lambda: _status(sandbox, cluster_id) == "available", "reboot")
    info = sandbox.cluster_info(cluster_id)
    conn = redshift_connector.connect(host=info.host, port=info.port, database=info.database, user=info.user,
                                      password=info.password, ssl=False, timeout=60)
    conn.autocommit = True
    session = Session(conn)
    found = route_of(session, "data_migrate")
    assert found.queue is not None and (found.queue.name, found.queue.slots) == ("migration", 4)
    assert route_of(session, "etl").queue.slots == 2  # type: ignore[union-attr]
    assert route_of(session, "datamigrate").queue is None and route_of(session, "superuser").queue is None
    conn.cursor().execute("create user plain_user password 'Plain-Pass-123'")
    conn.close()
    plain = redshift_connector.connect(host=info.host, port=info.port, database=info.database, user="plain_user",
                                       password="Plain-Pass-123", ssl=False, timeout=60)
    plain.autocommit = True
    assert route_of(Session(plain), "data_migrate").readable is False  # STV_WLM_* are for superusers
    plain.close()
