"""The new cluster mirrors the source (issue 10 §2.3): what is copied, what the config overrides,
what is only reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.config import Settings
from migrator.sandbox.client import SandboxClient as Sandbox
from migrator.strategies.mirror import mirror_source
from tests.strategies.support import make_cluster, migration, wait_for

MIRRORED = ("NodeType", "NumberOfNodes", "PubliclyAccessible", "EnhancedVpcRouting", "DefaultIamRoleArn",
            "AutomatedSnapshotRetentionPeriod", "ManualSnapshotRetentionPeriod", "MaintenanceTrackName",
            "SnapshotScheduleIdentifier", "PreferredMaintenanceWindow")


def settings(**target: Any) -> Settings:
    return Settings.model_validate({
        "migration": {"name": "m", "strategy": "unload-copy", "region": "us-east-1"},
        "source": {"cluster_id": "src", "password_env": "X"},
        "target": {"cluster_id": "src-enc", "kms_key_id": "alias/k", **target},
        "staging": {"s3_uri": "s3://bucket/p/", "iam_role_arn": "arn:aws:iam::123456789012:role/r",
                    "kms_key_id": "alias/k"}})


def test_retired_node_type_and_ra3_port_need_the_config_and_say_so() -> None:
    source = {"ClusterIdentifier": "src", "NodeType": "ds2.xlarge", "NumberOfNodes": 2,
              "Endpoint": {"Port": 8000}, "ElasticIpStatus": {"ElasticIp": "1.2.3.4", "Status": "active"}}
    refused = mirror_source(source, settings(), restore=False)
    assert any("retired node type ds2.xlarge" in p and "target.node_type" in p for p in refused.problems)
    assert any("1.2.3.4" in r for r in refused.reported) and "ElasticIp" not in refused.request
    ra3 = mirror_source(source, settings(node_type="ra3.xlplus"), restore=False)
    assert any("port 8000 of src is not allowed" in p and "target.cluster_port" in p for p in ra3.problems)
    fine = mirror_source(source, settings(node_type="ra3.xlplus", cluster_port=5440), restore=False)
    assert fine.problems == ()
    assert fine.request["NodeType"] == "ra3.xlplus" and fine.request["Port"] == 5440
    assert fine.request["ClusterType"] == "multi-node" and fine.request["NumberOfNodes"] == 2
    assert len(fine.overridden) == 2


def test_restored_cluster_mirrors_the_source_attributes_tags_and_logging(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mir-src", tables=1)
    rs = sb.client("redshift")
    rs.create_snapshot_schedule(ScheduleIdentifier="mir-nightly", ScheduleDefinitions=["cron(0 3 * * ? *)"])
    rs.modify_cluster_snapshot_schedule(ClusterIdentifier="mir-src", ScheduleIdentifier="mir-nightly")
    rs.modify_cluster(ClusterIdentifier="mir-src", PubliclyAccessible=True, EnhancedVpcRouting=True,
                      ManualSnapshotRetentionPeriod=10, AutomatedSnapshotRetentionPeriod=5,
                      MaintenanceTrackName="trailing")
    wait_for(lambda: rs.describe_clusters(ClusterIdentifier="mir-src")["Clusters"][0]["ClusterStatus"]
             == "available", "the modify")
    rs.modify_cluster_iam_roles(ClusterIdentifier="mir-src", DefaultIamRoleArn=sb.info.iam_role_arn)
    rs.enable_logging(ClusterIdentifier="mir-src", BucketName=sb.info.bucket, S3KeyPrefix="audit/")
    source = rs.describe_clusters(ClusterIdentifier="mir-src")["Clusters"][0]
    m = migration(sb, tmp_path, "mir-src", strategy="snapshot-restore", cluster_id="mir-src-enc")
    m.init()
    result = m.run("--assume-frozen")
    assert result.returncode == 8, result.stderr + result.stdout
    new = m.describe("mir-src-enc")
    for key in MIRRORED:
        assert new.get(key) == source.get(key), key
    assert [r["IamRoleArn"] for r in new["IamRoles"]] == [r["IamRoleArn"] for r in source["IamRoles"]]
    assert new["ClusterParameterGroups"][0]["ParameterGroupName"] == \
        source["ClusterParameterGroups"][0]["ParameterGroupName"]
    logging = rs.describe_logging_status(ClusterIdentifier="mir-src-enc")
    assert logging["LoggingEnabled"] is True and logging["BucketName"] == sb.info.bucket
    assert logging["S3KeyPrefix"] == "audit/"
    with m.store() as store:
        notes = [e.detail for e in store.events(store.require_migration(m.name)) if e.trigger == "not_mirrored"]
    assert notes and any("namespace" in n for n in notes[0]["notes"])


def test_version_upgrades_ip_type_relocation_and_managed_password_are_carried() -> None:
    source = {"ClusterIdentifier": "src", "NodeType": "ra3.xlplus", "NumberOfNodes": 2,
              "AllowVersionUpgrade": False, "IpAddressType": "dualstack",
              "AvailabilityZoneRelocationStatus": "enabled", "ExtraComputeForAutomaticOptimization": "true",
              "MasterPasswordSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:redshift!src-admin-x",
              "MasterPasswordSecretKmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/secret-key"}
    restored = mirror_source(source, settings(iam_auth=True, password_env=None), restore=True)
    assert restored.problems == ()
    assert restored.request["AllowVersionUpgrade"] is False
    assert restored.request["IpAddressType"] == "dualstack"
    assert restored.request["AvailabilityZoneRelocation"] is True
    assert restored.request["ManageMasterPassword"] is True
    assert restored.request["MasterPasswordSecretKmsKeyId"].endswith("key/secret-key")
    # A restored cluster with a managed password cannot be reached with a configured password.
    with_password = mirror_source(source, settings(), restore=True)
    assert any("target.iam_auth" in p for p in with_password.problems)
    # CreateCluster gets the configured password (the tool loads data with it) and says how to go back.
    created = mirror_source(source, settings(), restore=False)
    assert "ManageMasterPassword" not in created.request and created.request["AllowVersionUpgrade"] is False
    assert created.request["ExtraComputeForAutomaticOptimization"] is True
    assert "ExtraComputeForAutomaticOptimization" not in restored.request  # not a restore parameter: reported
    assert any("extra compute" in r for r in restored.reported)
    assert any("--manage-master-password" in o and "secret-key" in o for o in created.overridden)


def test_restored_cluster_keeps_the_version_upgrade_and_relocation_settings(sb: Sandbox, tmp_path: Path) -> None:
    """Tried through the CLI before the fix: a source with AllowVersionUpgrade=false got a new
    cluster with true."""
    make_cluster(sb, "mir-avu", tables=1)
    rs = sb.client("redshift")
    rs.modify_cluster(ClusterIdentifier="mir-avu", AllowVersionUpgrade=False, AvailabilityZoneRelocation=True)
    wait_for(lambda: rs.describe_clusters(ClusterIdentifier="mir-avu")["Clusters"][0]["ClusterStatus"]
             == "available", "the modify")
    source = rs.describe_clusters(ClusterIdentifier="mir-avu")["Clusters"][0]
    assert source["AllowVersionUpgrade"] is False and source["AvailabilityZoneRelocationStatus"] == "enabled"
    rs.create_usage_limit(ClusterIdentifier="mir-avu", FeatureType="concurrency-scaling", LimitType="time",
                          Amount=60, Period="daily", BreachAction="emit-metric")
    rs.create_scheduled_action(ScheduledActionName="mir-avu-nightly-pause", Schedule="cron(0 22 * * ? *)",
                               TargetAction={"PauseCluster": {"ClusterIdentifier": "mir-avu"}},
                               IamRole=sb.info.iam_role_arn)
    m = migration(sb, tmp_path, "mir-avu", strategy="snapshot-restore", cluster_id="mir-avu-enc")
    m.init()
    result = m.run("--assume-frozen")
    assert result.returncode == 8, result.stderr + result.stdout
    new = m.describe("mir-avu-enc")
    for key in ("AllowVersionUpgrade", "AvailabilityZoneRelocationStatus", "IpAddressType"):
        assert new.get(key) == source.get(key), key
    # Usage limits stay with the source through the rename: the new cluster gets the same ones.
    limits = rs.describe_usage_limits(ClusterIdentifier="mir-avu-enc")["UsageLimits"]
    assert [(u["FeatureType"], u["LimitType"], u["Amount"], u["Period"], u["BreachAction"]) for u in limits] == \
        [("concurrency-scaling", "time", 60, "daily", "emit-metric")]
    # Scheduled actions follow the name: reported, not copied.
    assert rs.describe_scheduled_actions(
        Filters=[{"Name": "cluster-identifier", "Values": ["mir-avu-enc"]}])["ScheduledActions"] == []
    with m.store() as store:
        notes = [e.detail for e in store.events(store.require_migration(m.name)) if e.trigger == "not_mirrored"]
    assert any("mir-avu-nightly-pause (PauseCluster)" in n and "act on the new cluster" in n for n in notes[0]["notes"])
