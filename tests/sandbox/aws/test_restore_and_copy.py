"""RestoreFromClusterSnapshot's Encrypted/KmsKeyId (botocore model docs) and the encryption change
that cross-Region snapshot copy blocks ("Changing cluster encryption", Management Guide)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.sandbox.aws.support import FakeClock, describe, new_cluster, status


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _snapshot(rs: Any, clock: FakeClock, **cluster: Any) -> tuple[str, str]:
    cid = new_cluster(rs, clock, **cluster)
    rs.create_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=f"{cid}-snap")
    clock.advance()
    return cid, f"{cid}-snap"


def _refused(rs: Any, target: str, **request: Any) -> str:
    with pytest.raises(ClientError) as exc:
        rs.restore_from_cluster_snapshot(ClusterIdentifier=target, **request)
    with pytest.raises(ClientError) as missing:
        describe(rs, target)
    assert _code(missing) == "ClusterNotFound"
    return _code(exc)


def test_unencrypted_snapshot_to_kms_needs_encrypted_true_and_a_key(rs: Any, clock: FakeClock,
                                                                   boot: dict[str, str]) -> None:
    cid, snap = _snapshot(rs, clock)
    assert _refused(rs, f"{cid}-a", SnapshotIdentifier=snap, KmsKeyId=boot["kms_key_arn"]) == \
        "InvalidParameterCombination"
    assert _refused(rs, f"{cid}-a", SnapshotIdentifier=snap, Encrypted=True) == "InvalidParameterCombination"
    out = rs.restore_from_cluster_snapshot(ClusterIdentifier=f"{cid}-a", SnapshotIdentifier=snap, Encrypted=True,
                                           KmsKeyId=boot["kms_key_alias"])["Cluster"]
    assert out["Encrypted"] is True
    assert out["KmsKeyId"] == boot["kms_key_arn"]  # the key actually used, resolved from the alias
    plain = rs.restore_from_cluster_snapshot(ClusterIdentifier=f"{cid}-b", SnapshotIdentifier=snap)["Cluster"]
    assert plain["Encrypted"] is False and "KmsKeyId" not in plain


def test_unencrypted_snapshot_to_kms_only_on_ra3(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid, snap = _snapshot(rs, clock, NodeType="dc2.large")
    assert _refused(rs, f"{cid}-a", SnapshotIdentifier=snap, Encrypted=True, KmsKeyId=boot["kms_key_arn"]) == \
        "InvalidRestore"


def test_encrypted_snapshot_cannot_restore_unencrypted(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid, snap = _snapshot(rs, clock, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    assert _refused(rs, f"{cid}-a", SnapshotIdentifier=snap, Encrypted=False) == "InvalidParameterCombination"
    assert _refused(rs, f"{cid}-a", SnapshotIdentifier=snap, KmsKeyId=boot["disabled_kms_key_arn"]) == \
        "InvalidParameterValue"


def test_restore_checks_the_new_cluster_like_create(rs: Any, clock: FakeClock) -> None:
    cid, snap = _snapshot(rs, clock)
    assert _refused(rs, "Bad_Name", SnapshotIdentifier=snap) == "InvalidParameterValue"
    assert _refused(rs, f"{cid}-p", SnapshotIdentifier=snap, Port=5439 + 100) == "InvalidParameterValue"
    assert _refused(rs, f"{cid}-p", SnapshotIdentifier=snap, ClusterParameterGroupName="nope") == \
        "ClusterParameterGroupNotFound"
    with pytest.raises(ClientError) as exists:
        rs.restore_from_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=snap)
    assert _code(exists) == "ClusterAlreadyExists"


def test_encryption_change_refused_while_cross_region_copy_is_on(rs: Any, clock: FakeClock,
                                                                boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    rs.enable_snapshot_copy(ClusterIdentifier=cid, DestinationRegion="us-west-2")
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    assert _code(exc) == "InvalidClusterState"
    assert "snapshot copy" in str(exc.value)
    assert status(rs, cid) == "available" and describe(rs, cid)["Encrypted"] is False
    rs.disable_snapshot_copy(ClusterIdentifier=cid)
    assert rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True,
                             KmsKeyId=boot["kms_key_arn"])["Cluster"]["ClusterStatus"] == "resizing"
