"""Rename and delete as the Redshift Management Guide describes them: statuses that take time,
a reboot after a rename, an old name that stays cached, a final snapshot before deletion."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.aws import AwsSandbox
from tests.sandbox.aws.support import DURATION, FakeClock, RecordingHost, describe, new_cluster, reach, status


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _messages(rs: Any, cluster_id: str) -> list[str]:
    events = rs.describe_events(SourceIdentifier=cluster_id, SourceType="cluster", Duration=600)["Events"]
    return [e["Message"] for e in events]


def test_rename_is_renaming_then_rebooting_then_available(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    new_id = f"{cid}-renamed"
    assert rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=new_id)["Cluster"]["ClusterStatus"] \
        == "renaming"
    assert status(rs, new_id) == "renaming"
    with pytest.raises(ClientError) as busy:
        rs.modify_cluster(ClusterIdentifier=new_id, NewClusterIdentifier=f"{cid}-again")
    assert _code(busy) == "InvalidClusterState"
    clock.advance()
    assert status(rs, new_id) == "rebooting"
    assert describe(rs, new_id)["ClusterAvailabilityStatus"] == "Modifying"
    clock.advance()
    assert status(rs, new_id) == "available"
    messages = _messages(rs, new_id)
    renamed = next(i for i, m in enumerate(messages) if "has been renamed" in m)
    rebooted = next(i for i, m in enumerate(messages) if "has been rebooted" in m)
    assert renamed < rebooted


def test_rename_steps_all_finish_when_much_time_passed(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=f"{cid}-x")
    clock.advance(4 * DURATION)
    assert status(rs, f"{cid}-x") == "available"


def test_old_name_keeps_reaching_the_renamed_cluster_while_cached(rs: Any, clock: FakeClock,
                                                                  host: RecordingHost) -> None:
    """A cutover that renames the source away and the target onto its name: for a while the
    name still reaches the OLD cluster's data, so a check through the endpoint can be fooled."""
    source = new_cluster(rs, clock)
    target = new_cluster(rs, clock)
    name_endpoint = describe(rs, source)["Endpoint"]
    assert reach(name_endpoint) == source
    rs.modify_cluster(ClusterIdentifier=source, NewClusterIdentifier=f"{source}-old")
    clock.advance(2 * DURATION + 1)  # renamed and rebooted
    assert status(rs, f"{source}-old") == "available"
    rs.modify_cluster(ClusterIdentifier=target, NewClusterIdentifier=source)
    clock.advance(2 * DURATION + 1)
    assert status(rs, source) == "available"
    assert describe(rs, source)["Endpoint"] == name_endpoint  # same name, same address
    assert reach(name_endpoint) == source  # ...still the old cluster's data (the cached name)
    assert reach(describe(rs, f"{source}-old")["Endpoint"]) == source
    clock.advance(2 * DURATION)  # the cache expired
    assert reach(name_endpoint) == target


def test_old_name_reaches_nothing_once_the_cache_expires(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    old_endpoint = describe(rs, cid)["Endpoint"]
    rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=f"{cid}-moved")
    assert reach(old_endpoint) == cid  # cached, and the cluster is only renaming
    new_endpoint = describe(rs, f"{cid}-moved")["Endpoint"]
    assert new_endpoint != old_endpoint
    assert reach(new_endpoint) is None  # the new name is not effective until the rename is done
    clock.advance()
    assert reach(old_endpoint) is None  # rebooting: refused
    clock.advance()
    assert reach(new_endpoint) == cid
    assert reach(old_endpoint) == cid  # still cached
    clock.advance(5 * DURATION)
    assert reach(old_endpoint) is None


def test_a_reboot_drops_open_connections(rs: Any, clock: FakeClock) -> None:
    import socket

    cid = new_cluster(rs, clock)
    endpoint = describe(rs, cid)["Endpoint"]
    conn = socket.create_connection((endpoint["Address"], endpoint["Port"]), timeout=5)
    try:
        assert conn.recv(64).strip() == cid.encode()
        rs.reboot_cluster(ClusterIdentifier=cid)
        assert conn.recv(64) == b""  # closed by the sandbox, not by us
    finally:
        conn.close()
    assert reach(endpoint) is None
    clock.advance()
    assert reach(endpoint) == cid


