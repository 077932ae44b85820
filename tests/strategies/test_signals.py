"""`migrator cutover`, `decommission --confirm` and `rollback` stopped by SIGTERM or SIGHUP in the
middle of what they do (real processes against the sandbox): the documented exit code, the lease
released, never a stop between the two renames of a swap, and the same command run again
continues what it started until every row is on the production name (issue 25 §6)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import Migration, wait_for
from tests.strategies.test_cutover_crash_anywhere import status_of
from tests.strategies.test_cutover_swap import ready_for_cutover, refused_renames, renames
from tests.strategies.test_rollback_ownership import action

# Each test takes a migration to its cutover gate through the CLI first: 20 to 60 s.
pytestmark = pytest.mark.slow


@pytest.fixture
def faults(sb: Sandbox) -> Iterator[Any]:
    sb.faults.clear()
    yield sb.faults
    sb.faults.clear()


def cutover_holding_the_first_rename(m: Migration, faults: Any) -> subprocess.Popen[str]:
    """`migrator cutover` started with AWS slow to answer the first rename; returns once the
    tool has recorded it and sent it (as test_cutover_swap.hold_first_rename does for `run`)."""
    def held() -> int:
        return len([f for f in faults.fired("latency") if f["attrs"].get("operation") == "ModifyCluster"])

    before = held()
    faults.add("latency", match={"service": "redshift", "operation": "ModifyCluster"}, seconds=2.0)
    proc = m.start("cutover", "-c", str(m.config))
    wait_for(lambda: action(m, "cutover:rename_source") is not None and held() > before,
             "the first rename to be recorded and sent", proc=proc)
    return proc


def stopped(proc: subprocess.Popen[str], code: int, signame: str) -> str:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"stopped: interrupted by {signame}"), err
    return err


def not_in_progress(m: Migration) -> None:
    shown = m.cli("status", "-c", str(m.config), "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["run_holder"] is None and data["run_died"] is None and "in progress" not in data["next_step"], data
    with m.store() as store:
        assert store.get_run_lease(store.require_migration(m.name)) is None


def test_cutover_stopped_during_the_swap_finishes_the_swap_then_continues_when_run_again(
        sb: Sandbox, tmp_path: Path, faults: Any) -> None:
    """SIGTERM while the first rename is in flight and the new cluster refuses the second for a
    while: the swap is completed (not given back, never left half-way), the command stops at the
    next wait, and `migrator cutover` again (not refused) finishes the cutover."""
    source = "sig-swap"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    m.env["MIGRATOR_WAIT_SWAP_SECONDS"] = "60"
    before = m.table_digests(source)
    proc = cutover_holding_the_first_rename(m, faults)
    faults.add("cluster_stuck", times=8, match={"cluster_id": target}, status="modifying")
    proc.send_signal(signal.SIGTERM)
    stopped(proc, 143, "SIGTERM")
    assert refused_renames(sb, target), "the target never refused: the fault missed the swap"
    assert renames(sb, source, target, old) == [(source, old), (target, source)]
    assert m.phase() == "cutting_over"
    not_in_progress(m)

    faults.clear()
    again = m.cli("cutover", "-c", str(m.config))
    assert again.returncode == 8 and m.phase() == "awaiting_decommission", again.stderr
    assert "not waiting at the cutover gate" not in again.stderr
    assert renames(sb, source, target, old) == [(source, old), (target, source)]
    assert m.describe(source)["Encrypted"] is True
    assert m.table_digests(source) == before  # every row on the production name, from the new cluster


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_cutover_stopped_after_the_swap_continues_when_run_again(sb: Sandbox, tmp_path: Path, durations: Any,
                                                                 sig: signal.Signals, code: int) -> None:
    source = f"sig-cut-{code}"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    before = m.table_digests(source)
    durations.reboot = 1.5  # the reboot the rename implies: the command waits for it
    proc = m.start("cutover", "-c", str(m.config))
    wait_for(lambda: status_of("source", "rebooting")(m, source, target, old), "the new cluster to reboot",
             timeout=120, proc=proc)
    proc.send_signal(sig)
    stopped(proc, code, sig.name)
    assert m.phase() == "cutting_over"
    not_in_progress(m)

    again = m.cli("cutover", "-c", str(m.config))
    assert again.returncode == 8 and m.phase() == "awaiting_decommission", again.stderr
    assert renames(sb, source, target, old) == [(source, old), (target, source)]
    # The renames restart the clusters themselves: no reboot of ours on top.
    assert [c for c in sb.calls("RebootCluster") if c["cluster_id"] in (source, old)] == []
    assert m.table_digests(source) == before


def test_decommission_stopped_while_the_old_source_is_deleted_continues_when_run_again(
        sb: Sandbox, tmp_path: Path, durations: Any) -> None:
    source = "sig-dec"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    before = m.table_digests(source)
    done = m.run("--approve-cutover")
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    durations.snapshot = durations.delete = 1.5
    proc = m.start("decommission", "-c", str(m.config), "--confirm")
    wait_for(lambda: status_of("old", "final-snapshot", "deleting")(m, source, target, old),
             "the old source's final snapshot", timeout=120, proc=proc)
    proc.send_signal(signal.SIGTERM)
    stopped(proc, 143, "SIGTERM")
    assert m.phase() == "decommissioning"
    not_in_progress(m)

    again = m.cli("decommission", "-c", str(m.config), "--confirm")
    assert again.returncode == 0 and m.phase() == "completed", again.stderr
    assert [c["cluster_id"] for c in sb.calls("DeleteCluster") if c["cluster_id"] in (source, target, old)
            and not c["error"]] == [old]
    assert m.table_digests(source) == before


def test_rollback_stopped_while_the_names_are_swapped_back_continues_when_run_again(
        sb: Sandbox, tmp_path: Path, durations: Any) -> None:
    """SIGTERM as soon as the first rename back is recorded: the stop waits until the source holds
    the production name again, then `rollback` again finishes the rollback."""
    source = "sig-rb"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    before = m.table_digests(source)
    done = m.run("--approve-cutover")
    assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    durations.rename = durations.reboot = 1.0
    proc = m.start("rollback", "-c", str(m.config))
    wait_for(lambda: action(m, "rollback:rename_target_back") is not None, "the first rename back",
             timeout=120, proc=proc)
    proc.send_signal(signal.SIGTERM)
    stopped(proc, 143, "SIGTERM")
    swap = [(source, old), (target, source)]
    assert renames(sb, source, target, old) == swap + [(source, target), (old, source)]
    assert m.phase() == "awaiting_decommission"
    not_in_progress(m)

    again = m.cli("rollback", "-c", str(m.config))
    assert again.returncode == 0 and m.phase() == "rolled_back", again.stderr
    assert renames(sb, source, target, old) == swap + [(source, target), (old, source)]
    assert m.describe(source)["Encrypted"] is False  # production is the source again
    assert m.table_digests(source) == before
