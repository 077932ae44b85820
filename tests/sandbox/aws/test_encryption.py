"""KMS keys on modify and restore, describe_resize progress, HSM objects."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from migrator.sandbox.aws import AwsSandbox
from tests.sandbox.aws.support import DURATION, FakeClock, RecordingHost, describe, new_cluster, status


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_encrypt_with_kms_resizes_then_applies_the_key(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as exc:
        rs.describe_resize(ClusterIdentifier=cid)
    assert _code(exc) == "ResizeNotFound"

    out = rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])["Cluster"]
    assert out["ClusterStatus"] == "resizing"
    assert out["PendingModifiedValues"] == {"EncryptionType": "KMS"}
    assert out["Encrypted"] is False  # not until the resize is done

    clock.advance(DURATION * 0.4)
    progress = rs.describe_resize(ClusterIdentifier=cid)
    assert progress["Status"] == "IN_PROGRESS"
    assert progress["TargetEncryptionType"] == "KMS"
    assert 0 < progress["DataTransferProgressPercent"] < 100
    assert 0 < progress["EstimatedTimeToCompletionInSeconds"] <= DURATION
    assert progress["ProgressInMegaBytes"] < progress["TotalResizeDataInMegaBytes"]
    tables = (progress["ImportTablesCompleted"] + progress.get("ImportTablesInProgress", [])
              + progress.get("ImportTablesNotStarted", []))
    assert len(tables) == 8 and progress["ImportTablesCompleted"] and progress["ImportTablesNotStarted"]
    assert describe(rs, cid)["ClusterAvailabilityStatus"] == "Modifying"
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, Encrypted=False)
    assert _code(exc) == "InvalidClusterState"

    clock.advance(DURATION)
    done = describe(rs, cid)
    assert done["ClusterStatus"] == "available"
    assert done["Encrypted"] is True
    assert done["KmsKeyId"] == boot["kms_key_arn"]
    assert "PendingModifiedValues" not in done or not done["PendingModifiedValues"]
    final = rs.describe_resize(ClusterIdentifier=cid)
    assert final["Status"] == "SUCCEEDED"
    assert final["DataTransferProgressPercent"] == 100.0
    assert final["EstimatedTimeToCompletionInSeconds"] == 0
    assert len(final["ImportTablesCompleted"]) == 8


def test_decrypt_goes_back_to_no_encryption(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock, Encrypted=True, KmsKeyId=boot["kms_key_id"])
    assert describe(rs, cid)["KmsKeyId"] == boot["kms_key_arn"]
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=False)
    assert rs.describe_resize(ClusterIdentifier=cid)["TargetEncryptionType"] == "NONE"
    clock.advance()
    done = describe(rs, cid)
    assert done["Encrypted"] is False
    assert "KmsKeyId" not in done


def test_alias_is_resolved_to_the_key_arn(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_alias"])
    clock.advance()
    assert describe(rs, cid)["KmsKeyId"] == boot["kms_key_arn"]


def test_same_key_again_changes_nothing(rs: Any, clock: FakeClock, boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock, Encrypted=True, KmsKeyId=boot["kms_key_arn"])
    out = rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=boot["kms_key_arn"])["Cluster"]
    assert out["ClusterStatus"] == "available"


@pytest.mark.parametrize("which", ["unknown", "disabled", "other_region", "unknown_alias"])
def test_unusable_key_is_refused_and_changes_nothing(rs: Any, clock: FakeClock, boot: dict[str, str],
                                                     which: str) -> None:
    key = {"unknown": "11111111-2222-3333-4444-555555555555", "disabled": boot["disabled_kms_key_arn"],
           "other_region": boot["other_region_kms_key_arn"], "unknown_alias": "alias/nope"}[which]
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, Encrypted=True, KmsKeyId=key)
    assert _code(exc) == "InvalidParameterValue"
    after = describe(rs, cid)
    assert after["ClusterStatus"] == "available" and after["Encrypted"] is False
    with pytest.raises(ClientError) as exc:
        rs.create_cluster(ClusterIdentifier=f"{cid}-new", NodeType="ra3.xlplus", MasterUsername="admin",
                          MasterUserPassword="Secret-Passw0rd", ClusterType="single-node",
                          Encrypted=True, KmsKeyId=key)
    assert _code(exc) == "InvalidParameterValue"


def test_kms_key_without_encrypted_on_plain_cluster_is_refused(rs: Any, clock: FakeClock,
                                                               boot: dict[str, str]) -> None:
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, KmsKeyId=boot["kms_key_arn"])
    assert _code(exc) == "InvalidParameterCombination"


def test_restore_records_kms_key_and_provisions(rs: Any, clock: FakeClock, boot: dict[str, str],
                                                host: RecordingHost, sandbox: AwsSandbox) -> None:
    cid = new_cluster(rs, clock)
    snap = rs.create_cluster_snapshot(ClusterIdentifier=cid, SnapshotIdentifier=f"{cid}-s1")["Snapshot"]
    assert snap["Status"] == "creating"
    with pytest.raises(ClientError) as exc:
        rs.restore_from_cluster_snapshot(ClusterIdentifier=f"{cid}-r", SnapshotIdentifier=f"{cid}-s1")
    assert _code(exc) == "InvalidClusterSnapshotState"
    clock.advance()
    assert rs.describe_cluster_snapshots(SnapshotIdentifier=f"{cid}-s1")["Snapshots"][0]["Status"] == "available"

    out = rs.restore_from_cluster_snapshot(ClusterIdentifier=f"{cid}-r", SnapshotIdentifier=f"{cid}-s1",
                                           Encrypted=True, KmsKeyId=boot["kms_key_arn"])["Cluster"]
    assert out["ClusterStatus"] == "creating"
    assert any(c[:2] == ("provision", f"{cid}-r") for c in host.calls)
    clock.advance()
    restored = describe(rs, f"{cid}-r")
    assert restored["ClusterStatus"] == "available"
    assert restored["Encrypted"] is True
    assert restored["KmsKeyId"] == boot["kms_key_arn"]
    assert restored["Endpoint"]["Port"] != describe(rs, cid)["Endpoint"]["Port"]
    restored_events = rs.describe_events(SourceIdentifier=f"{cid}-r", SourceType="cluster")["Events"]
    assert restored_events[0]["Message"] == \
        f"Amazon Redshift cluster '{cid}-r' is being restored from snapshot '{cid}-s1'."
    assert rs.describe_cluster_snapshots(ClusterIdentifier=f"{cid}-r")["Snapshots"][0]["SnapshotType"] == \
        "automated"
    assert rs.describe_cluster_snapshots(ClusterIdentifier="never-existed")["Snapshots"] == []

    # an encrypted snapshot keeps its key unless a new one is given, which the restored cluster then reports
    rs.create_cluster_snapshot(ClusterIdentifier=f"{cid}-r", SnapshotIdentifier=f"{cid}-s2")
    clock.advance()
    assert rs.describe_cluster_snapshots(SnapshotIdentifier=f"{cid}-s2")["Snapshots"][0]["KmsKeyId"] == \
        boot["kms_key_arn"]
    another_key = sandbox.client("kms").create_key(Description="not the snapshot's key")["KeyMetadata"]["Arn"]
    rs.restore_from_cluster_snapshot(ClusterIdentifier=f"{cid}-r2", SnapshotIdentifier=f"{cid}-s2",
                                     KmsKeyId=another_key)
    assert describe(rs, f"{cid}-r2")["KmsKeyId"] == another_key
    rs.restore_from_cluster_snapshot(ClusterIdentifier=f"{cid}-r3", SnapshotIdentifier=f"{cid}-s2")
    assert describe(rs, f"{cid}-r3")["KmsKeyId"] == boot["kms_key_arn"]


def test_hsm_objects_round_trip(rs: Any, clock: FakeClock) -> None:
    cert = rs.create_hsm_client_certificate(HsmClientCertificateIdentifier="hsm-cert-1",
                                            Tags=[{"Key": "team", "Value": "data"}])["HsmClientCertificate"]
    assert cert["HsmClientCertificatePublicKey"].startswith("-----BEGIN CERTIFICATE-----")
    assert cert["Tags"] == [{"Key": "team", "Value": "data"}]
    with pytest.raises(ClientError) as exc:
        rs.create_hsm_client_certificate(HsmClientCertificateIdentifier="hsm-cert-1")
    assert _code(exc) == "HsmClientCertificateAlreadyExistsFault"
    conf = rs.create_hsm_configuration(
        HsmConfigurationIdentifier="hsm-conf-1", Description="lab HSM", HsmIpAddress="10.0.0.5",
        HsmPartitionName="p1", HsmPartitionPassword="partition-secret",
        HsmServerPublicCertificate="-----BEGIN CERTIFICATE-----x-----END CERTIFICATE-----")["HsmConfiguration"]
    assert conf["HsmIpAddress"] == "10.0.0.5"
    assert [c["HsmClientCertificateIdentifier"] for c in
            rs.describe_hsm_client_certificates()["HsmClientCertificates"]] == ["hsm-cert-1"]
    assert rs.describe_hsm_configurations(HsmConfigurationIdentifier="hsm-conf-1")[
        "HsmConfigurations"][0]["HsmPartitionName"] == "p1"

    with pytest.raises(ClientError) as exc:
        new_cluster(rs, clock, Encrypted=True, HsmClientCertificateIdentifier="nope",
                    HsmConfigurationIdentifier="hsm-conf-1")
    assert _code(exc) == "HsmClientCertificateNotFoundFault"
    cid = new_cluster(rs, clock, Encrypted=True, HsmClientCertificateIdentifier="hsm-cert-1",
                      HsmConfigurationIdentifier="hsm-conf-1")
    assert describe(rs, cid)["HsmStatus"] == {"HsmClientCertificateIdentifier": "hsm-cert-1",
                                              "HsmConfigurationIdentifier": "hsm-conf-1", "Status": "active"}
    with pytest.raises(ClientError) as exc:
        rs.delete_hsm_client_certificate(HsmClientCertificateIdentifier="hsm-cert-1")
    assert _code(exc) == "InvalidHsmClientCertificateStateFault"

    rs.delete_cluster(ClusterIdentifier=cid, SkipFinalClusterSnapshot=True)
    clock.advance()
    rs.delete_hsm_client_certificate(HsmClientCertificateIdentifier="hsm-cert-1")
    rs.delete_hsm_configuration(HsmConfigurationIdentifier="hsm-conf-1")
    with pytest.raises(ClientError) as exc:
        rs.describe_hsm_client_certificates(HsmClientCertificateIdentifier="hsm-cert-1")
    assert _code(exc) == "HsmClientCertificateNotFoundFault"
    with pytest.raises(ClientError) as exc:
        rs.delete_hsm_configuration(HsmConfigurationIdentifier="hsm-conf-1")
    assert _code(exc) == "HsmConfigurationNotFoundFault"


def test_modify_to_hsm_is_refused(rs: Any, clock: FakeClock) -> None:
    cid = new_cluster(rs, clock)
    with pytest.raises(ClientError) as exc:
        rs.modify_cluster(ClusterIdentifier=cid, HsmClientCertificateIdentifier="x", HsmConfigurationIdentifier="y")
    assert _code(exc) == "UnsupportedOperation"
    assert status(rs, cid) == "available"
