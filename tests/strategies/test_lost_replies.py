"""A change AWS made whose answer was lost (a 5xx after it took effect) is retried by botocore,
and the retry meets the first request's effect: ClusterAlreadyExists after a create or restore,
ClusterNotFound or InvalidClusterState after a rename, a snapshot name already taken, a cluster
already rebooting or deleting. Every route must read that as done, not as a failure, and must
never send the change a third time (issue 10 §2.6, 13 §1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator import commands
from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import make_cluster, migration, one_line, wait_for
from tests.strategies.test_rollback_ownership import unload_copy

MUTATIONS = ("CreateCluster", "RestoreFromClusterSnapshot", "CreateClusterSnapshot", "CreateTags", "ModifyCluster",
             "RebootCluster", "DeleteCluster", "EnableLogging")


@pytest.fixture
def lost_replies(sb: Sandbox) -> Iterator[Any]:
    sb.faults.clear()
    yield sb.faults
    sb.faults.clear()


def lose_first_reply_of_every_change(faults: Any, cluster_ids: set[str]) -> None:
    for operation in MUTATIONS:
        for cid in cluster_ids:
            faults.add("reply_lost", match={"operation": operation, "cluster_id": cid})


def lost(sb: Sandbox, cluster_ids: set[str]) -> set[tuple[str, str]]:
    return {(f["attrs"]["operation"], f["attrs"]["cluster_id"]) for f in sb.faults.fired("reply_lost")
            if f["attrs"]["cluster_id"] in cluster_ids}


def accepted(sb: Sandbox, action: str, cluster_id: str) -> list[dict[str, Any]]:
    return [c for c in sb.calls(action) if c["cluster_id"] == cluster_id and not c["error"]]


def test_snapshot_restore_reads_every_lost_reply_as_done(sb: Sandbox, tmp_path: Path, lost_replies: Any) -> None:
    make_cluster(sb, "lr-sr")
    m = migration(sb, tmp_path, "lr-sr", strategy="snapshot-restore", cluster_id="lr-sr-enc")
    m.init()
    names = {"lr-sr", "lr-sr-enc"}
    lose_first_reply_of_every_change(lost_replies, names)
    first = m.run("--assume-frozen")
    assert first.returncode == 8 and m.phase() == "awaiting_cutover", first.stderr
    second = m.run("--approve-cutover")
    assert second.returncode == 8 and m.phase() == "awaiting_decommission", second.stderr
    old = next(c for c in sb.cluster_ids() if c.startswith("lr-sr-unencrypted-"))
    lose_first_reply_of_every_change(lost_replies, {old})
    commands.approve(m.config, "decommission", "test")
    third = m.run()
    assert third.returncode == 0 and m.phase() == "completed", third.stderr
    assert {("RestoreFromClusterSnapshot", "lr-sr-enc"), ("CreateClusterSnapshot", "lr-sr"),
            ("ModifyCluster", "lr-sr"), ("ModifyCluster", "lr-sr-enc"), ("DeleteCluster", old)} <= lost(sb, names | {old})
    assert len(accepted(sb, "RestoreFromClusterSnapshot", "lr-sr-enc")) == 1
    assert len(accepted(sb, "DeleteCluster", old)) == 1
    assert m.describe("lr-sr")["Encrypted"] is True
    # The auditor's report counts each among the faults the migration survived.
    report = m.cli("report", "-c", str(m.config), "--format", "json")
    assert report.returncode == 0, report.stderr
    survived = json.loads(report.stdout)["recoveries"]
    assert survived["counts"]["answer_lost"] >= 5
    assert all("InternalFailure" not in (e["reason"] or "") or e["trigger"] == "answer_lost"
               for e in survived["events"])


def test_unload_copy_create_whose_reply_was_lost_is_the_migrations_own(sb: Sandbox, tmp_path: Path,
                                                                       lost_replies: Any) -> None:
    m = unload_copy(sb, tmp_path, "lr-uc")
    m.init()
    lose_first_reply_of_every_change(lost_replies, {"lr-uc", "lr-uc-enc"})
    first = m.run("--assume-frozen")
    assert first.returncode == 8 and m.phase() == "awaiting_cutover", first.stderr
    second = m.run("--approve-cutover")
    assert second.returncode == 8 and m.phase() == "awaiting_decommission", second.stderr
    assert ("CreateCluster", "lr-uc-enc") in lost(sb, {"lr-uc-enc"})
    assert len(accepted(sb, "CreateCluster", "lr-uc-enc")) == 1


def test_modify_whose_reply_was_lost_follows_the_resize_it_started(sb: Sandbox, tmp_path: Path,
                                                                   lost_replies: Any) -> None:
    make_cluster(sb, "lr-mod")
    m = migration(sb, tmp_path, "lr-mod")
    m.init()
    lose_first_reply_of_every_change(lost_replies, {"lr-mod"})
    done = m.run("--approve-modify")
    assert done.returncode == 0 and m.phase() == "completed", done.stderr
    assert ("ModifyCluster", "lr-mod") in lost(sb, {"lr-mod"})
    encryption_changes = [c for c in accepted(sb, "ModifyCluster", "lr-mod") if "Encrypted" in c["params"]]
    assert len(encryption_changes) == 1
    assert m.describe("lr-mod")["Encrypted"] is True


def test_a_look_alike_made_by_someone_else_in_between_is_never_adopted(sb: Sandbox, tmp_path: Path,
                                                                      lost_replies: Any) -> None:
    """Somebody creates a cluster with the target's name while the tool's CreateCluster is on its
    way: AWS refuses the tool's with ClusterAlreadyExists, and that cluster has no owner tag, so
    the run stops with the refusal instead of migrating into a stranger's cluster."""
    m = unload_copy(sb, tmp_path, "lr-twin")
    m.init()

    def held() -> int:
        return len([f for f in lost_replies.fired("latency") if f["attrs"].get("operation") == "CreateCluster"])

    before = held()
    lost_replies.add("latency", match={"service": "redshift", "operation": "CreateCluster"}, seconds=3.0)
    proc = m.start("run", "-c", str(m.config), "--assume-frozen")
    wait_for(lambda: held() > before, "the tool's CreateCluster to be on its way", proc=proc)
    sb.create_cluster("lr-twin-enc", encrypted=True)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 10, err
    assert "ClusterAlreadyExists" in one_line(err) and "lr-twin-enc" in one_line(err)
    assert m.phase() == "provisioning"
    assert "migrator:migration" not in {t["Key"] for t in m.describe("lr-twin-enc").get("Tags", [])}
    assert m.describe("lr-twin-enc")["ClusterStatus"] in {"creating", "available"}  # untouched
