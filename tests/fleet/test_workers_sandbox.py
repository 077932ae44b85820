"""Two `migrator run --worker` processes and the leading `migrator run` share one migration's
tables on a PostgreSQL store, against the sandbox: one worker is SIGKILLed right after a load
committed, the others finish its table, and every table is loaded exactly once."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from migrator.sandbox.postgres import PostgresServer
from tests.harness import migrator_command, sandbox_migration

# Whole migrations through the CLI against the sandbox: tens of seconds.
pytestmark = pytest.mark.slow

_ids = itertools.count(1)


def test_two_workers_share_the_tables_and_finish_the_one_a_killed_worker_held(
        sandbox: SandboxClient, pg_server: PostgresServer, tmp_path: Path) -> None:
    n = next(_ids)
    source, target = f"fw{n}-src", f"fw{n}-enc"
    info = sandbox.create_seeded_cluster(source, tables=10, rows=300, seed=40 + n)
    store_db = f"fleet_workers_{n}"
    pg_server.create_database(store_db)
    m = sandbox_migration(
        sandbox, tmp_path, name=f"fw{n}", strategy="unload-copy", migration={"store": pg_server.url(store_db)},
        source={"cluster_id": source, "user": info.user, "password_env": "FW_SOURCE_PASSWORD"},
        target={"cluster_id": target, "password_env": "FW_TARGET_PASSWORD"},
        # The leader walks one table at a time, so the workers get most of them.
        tables={"concurrency": 1},
        env={"FW_SOURCE_PASSWORD": info.password, "FW_TARGET_PASSWORD": "TargetPassw0rd",
             "MIGRATOR_FREEZE_QUIET_SECONDS": "2", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30"})
    before = m.table_digests(m.source)
    m.init()
    # Worker A dies (SIGKILL) the first time a load of its committed on the target and the store
    # was not yet told: the table is `loading`, reserved by a dead process.
    doomed = subprocess.Popen(migrator_command("run", "--worker", "-c", str(m.config)), cwd=m.directory,
                              env={**m.limited_env(), "MIGRATOR_FAILPOINT": "after_load_commit"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    helper = subprocess.Popen(migrator_command("run", "--worker", "-c", str(m.config)), cwd=m.directory,
                              env=m.limited_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        leader = m.cli("run")
        helper_out, helper_err = helper.communicate(timeout=300)
        _, doomed_err = doomed.communicate(timeout=300)
    finally:
        for proc in (doomed, helper):
            if proc.poll() is None:
                proc.kill()
    assert leader.returncode == 8, leader.stderr + m.cli("status", "--tables").stdout  # the cutover gate: every table copied and validated
    assert doomed.returncode == -9, doomed_err
    assert helper.returncode == 0, helper_err
    # Started before the leader reached the copy, the worker said it waits.
    assert "waiting: migration" in helper_err and "copying" in helper_err
    assert "no tables left" in helper_out
    assert m.table_digests(m.target) == before

    with m.store() as store:
        migration = store.require_migration(m.name)
        events = store.events(migration)
        workers = store.list_workers(migration)
    # Each table reached `loaded` exactly once: no load was repeated, not even the killed worker's.
    loads: dict[str, int] = {}
    for e in events:
        if e.subject.startswith("table:") and e.to_state == "loaded":
            loads[e.subject] = loads.get(e.subject, 0) + 1
    assert len(loads) == len(before) and set(loads.values()) == {1}, loads
    # The killed worker's table was handed back from its committed load by another process, and
    # another process finished it.
    handed = [e for e in events if e.trigger == "reconcile_load" and str(doomed.pid) in
              str(e.detail.get("previous_owner", ""))]
    assert len(handed) == 1 and handed[0].to_state == "loaded"
    assert handed[0].pid != doomed.pid
    finished = [e for e in events if e.subject == handed[0].subject and e.to_state == "validated"]
    assert finished and finished[-1].pid != doomed.pid
    # Three processes worked: the leader, the two workers (the killed one never said goodbye).
    by_pid = {w.pid: w for w in workers}
    assert {w.role for w in workers} == {"leader", "worker"} and doomed.pid in by_pid and helper.pid in by_pid
    assert by_pid[doomed.pid].stopped_at is None and by_pid[helper.pid].stopped_at is not None
    # More than one process loaded tables.
    loaders = {e.pid for e in events if e.trigger == "start_load"}
    assert len(loaders) >= 2
    assert json.loads(m.cli("status", "--json").stdout)["tables_by_state"] == {"validated": len(before)}
