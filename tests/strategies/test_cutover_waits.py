"""Waits that end (issue 10 §2.6) and no reboot after a rename (issue 20), through the
CLI against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import one_line
from tests.strategies.test_cutover_swap import faults, ready_for_cutover, renames  # noqa: F401 (fixture)


def test_a_target_paused_by_its_schedule_ends_the_wait_with_one_line(
        sb: Sandbox, tmp_path: Path, faults: Any) -> None:  # noqa: F811
    source = "wt-paused"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    m.env["MIGRATOR_WAIT_READY_SECONDS"] = "3600"  # the pause must end the wait, not the deadline
    faults.add("scheduled_pause", match={"cluster_id": target})
    stopped = m.run("--approve-cutover")
    assert stopped.returncode == 7, stopped.stderr
    line = one_line(stopped.stderr)
    assert f"cluster {target} is paused: resume it" in line and "resume-cluster" in line
    assert renames(sb, source, target, old) == []
    # The window needs the new cluster before anything is renamed: it stops where it first waits for it.
    assert m.phase() == "catching_up"

    sb.client("redshift").resume_cluster(ClusterIdentifier=target)
    done = m.run()
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr


def test_cutover_and_rollback_send_no_reboot_after_the_renames(sb: Sandbox, tmp_path: Path) -> None:
    """A rename reboots the cluster and drops its connections (Management Guide, "Renaming
    clusters"): a RebootCluster after it would be a second outage for nothing."""
    source = "wt-reboot"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    done = m.run("--approve-cutover")
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    assert renames(sb, source, target, old) == [(source, old), (target, source)]
    back = m.cli("rollback", "-c", str(m.config))
    assert back.returncode == 0, back.stderr + back.stdout
    assert renames(sb, source, target, old)[2:] == [(source, target), (old, source)]
    assert [c for c in sb.calls("RebootCluster") if c["cluster_id"] in (source, target, old)] == []
