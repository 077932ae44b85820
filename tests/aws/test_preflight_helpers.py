"""Control-plane facts for preflight, against moto (in-process): public access blocks at account
and bucket level, cluster readiness, Serverless workgroups, snapshot copy, IAM-auth targets."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from migrator.aws import preflight
from migrator.aws.clients import AwsClients
from migrator.aws.preflight import Readiness
from migrator.config import ConnectionSection
from tests.moto_fixtures import ACCOUNT, REGION, aws_on_moto  # noqa: F401 - the fixture aws

ALL_ON = {k: True for k in preflight.PUBLIC_ACCESS_FLAGS}


def _cluster(aws: AwsClients, cluster_id: str) -> None:
    aws.client("redshift").create_cluster(ClusterIdentifier=cluster_id, NodeType="ra3.xlplus", ClusterType="multi-node",
                                          NumberOfNodes=2, MasterUsername="awsuser", MasterUserPassword="Passw0rd!x",
                                          Encrypted=False)


def _set_status(cluster_id: str, status: str) -> None:
    from moto.redshift.models import redshift_backends

    redshift_backends[ACCOUNT][REGION].clusters[cluster_id].status = status


# -- public access block -----------------------------------------------------------------------

def test_account_level_block_covers_a_bucket_without_its_own(aws: AwsClients) -> None:
    aws.client("s3").create_bucket(Bucket="staging")
    assert preflight.staging_public_access(aws, "staging").problem() is not None
    aws.client("s3control").put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON)
    found = preflight.staging_public_access(aws, "staging")
    assert found.bucket_level is None and found.covered_by == "account" and found.problem() is None


def test_flags_combine_across_levels(aws: AwsClients) -> None:
    aws.client("s3").create_bucket(Bucket="staging")
    aws.client("s3control").put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                                           "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    aws.client("s3").put_public_access_block(
        Bucket="staging", PublicAccessBlockConfiguration={"BlockPublicAcls": False, "IgnorePublicAcls": False,
                                                          "BlockPublicPolicy": True, "RestrictPublicBuckets": False})
    found = preflight.staging_public_access(aws, "staging")
    assert found.open_flags == ["RestrictPublicBuckets"]
    problem = found.problem()
    assert problem is not None and "RestrictPublicBuckets off" in problem and "put-public-access-block" in problem


def test_bucket_level_block_alone_is_enough(aws: AwsClients) -> None:
    aws.client("s3").create_bucket(Bucket="staging")
    aws.client("s3").put_public_access_block(Bucket="staging", PublicAccessBlockConfiguration=ALL_ON)
    found = preflight.staging_public_access(aws, "staging")
    assert found.account is None and found.covered_by == "bucket" and found.problem() is None


# -- cluster readiness -------------------------------------------------------------------------

def test_available_paused_and_missing(aws: AwsClients) -> None:
    _cluster(aws, "analytics")
    assert preflight.check_cluster(aws, "analytics").readiness is Readiness.READY
    aws.client("redshift").pause_cluster(ClusterIdentifier="analytics")
    paused = preflight.check_cluster(aws, "analytics")
    assert paused.readiness is Readiness.PAUSED and paused.problem and "resume-cluster" in paused.problem
    missing = preflight.check_cluster(aws, "nope")
    assert missing.readiness is Readiness.MISSING and "does not exist" in str(missing.problem)


@pytest.mark.parametrize("status,readiness", [
    ("resizing", Readiness.CHANGING), ("renaming", Readiness.CHANGING), ("rebooting", Readiness.CHANGING),
    ("available, prep-for-resize", Readiness.CHANGING), ("final-snapshot", Readiness.GOING_AWAY),
    ("deleting", Readiness.GOING_AWAY), ("incompatible-hsm", Readiness.NEEDS_OPERATOR),
    ("storage-full", Readiness.NEEDS_OPERATOR), ("something-new", Readiness.NEEDS_OPERATOR)])
def test_intermediate_statuses(aws: AwsClients, status: str, readiness: Readiness) -> None:
    _cluster(aws, "analytics")
    _set_status("analytics", status)
    found = preflight.check_cluster(aws, "analytics")
    assert found.readiness is readiness and found.status == status and status.split(",")[0] in str(found.problem)


# -- Serverless workgroups ---------------------------------------------------------------------

def _stub_workgroup(aws: AwsClients, answer: dict[str, Any] | None) -> Stubber:
    """moto 5.2.5 has no Redshift Serverless: botocore's Stubber answers, validated against its model."""
    stub = Stubber(aws.client("redshift-serverless"))
    if answer is None:
        stub.add_client_error("get_workgroup", "ResourceNotFoundException", "Workgroup not found", 400,
                              expected_params={"workgroupName": "analytics"})
    else:
        stub.add_response("get_workgroup", {"workgroup": answer}, {"workgroupName": "analytics"})
    stub.activate()
    return stub


def test_a_serverless_workgroup_is_named(aws: AwsClients) -> None:
    with _stub_workgroup(aws, {"workgroupName": "analytics", "namespaceName": "prod-ns", "status": "AVAILABLE"}):
        found = preflight.provisioned_cluster_named(aws, "analytics")
    assert found.cluster is None and found.workgroup is not None
    assert "Serverless workgroup" in str(found.problem) and "prod-ns" in str(found.problem)


def test_neither_cluster_nor_workgroup(aws: AwsClients) -> None:
    with _stub_workgroup(aws, None):
        found = preflight.provisioned_cluster_named(aws, "analytics")
    assert found.problem == f"cluster analytics does not exist in {REGION}" and not found.notes


def test_a_provisioned_cluster_needs_no_serverless_call(aws: AwsClients) -> None:
    _cluster(aws, "analytics")
    with Stubber(aws.client("redshift-serverless")) as stub:  # any call would fail: nothing queued
        found = preflight.provisioned_cluster_named(aws, "analytics")
        stub.assert_no_pending_responses()
    assert found.cluster is not None and found.problem is None


# -- snapshot copy -----------------------------------------------------------------------------

def test_cross_region_snapshot_copy(aws: AwsClients) -> None:
    _cluster(aws, "analytics")
    assert preflight.snapshot_copy_problem(aws, "analytics", handled=False) == (None, None)
    aws.client("redshift").enable_snapshot_copy(ClusterIdentifier="analytics", DestinationRegion="us-west-2",
                                                RetentionPeriod=3)
    copy, problem = preflight.snapshot_copy_problem(aws, "analytics", handled=False)
    assert copy is not None and copy.destination_region == "us-west-2"
    assert problem is not None and "disable-snapshot-copy" in problem
    assert preflight.snapshot_copy_problem(aws, "analytics", handled=True)[1] is None


# -- IAM-auth target credentials ---------------------------------------------------------------

def test_iam_auth_target_before_it_exists(aws: AwsClients) -> None:
    section = ConnectionSection(cluster_id="analytics-enc", iam_auth=True)
    problem = preflight.target_credentials_problem(aws, section, needs_master_password=True)
    assert problem is not None and "target.password_env or target.secret_arn" in problem
    assert preflight.target_credentials_problem(aws, section, needs_master_password=False) is None
    _cluster(aws, "analytics-enc")
    assert preflight.target_credentials_problem(aws, section, needs_master_password=True) is None
    plain = ConnectionSection(cluster_id="analytics-enc", password_env="TGT_PW")
    assert preflight.target_credentials_problem(aws, plain, needs_master_password=True) is None
