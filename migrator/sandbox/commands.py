"""Sandbox commands as plain functions returning result objects (the CLI renders them)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from migrator.errors import UsageError
from migrator.results import SandboxResult
from migrator.sandbox import daemon
from migrator.sandbox.faults import KINDS, FaultPlan
from migrator.sandbox.info import SandboxInfo


def _result(directory: Path, info: SandboxInfo, message: str, brief: bool = False) -> SandboxResult:
    configs = [str(directory / name) for name in ("unload-copy.toml", "modify.toml", "snapshot-restore.toml")
               if (directory / name).exists()]
    return SandboxResult(str(directory), True, info.endpoint_url,
                         {cid: asdict(c) for cid, c in info.clusters.items()}, configs, message, brief)


#: Where the sandbox keeps its clusters' databases (every cluster's data): gone with `down`.
DATA_DIRECTORY = "clusters"


def up(directory: Path, tables: int = 6, rows: int = 1000, seed: int = 0) -> SandboxResult:
    from migrator.sandbox import require_extra

    require_extra()
    info = daemon.up(directory, tables=tables, rows=rows, seed=seed)
    return _result(directory.resolve(), info, f"sandbox up in {directory.resolve()} (pid {info.pid}); "
                                              f"next: eval \"$(migrator sandbox env --dir {directory})\"")


def down(directory: Path) -> SandboxResult:
    stopped = daemon.down(directory)
    # The clusters' data goes with the sandbox (the configs and logs stay to read).
    shutil.rmtree(directory.resolve() / DATA_DIRECTORY, ignore_errors=True)
    return SandboxResult(str(directory.resolve()), False,
                         message="sandbox stopped" if stopped else f"no sandbox running in {directory}")


def _require(directory: Path) -> SandboxInfo:
    if daemon.running_pid(directory.resolve()) is None:
        raise UsageError(f"no sandbox running in {directory}", hint=f"start one: `migrator sandbox up --dir {directory}`")
    return SandboxInfo.load(directory.resolve())


def status(directory: Path) -> SandboxResult:
    return _result(directory.resolve(), _require(directory), "")


def seed(directory: Path, tables: int, rows: int, seed_value: int = 1, prefix: str = "extra_",
         hard: bool = True) -> SandboxResult:
    """More data in the source cluster, sent through its Redshift endpoint like any client's;
    ``hard`` (the default) adds tables of hard types and names (seed.HARD_NAMES, HARD_TYPES_TABLE)."""
    from migrator.sandbox.client import SandboxClient

    info = _require(directory)
    summary = SandboxClient(directory).seed(info.source_cluster_id, tables=tables, rows=rows, seed=seed_value,
                                            prefix=prefix, hard=hard)
    return _result(directory.resolve(), info, f"seeded {len(summary.tables)} tables, "
                                               f"{sum(summary.tables.values()):,} rows", brief=True)


def fault(directory: Path, kind: str, nth: int = 1, times: int = 1, match: dict[str, str] | None = None,
          params: dict[str, Any] | None = None) -> SandboxResult:
    info = _require(directory)
    if kind not in KINDS:
        raise UsageError(f"unknown fault kind {kind!r}", hint=f"one of: {', '.join(sorted(KINDS))}")
    FaultPlan(directory.resolve()).add(kind, nth=nth, times=times, match=match, **(params or {}))
    return _result(directory.resolve(), info, f"fault {kind} armed (nth={nth}, times={times}, match={match or {}})",
                   brief=True)
