"""The new cluster's encryption is checked (Encrypted and the resolved key ARN, or the HSM status)
when it is ready and again before cutover; a mismatch stops the run with exit 11 naming both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.sandbox.client import SandboxClient as Sandbox
from migrator.strategies.encryption import EncryptionWanted, encryption_mismatch
from tests.strategies.support import make_cluster, migration, wait_for


def test_a_cluster_on_another_key_is_a_mismatch_naming_both_arns(sb: Sandbox) -> None:
    other = sb.client("kms").create_key(Description="not the configured key")["KeyMetadata"]["Arn"]
    make_cluster(sb, "enc-other", tables=0, encrypted=True, kms_key_id=other)
    cluster = sb.client("redshift").describe_clusters(ClusterIdentifier="enc-other")["Clusters"][0]
    why = encryption_mismatch(cluster, EncryptionWanted("kms", kms_key_arn=sb.info.kms_key_arn))
    assert why is not None and other in why and sb.info.kms_key_arn in why
    assert encryption_mismatch(cluster, EncryptionWanted("kms", kms_key_arn=other)) is None
    assert encryption_mismatch(cluster, EncryptionWanted("hsm", hsm_certificate="c", hsm_configuration="h"))


def test_an_unencrypted_cluster_is_a_mismatch(sb: Sandbox) -> None:
    make_cluster(sb, "enc-none", tables=0)
    cluster = sb.client("redshift").describe_clusters(ClusterIdentifier="enc-none")["Clusters"][0]
    assert "Encrypted=false" in (encryption_mismatch(cluster, EncryptionWanted("kms")) or "")


def test_restored_cluster_checked_after_restore_and_a_key_change_stops_cutover(
        sb: Sandbox, tmp_path: Path, monkeypatch: Any) -> None:
    make_cluster(sb, "enc-cut", tables=1)
    m = migration(sb, tmp_path, "enc-cut", strategy="snapshot-restore", cluster_id="enc-cut-new")
    m.init()
    first = m.run("--assume-frozen")
    assert first.returncode == 8, first.stderr + first.stdout
    with m.store() as store:
        checks = [e.detail for e in store.events(store.require_migration(m.name)) if e.trigger == "encryption_checked"]
    assert checks and checks[0]["when"] == "after the restore" and checks[0]["ok"] is True

    # Someone re-keys the new cluster between validation and cutover.
    other = sb.client("kms").create_key(Description="rotated by hand")["KeyMetadata"]["Arn"]
    sb.client("redshift").modify_cluster(ClusterIdentifier="enc-cut-new", Encrypted=True, KmsKeyId=other)
    wait_for(lambda: m.describe("enc-cut-new")["ClusterStatus"] == "available"
             and m.describe("enc-cut-new")["KmsKeyId"] == other, "the key change")
    before = len(sb.calls("ModifyCluster"))
    second = m.run("--approve-cutover")
    assert second.returncode == 11, second.stderr + second.stdout
    assert other in second.stderr and sb.info.kms_key_arn in second.stderr
    renames = [c for c in sb.calls("ModifyCluster")[before:] if c["params"].get("NewClusterIdentifier")]
    assert renames == []
    assert m.describe("enc-cut")["Encrypted"] is False
