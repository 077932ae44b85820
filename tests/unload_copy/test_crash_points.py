"""Crashes exactly between a remote effect and the store recording it (failpoints),
each followed by a resume that ends with every row exactly once and nothing redone
that had already committed."""

from __future__ import annotations

import json

import pytest

from tests.unload_copy.conftest import Migration

# Whole migrations through the CLI against the sandbox: minutes, not seconds.
pytestmark = pytest.mark.slow


def _events(m: Migration) -> list[dict]:  # type: ignore[type-arg]
    return list(json.loads(m.cli("history", "--json").stdout)["events"])


@pytest.mark.parametrize("point", ["after_remote_call", "after_unload", "after_load_commit"])
def test_crash_between_effect_and_record(migration: Migration, point: str) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    m.env["MIGRATOR_FAILPOINT"] = point
    crashed = m.cli("run", "--assume-frozen")
    assert crashed.returncode == -9, crashed.stderr
    del m.env["MIGRATOR_FAILPOINT"]
    resumed = m.cli("run", "--assume-frozen")
    assert resumed.returncode == 8, resumed.stderr
    assert m.table_digests(m.target) == before
    assert len([c for c in m.sb.calls("CreateCluster") if c.get("cluster_id") == m.target]) == 1
    events = _events(m)
    if point == "after_remote_call":
        provision = [e for e in events if e["subject"] == "action:provision-target"]
        assert provision[-1]["trigger"] == "action_finished" and provision[-1]["detail"]["response"]["reattached"]
    def count(subject: str, trigger: str) -> int:
        return sum(1 for e in events if e["subject"] == subject and e["trigger"] == trigger)

    if point == "after_unload":
        # Every table in flight at the kill (other workers' too) was handed back and unloaded again.
        requeued = [e["subject"] for e in events if e["trigger"] == "requeue" and e["to_state"] == "pending"]
        assert requeued and all(count(t, "start_unload") == 2 for t in requeued)
    if point == "after_load_commit":
        reconciled = {e["subject"]: e["to_state"] for e in events if e["trigger"] == "reconcile_load"}
        committed = [t for t, state in reconciled.items() if state == "loaded"]
        # The load that committed was recorded from its marker, not redone; others loaded again.
        assert committed and all(count(t, "start_load") == 1 for t in committed)
        assert all(count(t, "start_load") == 2 for t, state in reconciled.items() if state == "unloaded")
