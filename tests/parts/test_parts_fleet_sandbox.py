"""The leading `migrator run` and a `migrator run --worker` share the parts of parted tables on a
PostgreSQL store, against the sandbox: parts are picked from the store like tables, so one table's
parts run on both processes. The worker is SIGKILLed right after one of its part loads committed
(the store not yet told); the leader hands that part back from its load marker (not loaded again)
and finishes the table. Each part is loaded exactly once and the target is identical to the source
by our own fingerprint (rows and digest read straight from PostgreSQL)."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from migrator.sandbox.postgres import PostgresServer
from tests.harness import migrator_command, sandbox_migration

# Whole migrations through the CLI against the sandbox: tens of seconds.
pytestmark = pytest.mark.slow

_ids = itertools.count(1)


def test_leader_and_worker_share_a_tables_parts_and_finish_the_part_a_killed_worker_loaded(
        sandbox: SandboxClient, pg_server: PostgresServer, tmp_path: Path) -> None:
    n = next(_ids)
    source, target = f"pf{n}-src", f"pf{n}-enc"
    info = sandbox.create_seeded_cluster(source, tables=2, rows=900, seed=70 + n)
    store_db = f"parts_fleet_{n}"
    pg_server.create_database(store_db)
    m = sandbox_migration(
        sandbox, tmp_path, name=f"pf{n}", strategy="unload-copy", migration={"store": pg_server.url(store_db)},
        source={"cluster_id": source, "user": info.user, "password_env": "PF_SOURCE_PASSWORD"},
        target={"cluster_id": target, "password_env": "PF_TARGET_PASSWORD"},
        tables={"concurrency": 2, "part_size": "100 rows"},
        env={"PF_SOURCE_PASSWORD": info.password, "PF_TARGET_PASSWORD": "TargetPassw0rd",
             "MIGRATOR_FREEZE_QUIET_SECONDS": "2", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30",
             "MIGRATOR_TABLE_RETRY_BASE_SECONDS": "0.2"})
    before = m.table_digests(m.source)
    m.init()
    # Each COPY takes a while, so both processes hold parts of the same tables at once.
    m.sb.faults.add("latency", times=-1, match={"statement": "copy", "cluster": m.target}, seconds=0.3)
    doomed = subprocess.Popen(migrator_command("run", "--worker", "-c", str(m.config)), cwd=m.directory,
                              env={**m.limited_env(), "MIGRATOR_FAILPOINT": "after_part_load_commit"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        run = m.cli("run")
        _, doomed_err = doomed.communicate(timeout=300)
    finally:
        m.sb.faults.clear()
        if doomed.poll() is None:
            doomed.kill()
    assert run.returncode == 8, run.stderr  # the cutover gate: every table copied and validated
    assert doomed.returncode == -9, doomed_err
    assert m.table_digests(m.target) == before

    with m.store() as store:
        migration = store.require_migration(m.name)
        parts = store.migration_parts(migration)
        events = store.events(migration)
        tables = {t.id: t for t in store.list_tables(migration)}
    per_table = Counter(p.table_id for p in parts)
    assert max(per_table.values()) >= 8, per_table
    assert {t.state for t in tables.values()} == {"validated"}
    assert {p.state for p in parts} == {"validated"}
    # Each part loaded exactly once: one committed load each (from its move, or from its marker).
    loaded = Counter((e.subject, e.detail["part"]) for e in events if e.trigger == "part_loaded")
    assert len(loaded) == len(parts) and set(loaded.values()) == {1}, loaded
    # The killed worker's parts in flight (one per thread) were handed back by the leader: the one
    # whose load committed to `loaded` from its marker, never started again; any other (its load
    # rolled back with the process) to `unloaded`, and loaded once afterwards.
    handed = [e for e in events if e.trigger == "reconcile_load" and "part" in e.detail
              and str(doomed.pid) in str(e.detail.get("previous_owner", ""))]
    leader = leader_pid(events, doomed.pid)
    assert handed and {e.pid for e in handed} == {leader}, handed
    committed = [e for e in handed if e.to_state == "loaded"]
    assert len(committed) == 1, handed
    killed = (committed[0].subject, committed[0].detail["part"])
    rolled_back = {(e.subject, e.detail["part"]) for e in handed if e.to_state == "unloaded"}
    starts = Counter((e.subject, e.detail["part"]) for e in events if e.trigger == "start_load" and "part" in e.detail)
    assert starts[killed] == 1, starts
    assert all(n == (2 if key in rolled_back else 1) for key, n in starts.items()), starts
    # One table's parts were loaded by both processes (the killed one's table at least).
    loaders: dict[str, set[int]] = defaultdict(set)
    for e in events:
        if e.trigger == "start_load" and "part" in e.detail:
            loaders[e.subject].add(e.pid)
    assert len(loaders[killed[0]]) == 2, dict(loaders)
    assert json.loads(m.cli("status", "--json").stdout)["tables_by_state"] == {"validated": len(before)}


def leader_pid(events: list, doomed: int) -> int:  # type: ignore[type-arg]
    """The leader: the process that moved the migration out of the table copy."""
    movers = {e.pid for e in events if e.subject == "migration" and e.trigger == "tables_copied"}
    assert len(movers) == 1 and doomed not in movers, movers
    return movers.pop()
