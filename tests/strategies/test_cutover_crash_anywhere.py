"""SIGKILL (a real kill of a real `migrator` process) at points inside cutover, rollback and
decommission, through the intermediate statuses AWS shows (renaming, rebooting, final-snapshot,
deleting); after the kill the same command is run again until it finishes. Whatever the point:
one create, exactly the renames needed, no deletion of anything the migration did not create."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.strategies.support import Migration, wait_for
from tests.strategies.test_cutover_swap import ready_for_cutover, renames
from tests.strategies.test_rollback_ownership import action


def recorded(key: str) -> Callable[[Migration, str, str, str], bool]:
    return lambda m, source, target, old: action(m, key) is not None


def status_of(which: str, *statuses: str) -> Callable[[Migration, str, str, str], bool]:
    def check(m: Migration, source: str, target: str, old: str) -> bool:
        name = {"source": source, "target": target, "old": old}[which]
        found = m.sb.client("redshift").describe_clusters()["Clusters"]
        return any(c["ClusterIdentifier"] == name and c["ClusterStatus"] in statuses for c in found)
    return check


# (operation, kill point, when to kill)
POINTS = [
    ("cutover", "first rename recorded", recorded("cutover:rename_source")),
    ("cutover", "old source renaming", status_of("old", "renaming")),
    ("cutover", "new cluster renaming to the production name", status_of("source", "renaming")),
    ("cutover", "new cluster rebooting after its rename", status_of("source", "rebooting")),
    ("rollback", "rename back recorded", recorded("rollback:rename_target_back")),
    ("rollback", "source renaming back", status_of("source", "renaming")),
    ("rollback --delete-target", "delete recorded", recorded("rollback:delete_target")),
    ("decommission", "old source final-snapshot", status_of("old", "final-snapshot")),
    ("decommission", "old source deleting", status_of("old", "deleting")),
]


#: Points after which the command waits for nothing more (a rollback does not wait for the
#: deletion it asked for): the call's answer is held back, so the kill lands while the request
#: may or may not have reached AWS, not after the command already finished.
HELD_ANSWERS = {"delete recorded": "DeleteCluster"}


def command(operation: str, m: Migration) -> list[str]:
    if operation == "cutover":
        return ["run", "-c", str(m.config), "--approve-cutover"]
    if operation == "decommission":
        return ["decommission", "-c", str(m.config), "--confirm"]
    if operation == "rollback --delete-target":
        return ["rollback", "-c", str(m.config), "--delete-target", "--confirm"]
    return ["rollback", "-c", str(m.config)]


@pytest.mark.slow
@pytest.mark.parametrize(("operation", "point", "when"), POINTS, ids=[f"{o}: {p}" for o, p, _ in POINTS])
def test_sigkill_anywhere(sb: Sandbox, tmp_path: Path, durations: Any, operation: str, point: str,
                          when: Callable[[Migration, str, str, str], bool]) -> None:
    source = f"ca{POINTS.index((operation, point, when))}"
    m, target, old = ready_for_cutover(sb, tmp_path, source)
    m.env.update({"MIGRATOR_WAIT_READY_SECONDS": "120", "MIGRATOR_WAIT_SWAP_SECONDS": "60"})
    if operation != "cutover":
        done = m.run("--approve-cutover")
        assert done.returncode == 8 and m.phase() == "awaiting_decommission", done.stderr
    # Long enough statuses to land a kill inside each of them.
    durations.rename = durations.reboot = durations.snapshot = durations.delete = 1.5
    if point in HELD_ANSWERS:
        m.sb.faults.add("latency", match={"operation": HELD_ANSWERS[point]}, seconds=10)
    proc = m.start(*command(operation, m))
    try:
        wait_for(lambda: when(m, source, target, old), point, timeout=120, proc=proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL, "the kill landed after the command had finished"
    finally:
        m.sb.faults.clear()
    # After a kill the approval is on record: a decommission resumes with a plain `run`.
    resume = ["run", "-c", str(m.config)] if operation == "decommission" else command(operation, m)
    for _ in range(3):
        again = m.cli(*resume, timeout=300)
        if again.returncode in (0, 8):
            break
    assert again.returncode in (0, 8), again.stderr

    names = (source, target, old)
    swap = [(source, old), (target, source)]
    expected = {"cutover": swap, "decommission": swap,
                "rollback": swap + [(source, target), (old, source)],
                "rollback --delete-target": swap + [(source, target), (old, source)]}[operation]
    assert renames(sb, *names) == expected
    assert len([c for c in sb.calls("CreateCluster") if c["cluster_id"] == target]) == 1
    deleted = sorted(c["cluster_id"] for c in sb.calls("DeleteCluster") if c["cluster_id"] in names and not c["error"])
    assert deleted == {"cutover": [], "rollback": [], "rollback --delete-target": [target],
                       "decommission": [old]}[operation]
    phase = {"cutover": "awaiting_decommission", "decommission": "completed", "rollback": "rolled_back",
             "rollback --delete-target": "rolled_back"}[operation]
    assert m.phase() == phase
    if operation.startswith("rollback"):
        assert m.describe(source)["Encrypted"] is False  # production is the source again
