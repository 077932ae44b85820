"""PauseCluster/ResumeCluster statuses, a pause schedule firing under a running migration, and
DescribeResize as botocore's model documents it (the last resize, documented statuses only)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.faults import FaultPlan
from tests.sandbox.aws.support import DURATION, FakeClock, describe, new_cluster, reach, status

# botocore model, ResizeProgressMessage.Status: "Valid Values: NONE | IN_PROGRESS | FAILED | SUCCEEDED | CANCELLING"
DOCUMENTED_RESIZE_STATUSES = {"NONE", "IN_PROGRESS", "FAILED", "SUCCEEDED", "CANCELLING"}


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_pause_is_pausing_then_paused_and_resume_is_resuming(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    endpoint = describe(rs, cid)["Endpoint"]
    assert rs.pause_cluster(ClusterIdentifier=cid)["Cluster"]["ClusterStatus"] == "pausing"
    assert reach(endpoint) is None
    clock.advance()
    assert status(rs, cid) == "paused"
    assert describe(rs, cid)["ClusterAvailabilityStatus"] == "Paused"
    for call in (lambda: rs.reboot_cluster(ClusterIdentifier=cid),
                 lambda: rs.pause_cluster(ClusterIdentifier=cid),
                 lambda: rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=f"{cid}-x")):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "InvalidClusterState"
    assert reach(endpoint) is None
    assert rs.resume_cluster(ClusterIdentifier=cid)["Cluster"]["ClusterStatus"] == "resuming"
    with pytest.raises(ClientError) as again:
        rs.resume_cluster(ClusterIdentifier=cid)
    assert _code(again) == "InvalidClusterState"
    clock.advance()
    assert status(rs, cid) == "available"
    assert reach(endpoint) == cid


def test_a_pause_schedule_can_fire_under_a_migration(rs: Any, clock: FakeClock, faults: FaultPlan) -> None:
    cid = new_cluster(rs, clock)
    faults.add("scheduled_pause", match={"cluster_id": cid})
    assert status(rs, cid) == "pausing"
    clock.advance()
    assert status(rs, cid) == "paused"
    assert [f["attrs"]["cluster_id"] for f in faults.fired("scheduled_pause")][-1] == cid
    events = rs.describe_events(SourceIdentifier=cid, SourceType="cluster", Duration=600)["Events"]
    assert any("paused by its schedule" in e["Message"] for e in events)


def test_describe_resize_reports_the_last_resize_even_an_old_one(rs: Any, clock: FakeClock,
                                                                 boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    running = rs.describe_resize(ClusterIdentifier=cid)
    assert running["Status"] == "IN_PROGRESS" and running["TargetEncryptionType"] == "KMS"
    clock.advance()
    # later, unrelated changes and a rename: the old resize is still what DescribeResize answers
    rs.modify_cluster(ClusterIdentifier=cid, PreferredMaintenanceWindow="sun:05:00-sun:05:30")
    clock.advance()
    rs.modify_cluster(ClusterIdentifier=cid, NewClusterIdentifier=f"{cid}-n")
    clock.advance(3 * DURATION)
    old = rs.describe_resize(ClusterIdentifier=f"{cid}-n")
    assert old["Status"] == "SUCCEEDED" and old["TargetEncryptionType"] == "KMS"
    assert old["ProgressInMegaBytes"] == old["TotalResizeDataInMegaBytes"]
    assert old["EstimatedTimeToCompletionInSeconds"] == 0
    # a new resize replaces it
    rs.modify_cluster(ClusterIdentifier=f"{cid}-n", Encrypted=False)
    new = rs.describe_resize(ClusterIdentifier=f"{cid}-n")
    assert new["Status"] == "IN_PROGRESS" and new["TargetEncryptionType"] == "NONE"
    assert new["ProgressInMegaBytes"] < new["TotalResizeDataInMegaBytes"]
    assert {old["Status"], new["Status"]} <= DOCUMENTED_RESIZE_STATUSES


def test_a_failed_resize_is_failed_and_changes_nothing(rs: Any, clock: FakeClock, faults: FaultPlan,
                                                       boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    faults.add("resize_fails", match={"cluster_id": cid})
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    clock.advance()
    assert status(rs, cid) == "available"
    cluster = describe(rs, cid)
    assert cluster["Encrypted"] is False and "KmsKeyId" not in cluster
    resize = rs.describe_resize(ClusterIdentifier=cid)
    assert resize["Status"] == "FAILED" and resize["TargetEncryptionType"] == "KMS"
    assert resize["Status"] in DOCUMENTED_RESIZE_STATUSES
