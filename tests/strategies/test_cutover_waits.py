"""Waits that end (issue 10 §2.6) and a reboot that is not sent twice (issue 13 §5), through the
CLI against the sandbox."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import one_line, wait_for
from tests.strategies.test_cutover_swap import faults, ready_for_cutover, renames  # noqa: F401 (fixture)
from tests.strategies.test_rollback_ownership import action


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


def test_a_reboot_that_happened_before_the_crash_is_not_sent_again(
        sb: Sandbox, tmp_path: Path, faults: Any) -> None:  # noqa: F811
    source = "wt-reboot"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    def reboots_held() -> int:  # faults.log outlives each test: count this test's own
        return len([f for f in faults.fired("latency") if f["attrs"].get("operation") == "RebootCluster"])

    before = reboots_held()
    faults.add("latency", match={"service": "redshift", "operation": "RebootCluster"}, seconds=1.5)
    proc = m.start("run", "-c", str(m.config), "--approve-cutover")
    wait_for(lambda: reboots_held() > before, "the reboot to be sent", proc=proc)
    proc.send_signal(signal.SIGKILL)  # the reboot reaches AWS; its answer never reaches the store
    proc.wait(timeout=30)
    assert action(m, "cutover:reboot_target").status == "pending"
    # This cluster's own reboot (the session's sandbox holds other tests' reboots too) has landed and ended.
    wait_for(lambda: any(c["cluster_id"] == source for c in sb.calls("RebootCluster"))
             and m.describe(source)["ClusterStatus"] == "available", "the reboot to finish")
    done = m.run()
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    assert [c["cluster_id"] for c in sb.calls("RebootCluster") if c["cluster_id"] == source] == [source]
    finished = action(m, "cutover:reboot_target").response
    assert finished["reattached"] is True and finished["seen_in_events"] is True
