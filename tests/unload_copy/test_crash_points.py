"""Crashes exactly between a remote effect and the store recording it (failpoints),
each followed by a resume that ends with every row exactly once and nothing redone
that had already committed."""

from __future__ import annotations

import json

import pytest

from tests.unload_copy.conftest import Migration


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
    if point == "after_unload":
        requeued = [e for e in events if e["trigger"] == "requeue" and e["to_state"] == "pending"]
        assert len(requeued) == 1
        table = requeued[0]["subject"]
        assert sum(1 for e in events if e["subject"] == table and e["trigger"] == "start_unload") == 2
    if point == "after_load_commit":
        reconciled = [e for e in events if e["trigger"] == "reconcile_load"]
        assert len(reconciled) == 1 and reconciled[0]["to_state"] == "loaded"
        table = reconciled[0]["subject"]
        # The committed load was recorded, not redone.
        assert sum(1 for e in events if e["subject"] == table and e["trigger"] == "start_load") == 1
