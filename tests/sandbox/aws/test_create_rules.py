"""CreateCluster as the current API documents it (botocore model, CreateCluster parameter docs):
encrypted by default, password/identifier/node-type/port rules, references that must exist, tags."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.info import LEGACY_UNENCRYPTED_TAG
from tests.sandbox.aws.support import FakeClock, describe, new_cluster

_ids = itertools.count(1)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = dict(ClusterIdentifier=f"rules-{next(_ids):03d}", NodeType="ra3.xlplus",
                                   MasterUsername="admin", MasterUserPassword="Secret-Passw0rd", DBName="dev",
                                   ClusterType="single-node")
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


def _refused(rs: Any, **overrides: Any) -> str:
    request = _request(**overrides)
    with pytest.raises(ClientError) as exc:
        rs.create_cluster(**request)
    with pytest.raises(ClientError) as missing:
        describe(rs, request["ClusterIdentifier"])
    assert _code(missing) == "ClusterNotFound"  # no state change
    return _code(exc)


def test_encrypted_defaults_to_true(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock, legacy_unencrypted=False)
    assert describe(rs, cid)["Encrypted"] is True


def test_encrypted_false_is_refused(rs: Any) -> None:
    assert _refused(rs, Encrypted=False) == "InvalidParameterValue"


def test_the_sandbox_can_still_make_a_legacy_unencrypted_source(rs: Any, clock: FakeClock) -> None:
    request = _request(Encrypted=False, Tags=[{"Key": LEGACY_UNENCRYPTED_TAG, "Value": "true"},
                                              {"Key": "team", "Value": "bi"}])
    cluster = rs.create_cluster(**request)["Cluster"]
    assert cluster["Encrypted"] is False
    assert cluster["Tags"] == [{"Key": "team", "Value": "bi"}]  # the sandbox-only tag is not stored


@pytest.mark.parametrize("password", ["Sh0rt", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere",
                                      "Has'Quote1", 'Has"Quote1', "Has\\Slash1", "Has/Slash1", "Has@At1x",
                                      "Has Space1", "L0ng" + "x" * 61])
def test_password_rules(rs: Any, password: str) -> None:
    request = _request(MasterUserPassword=password)
    with pytest.raises(ClientError) as exc:
        rs.create_cluster(**request)
    assert _code(exc) == "InvalidParameterValue"
    assert password not in str(exc.value)  # a secret is never echoed


def test_password_is_required_unless_managed(rs: Any) -> None:
    assert _refused(rs, MasterUserPassword=None) == "MissingParameter"
    assert _refused(rs, ManageMasterPassword=True) == "InvalidParameterCombination"


@pytest.mark.parametrize("cluster_id", ["Upper", "1starts-with-digit", "ends-", "double--hyphen", "x" * 64,
                                        "under_score"])
def test_identifier_rules(rs: Any, cluster_id: str) -> None:
    assert _refused(rs, ClusterIdentifier=cluster_id) == "InvalidParameterValue"


@pytest.mark.parametrize("node_type", ["ds2.xlarge", "dc1.large", "dc1.8xlarge", "ds2.8xlarge", "ra3.huge"])
def test_retired_and_unknown_node_types_are_refused(rs: Any, node_type: str) -> None:
    assert _refused(rs, NodeType=node_type) == "InvalidParameterValue"


def test_ra3_ports_are_limited_to_the_documented_ranges(rs: Any, clock: FakeClock) -> None:
    for port in (5439, 1150, 5456, 8190, 8216, 65535):
        if port == 5439:
            continue
        assert _refused(rs, Port=port) == "InvalidParameterValue"
    for port in (5431, 5455, 8191, 8215):
        rs.create_cluster(**_request(Port=port))
    dc2 = _request(NodeType="dc2.large", Port=1150)
    assert rs.create_cluster(**dc2)["Cluster"]["NodeType"] == "dc2.large"
    assert _refused(rs, NodeType="dc2.large", Port=1149) == "InvalidParameterValue"


def test_node_count_must_fit_the_cluster_type(rs: Any) -> None:
    assert _refused(rs, ClusterType=None) == "InvalidParameterCombination"  # default multi-node needs a count
    assert _refused(rs, ClusterType="multi-node", NumberOfNodes=1) == "InvalidParameterCombination"
    assert _refused(rs, ClusterType="multi-node", NumberOfNodes=101) == "InvalidParameterValue"


def test_referenced_groups_and_roles_must_exist(rs: Any, boot: dict[str, str]) -> None:
    assert _refused(rs, ClusterParameterGroupName="no-such-group") == "ClusterParameterGroupNotFound"
    assert _refused(rs, ClusterSubnetGroupName="no-such-subnets") == "ClusterSubnetGroupNotFoundFault"
    assert _refused(rs, ClusterSecurityGroups=["no-such-sg"]) == "ClusterSecurityGroupNotFound"
    assert _refused(rs, VpcSecurityGroupIds=["sg-0123456789abcdef0"]) == "InvalidParameterValue"
    missing_role = boot["iam_role_arn"].rsplit("/", 1)[0] + "/NoSuchRole"
    assert _refused(rs, IamRoles=[missing_role]) == "InvalidParameterValue"
    assert _refused(rs, IamRoles=[boot["iam_role_arn"]], DefaultIamRoleArn=missing_role) == "InvalidParameterValue"
    ok = rs.create_cluster(**_request(IamRoles=[boot["iam_role_arn"]],
                                      ClusterParameterGroupName="default.redshift-1.0"))["Cluster"]
    assert [r["IamRoleArn"] for r in ok["IamRoles"]] == [boot["iam_role_arn"]]


def test_tags_at_most_fifty_and_no_aws_prefix(rs: Any) -> None:
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert _refused(rs, Tags=many) == "TagLimitExceededFault"
    assert _refused(rs, Tags=[{"Key": "aws:owner", "Value": "me"}]) == "InvalidTagFault"
    fifty = rs.create_cluster(**_request(Tags=many[:50]))["Cluster"]
    assert len(fifty["Tags"]) == 50


def test_retention_rules(rs: Any) -> None:
    assert _refused(rs, AutomatedSnapshotRetentionPeriod=36) == "InvalidRetentionPeriodFault"
    assert _refused(rs, AutomatedSnapshotRetentionPeriod=0) == "InvalidParameterValue"  # RA3 cannot disable
    assert _refused(rs, ManualSnapshotRetentionPeriod=0) == "InvalidRetentionPeriodFault"
    assert _refused(rs, MaintenanceTrackName="no-such-track") == "InvalidClusterTrack"


def test_manual_snapshot_needs_an_available_cluster(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    rs.reboot_cluster(ClusterIdentifier=cid)
    with pytest.raises(ClientError) as exc:
        rs.create_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=f"{cid}-busy")
    assert _code(exc) == "InvalidClusterState"
    clock.advance()
    with pytest.raises(ClientError) as tagged:
        rs.create_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=f"{cid}-t",
                                   Tags=[{"Key": "aws:x", "Value": "y"}])
    assert _code(tagged) == "InvalidTagFault"
    assert rs.create_cluster_snapshot(ClusterIdentifier=cid,
                                      SnapshotIdentifier=f"{cid}-ok")["Snapshot"]["Status"] == "creating"
