"""A big table with no column that makes ranges cheap (only VARCHAR and BOOLEAN columns) is
unloaded once with many files and its files are loaded in groups: each group its own COPY from
its own manifest, its own load marker and checkpoint. Killed once (SIGKILL) or stopped (SIGTERM)
in the middle of the group loads, the copy resumes and finishes identical to the source, each
group loaded exactly once."""

from __future__ import annotations

import json
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.parts.conftest import TEXT_ONLY_TABLE, signal_after_loads, text_only_migration

pytestmark = pytest.mark.slow

ROWS = 400


@pytest.mark.parametrize(("sig", "exit_code", "redone"), [
    (signal.SIGKILL, -signal.SIGKILL, 1),  # the group load in flight may be redone
    (signal.SIGTERM, 143, 0),  # a clean stop: the load in flight finishes and is recorded
], ids=["SIGKILL", "SIGTERM"])
def test_text_only_table_loads_in_file_groups_and_survives_a_kill(sandbox: SandboxClient, tmp_path: Path,
                                                                  sig: signal.Signals, exit_code: int,
                                                                  redone: int) -> None:
    m = text_only_migration(sandbox, tmp_path, rows=ROWS, part_size="100 rows")
    seed = random.randrange(1 << 30)
    print(f"file groups kill seed: {seed}")
    rng = random.Random(seed)
    before = m.table_digests(m.source)
    m.init()
    # Slow each COPY so the kill lands inside a group's load (an open transaction).
    m.sb.faults.add("latency", times=-1, match={"statement": "copy", "cluster": m.target}, seconds=0.3)
    try:
        sent, code = signal_after_loads(m, sig, loads=rng.randint(1, 2), delay=rng.uniform(0.0, 0.3))
        assert sent and code == exit_code, code
        final = m.cli("run", "--assume-frozen")
        assert final.returncode == 8, final.stderr
    finally:
        m.sb.faults.clear()
    assert m.table_digests(m.target) == before
    with m.store() as store:
        migration = store.require_migration(m.name)
        task = store.find_table(migration, "public", TEXT_ONLY_TABLE)
        assert task is not None
        parts = store.list_parts(task.id)
        events = store.events(migration)
    # Parts are groups of the files of ONE UNLOAD (8 files, one per source slice, in 4 groups of
    # 2 = the target's slices), by file index, not by a column.
    assert len(parts) >= 4 and all(p.part_column is None for p in parts), parts
    assert [(p.lower_bound, p.upper_bound) for p in parts] == [("0", "2"), ("2", "4"), ("4", "6"), ("6", "8")]
    unloads = [e.detail["statement"] for e in events if e.trigger == "statement" and e.subject == task.subject
               and e.detail["kind"] == "unload"]
    assert len(unloads) == 1 and "PARALLEL ON" in unloads[0] and "WHERE" not in unloads[0].upper(), unloads
    # Each group: its own COPY from its own manifest, loaded exactly once, its rows those of its files.
    copies = [e.detail for e in events if e.trigger == "statement" and e.subject == task.subject
              and e.detail["kind"] == "copy"]
    manifests = {p.manifest_url for p in parts}
    assert len(manifests) == len(parts) and all("/groups/part-" in (u or "") for u in manifests)
    assert {d["part"] for d in copies} == {p.part_no for p in parts}
    assert all(any(p.manifest_url in d["statement"] for d in copies if d["part"] == p.part_no) for p in parts)
    loaded = Counter(e.detail["part"] for e in events if e.trigger == "part_loaded" and e.subject == task.subject)
    assert loaded == Counter({p.part_no: 1 for p in parts}), loaded
    # A table's group loads take turns, so a kill costs at most the one load in flight; a stop none.
    per_part = Counter(d["part"] for d in copies)
    assert sum(n - 1 for n in per_part.values()) <= redone, per_part
    assert all(p.rows_loaded == p.rows_unloaded == p.est_rows for p in parts)
    assert sum(p.rows_loaded or 0 for p in parts) == ROWS
    # Validated as a whole table: our own fingerprint (rows:checksum) equal on both sides.
    assert task.source_checksum == task.target_checksum and task.source_checksum.startswith(f"{ROWS}:")
    history = json.loads(m.cli("history", "--json").stdout)["events"]
    assert any(e["trigger"] == "parts_planned" and e["detail"]["column"] is None for e in history)


def test_a_file_grouped_table_changed_in_the_window_is_cleared_and_grouped_anew(sandbox: SandboxClient,
                                                                                 tmp_path: Path) -> None:
    import psycopg

    m = text_only_migration(sandbox, tmp_path, rows=200, part_size="50 rows")
    m.init()
    assert m.cli("run", "--assume-frozen").returncode == 8
    with m.store() as store:
        task = store.find_table(store.require_migration(m.name), "public", TEXT_ONLY_TABLE)
        assert task is not None
        first = store.list_parts(task.id)
    assert len(first) == 4 and all(p.part_column is None for p in first)
    with psycopg.connect(sandbox.admin_dsn(m.source), autocommit=True) as pg:
        pg.execute("insert into public.notes (code, body, flag) values ('late-1', 'appended', true), "
                   "('late-2', null, false)")
    m.env["MIGRATOR_FAILPOINT"] = "before_first_rename"  # stop once the window has caught up
    assert m.cli("run", "--approve-cutover", "--assume-frozen").returncode == -9
    assert m.table_digests(m.target)["public.notes"] == m.table_digests(m.source)["public.notes"]
    with m.store() as store:
        migration = store.require_migration(m.name)
        again = store.find_table(migration, "public", TEXT_ONLY_TABLE)
        assert again is not None
        parts = store.list_parts(again.id)
        events = store.events(migration, subject=task.subject)
    triggers = [e.trigger for e in events]
    # No group can be compared alone: the copy's rows were deleted (recorded before the DELETE
    # was sent), the old groups forgotten, the table unloaded once more and grouped anew.
    cleared = triggers.index("file_groups_cleared")
    assert "parts_dropped" in triggers[cleared:] and triggers[cleared:].count("parts_planned") == 1
    assert again.manifest_url != task.manifest_url and "/attempt-" in (again.manifest_url or "")
    assert len(parts) >= 4 and sum(p.rows_loaded or 0 for p in parts) == 202
    loaded_after = Counter(e.detail["part"] for e in events[cleared:] if e.trigger == "part_loaded")
    assert loaded_after == Counter({p.part_no: 1 for p in parts})
    assert again.source_checksum == again.target_checksum and again.source_checksum.startswith("202:")
