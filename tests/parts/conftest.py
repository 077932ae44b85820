"""A private seeded source and an unload-copy migration whose tables are split into parts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.harness import Migration, sandbox_migration

_ids = itertools.count(1)


def parted_migration(sandbox: SandboxClient, tmp_path: Path, *, tables: int, rows: int, part_size: str,
                     concurrency: int = 3, hard: bool = False) -> Migration:
    n = next(_ids)
    source, target = f"pt{n}-src", f"pt{n}-enc"
    info = sandbox.create_seeded_cluster(source, tables=tables, rows=rows, seed=100 + n, hard=hard)
    return sandbox_migration(
        sandbox, tmp_path, name=f"pt{n}", strategy="unload-copy",
        source={"cluster_id": source, "user": info.user, "password_env": "PT_SOURCE_PASSWORD"},
        target={"cluster_id": target, "password_env": "PT_TARGET_PASSWORD"},
        tables={"concurrency": concurrency, "part_size": part_size},
        env={"PT_SOURCE_PASSWORD": info.password, "PT_TARGET_PASSWORD": "TargetPassw0rd",
             "MIGRATOR_FREEZE_QUIET_SECONDS": "2", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30",
             "MIGRATOR_TABLE_RETRY_BASE_SECONDS": "0.2"})


@pytest.fixture
def parted(sandbox: SandboxClient, tmp_path: Path) -> Migration:
    return parted_migration(sandbox, tmp_path, tables=3, rows=400, part_size="50 rows", hard=True)


#: A table with no column that makes ranges cheap (no sort key, identity, number or date).
TEXT_ONLY_TABLE = "notes"


def text_only_migration(sandbox: SandboxClient, tmp_path: Path, *, rows: int, part_size: str,
                        source_slices: int = 8, concurrency: int = 2) -> Migration:
    """A source holding only ``public.notes`` (VARCHAR and BOOLEAN columns) of ``rows`` rows, on a
    cluster of ``source_slices`` slices (8: a 2-node ra3.4xlarge, 4 slices a node), so its one
    UNLOAD writes that many files (one a slice: a table this small gets no MAXFILESIZE)."""
    from migrator.sandbox.redshift import catalog

    n = next(_ids)
    source, target = f"pt{n}-src", f"pt{n}-enc"
    info = sandbox.create_cluster(source)
    catalog.set_cluster(sandbox.admin_dsn(source), source, slices=source_slices)
    conn = sandbox.connect(source, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"create table public.{TEXT_ONLY_TABLE} (code varchar(40) not null, body varchar(200), "
                    "flag boolean) diststyle even")
        batch = 100
        for start in range(0, rows, batch):
            values = [(f"c-{i:06d}", None if i % 7 == 0 else f"body {i} \\ 'quoted' | tab\tend", i % 3 == 0)
                      for i in range(start, min(rows, start + batch))]
            cur.execute("insert into public.notes (code, body, flag) values "
                        + ", ".join(["(%s, %s, %s)"] * len(values)), [v for row in values for v in row])
    finally:
        conn.close()
    return sandbox_migration(
        sandbox, tmp_path, name=f"pt{n}", strategy="unload-copy",
        source={"cluster_id": source, "user": info.user, "password_env": "PT_SOURCE_PASSWORD"},
        target={"cluster_id": target, "password_env": "PT_TARGET_PASSWORD"},
        tables={"concurrency": concurrency, "part_size": part_size},
        env={"PT_SOURCE_PASSWORD": info.password, "PT_TARGET_PASSWORD": "TargetPassw0rd",
             "MIGRATOR_FREEZE_QUIET_SECONDS": "2", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30",
             "MIGRATOR_TABLE_RETRY_BASE_SECONDS": "0.2"})


def loaded_parts(store_url: str, name: str) -> int | None:
    """How many part loads have committed so far (part_loaded events), read from another process's
    store; None while it cannot be read (the run is writing it)."""
    from migrator.store import Store

    try:
        with Store.open(store_url, read_only=True) as store:
            migration = store.get_migration(name)
            if migration is None:
                return 0
            return sum(1 for e in store.events(migration) if e.trigger == "part_loaded")
    except Exception:  # the run is writing the store; look again
        return None


def signal_after_loads(m: Migration, signum: int, *, loads: int, delay: float, timeout: float = 180) -> tuple[bool, int]:
    """`run` in a subprocess, sent ``signum`` ``delay`` seconds after ``loads`` more part loads
    committed (inside the next loads when COPY is slowed). Returns (sent, exit code)."""
    import os
    import time

    store_url = f"sqlite:///{m.directory / '.migrator' / 'state.db'}"
    proc = m.popen("run", "--assume-frozen")
    start = loaded_parts(store_url, m.name) or 0
    sent = False
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        seen = loaded_parts(store_url, m.name)
        if seen is not None and seen >= start + loads:
            time.sleep(delay)  # the kill point inside the next loads
            if proc.poll() is None:
                os.kill(proc.pid, signum)
                sent = True
            break
        time.sleep(0.02)  # watching another process's progress through the store
    proc.wait(timeout=timeout)
    return sent, proc.returncode
