"""Post-cutover verification proves it reached the NEW cluster (issue 10 §2.5): the sandbox's
database answers `SELECT current_namespace` with the cluster's namespace (the tail of
ClusterNamespaceArn), so an answer through a cached old name is told apart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import make_cluster
from tests.strategies.test_cutover_swap import ready_for_cutover
from tests.strategies.test_rollback_ownership import action

#: The sandbox's default name cache (the shared `durations` fixture does not put `dns` back).
DEFAULT_DNS_SECONDS = 2.0


@pytest.fixture
def dns(durations: Any) -> Iterator[Any]:
    yield durations
    durations.dns = DEFAULT_DNS_SECONDS


def current_namespace(sb: Sandbox, cluster_id: str, sql: str = "select current_namespace") -> Any:
    conn = sb.connect(cluster_id)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchone(), [d[0] for d in cursor.description]
    finally:
        conn.close()


def namespace_of(sb: Sandbox, cluster_id: str) -> str:
    arn = sb.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]["ClusterNamespaceArn"]
    return str(arn).rsplit(":", 1)[-1]


def test_current_namespace_answers_the_clusters_own_and_a_rename_keeps_it(sb: Sandbox) -> None:
    make_cluster(sb, "ns-one", tables=0)
    make_cluster(sb, "ns-two", tables=0)
    row, columns = current_namespace(sb, "ns-one")
    assert row[0] == namespace_of(sb, "ns-one") and columns == ["current_namespace"]
    assert current_namespace(sb, "ns-two")[0][0] == namespace_of(sb, "ns-two") != row[0]
    # Only the bare keyword is Redshift's: a string or a quoted name is left alone.
    assert tuple(current_namespace(sb, "ns-one", "select 'current_namespace', upper(current_namespace)")[0]) == \
        ("current_namespace", row[0].upper())
    before = namespace_of(sb, "ns-two")
    sb.client("redshift").modify_cluster(ClusterIdentifier="ns-two", NewClusterIdentifier="ns-two-b")
    sb.wait_available("ns-two-b")
    assert namespace_of(sb, "ns-two-b") == before
    assert current_namespace(sb, "ns-two-b")[0][0] == before


def test_cutover_waits_out_the_cached_old_name_and_records_the_new_namespace(
        sb: Sandbox, tmp_path: Path, dns: Any) -> None:
    source = "ns-cut"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    target_namespace = namespace_of(sb, target)
    dns.dns = 3.0  # the old name keeps reaching the old source for a while after the swap
    done = m.run("--approve-cutover")
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    with m.store() as store:
        events = [e.detail for e in store.events(store.require_migration(m.name)) if e.trigger == "validation"]
    assert {"cluster_id": source, "what": "reached the new cluster", "namespace": target_namespace} in events
    assert action(m, "cutover:target_namespace").response["namespace"] == target_namespace


def test_a_name_that_never_reaches_the_new_cluster_fails_clearly(
        sb: Sandbox, tmp_path: Path, dns: Any) -> None:
    source = "ns-stale"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    m.env["MIGRATOR_WAIT_DNS_SECONDS"] = "2"
    dns.dns = 600.0  # cached far longer than the tool waits
    failed = m.run("--approve-cutover")
    assert failed.returncode != 0 and m.phase() == "cutting_over", failed.stderr
    line = [ln for ln in failed.stderr.splitlines() if ln.strip()][0]
    assert f"connections to {source} still do not reach the new cluster" in line
    with m.store() as store:
        events = [e.detail for e in store.events(store.require_migration(m.name)) if e.trigger == "validation"]
    assert not [e for e in events if e.get("what") in ("reached the new cluster", "after cutover")]