def test_delete_without_final_snapshot_choice_is_refused(rs: Any, clock: FakeClock, host: RecordingHost) -> None:
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as exc:
        rs.delete_cluster(ClusterIdentifier=cid)
    assert _code(exc) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as both:
        rs.delete_cluster(ClusterIdentifier=cid, SkipFinalClusterSnapshot=True,
                          FinalClusterSnapshotIdentifier=f"{cid}-final")
    assert _code(both) == "InvalidParameterCombination"
    assert status(rs, cid) == "available"
    assert ("deprovision", cid) not in host.calls


def test_delete_with_final_snapshot_is_final_snapshot_then_deleting(sandbox: AwsSandbox, rs: Any, clock: FakeClock,
                                                                    host: RecordingHost) -> None:
    cid = new_cluster(rs, clock)
    out = rs.delete_cluster(ClusterIdentifier=cid, FinalClusterSnapshotIdentifier=f"{cid}-final")["Cluster"]
    assert out["ClusterStatus"] == "final-snapshot"
    snap = rs.describe_cluster_snapshots(SnapshotIdentifier=f"{cid}-final")["Snapshots"][0]
    assert snap["Status"] == "creating"
    with pytest.raises(ClientError) as again:
        rs.delete_cluster(ClusterIdentifier=cid, SkipFinalClusterSnapshot=True)
    assert _code(again) == "InvalidClusterState"
    clock.advance()
    assert status(rs, cid) == "deleting"
    snap = rs.describe_cluster_snapshots(SnapshotIdentifier=f"{cid}-final")["Snapshots"][0]
    assert snap["Status"] == "available"
    assert ("deprovision", cid) not in host.calls
    clock.advance()
    sandbox.tick()
    assert ("deprovision", cid) in host.calls
    with pytest.raises(ClientError) as gone:
        describe(rs, cid)
    assert _code(gone) == "ClusterNotFound"


def test_final_snapshot_name_in_use_is_refused(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    rs.create_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=f"{cid}-taken")
    clock.advance()
    with pytest.raises(ClientError) as exc:
        rs.delete_cluster(ClusterIdentifier=cid, FinalClusterSnapshotIdentifier=f"{cid}-taken")
    assert _code(exc) == "ClusterSnapshotAlreadyExists"
    assert status(rs, cid) == "available"


def test_namespace_is_per_cluster_kept_by_rename_and_told_to_the_host(rs: Any, clock: FakeClock,
                                                                      host: RecordingHost) -> None:
    """ClusterNamespaceArn (Cluster shape): what a post-cutover check can compare with the database's
    own current_namespace, since a cached name can reach the old cluster."""
    first = new_cluster(rs, clock)
    second = new_cluster(rs, clock)
    arn = describe(rs, first)["ClusterNamespaceArn"]
    assert arn.startswith("arn:aws:redshift:us-east-1:") and ":namespace:" in arn
    assert arn != describe(rs, second)["ClusterNamespaceArn"]
    assert ("set_namespace", first, arn.rsplit(":", 1)[1]) in host.calls
    rs.modify_cluster(ClusterIdentifier=first, NewClusterIdentifier=f"{first}-n")
    clock.advance(3 * DURATION)
    assert describe(rs, f"{first}-n")["ClusterNamespaceArn"] == arn


@pytest.mark.parametrize("new_id", ["Upper-Case", "under_score", "double--hyphen", "trailing-", "9starts-digit",
                                    "x" * 64])
def test_rename_refuses_a_name_create_would_refuse(rs: Any, clock: FakeClock, new_id: str) -> None:
    """NewClusterIdentifier follows the ClusterIdentifier rules (botocore ModifyCluster docs)."""
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as refused:
        rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=new_id)
    assert _code(refused) == "InvalidParameterValue"
    assert status(rs, cid) == "available"  # nothing started
