"""`strategy = "snapshot-restore"` through the CLI: snapshot, restore with the key, validate,
cutover behind its gate, decommission behind its own; crashes, rollback and bad input."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from migrator import commands
from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import Migration, make_cluster, migration, one_line, wait_for


def calls_for(sb: Sandbox, action: str, cluster_id: str) -> list[dict[str, Any]]:
    return [c for c in sb.calls(action) if c["cluster_id"] == cluster_id]


def renames(sb: Sandbox, source: str) -> list[tuple[str, str]]:
    return [(c["cluster_id"], c["params"]["NewClusterIdentifier"]) for c in sb.calls("ModifyCluster")
            if c["params"].get("NewClusterIdentifier") and source in c["cluster_id"] and not c["error"]]


def approve(m: Migration, gate: str) -> None:
    """What `migrator decommission --confirm` records (accepted only at the gate)."""
    commands.approve(m.config, gate, "test")


def action(m: Migration, key: str) -> Any:
    with m.store() as store:
        return store.get_action(store.require_migration(m.name), key)


def test_end_to_end_with_observed_write_freeze(sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from migrator.errors import UsageError

    make_cluster(sb, "sr-e2e")
    m = migration(sb, tmp_path, "sr-e2e", strategy="snapshot-restore", cluster_id="sr-e2e-enc")
    # The seeding's writes must leave the look-back window before the guard passes; a window of a few
    # seconds (several of the sandbox's half-second datapoints) is observed the same way as a minute.
    m.env["MIGRATOR_FREEZE_QUIET_SECONDS"] = "4"
    m.init()
    first = m.run()
    assert first.returncode == 8, first.stderr + first.stdout
    assert "cutover approval" in first.stderr
    assert m.phase() == "awaiting_cutover"
    restored = m.describe("sr-e2e-enc")
    assert restored["Encrypted"] is True and restored["KmsKeyId"] == sb.info.kms_key_arn
    assert restored["NodeType"] == m.describe()["NodeType"]
    assert m.describe()["Encrypted"] is False  # the source is untouched before cutover
    snapshot = action(m, "create_snapshot").request["SnapshotIdentifier"]
    assert snapshot == "migrator-m-sr-e2e-sr-e2e"
    with m.store() as store:
        triggers = [e.trigger for e in store.events(store.require_migration(m.name))]
    assert "write_freeze_observed" in triggers and "write_freeze_assumed" not in triggers

    second = m.run("--approve-cutover")
    assert second.returncode == 8, second.stderr + second.stdout
    assert "decommission" in second.stderr
    assert m.phase() == "awaiting_decommission"
    swapped = m.describe("sr-e2e")
    assert swapped["Encrypted"] is True and swapped["KmsKeyId"] == sb.info.kms_key_arn
    old_name = action(m, "cutover:plan").response["old_name"]
    assert old_name.startswith("sr-e2e-unencrypted-20")
    assert m.describe(old_name)["Encrypted"] is False
    # the data answers through the original name, as clients will see it
    conn = sb.connect("sr-e2e")
    try:
        cursor = conn.cursor()
        cursor.execute("select count(*) from svv_table_info")
        assert cursor.fetchone()[0] >= 3
    finally:
        conn.close()

    approve(m, "decommission")
    third = m.run()
    assert third.returncode == 0, third.stderr + third.stdout
    assert m.phase() == "completed"
    names = {c["ClusterIdentifier"] for c in sb.client("redshift").describe_clusters()["Clusters"]}
    assert old_name not in names and "sr-e2e" in names and "sr-e2e-enc" not in names
    final = sb.client("redshift").describe_cluster_snapshots(SnapshotIdentifier=f"{old_name}-final")["Snapshots"]
    assert len(final) == 1
    assert len(calls_for(sb, "RestoreFromClusterSnapshot", "sr-e2e-enc")) == 1
    assert renames(sb, "sr-e2e") == [("sr-e2e", old_name), ("sr-e2e-enc", "sr-e2e")]

    for key, value in m.env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(UsageError, match="cannot be swapped back") as refused:
        commands.rollback(m.config)
    assert f"{old_name}-final" in (refused.value.hint or "")
    assert m.phase() == "completed"


def test_sigkill_while_restoring_resumes_with_one_restore_then_rollback_before_cutover(
        sb: Sandbox, tmp_path: Path, durations: Any, monkeypatch: pytest.MonkeyPatch) -> None:

    make_cluster(sb, "sr-crash", tables=2)
    durations.create = 3.0
    m = migration(sb, tmp_path, "sr-crash", strategy="snapshot-restore", cluster_id="sr-crash-enc")
    m.init()
    proc = m.start("run", "-c", str(m.config), "--assume-frozen")
    try:
        wait_for(lambda: m.phase() == "restoring" and calls_for(sb, "RestoreFromClusterSnapshot", "sr-crash-enc")
                 and m.describe("sr-crash-enc")["ClusterStatus"] == "creating", "the restore to run", proc=proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    result = m.run("--assume-frozen")
    assert result.returncode == 8, result.stderr + result.stdout
    assert m.phase() == "awaiting_cutover"
    assert len(calls_for(sb, "RestoreFromClusterSnapshot", "sr-crash-enc")) == 1
    assert len(calls_for(sb, "CreateClusterSnapshot", "sr-crash")) == 1
    with m.store() as store:
        assumed = [e for e in store.events(store.require_migration(m.name)) if e.trigger == "write_freeze_assumed"]
    assert assumed and assumed[0].detail["via"] == "--assume-frozen"

    for key, value in m.env.items():
        monkeypatch.setenv(key, value)
    result = commands.rollback(m.config, delete_target=True, confirm=True)
    done = result.done
    assert result.phase == "rolled_back" and done["target_deleted"] == "sr-crash-enc"
    assert m.phase() == "rolled_back"
    assert m.describe("sr-crash")["Encrypted"] is False
    assert renames(sb, "sr-crash") == []
    assert calls_for(sb, "DeleteCluster", "sr-crash-enc")


def test_sigkill_between_the_renames_resumes_then_rollback_swaps_back(
        sb: Sandbox, tmp_path: Path, durations: Any, monkeypatch: pytest.MonkeyPatch) -> None:

    make_cluster(sb, "sr-cut", tables=1)
    sb.client("redshift").enable_snapshot_copy(ClusterIdentifier="sr-cut", DestinationRegion="us-west-2",
                                               RetentionPeriod=2)
    m = migration(sb, tmp_path, "sr-cut", strategy="snapshot-restore", cluster_id="sr-cut-enc",
                  handle_snapshot_copy=True)
    m.init()
    assert m.run("--assume-frozen").returncode == 8
    # The process kills itself exactly between the two renames (after the first is recorded).
    m.env["MIGRATOR_FAILPOINT"] = "between_renames"
    proc = m.start("run", "-c", str(m.config), "--approve-cutover")
    proc.communicate(timeout=300)
    del m.env["MIGRATOR_FAILPOINT"]
    assert proc.returncode == -signal.SIGKILL
    assert action(m, "cutover:rename_source").status == "done"  # type: ignore[union-attr]
    assert action(m, "cutover:rename_target") is None
    durations.rename = 0.2
    result = m.run()
    assert result.returncode == 8, result.stderr + result.stdout
    assert m.phase() == "awaiting_decommission"
    old_name = action(m, "cutover:plan").response["old_name"]
    assert renames(sb, "sr-cut") == [("sr-cut", old_name), ("sr-cut-enc", "sr-cut")]
    copy = m.describe("sr-cut")["ClusterSnapshotCopyStatus"]
    assert copy["DestinationRegion"] == "us-west-2" and copy["SnapshotCopyGrantName"]
    assert m.describe(old_name).get("ClusterSnapshotCopyStatus") is None

    for key, value in m.env.items():
        monkeypatch.setenv(key, value)
    done = commands.rollback(m.config).done
    assert done["names_swapped_back"] is True and m.phase() == "rolled_back"
    assert m.describe("sr-cut")["Encrypted"] is False
    assert m.describe("sr-cut-enc")["Encrypted"] is True
    assert m.describe("sr-cut")["ClusterSnapshotCopyStatus"]["DestinationRegion"] == "us-west-2"


def test_non_ra3_is_refused_in_one_line_and_nothing_changes(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "sr-dc2", tables=0, node_type="dc2.large")
    before = sb.calls()
    m = migration(sb, tmp_path, "sr-dc2", strategy="snapshot-restore", cluster_id="sr-dc2-enc",
                  kms_key_id=sb.info.disabled_kms_key_id)
    m.init()
    result = m.invoke("run", "-c", str(m.config), "--assume-frozen")
    assert result.exit_code == 7
    line = one_line(result.stderr)
    assert "only for RA3" in line and "dc2.large" in line
    assert "not enabled" in line  # every problem at once
    assert sb.calls() == before


def test_writes_during_the_freeze_window_stop_the_run(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "sr-busy", tables=1)
    conn = sb.connect("sr-busy", autocommit=True)
    try:
        conn.cursor().execute("create table public.busy (id int)")
        conn.cursor().execute("insert into public.busy values (1), (2)")
    finally:
        conn.close()
    cloudwatch = sb.client("cloudwatch")

    def writes_seen() -> bool:
        from datetime import UTC, datetime, timedelta

        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Redshift", MetricName="WriteIOPS", StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Maximum"],
            Dimensions=[{"Name": "ClusterIdentifier", "Value": "sr-busy"}])["Datapoints"]
        return any(p["Maximum"] > 0 for p in points)

    wait_for(writes_seen, "CloudWatch to show the writes")
    m = migration(sb, tmp_path, "sr-busy", strategy="snapshot-restore", cluster_id="sr-busy-enc")
    m.env.update(MIGRATOR_FREEZE_QUIET_SECONDS="120", MIGRATOR_FREEZE_TIMEOUT_SECONDS="1")
    m.init()
    before = sb.calls()
    result = m.run()
    assert result.returncode == 7, result.stderr + result.stdout
    line = one_line(result.stderr)
    assert "write freeze not reached on sr-busy" in line and "WriteIOPS up to" in line
    assert "--assume-frozen" in line
    assert m.phase() == "awaiting_freeze"
    assert sb.calls() == before


def test_restore_sends_encrypted_with_the_key_and_tags_the_new_cluster_as_ours(sb: Sandbox, tmp_path: Path) -> None:
    make_cluster(sb, "sr-tag", tables=1)
    arn = f"arn:aws:redshift:{sb.info.region}:{sb.client('sts').get_caller_identity()['Account']}:cluster:sr-tag"
    sb.client("redshift").create_tags(ResourceName=arn, Tags=[{"Key": "team", "Value": "bi"}])
    m = migration(sb, tmp_path, "sr-tag", strategy="snapshot-restore", cluster_id="sr-tag-enc")
    m.init()
    result = m.run("--assume-frozen")
    assert result.returncode == 8, result.stderr + result.stdout
    sent = calls_for(sb, "RestoreFromClusterSnapshot", "sr-tag-enc")
    assert len(sent) == 1 and sent[0]["params"]["Encrypted"] in ("true", True)
    assert sent[0]["params"]["KmsKeyId"] == sb.info.kms_key_arn
    tags = {t["Key"]: t["Value"] for t in m.describe("sr-tag-enc").get("Tags", [])}
    assert tags["migrator:migration"] == m.name and tags["team"] == "bi"


def test_a_write_after_the_snapshot_refuses_the_cutover_and_renames_nothing(sb: Sandbox, tmp_path: Path) -> None:
    """A snapshot cannot be caught up: a write to the source after it is found at the gate (and just
    before the rename), the cutover refused in one line, the names left as they were."""
    make_cluster(sb, "sr-late", tables=1)
    m = migration(sb, tmp_path, "sr-late", strategy="snapshot-restore", cluster_id="sr-late-enc")
    m.init()
    gate = m.run("--assume-frozen")
    assert gate.returncode == 8, gate.stderr + gate.stdout
    conn = sb.connect("sr-late", autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("create table late_writes (v int)")
        cur.execute("insert into late_writes values (1)")
    finally:
        conn.close()
    before = [c for c in sb.calls("ModifyCluster") if "NewClusterIdentifier" in c.get("params", {})]
    refused = m.cli("cutover")
    assert refused.returncode == 7, refused.stderr
    line = one_line(refused.stderr)
    assert "cutover refused" in line and "late_writes" in line and "written after the snapshot" in line
    assert [c for c in sb.calls("ModifyCluster") if "NewClusterIdentifier" in c.get("params", {})] == before
    assert m.phase() == "awaiting_cutover"


def test_a_restored_cluster_refusing_the_target_password_says_it_keeps_the_sources(sb: Sandbox,
                                                                                   tmp_path: Path) -> None:
    """Tried as a new user would (issue 20): a copy of unload-copy.toml with the strategy changed
    failed with a bare "password authentication failed"."""
    make_cluster(sb, "sr-pw", tables=1)
    m = migration(sb, tmp_path, "sr-pw", strategy="snapshot-restore", cluster_id="sr-pw-enc",
                  password_env="SR_TARGET_PASSWORD")
    m.env["SR_TARGET_PASSWORD"] = "NotTheSourcesPassw0rd"
    m.init()
    failed = m.run("--assume-frozen")
    assert failed.returncode == 2, failed.stderr + failed.stdout
    line = one_line(failed.stderr)
    assert "keeps the snapshot's master user and password" in line and "sr-pw" in line
    assert "target.password_env" in line
