"""SIGTERM in the middle of a parted table's loads: the run stops cleanly at the next safe point
(exit 143): the loads in flight finish and are recorded (nothing left `loading`, no part held),
the resumed run finishes identical, each part loaded exactly once and none loaded twice."""

from __future__ import annotations

import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.parts.conftest import parted_migration, signal_after_loads

pytestmark = pytest.mark.slow


def test_sigterm_during_part_loads_stops_cleanly_and_resumes_without_duplicates(sandbox: SandboxClient,
                                                                                 tmp_path: Path) -> None:
    m = parted_migration(sandbox, tmp_path, tables=1, rows=400, part_size="50 rows", concurrency=3)
    seed = random.randrange(1 << 30)
    print(f"parts sigterm seed: {seed}")
    rng = random.Random(seed)
    before = m.table_digests(m.source)
    m.init()
    m.sb.faults.add("latency", times=-1, match={"statement": "copy", "cluster": m.target}, seconds=0.3)
    try:
        sent, code = signal_after_loads(m, signal.SIGTERM, loads=rng.randint(1, 3), delay=rng.uniform(0.0, 0.3))
        assert sent and code == 143, code
        with m.store() as store:
            migration = store.require_migration(m.name)
            stopped = store.migration_parts(migration)
        # A clean stop: every part rests (none in flight), none is held by the stopped run, and
        # some were still to do (the stop landed in the middle).
        from migrator.engine.parts import part_definition

        in_flight = set(part_definition().tagged("in_flight"))
        assert stopped and not [p.label for p in stopped if p.state in in_flight or p.owner]
        assert not all(p.state in part_definition().tagged("done") for p in stopped)
        final = m.cli("run", "--assume-frozen")
        assert final.returncode == 8, final.stderr
    finally:
        m.sb.faults.clear()
    assert m.table_digests(m.target) == before
    with m.store() as store:
        migration = store.require_migration(m.name)
        parts = store.migration_parts(migration)
        events = store.events(migration)
    assert len(parts) >= 8
    loaded = Counter((e.subject, e.detail["part"]) for e in events if e.trigger == "part_loaded")
    assert len(loaded) == len(parts) and set(loaded.values()) == {1}, loaded
    # Nothing redone: a part's load in flight at the signal finished; each part was COPYed once.
    copies = Counter((e.subject, e.detail["part"]) for e in events if e.trigger == "statement"
                     and e.detail.get("kind") == "copy" and "part" in e.detail)
    assert set(copies.values()) == {1}, copies
    assert all(p.source_checksum == p.target_checksum for p in parts)
