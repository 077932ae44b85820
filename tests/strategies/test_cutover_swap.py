"""Cutover never leaves the production name without a cluster for longer than the swap itself
(issue 13 §4), through the CLI against the sandbox, with the stuck-status fault at every point
around the two renames: before the first (target or source busy), between them (the target
refuses the second rename for a while, or until the deadline), after them (the old source or
the renamed target busy), and the give-back itself refused; plus a SIGKILL between the renames."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.sandbox.client import SandboxClient as Sandbox
from migrator.strategies.cutover import old_name_for
from tests.strategies.support import Migration, one_line, wait_for
from tests.strategies.test_rollback_ownership import action, unload_copy

#: Deadlines short enough for a test (the defaults are hours for readiness, 15 minutes for the swap).
SHORT_WAITS = {"MIGRATOR_WAIT_READY_SECONDS": "4", "MIGRATOR_WAIT_SWAP_SECONDS": "4"}


@pytest.fixture
def faults(sb: Sandbox) -> Iterator[Any]:
    sb.faults.clear()
    yield sb.faults
    sb.faults.clear()


def renames(sb: Sandbox, *names: str) -> list[tuple[str, str]]:
    """Renames AWS accepted, in order, among ``names``."""
    return [(c["cluster_id"], c["params"]["NewClusterIdentifier"]) for c in sb.calls("ModifyCluster")
            if c["params"].get("NewClusterIdentifier") and c["cluster_id"] in names and not c["error"]]


def refused_renames(sb: Sandbox, cluster_id: str) -> list[dict[str, Any]]:
    return [c for c in sb.calls("ModifyCluster") if c["cluster_id"] == cluster_id and c["error"]]


def ready_for_cutover(sb: Sandbox, tmp: Path, source: str) -> tuple[Migration, str, str]:
    m = unload_copy(sb, tmp, source)
    m.init()
    first = m.run("--assume-frozen")
    assert first.returncode == 8 and m.phase() == "awaiting_cutover", first.stderr
    m.env.update(SHORT_WAITS)
    return m, f"{source}-enc", old_name_for(source)


def status_first_line(m: Migration) -> str:
    shown = m.cli("status", "-c", str(m.config))
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()[0]


def hold_first_rename(m: Migration, faults: Any) -> subprocess.Popen[str]:
    """Start the cutover with AWS slow to answer the first rename, and return once the tool has
    recorded it: a fault added now lands between the two renames."""
    def held() -> int:  # faults.log outlives each test: count the firings since this call
        return len([f for f in faults.fired("latency") if f["attrs"].get("operation") == "ModifyCluster"])

    before = held()
    faults.add("latency", match={"service": "redshift", "operation": "ModifyCluster"}, seconds=2.0)
    proc = m.start("run", "-c", str(m.config), "--approve-cutover")
    wait_for(lambda: action(m, "cutover:rename_source") is not None and held() > before,
             "the first rename to be recorded and sent", proc=proc)
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=180)
    return proc.returncode, err


@pytest.mark.parametrize("busy", ["target", "source"])
def test_busy_before_the_swap_renames_nothing(sb: Sandbox, tmp_path: Path, faults: Any, busy: str) -> None:
    source = f"sw-pre-{busy[:3]}"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    faults.add("cluster_stuck", times=-1, match={"cluster_id": target if busy == "target" else source},
               status="modifying")
    refused = m.run("--approve-cutover")
    assert refused.returncode == 9, refused.stderr
    line = one_line(refused.stderr)
    assert "timed out" in line and (target if busy == "target" else source) in line
    if busy == "target":
        assert "nothing pending" in line
    assert renames(sb, source, target, old) == []
    # A busy target is seen when the cutover window opens (it copies into it), a busy source at the swap.
    assert m.phase() == ("catching_up" if busy == "target" else "cutting_over")
    assert "PRODUCTION" not in status_first_line(m)

    faults.clear()
    done = m.run()
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    assert renames(sb, source, target, old) == [(source, old), (target, source)]


def test_a_second_rename_refused_for_a_while_is_retried(sb: Sandbox, tmp_path: Path, faults: Any) -> None:
    source = "sw-brief"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    m.env["MIGRATOR_WAIT_SWAP_SECONDS"] = "60"
    proc = hold_first_rename(m, faults)
    faults.add("cluster_stuck", times=8, match={"cluster_id": target}, status="modifying")
    code, err = finish(proc)
    assert code == 8 and m.phase() == "awaiting_decommission", err
    assert refused_renames(sb, target), "the target never refused: the fault missed the swap"
    assert renames(sb, source, target, old) == [(source, old), (target, source)]


def test_a_second_rename_refused_until_the_deadline_gives_the_name_back(
        sb: Sandbox, tmp_path: Path, faults: Any) -> None:
    source = "sw-giveback"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    proc = hold_first_rename(m, faults)
    faults.add("cluster_stuck", times=-1, match={"cluster_id": target}, status="modifying")
    code, err = finish(proc)
    assert code == 10, err
    line = one_line(err)
    assert f"the source was renamed back to {source}" in line and "production is as before" in line
    assert renames(sb, source, target, old) == [(source, old), (old, source)]
    assert m.describe(source)["Encrypted"] is False  # the source holds the production name again
    assert "PRODUCTION" not in status_first_line(m)

    faults.clear()
    again = m.run()
    assert again.returncode == 8 and m.phase() == "awaiting_decommission", again.stderr
    assert renames(sb, source, target, old) == [(source, old), (old, source), (source, old), (target, source)]
    assert m.describe(source)["Encrypted"] is True


def test_give_back_refused_too_says_so_first_in_status_and_rollback_repairs(
        sb: Sandbox, tmp_path: Path, faults: Any) -> None:
    source = "sw-nogive"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    faults.add("cluster_stuck", times=-1, match={"cluster_id": old}, status="rebooting")
    proc = hold_first_rename(m, faults)
    faults.add("cluster_stuck", times=-1, match={"cluster_id": target}, status="modifying")
    code, err = finish(proc)
    assert code == 10, err
    assert f"PRODUCTION NAME {source} HAS NO CLUSTER" in one_line(err)
    assert renames(sb, source, target, old) == [(source, old)]
    first = status_first_line(m)
    assert f"PRODUCTION NAME {source} HAS NO CLUSTER" in first and "migrator rollback" in first

    faults.clear()
    back = m.cli("rollback", "-c", str(m.config))
    assert back.returncode == 0, back.stderr
    assert renames(sb, source, target, old) == [(source, old), (old, source)]
    assert m.describe(source)["Encrypted"] is False and m.describe(target)["ClusterStatus"] == "available"
    assert "PRODUCTION" not in status_first_line(m)


@pytest.mark.parametrize("busy", ["old source", "renamed target"])
def test_busy_after_the_renames(sb: Sandbox, tmp_path: Path, faults: Any, busy: str) -> None:
    source = "sw-post-old" if busy == "old source" else "sw-post-new"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    if busy == "old source":
        # The old source stuck after its rename does not hold up the swap (its name is free at once).
        faults.add("cluster_stuck", times=-1, match={"cluster_id": old}, status="rebooting")
        done = m.run("--approve-cutover")
        assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    else:
        proc = hold_first_rename(m, faults)
        wait_for(lambda: action(m, "cutover:rename_target") is not None, "the second rename", proc=proc)
        faults.add("cluster_stuck", times=-1, match={"cluster_id": source}, status="modifying")
        code, err = finish(proc)
        assert code == 9 and "timed out" in one_line(err) and source in err, err
        assert "PRODUCTION" not in status_first_line(m)
        faults.clear()
        done = m.run()
        assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    assert renames(sb, source, target, old) == [(source, old), (target, source)]


def test_sigkill_between_the_renames_status_says_it_first_and_a_run_finishes(
        sb: Sandbox, tmp_path: Path, faults: Any) -> None:
    source = "sw-kill"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    proc = hold_first_rename(m, faults)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    first = status_first_line(m)
    assert f"PRODUCTION NAME {source} MAY HAVE NO CLUSTER" in first and "migrator run" in first
    wait_for(lambda: renames(sb, source, target, old) == [(source, old)], "AWS to apply the rename in flight")
    done = m.run()
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    assert renames(sb, source, target, old) == [(source, old), (target, source)]
    assert "PRODUCTION" not in status_first_line(m)
