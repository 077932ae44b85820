"""Strategy tests' shorthand over the one harness (tests/harness.py): a migration of a sandbox
cluster named `m-<cluster>`, its store beside its config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrator.sandbox.client import SandboxClient as Sandbox
from tests.harness import SOURCE_PASSWORD_ENV as PW_ENV
from tests.harness import Migration, make_cluster, one_line, sandbox_migration, wait_for

__all__ = ["PW_ENV", "Migration", "make_cluster", "migration", "one_line", "wait_for"]


def migration(sb: Sandbox, tmp: Path, source_id: str, strategy: str = "modify",
              staging: dict[str, Any] | None = None, **target: Any) -> Migration:
    """A ``strategy`` migration of ``source_id``; ``target`` keys go to the [target] section and
    ``staging`` keys over the sandbox's staging defaults (unload-copy only)."""
    return sandbox_migration(sb, tmp, name=f"m-{source_id}", strategy=strategy, filename="migration.toml",
                             migration={"store": f"sqlite:///{tmp}/state.db"},
                             source={"cluster_id": source_id, "password_env": PW_ENV},
                             target={"encryption": "kms", **target},
                             **({"staging": staging or {}} if strategy == "unload-copy" else {}))
