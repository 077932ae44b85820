"""Destructive actions only on what the migration owns: a recorded creation AND its tag; deletion
with a final snapshot unless explicitly skipped; tags for created clusters. Against moto."""

from __future__ import annotations

import pytest

from migrator.aws import clusters
from migrator.aws.clients import AwsClients
from migrator.errors import PreflightFailed, RemoteError
from tests.moto_fixtures import aws_on_moto  # noqa: F401 - the fixture aws


def _create(aws: AwsClients, cluster_id: str, tags: list[dict[str, str]] | None = None) -> None:
    aws.client("redshift").create_cluster(ClusterIdentifier=cluster_id, NodeType="ra3.xlplus",
                                          ClusterType="multi-node", NumberOfNodes=2, MasterUsername="awsuser",
                                          MasterUserPassword="Passw0rd!x", Tags=tags or [])


def _snapshots(aws: AwsClients) -> list[str]:
    found = aws.client("redshift").describe_cluster_snapshots(SnapshotType="manual")["Snapshots"]
    return [s["SnapshotIdentifier"] for s in found]


def test_migration_tags_drop_reserved_and_stale_keys() -> None:
    tags = clusters.migration_tags([{"Key": "team", "Value": "bi"}, {"Key": "aws:cloudformation:stack-name",
                                                                     "Value": "x"},
                                    {"Key": "migrator:migration", "Value": "older"}], "m1")
    assert tags == [{"Key": "team", "Value": "bi"}, {"Key": clusters.OWNER_TAG, "Value": "m1"}]
    with pytest.raises(RemoteError, match="more than the 50"):
        clusters.migration_tags([{"Key": f"k{i}", "Value": ""} for i in range(50)], "m1")


def test_owned_needs_record_and_tag(aws: AwsClients) -> None:
    _create(aws, "analytics-enc", clusters.migration_tags([], "m1"))
    recorded = {"cluster_id": "analytics-enc", "status": "creating"}
    assert clusters.ownership(aws, "analytics-enc", "m1", recorded=recorded).owned
    no_record = clusters.ownership(aws, "analytics-enc", "m1", recorded=None)
    assert not no_record.owned and "no record" in no_record.reasons[0]
    other = clusters.ownership(aws, "analytics-enc", "m2", recorded=recorded)
    assert not other.owned and "found migrator:migration=m1" in other.reasons[0]


def test_a_recorded_name_reused_by_an_untagged_cluster_is_not_owned(aws: AwsClients) -> None:
    _create(aws, "analytics-enc", [{"Key": "team", "Value": "bi"}])
    found = clusters.ownership(aws, "analytics-enc", "m1", recorded={"cluster_id": "analytics-enc"})
    assert not found.owned and "does not carry the tag migrator:migration=m1" in found.reasons[0]
    with pytest.raises(PreflightFailed, match="refusing to delete cluster analytics-enc") as info:
        clusters.delete_owned_cluster(aws, "analytics-enc", "m1", recorded={"cluster_id": "analytics-enc"})
    assert info.value.exit_code == 7
    assert clusters.describe_cluster(aws, "analytics-enc") is not None


def test_delete_owned_takes_a_final_snapshot(aws: AwsClients) -> None:
    _create(aws, "analytics-enc", clusters.migration_tags([], "m1"))
    sent = clusters.delete_owned_cluster(aws, "analytics-enc", "m1", recorded={"cluster_id": "analytics-enc"})
    assert sent["SkipFinalClusterSnapshot"] is False
    assert sent["FinalClusterSnapshotIdentifier"] == "analytics-enc-final-m1"
    assert "analytics-enc-final-m1" in _snapshots(aws)
    assert clusters.describe_cluster(aws, "analytics-enc") is None


def test_skipping_the_final_snapshot_is_explicit(aws: AwsClients) -> None:
    _create(aws, "analytics-enc", clusters.migration_tags([], "m1"))
    sent = clusters.delete_owned_cluster(aws, "analytics-enc", "m1", recorded={"cluster_id": "analytics-enc"},
                                         skip_final_snapshot=True)
    assert sent == {"ClusterIdentifier": "analytics-enc", "SkipFinalClusterSnapshot": True}
    assert _snapshots(aws) == []


def test_retired_source_tagged_then_owned_for_decommission(aws: AwsClients) -> None:
    _create(aws, "analytics")
    clusters.tag_cluster(aws, "analytics", {clusters.RETIRED_TAG: "m1"})
    recorded_rename = {"cluster_id": "analytics"}
    assert clusters.ownership(aws, "analytics", "m1", recorded=recorded_rename, tag_key=clusters.RETIRED_TAG).owned
    assert not clusters.ownership(aws, "analytics", "m1", recorded=recorded_rename).owned


@pytest.mark.parametrize("cluster_id,migration,expected", [
    ("analytics-enc", "m1", "analytics-enc-final-m1"),
    ("a", "Nightly_Move.2026", "a-final-nightly-move-2026"),
    ("x", "--9", "x-final-9"),
])
def test_final_snapshot_names_are_valid_and_stable(cluster_id: str, migration: str, expected: str) -> None:
    assert clusters.final_snapshot_id(cluster_id, migration) == expected
