"""Destructive actions only on what the migration owns (issue 10 §2.11), through the CLI against
the sandbox: `rollback --delete-target` needs --confirm, deletes only a cluster this migration
created (recorded creation AND owner tag), takes a final snapshot, records the delete before it
is sent; decommission deletes only an old source this migration tagged and renamed away."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.aws import clusters as aws
from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import PW_ENV, Migration, make_cluster, migration, one_line

TARGET_PW_ENV = "TGT_PW"


def unload_copy(sb: Sandbox, tmp: Path, source_id: str, tables: int = 1) -> Migration:
    """An unload-copy migration of a fresh small source into `<source>-enc` (the strategy that
    creates its target with CreateCluster and the owner tag)."""
    make_cluster(sb, source_id, tables=tables, rows=20)
    m = migration(sb, tmp, source_id, strategy="unload-copy", cluster_id=f"{source_id}-enc",
                  password_env=TARGET_PW_ENV, staging={"s3_uri": f"s3://{sb.info.bucket}/{source_id}/"})
    m.env.update({TARGET_PW_ENV: "TargetPassw0rd", "MIGRATOR_FREEZE_QUIET_SECONDS": "0"})
    assert PW_ENV in m.env
    return m


def deletes(sb: Sandbox, cluster_id: str) -> list[dict[str, Any]]:
    return [c for c in sb.calls("DeleteCluster") if c["cluster_id"] == cluster_id]


def arn(sb: Sandbox, cluster_id: str) -> str:
    return f"arn:aws:redshift:{sb.info.region}:123456789012:cluster:{cluster_id}"


def tag(sb: Sandbox, cluster_id: str, key: str, value: str) -> None:
    sb.client("redshift").create_tags(ResourceName=arn(sb, cluster_id), Tags=[{"Key": key, "Value": value}])


def rollback(m: Migration, *args: str) -> Any:
    return m.cli("rollback", "-c", str(m.config), *args)


def action(m: Migration, key: str) -> Any:
    with m.store() as store:
        return store.get_action(store.require_migration(m.name), key)


def test_delete_target_without_confirm_says_what_it_would_delete_and_changes_nothing(
        sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "ro-noconf", tables=1)
    m = migration(sb, tmp_path, "ro-noconf", strategy="snapshot-restore", cluster_id="ro-noconf-enc")
    m.init()
    refused = rollback(m, "--delete-target")
    assert refused.returncode == 2, refused.stderr
    line = one_line(refused.stderr)
    assert "would delete cluster ro-noconf-enc" in line and "final snapshot" in line and "--confirm" in line
    assert m.phase() == "created"
    assert action(m, "rollback:delete_target") is None


def test_a_pre_existing_cluster_with_the_targets_name_is_never_deleted(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "ro-pre", tables=1)
    # Someone else's cluster that happens to carry the target's name, even with a copied owner tag.
    sb.create_cluster("ro-pre-enc", encrypted=True)
    m = migration(sb, tmp_path, "ro-pre", strategy="snapshot-restore", cluster_id="ro-pre-enc")
    tag(sb, "ro-pre-enc", aws.OWNER_TAG, m.name)
    m.init()
    first = m.run()
    assert first.returncode == 7 and "not made by this migration" in first.stderr, first.stderr
    refused = rollback(m, "--delete-target", "--confirm")
    assert refused.returncode == 7, refused.stderr + refused.stdout
    line = one_line(refused.stderr)
    assert "refusing to delete cluster ro-pre-enc" in line and "no record" in line
    assert deletes(sb, "ro-pre-enc") == []
    assert m.describe("ro-pre-enc")["ClusterStatus"] == "available"
    assert action(m, "rollback:delete_target") is None


def test_delete_target_needs_the_owner_tag_then_survives_a_crash_between_record_and_answer(
        sb: Sandbox, tmp_path: Path) -> None:
    m = unload_copy(sb, tmp_path, "ro-own")
    m.init()
    first = m.run("--assume-frozen")
    assert first.returncode == 8, first.stderr
    assert action(m, "provision-target").status == "done"
    assert aws.tag_value(m.describe("ro-own-enc"), aws.OWNER_TAG) == m.name
    # Recorded creation but the owner tag gone (a tag can be lost; a name can be reused): refused.
    sb.client("redshift").delete_tags(ResourceName=arn(sb, "ro-own-enc"), TagKeys=[aws.OWNER_TAG])
    untagged = rollback(m, "--delete-target", "--confirm")
    assert untagged.returncode == 7, untagged.stderr
    assert f"does not carry the tag {aws.OWNER_TAG}={m.name}" in one_line(untagged.stderr)
    assert deletes(sb, "ro-own-enc") == []

    tag(sb, "ro-own-enc", aws.OWNER_TAG, m.name)
    m.env["MIGRATOR_FAILPOINT"] = "after_remote_call"
    killed = rollback(m, "--delete-target", "--confirm")
    assert killed.returncode == -9, killed.stderr
    del m.env["MIGRATOR_FAILPOINT"]
    recorded = action(m, "rollback:delete_target")
    assert recorded is not None and recorded.status == "pending"
    assert recorded.request["FinalClusterSnapshotIdentifier"] == aws.final_snapshot_id("ro-own-enc", m.name)
    assert len(deletes(sb, "ro-own-enc")) == 1

    resumed = rollback(m, "--delete-target", "--confirm")
    assert resumed.returncode == 0, resumed.stderr
    assert m.phase() == "rolled_back"
    sent = deletes(sb, "ro-own-enc")
    assert len(sent) == 1 and sent[0]["params"]["FinalClusterSnapshotIdentifier"] == \
        aws.final_snapshot_id("ro-own-enc", m.name)
    assert action(m, "rollback:delete_target").response["reattached"] is True
    assert m.describe("ro-own")["ClusterStatus"] == "available"  # the source is never touched
    assert deletes(sb, "ro-own") == []


def test_skip_final_snapshot_deletes_without_one(sb: Sandbox, tmp_path: Path) -> None:
    m = unload_copy(sb, tmp_path, "ro-skip")
    m.init()
    assert m.run("--assume-frozen").returncode == 8
    done = rollback(m, "--delete-target", "--confirm", "--skip-final-snapshot")
    assert done.returncode == 0, done.stderr
    sent = deletes(sb, "ro-skip-enc")
    assert len(sent) == 1 and str(sent[0]["params"]["SkipFinalClusterSnapshot"]).lower() == "true"
    assert "FinalClusterSnapshotIdentifier" not in sent[0]["params"]


def test_decommission_refuses_an_old_source_without_the_retired_tag(sb: Sandbox, tmp_path: Path) -> None:
    m = unload_copy(sb, tmp_path, "ro-dec")
    m.init()
    ran = m.run("--assume-frozen", "--approve-cutover")
    assert ran.returncode == 8, ran.stderr
    assert m.phase() == "awaiting_decommission"
    old_name = action(m, "cutover:plan").response["old_name"]
    assert aws.tag_value(m.describe(old_name), aws.RETIRED_TAG) == m.name  # tagged before it was renamed away
    sb.client("redshift").delete_tags(ResourceName=arn(sb, old_name), TagKeys=[aws.RETIRED_TAG])
    refused = m.cli("decommission", "-c", str(m.config), "--confirm")
    assert refused.returncode == 7, refused.stderr
    assert f"refusing to delete cluster {old_name}" in one_line(refused.stderr)
    assert deletes(sb, old_name) == [] and m.describe(old_name)["ClusterStatus"] == "available"
    assert action(m, "decommission:delete_old_source") is None
