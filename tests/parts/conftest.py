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
