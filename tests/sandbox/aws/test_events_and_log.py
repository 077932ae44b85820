"""describe_events, the control-plane call log, snapshot copy and grants."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.aws import AwsSandbox
from tests.sandbox.aws.support import DURATION, FakeClock, new_cluster


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _messages(rs: Any, cid: str, **window: Any) -> list[str]:
    events = rs.describe_events(SourceIdentifier=cid, SourceType="cluster", **window)["Events"]
    assert all(e["SourceType"] == "cluster" and e["SourceIdentifier"] == cid for e in events)
    return [e["Message"] for e in events]


def test_events_record_each_operation_in_order(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    rs.create_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=f"{cid}-ev")
    clock.advance()
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    clock.advance()
    rs.reboot_cluster(ClusterIdentifier=cid)
    clock.advance()
    new_id = f"{cid}-ev2"
    rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=new_id)
    clock.advance()
    clock.advance()  # a rename reboots the cluster
    rs.delete_cluster(ClusterIdentifier=new_id, SkipFinalClusterSnapshot=True)
    clock.advance()

    before = _messages(rs, cid)
    assert before == [
        f"Amazon Redshift cluster '{cid}' is being created.",
        f"Amazon Redshift cluster '{cid}' has been created and is ready for use.",
        f"Amazon Redshift has started creating manual snapshot '{cid}-ev' of cluster '{cid}'.",
        f"Amazon Redshift has finished creating manual snapshot '{cid}-ev' of cluster '{cid}'.",
        f"Cluster '{cid}' encryption with KMS has started; the cluster is read-only until it completes.",
        f"Cluster '{cid}' has been encrypted with KMS; the resize is complete.",
        f"Cluster '{cid}' is being rebooted.",
        f"Cluster '{cid}' has been rebooted.",
    ]
    assert _messages(rs, new_id) == [
        f"Cluster '{cid}' is being renamed to '{new_id}'.",
        f"Cluster '{cid}' has been renamed to '{new_id}'.",
        f"Cluster '{new_id}' is being rebooted.",
        f"Cluster '{new_id}' has been rebooted.",
        f"Amazon Redshift cluster '{new_id}' is being deleted.",
        f"Amazon Redshift cluster '{new_id}' has been deleted.",
    ]
    events = rs.describe_events(SourceIdentifier=cid, SourceType="cluster")["Events"]
    dates = [e["Date"] for e in events]
    assert dates == sorted(dates)
    assert dates[1] - dates[0] == timedelta(seconds=DURATION)  # completion is dated when it completed
    # a time window narrows the answer
    assert _messages(rs, cid, StartTime=dates[4], EndTime=dates[5]) == before[4:6]
    later = datetime.fromtimestamp(clock.now, tz=timezone.utc) + timedelta(hours=2)
    assert _messages(rs, cid, StartTime=later - timedelta(minutes=5), EndTime=later) == []
    with pytest.raises(ClientError) as exc:
        rs.describe_events(SourceIdentifier=cid)
    assert _code(exc) == "InvalidParameterValue"
    everything = rs.describe_events(Duration=24 * 60)["Events"]
    assert {e["SourceIdentifier"] for e in everything} >= {cid, new_id}


def test_events_paginate(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    for _ in range(3):
        rs.reboot_cluster(ClusterIdentifier=cid)
        clock.advance()
    pages = list(rs.get_paginator("describe_events").paginate(
        SourceIdentifier=cid, SourceType="cluster", PaginationConfig={"PageSize": 20}))
    first = rs.describe_events(SourceIdentifier=cid, SourceType="cluster", MaxRecords=20)
    assert sum(len(p["Events"]) for p in pages) == 8
    assert len(first["Events"]) == 8 and "Marker" not in first


def test_call_log_has_every_mutating_call_without_passwords(sandbox: AwsSandbox, rs: Any, clock: FakeClock,
                                                            boot: dict[str, str], sandbox_dir: Path) -> None:
    cid = new_cluster(rs, clock)
    rs.describe_clusters(ClusterIdentifier=cid)
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    with pytest.raises(ClientError):
        rs.modify_cluster(ClusterIdentifier=cid, Encrypted=False)  # refused: still resizing
    lines = [json.loads(line) for line in (sandbox_dir / "aws-calls.log").read_text().splitlines()]
    mine = [entry for entry in lines if entry["cluster_id"] == cid]
    assert [(e["action"], e["error"]) for e in mine] == [
        ("CreateCluster", None), ("ModifyCluster", None), ("ModifyCluster", "InvalidClusterState")]
    assert mine[1]["params"] == {"ClusterIdentifier": cid, "Encrypted": "true", "KmsKeyId": boot["kms_key_arn"]}
    assert "Secret-Passw0rd" not in (sandbox_dir / "aws-calls.log").read_text()
    assert all("MasterUserPassword" not in e["params"] for e in lines)
    accepted = [c for c in sandbox.calls("ModifyCluster") if c["cluster_id"] == cid and c["error"] is None]
    assert len(accepted) == 1
    assert not any(e["action"].startswith("Describe") for e in lines)


def test_snapshot_copy_and_grants_still_work(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    with pytest.raises(ClientError) as exc:
        rs.enable_snapshot_copy(ClusterIdentifier="no-such-cluster", DestinationRegion="us-west-2")
    assert _code(exc) == "ClusterNotFound"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        rs.disable_snapshot_copy(ClusterIdentifier="no-such-cluster")
    assert _code(exc) == "ClusterNotFound"

    cid = new_cluster(rs, clock, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    grant = rs.create_snapshot_copy_grant(SnapshotCopyGrantName=f"{cid}-grant",
                                          KmsKeyId=boot["other_region_kms_key_arn"])["SnapshotCopyGrant"]
    assert grant["KmsKeyId"] == boot["other_region_kms_key_arn"]
    out = rs.enable_snapshot_copy(ClusterIdentifier=cid, DestinationRegion="us-west-2", RetentionPeriod=3,
                                  SnapshotCopyGrantName=f"{cid}-grant")["Cluster"]
    assert out["ClusterSnapshotCopyStatus"]["DestinationRegion"] == "us-west-2"
    assert out["ClusterSnapshotCopyStatus"]["SnapshotCopyGrantName"] == f"{cid}-grant"
    with pytest.raises(ClientError) as exc:
        rs.enable_snapshot_copy(ClusterIdentifier=cid, DestinationRegion="us-west-2",
                                SnapshotCopyGrantName=f"{cid}-grant")
    assert _code(exc) == "SnapshotCopyAlreadyEnabledFault"
    names = [g["SnapshotCopyGrantName"] for g in rs.describe_snapshot_copy_grants()["SnapshotCopyGrants"]]
    assert f"{cid}-grant" in names
    rs.disable_snapshot_copy(ClusterIdentifier=cid)
    cluster = rs.describe_clusters(ClusterIdentifier=cid)["Clusters"][0]
    assert "ClusterSnapshotCopyStatus" not in cluster
    rs.delete_snapshot_copy_grant(SnapshotCopyGrantName=f"{cid}-grant")
    messages = [e["Message"] for e in rs.describe_events(SourceIdentifier=cid, SourceType="cluster")["Events"]]
    assert any("snapshot copy to us-west-2 was enabled" in m for m in messages)
    assert any("snapshot copy was disabled" in m for m in messages)
