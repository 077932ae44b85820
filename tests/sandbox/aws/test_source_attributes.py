"""The source attributes a migration must carry over are stored and described as the Cluster shape
of botocore's model declares them (moto drops several of them)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.aws import AwsSandbox
from tests.sandbox.aws.support import FakeClock, describe, new_cluster


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_create_keeps_every_attribute_a_migration_mirrors(sandbox: AwsSandbox, rs: Any, clock: FakeClock,
                                                          boot: dict[str, str]) -> None:
    eip = sandbox.client("ec2").allocate_address(Domain="vpc")["PublicIp"]
    rs.create_snapshot_schedule(ScheduleIdentifier="nightly", ScheduleDefinitions=["cron(0 3 * * ? *)"])
    cid = new_cluster(rs, clock, PubliclyAccessible=True, EnhancedVpcRouting=True, IamRoles=[boot["iam_role_arn"]],
                      DefaultIamRoleArn=boot["iam_role_arn"], MultiAZ=True, AutomatedSnapshotRetentionPeriod=7,
                      ManualSnapshotRetentionPeriod=30, MaintenanceTrackName="trailing",
                      SnapshotScheduleIdentifier="nightly", ElasticIp=eip)
    cluster = describe(rs, cid)
    assert cluster["PubliclyAccessible"] is True
    assert cluster["EnhancedVpcRouting"] is True
    assert cluster["DefaultIamRoleArn"] == boot["iam_role_arn"]
    assert cluster["MultiAZ"] == "Enabled"
    assert cluster["AutomatedSnapshotRetentionPeriod"] == 7
    assert cluster["ManualSnapshotRetentionPeriod"] == 30
    assert cluster["MaintenanceTrackName"] == "trailing"
    assert cluster["SnapshotScheduleIdentifier"] == "nightly" and cluster["SnapshotScheduleState"] == "ACTIVE"
    assert cluster["ElasticIpStatus"] == {"ElasticIp": eip, "Status": "active"}
    schedules = rs.describe_snapshot_schedules(ScheduleIdentifier="nightly")["SnapshotSchedules"]
    assert schedules[0]["AssociatedClusters"][0]["ClusterIdentifier"] == cid
    with pytest.raises(ClientError) as in_use:
        rs.delete_snapshot_schedule(ScheduleIdentifier="nightly")
    assert _code(in_use) == "InvalidClusterSnapshotScheduleState"


def test_defaults_are_described_as_aws_does(rs: Any, clock: FakeClock) -> None:
    cluster = describe(rs, new_cluster(rs, clock))
    assert cluster["PubliclyAccessible"] is False and cluster["EnhancedVpcRouting"] is False
    assert cluster["MultiAZ"] == "Disabled"
    assert cluster["ManualSnapshotRetentionPeriod"] == -1
    assert cluster["MaintenanceTrackName"] == "current"
    assert "SnapshotScheduleIdentifier" not in cluster and "ElasticIpStatus" not in cluster


def test_modify_keeps_the_changed_attributes_typed(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    rs.modify_cluster(ClusterIdentifier=cid, PubliclyAccessible=True, EnhancedVpcRouting=True,
                      ManualSnapshotRetentionPeriod=10, MaintenanceTrackName="trailing", MultiAZ=True)
    clock.advance()
    cluster = describe(rs, cid)
    assert cluster["PubliclyAccessible"] is True and cluster["EnhancedVpcRouting"] is True
    assert cluster["ManualSnapshotRetentionPeriod"] == 10
    assert cluster["MaintenanceTrackName"] == "trailing" and cluster["MultiAZ"] == "Enabled"
    rs.modify_cluster_iam_roles(ClusterIdentifier=cid, AddIamRoles=[boot["iam_role_arn"]],
                                DefaultIamRoleArn=boot["iam_role_arn"])
    cluster = describe(rs, cid)
    assert [r["IamRoleArn"] for r in cluster["IamRoles"]] == [boot["iam_role_arn"]]
    assert cluster["DefaultIamRoleArn"] == boot["iam_role_arn"]
    rs.modify_cluster_iam_roles(ClusterIdentifier=cid, RemoveIamRoles=[boot["iam_role_arn"]])
    cluster = describe(rs, cid)
    assert cluster["IamRoles"] == [] and "DefaultIamRoleArn" not in cluster
    with pytest.raises(ClientError) as bad:
        rs.modify_cluster(ClusterIdentifier=cid, ManualSnapshotRetentionPeriod=0)
    assert _code(bad) == "InvalidRetentionPeriodFault"


def test_schedule_association_and_logging_status(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as missing:
        rs.modify_cluster_snapshot_schedule(ClusterIdentifier=cid, ScheduleIdentifier="no-such-schedule")
    assert _code(missing) == "SnapshotScheduleNotFound"
    rs.create_snapshot_schedule(ScheduleIdentifier=f"{cid}-s", ScheduleDefinitions=["rate(12 hours)"])
    rs.modify_cluster_snapshot_schedule(ClusterIdentifier=cid, ScheduleIdentifier=f"{cid}-s")
    assert describe(rs, cid)["SnapshotScheduleIdentifier"] == f"{cid}-s"
    rs.modify_cluster_snapshot_schedule(ClusterIdentifier=cid, DisassociateSchedule=True)
    assert "SnapshotScheduleIdentifier" not in describe(rs, cid)
    rs.enable_logging(ClusterIdentifier=cid, BucketName=boot["bucket"], S3KeyPrefix="audit/")
    logging = rs.describe_logging_status(ClusterIdentifier=cid)
    assert logging["LoggingEnabled"] is True and logging["BucketName"] == boot["bucket"]
    assert logging["S3KeyPrefix"] == "audit/"
