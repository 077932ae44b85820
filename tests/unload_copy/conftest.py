"""A private, seeded source cluster in the shared sandbox and an unload-copy migration of it
(config and runs from the one harness, tests/harness.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from migrator.sandbox.client import SandboxClient
from tests.harness import Migration, sandbox_migration

__all__ = ["Migration", "migration"]

_ids = itertools.count(1)


@pytest.fixture
def migration(sandbox: SandboxClient, tmp_path: Path) -> Migration:
    n = next(_ids)
    source, target = f"uc{n}-src", f"uc{n}-enc"
    info = sandbox.create_seeded_cluster(source, tables=5, rows=400, seed=n, hard=True)
    return sandbox_migration(
        sandbox, tmp_path, name=f"uc{n}", strategy="unload-copy",
        source={"cluster_id": source, "user": info.user, "password_env": "UC_SOURCE_PASSWORD"},
        target={"cluster_id": target, "password_env": "UC_TARGET_PASSWORD"},
        tables={"concurrency": 3},
        env={"UC_SOURCE_PASSWORD": info.password, "UC_TARGET_PASSWORD": "TargetPassw0rd",
             "MIGRATOR_FREEZE_QUIET_SECONDS": "2", "MIGRATOR_FREEZE_TIMEOUT_SECONDS": "30"})
