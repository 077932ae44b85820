"""Table parts through the CLI against the sandbox: a big table is split by ranges of a column,
each part unloaded, loaded exactly once (its own marker) and compared on its own."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.harness import Migration

pytestmark = pytest.mark.slow


def _events(m: Migration) -> list[dict]:  # type: ignore[type-arg]
    return list(json.loads(m.cli("history", "--json").stdout)["events"])


def test_parted_tables_copy_identical_each_part_loaded_once(parted: Migration) -> None:
    m = parted
    before = m.table_digests(m.source)
    m.init()
    done = m.cli("run", "--assume-frozen")
    assert done.returncode == 8, done.stderr
    assert m.table_digests(m.target) == before
    with m.store() as store:
        migration = store.require_migration(m.name)
        parts = store.migration_parts(migration)
        tables = {t.id: t for t in store.list_tables(migration)}
        rehearsal = store.get_action(migration, "rehearsal")
    per_table = Counter(p.table_id for p in parts)
    # The rehearsal sampled one part of the largest table, not all of it, and scaled by its size.
    assert rehearsal is not None and rehearsal.response is not None
    sample = rehearsal.response
    assert sample["parts"] >= 2 and 0 < sample["rows"] < sample["table_rows"]
    assert sample["estimated_freeze_seconds"] > 0
    assert per_table and max(per_table.values()) >= 8, per_table
    events = _events(m)
    loaded = Counter((e["subject"], e["detail"]["part"]) for e in events if e["trigger"] == "part_loaded")
    assert set(loaded.values()) == {1}
    assert len(loaded) == len(parts)
    assert sum(e["detail"]["rows"] for e in events if e["trigger"] == "part_loaded") == sum(
        tables[t].source_rows for t in per_table)
    statements = [e["detail"]["statement"] for e in events if e["trigger"] == "statement"
                  and "part" in e["detail"] and e["detail"]["kind"] == "unload"]
    assert statements and all("PARALLEL ON" in s and "GZIP" not in s for s in statements)


def test_status_shows_parts_done_of_total(parted: Migration) -> None:
    m = parted
    m.init()
    assert m.cli("run", "--assume-frozen").returncode == 8
    data = json.loads(m.cli("status", "--json", "--tables").stdout)
    with_parts = [t for t in data["tables"] if t["parts_total"]]
    assert with_parts and all(t["parts_done"] == t["parts_total"] >= 2 for t in with_parts)
    assert {t["table"]: {"parts_total": t["parts_total"], "parts_done": t["parts_done"]}
            for t in with_parts} == data["parts"]
    shown = m.cli("status", "--tables").stdout
    total = with_parts[0]["parts_total"]
    assert f"{total}/{total}" in shown
