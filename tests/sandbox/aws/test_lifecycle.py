"""Cluster status over time, endpoints that follow the data plane, rename, reboot, delete."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.aws import AwsSandbox
from tests.sandbox.aws.support import FakeClock, RecordingHost, describe, new_cluster, reach, status


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_is_creating_until_its_time_then_available(rs: Any, clock: FakeClock, host: RecordingHost) -> None:
    cid = new_cluster(rs, clock, available=False)
    assert status(rs, cid) == "creating"
    assert describe(rs, cid)["ClusterAvailabilityStatus"] == "Unavailable"
    # A cluster being created has no endpoint to connect to yet: nothing may rely on one.
    assert "Endpoint" not in describe(rs, cid)
    clock.advance(2.0)
    assert status(rs, cid) == "creating"
    clock.advance(3.5)
    assert status(rs, cid) == "available"
    assert describe(rs, cid)["Endpoint"]["Port"] > 0
    assert ("provision", cid, "dev", "admin", "Secret-Passw0rd") in host.calls


def test_endpoint_is_the_provisioned_proxy(rs: Any, clock: FakeClock, host: RecordingHost) -> None:
    cid = new_cluster(rs, clock)
    endpoint = describe(rs, cid)["Endpoint"]
    provisioned = [c for c in host.of("provision") if c[1] == cid]
    assert len(provisioned) == 1
    assert endpoint["Address"] == "127.0.0.1"
    assert reach(endpoint) == cid  # the name's listener relays to the provisioned data


def test_zero_durations_make_transitions_instant(sandbox: AwsSandbox, rs: Any, clock: FakeClock) -> None:
    saved = sandbox.durations.create
    sandbox.durations.create = 0
    try:
        cid = new_cluster(rs, clock, available=False)
        assert status(rs, cid) == "available"
    finally:
        sandbox.durations.create = saved


def test_failed_provision_leaves_no_cluster(rs: Any, host: RecordingHost) -> None:
    host.fail_next = True
    with pytest.raises(ClientError) as exc:
        rs.create_cluster(ClusterIdentifier="doomed", NodeType="ra3.xlplus", MasterUsername="admin",
                          MasterUserPassword="Secret-Passw0rd", ClusterType="single-node")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "no room" in str(exc.value)
    with pytest.raises(ClientError) as missing:
        describe(rs, "doomed")
    assert _code(missing) == "ClusterNotFound"


def test_rename_moves_endpoint_and_tells_the_host(rs: Any, clock: FakeClock, host: RecordingHost) -> None:
    cid = new_cluster(rs, clock)
    before = describe(rs, cid)["Endpoint"]
    new_id = f"{cid}-renamed"
    out = rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=new_id)["Cluster"]
    assert out["ClusterIdentifier"] == new_id
    assert out["ClusterStatus"] == "renaming"
    assert ("rename", cid, new_id) in host.calls
    with pytest.raises(ClientError) as exc:
        describe(rs, cid)
    assert _code(exc) == "ClusterNotFound"
    clock.advance()
    clock.advance()  # renaming, then the reboot a rename implies
    assert status(rs, new_id) == "available"
    assert describe(rs, new_id)["Endpoint"] != before  # a new name is a new endpoint
    assert reach(describe(rs, new_id)["Endpoint"]) == cid  # ...reaching the same data
    # moto's own rename wipes automated snapshots; the sandbox keeps them
    snaps = rs.describe_cluster_snapshots(SnapshotType="automated")["Snapshots"]
    assert any(s["ClusterIdentifier"] == cid for s in snaps)


def test_rename_onto_existing_cluster_is_refused(rs: Any, clock: FakeClock, host: RecordingHost) -> None:
    first = new_cluster(rs, clock)
    second = new_cluster(rs, clock)
    second_endpoint = describe(rs, second)["Endpoint"]
    renames = len(host.of("rename"))
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=first, NewClusterIdentifier=second)
    assert _code(exc) == "ClusterAlreadyExists"
    assert status(rs, first) == "available"
    assert describe(rs, second)["Endpoint"] == second_endpoint
    assert len(host.of("rename")) == renames


def test_rename_onto_its_own_name_is_refused_and_starts_nothing(rs: Any, clock: FakeClock,
                                                                host: RecordingHost) -> None:
    # "Must be unique for all clusters within an account": the cluster itself holds the name.
    cid = new_cluster(rs, clock)
    renames = len(host.of("rename"))
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=cid)
    assert _code(exc) == "ClusterAlreadyExists"
    assert status(rs, cid) == "available"
    assert len(host.of("rename")) == renames


def test_reboot_goes_through_rebooting(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    assert rs.reboot_cluster(ClusterIdentifier=cid)["Cluster"]["ClusterStatus"] == "rebooting"
    assert status(rs, cid) == "rebooting"
    with pytest.raises(ClientError) as exc:
        rs.reboot_cluster(ClusterIdentifier=cid)
    assert _code(exc) == "InvalidClusterState"
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, MasterUserPassword="Other-Passw0rd")
    assert _code(exc) == "InvalidClusterState"
    clock.advance()
    assert status(rs, cid) == "available"
    with pytest.raises(ClientError) as exc:
        rs.reboot_cluster(ClusterIdentifier="no-such-cluster")
    assert _code(exc) == "ClusterNotFound"


def test_delete_is_deleting_then_gone_and_deprovisioned(sandbox: AwsSandbox, rs: Any, clock: FakeClock,
                                                        host: RecordingHost) -> None:
    cid = new_cluster(rs, clock)
    out = rs.delete_cluster(ClusterIdentifier=cid, SkipFinalClusterSnapshot=True)["Cluster"]
    assert out["ClusterStatus"] == "deleting"
    assert status(rs, cid) == "deleting"
    assert ("deprovision", cid) not in host.calls
    with pytest.raises(ClientError) as exc:
        rs.delete_cluster(ClusterIdentifier=cid, SkipFinalClusterSnapshot=True)
    assert _code(exc) == "InvalidClusterState"
    clock.advance()
    sandbox.tick()  # the data plane is released even if nobody asks the API again
    assert host.calls.count(("deprovision", cid)) == 1
    with pytest.raises(ClientError) as exc:
        describe(rs, cid)
    assert _code(exc) == "ClusterNotFound"
    assert host.calls.count(("deprovision", cid)) == 1


def test_delete_with_final_snapshot_keeps_the_snapshot(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    rs.delete_cluster(ClusterIdentifier=cid, FinalClusterSnapshotIdentifier=f"{cid}-final")
    clock.advance()
    snap = rs.describe_cluster_snapshots(SnapshotIdentifier=f"{cid}-final")["Snapshots"][0]
    assert snap["ClusterIdentifier"] == cid


def test_unmodelled_actions_fail_honestly(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as exc:
        rs.resize_cluster(ClusterIdentifier=cid, NumberOfNodes=4)
    assert _code(exc) == "UnsupportedOperation"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster_parameter_group(ParameterGroupName="default.redshift-1.0", Parameters=[
            {"ParameterName": "require_ssl", "ParameterValue": "true"}])
    # Modelled since (custom groups' values, WLM at reboot): a default group cannot be changed.
    assert _code(exc) == "InvalidClusterParameterGroupState"
