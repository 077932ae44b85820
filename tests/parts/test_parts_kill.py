"""A table split into >= 8 parts, SIGKILLed at random points of its load several times, finishes
identical to its source (our own fingerprint), each part loaded exactly once, and the rows
loaded again after the kills are at most one part per worker in flight per kill. The seed is
printed so a failure replays (MIGRATOR_CRASH_SEED)."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.parts.conftest import loaded_parts, parted_migration

pytestmark = pytest.mark.slow

KILLS = 4
CONCURRENCY = 3


def test_sigkill_during_part_loads_redoes_at_most_the_parts_in_flight(sandbox: SandboxClient,
                                                                      tmp_path: Path) -> None:
    m = parted_migration(sandbox, tmp_path, tables=2, rows=900, part_size="100 rows", concurrency=CONCURRENCY)
    seed = int(os.environ.get("MIGRATOR_CRASH_SEED", random.randrange(1 << 30)))
    print(f"parts kill seed: {seed} (replay with MIGRATOR_CRASH_SEED={seed})")
    rng = random.Random(seed)
    before = m.table_digests(m.source)
    m.init()
    store_url = f"sqlite:///{m.directory / '.migrator' / 'state.db'}"
    # Slow each COPY so kills land inside part loads (open transactions), not only between them.
    m.sb.faults.add("latency", times=-1, match={"statement": "copy", "cluster": m.target}, seconds=0.3)
    kills = 0
    try:
        for _ in range(KILLS):
            proc = m.popen("run", "--assume-frozen")
            start = loaded_parts(store_url, m.name) or 0
            aim = start + rng.randint(1, 3)
            deadline = time.monotonic() + 180
            while proc.poll() is None and time.monotonic() < deadline:
                seen = loaded_parts(store_url, m.name)
                if seen is not None and seen >= aim:
                    time.sleep(rng.uniform(0.0, 0.4))  # the randomised kill point inside the next loads
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                        kills += 1
                    break
                time.sleep(0.02)  # watching another process's progress through the store
            proc.wait()
        final = m.cli("run", "--assume-frozen")
        assert final.returncode == 8, final.stderr
    finally:
        m.sb.faults.clear()
    assert kills >= 3, f"only {kills} kills landed"
    assert m.table_digests(m.target) == before
    with m.store() as store:
        migration = store.require_migration(m.name)
        parts = store.migration_parts(migration)
        events = store.events(migration)
        tables = {t.id: t for t in store.list_tables(migration)}
    per_table = Counter(p.table_id for p in parts)
    assert max(per_table.values()) >= 8, per_table
    subject_of = {t.id: t.subject for t in tables.values()}
    # Each part loaded exactly once: one committed load (its part_loaded event, from the move or
    # from its marker after a kill), and every part validated.
    loaded = Counter((e.subject, e.detail["part"]) for e in events if e.trigger == "part_loaded")
    assert len(loaded) == len(parts) and set(loaded.values()) == {1}, loaded
    assert all(p.source_checksum == p.target_checksum and p.rows_loaded == p.est_rows for p in parts)
    # Rows loaded again: every COPY of a part beyond its first was a load a kill rolled back.
    copies: dict[tuple[str, int], int] = defaultdict(int)
    for e in events:
        if e.trigger == "statement" and e.detail.get("kind") == "copy" and "part" in e.detail:
            copies[(e.subject, e.detail["part"])] += 1
    rows_of = {(subject_of[p.table_id], p.part_no): p.rows_loaded or 0 for p in parts}
    redone = sum((n - 1) * rows_of[key] for key, n in copies.items() if n > 1)
    biggest = max(rows_of.values())
    print(f"{kills} kills; rows loaded again: {redone} of {sum(rows_of.values())}; largest part {biggest}")
    assert redone <= kills * CONCURRENCY * biggest
    # Part loads of one table take turns, so at most one load per table was open at each kill.
    assert redone <= kills * len(per_table) * biggest
