"""A local, wire-compatible Redshift sandbox: `Sandbox`, its daemon, and pytest fixtures.

Importing this package is cheap; `Sandbox` (which needs moto and friends from the
`sandbox` extra) loads on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClusterInfo", "Sandbox", "SandboxInfo"]


def __getattr__(name: str) -> Any:
    if name in ("ClusterInfo", "SandboxInfo"):
        from migrator.sandbox import info

        return getattr(info, name)
    if name == "Sandbox":
        from migrator.sandbox.sandbox import Sandbox

        return Sandbox
    raise AttributeError(name)
