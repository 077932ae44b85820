"""`strategy = "modify"` through the CLI against the sandbox, checked with independent describe calls."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import make_cluster, migration, one_line, wait_for


def modify_calls(sb: Sandbox, cluster_id: str) -> list[dict[str, Any]]:
    return [c for c in sb.calls("ModifyCluster") if c["cluster_id"] == cluster_id]


def test_modify_encrypts_in_place_with_the_key_arn_and_records_progress(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mod-e2e")
    m = migration(sb, tmp_path, "mod-e2e")  # the key named by its alias
    m.init()
    result = m.run("--approve-modify")
    assert result.returncode == 0, result.stderr + result.stdout
    cluster = m.describe()
    assert cluster["Encrypted"] is True
    assert cluster["KmsKeyId"] == sb.info.kms_key_arn
    assert cluster["ClusterStatus"] == "available"
    assert m.phase() == "completed"
    assert [c["params"].get("KmsKeyId") for c in modify_calls(sb, "mod-e2e")] == [sb.info.kms_key_arn]
    with m.store() as store:
        migration_row = store.require_migration(m.name)
        progress = [e.detail for e in store.events(migration_row) if e.trigger == "progress"]
        action = store.get_action(migration_row, "modify_cluster")
    assert any(p.get("read_only") and p.get("tables_total") for p in progress), progress
    assert action is not None and action.status == "done"
    assert action.request["KmsKeyId"] == sb.info.kms_key_arn


def test_change_key_then_decrypt(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mod-dec", tables=1, encrypted=True, kms_key_id=sb.info.kms_key_id)
    other = sb.client("kms").create_key(Description="second key")["KeyMetadata"]
    (tmp_path / "a").mkdir()
    m = migration(sb, tmp_path / "a", "mod-dec", kms_key_id=other["KeyId"])
    m.init()
    result = m.run("--approve-modify")
    assert result.returncode == 0, result.stderr
    assert m.describe()["Encrypted"] is True and m.describe()["KmsKeyId"] == other["Arn"]

    (tmp_path / "b").mkdir()
    m2 = migration(sb, tmp_path / "b", "mod-dec", encryption="none")
    m2.init()
    assert m2.run("--approve-modify").returncode == 0
    assert m2.describe()["Encrypted"] is False
    sent = [c["params"] for c in modify_calls(sb, "mod-dec")]
    assert sent == [{"ClusterIdentifier": "mod-dec", "Encrypted": "true", "KmsKeyId": other["Arn"]},
                    {"ClusterIdentifier": "mod-dec", "Encrypted": "false"}]


def test_sigkill_while_resizing_then_resume_sends_one_modify(sb: Sandbox, tmp_path: Path, durations: Any) -> None:
    make_cluster(sb, "mod-crash")
    durations.modify = 3.0
    m = migration(sb, tmp_path, "mod-crash")
    m.init()
    proc = m.start("run", "-c", str(m.config), "--approve-modify")
    try:
        wait_for(lambda: m.phase() == "waiting" and m.describe()["ClusterStatus"] == "resizing",
                 "the cluster to be resizing", proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert m.describe()["ClusterStatus"] == "resizing"
    result = m.run()  # past the gate: no approval needed to re-attach
    assert result.returncode == 0, result.stderr + result.stdout
    assert len(modify_calls(sb, "mod-crash")) == 1
    assert m.describe()["Encrypted"] is True and m.phase() == "completed"


def test_pending_modify_record_is_reattached_not_resent(sb: Sandbox, tmp_path: Path, durations: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash after ModifyCluster reached AWS but before its response was recorded."""
    from migrator import commands
    from migrator.engine.context import RunOptions

    make_cluster(sb, "mod-pend", tables=1)
    m = migration(sb, tmp_path, "mod-pend")
    m.init()
    for key, value in m.env.items():
        monkeypatch.setenv(key, value)
    stopped = commands.run(m.config, RunOptions(max_steps=5, approve_modify=True))
    assert stopped.end_phase == "modifying"
    from migrator.config import load_config
    from migrator.store import Store

    with Store.open(load_config(m.config).store_url) as store:
        row = store.require_migration(m.name)
        store.begin_action(row, "modify_cluster", {"ClusterIdentifier": "mod-pend", "Encrypted": True,
                                                   "KmsKeyId": sb.info.kms_key_arn})
    durations.modify = 2.0
    sb.client("redshift").modify_cluster(ClusterIdentifier="mod-pend", Encrypted=True, KmsKeyId=sb.info.kms_key_arn)
    result = m.run()
    assert result.returncode == 0, result.stderr + result.stdout
    assert len(modify_calls(sb, "mod-pend")) == 1
    with m.store() as store:
        action = store.get_action(store.require_migration(m.name), "modify_cluster")
    assert action is not None and action.response and action.response.get("reattached") is True


