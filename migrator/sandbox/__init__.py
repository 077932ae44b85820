"""A local, wire-compatible Redshift sandbox: `Sandbox`, its daemon, and pytest fixtures.

Importing this package is cheap; `Sandbox` (which needs moto and friends from the
`sandbox` extra) loads on first use.

Tests and tools should not run `Sandbox` in their own process (moto keeps global
state): start it as a daemon and use `migrator.sandbox.client.SandboxClient`
(`SandboxClient.start(dir, durations={...})`), or the pytest fixtures `sandbox`
(session) and `fresh_sandbox` (function) from `migrator.sandbox.pytest_plugin`.
The client's API: .info, .client(service), .calls(action), .env(), .cluster_info(id),
.connect(id), .admin_dsn(id), .create_cluster(id, ...), .create_seeded_cluster(id, ...),
.seed(id, ...), .wait_available(id), .faults. Use a private cluster
(`create_seeded_cluster`) for any test that changes one.

The AWS side is as strict as the docs (see FIDELITY.md): every status change takes time (poll for it;
`.set_durations(create=..., rename=..., dns=...)` shortens it), new clusters are encrypted (an
unencrypted source stands for a cluster made before that rule), and a cluster's Endpoint is its
*name*: after a rename the old name keeps reaching the renamed cluster for `dns` seconds.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClusterInfo", "Sandbox", "SandboxInfo", "require_extra"]

#: What the `sandbox` extra installs that the sandbox imports.
EXTRA_MODULES = ("moto", "psycopg", "pyarrow", "sqlglot")


def require_extra() -> None:
    """Refuse in one line, before anything starts, when the `sandbox` extra is not installed."""
    import importlib.util

    from migrator.errors import UsageError

    missing = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the sandbox needs the `sandbox` extra ({', '.join(missing)} not installed)",
                         hint="pip install 'migrator[sandbox]'")


def __getattr__(name: str) -> Any:
    if name in ("ClusterInfo", "SandboxInfo"):
        from migrator.sandbox import info

        return getattr(info, name)
    if name == "Sandbox":
        from migrator.sandbox.sandbox import Sandbox

        return Sandbox
    raise AttributeError(name)
