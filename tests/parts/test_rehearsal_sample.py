"""The rehearsal samples a big table loaded in file groups (no column whose ranges are cheap)
instead of unloading all of it (issue 19, item 5): about one group's rows go through a real
UNLOAD (nested LIMIT), the rate is scaled to the table, and the estimate says it sampled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.parts.conftest import TEXT_ONLY_TABLE, text_only_migration

pytestmark = pytest.mark.slow

ROWS, GROUP_ROWS = 400, 100  # part_size "100 rows": 4 file groups


def test_rehearsal_unloads_one_file_groups_rows_not_the_table(sandbox: SandboxClient, tmp_path: Path) -> None:
    m = text_only_migration(sandbox, tmp_path, rows=ROWS, part_size=f"{GROUP_ROWS} rows")
    before = m.table_digests(m.source)
    m.init()
    done = m.cli("run", "--assume-frozen")
    assert done.returncode == 8, done.stderr
    assert m.table_digests(m.target) == before  # the copy itself still moves every row
    # What the source's UNLOAD log says the rehearsal wrote (its files are under `_rehearsal/`).
    conn = sandbox.connect(m.source, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("select query, trim(path), line_count from stl_unload_log")
        logged = cur.fetchall()
    finally:
        conn.close()
    # (The sandbox logs each file under a query id of its own, so files are told apart by prefix.)
    rehearsal = [(path.rsplit("/", 1)[0], n) for _, path, n in logged if "/_rehearsal/" in path]
    copy = [n for _, path, n in logged if "/_rehearsal/" not in path and "/probe/" not in path]
    assert len({prefix for prefix, _ in rehearsal}) == 1, rehearsal  # one UNLOAD, to one prefix
    assert sum(n for _, n in rehearsal) == GROUP_ROWS, rehearsal  # one group's rows, not the table's
    assert sum(copy) == ROWS, logged  # the copy's one UNLOAD for the file groups: every row
    with m.store() as store:
        migration = store.require_migration(m.name)
        fact = store.get_action(migration, "rehearsal")
    assert fact is not None and fact.response is not None
    sample = fact.response
    assert sample["table"].endswith(TEXT_ONLY_TABLE) and sample["sampled"] == "file group"
    assert (sample["rows"], sample["sampled_rows"], sample["table_rows"], sample["parts"]) == (GROUP_ROWS, GROUP_ROWS,
                                                                                               ROWS, 4)
    assert sample["estimated_freeze_seconds"] > 0
    events = json.loads(m.cli("history", "--json").stdout)["events"]
    told = [e["detail"] for e in events if "rehearsal_table" in (e.get("detail") or {})]
    assert told and told[-1]["sampled"] == "file group" and told[-1]["sampled_rows"] == GROUP_ROWS
    # `plan` gives the estimate with its basis: the rehearsal's rate, from a sample of the table.
    plan = json.loads(m.cli("plan", "--json").stdout)
    assert plan["estimate_seconds"] and plan["estimate_seconds"] > 0
    assert f"sampled {GROUP_ROWS} of {ROWS} rows: one file group of 4, scaled by size" in plan["estimate_basis"]
    shown = " ".join(m.cli("plan").stdout.split())
    assert f"sampled {GROUP_ROWS} of {ROWS} rows" in shown