def test_snapshot_copy_refused_with_steps_then_handled_with_the_flag(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mod-copy", tables=1)
    sb.client("redshift").enable_snapshot_copy(ClusterIdentifier="mod-copy", DestinationRegion="us-west-2",
                                               RetentionPeriod=5)
    before = sb.calls()
    m = migration(sb, tmp_path, "mod-copy")
    m.init()
    refused = m.invoke("run", "-c", str(m.config))
    assert refused.exit_code == 7
    line = one_line(refused.stderr)
    assert "disable-snapshot-copy" in line and "enable-snapshot-copy" in line and "us-west-2" in line
    assert "handle_snapshot_copy" in line
    assert sb.calls() == before
    assert m.describe()["ClusterSnapshotCopyStatus"]["DestinationRegion"] == "us-west-2"

    # The operator lets the tool handle it (not a key that alters finished work): same migration resumes.
    m = migration(sb, tmp_path, "mod-copy", handle_snapshot_copy=True)
    result = m.run("--approve-modify")
    assert result.returncode == 0, result.stderr + result.stdout
    copy = m.describe()["ClusterSnapshotCopyStatus"]
    assert copy["DestinationRegion"] == "us-west-2" and copy["RetentionPeriod"] == 5
    grant = copy["SnapshotCopyGrantName"]
    grants = sb.client("redshift", "us-west-2").describe_snapshot_copy_grants()["SnapshotCopyGrants"]
    assert grant in {g["SnapshotCopyGrantName"] for g in grants}
    ours = [c["action"] for c in sb.calls()[len(before):] if c["cluster_id"] == "mod-copy"]
    assert ours == ["DisableSnapshotCopy", "ModifyCluster", "EnableSnapshotCopy"]
    with m.store() as store:
        settings = store.get_action(store.require_migration(m.name), "snapshot_copy:mod-copy:settings")
    assert settings is not None and settings.response is not None
    assert settings.response["on"] is True
    assert (settings.response["destination_region"], settings.response["retention_period"]) == ("us-west-2", 5)


@pytest.mark.parametrize("case", ["unknown_cluster", "unknown_key", "disabled_key", "foreign_key"])
def test_bad_input_is_one_line_exit_7_and_changes_nothing(sb: Sandbox, tmp_path: Path, case: str) -> None:
    cluster_id = "mod-bad" if case != "unknown_cluster" else "no-such-cluster"
    if case != "unknown_cluster" and "mod-bad" not in sb.cluster_ids():
        make_cluster(sb, "mod-bad", tables=0)
    key = {"unknown_cluster": sb.info.kms_alias, "unknown_key": "alias/does-not-exist",
           "disabled_key": sb.info.disabled_kms_key_id, "foreign_key": sb.info.other_region_kms_key_arn}[case]
    expected = {"unknown_cluster": "does not exist", "unknown_key": "does not exist", "disabled_key": "not enabled",
                "foreign_key": "is in region"}[case]
    before = sb.calls()
    m = migration(sb, tmp_path, cluster_id, kms_key_id=key)
    m.init()
    result = m.invoke("run", "-c", str(m.config))
    assert result.exit_code == 7, result.stderr + result.stdout
    assert expected in one_line(result.stderr)
    assert sb.calls() == before


def test_hsm_is_refused_for_modify_at_config_time(sb: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "hsm.toml"
    config.write_text('[migration]\nname = "hsm"\nstrategy = "modify"\nregion = "us-east-1"\n'
                      f'store = "sqlite:///{tmp_path}/s.db"\n[source]\ncluster_id = "analytics"\n'
                      'password_env = "X"\n[target]\nencryption = "hsm"\nhsm_client_certificate = "c"\n'
                      'hsm_configuration = "h"\n')
    from typer.testing import CliRunner

    from migrator.cli import app

    result = CliRunner().invoke(app, ["init", str(config)])
    assert result.exit_code == 2
    assert "HSM cannot be enabled by 'modify'" in one_line(result.stderr)
    assert not (tmp_path / "s.db").exists()


def test_already_in_the_requested_state_exits_0_saying_so(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mod-done", tables=0, encrypted=True, kms_key_id=sb.info.kms_key_arn)
    before = sb.calls()
    m = migration(sb, tmp_path, "mod-done")
    m.init()
    result = m.invoke("run", "-c", str(m.config))
    assert result.exit_code == 0, result.stderr
    assert "nothing_to_do" in result.stdout
    assert m.phase() == "nothing_to_do"
    assert sb.calls() == before
    with m.store() as store:
        last = store.events(store.require_migration(m.name), subject="migration")[-1]
    assert "already encrypted with " + sb.info.kms_key_arn in last.detail["reason"]


def test_modify_waits_at_its_gate_showing_the_request_and_estimate_until_approved(sb: Sandbox,
                                                                                  tmp_path: Path) -> None:
    make_cluster(sb, "mod-gate", tables=2)
    m = migration(sb, tmp_path, "mod-gate")
    m.init()
    # Approving before the migration reaches the gate is refused and records nothing.
    early = m.invoke("cutover", "-c", str(m.config))
    assert early.exit_code == 8, early.stderr + early.stdout
    assert "has no cutover gate" in one_line(early.stderr) and "nothing was recorded" in early.stderr

    stopped = m.run()
    assert stopped.returncode == 8, stopped.stderr + stopped.stdout
    line = one_line(stopped.stderr)
    assert f"ModifyCluster mod-gate Encrypted=true KmsKeyId={sb.info.kms_key_arn}" in line
    assert "estimated ~" in line and "--approve-modify" in line
    assert m.phase() == "awaiting_modify" and modify_calls(sb, "mod-gate") == []
    status = m.cli("status", "-c", str(m.config), "--json")
    assert status.returncode == 0, status.stderr
    assert "ModifyCluster mod-gate" in json.loads(status.stdout)["next_step"]

    again = m.run()  # a plain re-run does not pass the gate
    assert again.returncode == 8 and modify_calls(sb, "mod-gate") == []

    passed = m.run("--approve-modify")
    assert passed.returncode == 0, passed.stderr + passed.stdout
    assert m.phase() == "completed" and len(modify_calls(sb, "mod-gate")) == 1
    with m.store() as store:
        row = store.require_migration(m.name)
        events = store.events(row, subject="migration")
    approvals = [e for e in events if e.trigger == "approve:modify"]
    assert len(approvals) == 1 and approvals[0].from_state == "awaiting_modify"
    who = approvals[0].detail
    assert who["user"] and who["host"] and who["at"] and who["via"] == "run --approve-modify"
    consumed = [e for e in events if e.trigger == "approved"]
    assert consumed[0].detail["approval"]["at"] == who["at"]
    assert row.approvals == {}


def test_a_failed_resize_ends_with_a_clear_message_not_a_spin(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mod-fail", tables=1)
    sb.faults.add("resize_fails", match={"cluster_id": "mod-fail"})
    m = migration(sb, tmp_path, "mod-fail")
    m.init()
    result = m.cli("run", "-c", str(m.config), "--approve-modify", timeout=60)
    assert result.returncode == 10, result.stderr + result.stdout
    assert "FAILED" in result.stderr and "unchanged" in result.stderr
    assert m.describe()["Encrypted"] is False
    assert len(modify_calls(sb, "mod-fail")) == 1


def test_an_old_finished_resize_is_not_taken_for_the_new_one(sb: Sandbox, tmp_path: Path) -> None:
    from migrator.strategies.modify import (Wanted, judge_resize, resize_fingerprint, resize_outcome,
                                            target_encryption_type)

    make_cluster(sb, "mod-old", tables=0)
    rs = sb.client("redshift")
    sb.faults.add("resize_fails", match={"cluster_id": "mod-old"})
    rs.modify_cluster(ClusterIdentifier="mod-old", Encrypted=True, KmsKeyId=sb.info.kms_key_arn)
    wait_for(lambda: rs.describe_clusters(ClusterIdentifier="mod-old")["Clusters"][0]["ClusterStatus"]
             == "available", "the failed resize to end")
    old = rs.describe_resize(ClusterIdentifier="mod-old")
    assert old["Status"] == "FAILED"
    cluster = rs.describe_clusters(ClusterIdentifier="mod-old")["Clusters"][0]
    want = Wanted("mod-old", True, sb.info.kms_key_arn)
    before = resize_fingerprint(old)
    # Right after a new ModifyCluster AWS may still show `available` and the old FAILED resize:
    # that is not the new change failing, it has not started yet.
    view = judge_resize(old, before, seen_ours=False)
    assert not view.ours and resize_outcome(cluster, view, want) == "in_progress"
    # The same answer with no record of what was there before is taken as ours, and it failed.
    with pytest.raises(Exception, match="FAILED"):
        resize_outcome(cluster, judge_resize(old, None, seen_ours=False), want)
    # A resize of ours that targets another encryption type is refused.
    from migrator.errors import SecurityError
    with pytest.raises(SecurityError, match="NONE"):
        resize_outcome(cluster, judge_resize({**old, "Status": "IN_PROGRESS", "TargetEncryptionType": "NONE"},
                                             before, seen_ours=False), want)
    assert target_encryption_type(want) == "KMS"
    with pytest.raises(Exception, match="does not document"):
        resize_outcome(cluster, judge_resize({**old, "Status": "CANCELLED"}, before, seen_ours=False), want)


def test_after_an_old_failed_resize_a_new_migration_counts_only_its_own(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "mod-again", tables=1)
    rs = sb.client("redshift")
    sb.faults.add("resize_fails", match={"cluster_id": "mod-again"})
    rs.modify_cluster(ClusterIdentifier="mod-again", Encrypted=True, KmsKeyId=sb.info.kms_key_arn)
    wait_for(lambda: rs.describe_clusters(ClusterIdentifier="mod-again")["Clusters"][0]["ClusterStatus"]
             == "available", "the failed resize to end")
    m = migration(sb, tmp_path, "mod-again")
    m.init()
    result = m.run("--approve-modify")
    assert result.returncode == 0, result.stderr + result.stdout
    assert m.describe()["KmsKeyId"] == sb.info.kms_key_arn
    with m.store() as store:
        row = store.require_migration(m.name)
        progress = [e.detail for e in store.events(row) if e.trigger == "progress"]
        before = store.get_action(row, "modify:resize_before")
    assert before is not None and before.response["resize"]["Status"] == "FAILED"
    assert all(p.get("resize_status") != "FAILED" for p in progress), progress
