"""Fault injection for the sandbox, steerable from another process.

A test (or an operator rehearsing) writes ``DIR/faults.json``: a list of fault
specs. Sandbox components call :func:`FaultPlan.take` at the points where a fault
can fire; a matching fault is consumed and one JSON line is appended to
``DIR/faults.log`` so a test can assert it fired.

Fault spec fields: ``kind`` (see KINDS), ``nth`` (fire on the nth matching call,
default 1), ``times`` (how many times it fires, default 1; -1 forever),
``match`` (attributes that must be equal, e.g. {"table": "public.orders"}),
and kind-specific ``params`` (e.g. sqlstate/message, seconds, status).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = frozenset({
    "sql_error",        # proxy: fail an UNLOAD/COPY/statement; params: sqlstate, message; match: statement, table
    "drop_connection",  # proxy: close the client socket in the middle of a statement; match: statement, table
    "latency",          # proxy or AWS: sleep params.seconds before answering; match: statement / service
    "s3_slowdown",      # AWS: S3 answers 503 SlowDown; match: operation
    "s3_error",         # AWS: S3 answers 500 InternalError; match: operation
    "kms_access_denied",  # AWS: KMS answers AccessDeniedException; match: operation, key_id
    "cluster_stuck",    # AWS: cluster stays in params.status; match: cluster_id
    "scheduled_pause",  # AWS: an available cluster is paused (pausing, paused) as a pause schedule would; match: cluster_id
    "resize_fails",     # AWS: an encryption resize ends FAILED and leaves the cluster unchanged; match: cluster_id
    "reply_lost",       # AWS: a Redshift change takes effect but its answer is a 500, so the client retries it; match: operation, cluster_id
})


@dataclass
class Fault:
    kind: str
    params: dict[str, Any]


class FaultPlan:
    """Reads and consumes faults in ``directory`` (state kept in files, so every process agrees)."""

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory else None

    @property
    def spec_file(self) -> Path | None:
        return self.directory / "faults.json" if self.directory else None

    @property
    def log_file(self) -> Path | None:
        return self.directory / "faults.log" if self.directory else None

    def add(self, kind: str, *, nth: int = 1, times: int = 1, match: dict[str, Any] | None = None,
            **params: Any) -> None:
        """Append one fault (used by tests and `migrator sandbox fault`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
        assert self.spec_file is not None
        with self._locked():
            specs = self._read()
            specs.append({"kind": kind, "nth": nth, "times": times, "match": match or {},
                          "params": params, "seen": 0, "fired": 0})
            self._write(specs)

    def clear(self) -> None:
        if self.spec_file and self.spec_file.exists():
            with self._locked():
                self._write([])

    def take(self, kind: str, **attrs: Any) -> Fault | None:
        """Count a call that ``kind`` could fault; return the fault if it fires now."""
        if not self.spec_file or not self.spec_file.exists():
            return None
        with self._locked():
            specs = self._read()
            if not any(spec["kind"] == kind for spec in specs):
                return None  # nothing to count: no rewrite (this is asked per cluster on every request)
            hit: Fault | None = None
            for spec in specs:
                if spec["kind"] != kind or not _matches(spec["match"], attrs):
                    continue
                if spec["times"] >= 0 and spec["fired"] >= spec["times"]:
                    continue
                spec["seen"] += 1
                if spec["seen"] >= spec["nth"]:
                    spec["fired"] += 1
                    hit = Fault(kind, dict(spec["params"]))
                    break
            self._write(specs)
        if hit is not None:
            self._log(kind, attrs, hit.params)
        return hit

    def fired(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.log_file or not self.log_file.exists():
            return []
        entries = [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]
        return [e for e in entries if kind is None or e["kind"] == kind]

    def _log(self, kind: str, attrs: dict[str, Any], params: dict[str, Any]) -> None:
        assert self.log_file is not None
        line = json.dumps({"time": time.time(), "kind": kind, "attrs": attrs, "params": params,
                           "pid": os.getpid()}, default=str)
        with open(self.log_file, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _locked(self) -> "_FileLock":
        assert self.directory is not None
        return _FileLock(self.directory / ".faults.lock")

    def _read(self) -> list[dict[str, Any]]:
        assert self.spec_file is not None
        if not self.spec_file.exists():
            return []
        text = self.spec_file.read_text() or "[]"
        return list(json.loads(text))

    def _write(self, specs: list[dict[str, Any]]) -> None:
        assert self.spec_file is not None
        tmp = self.spec_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(specs, indent=1))
        tmp.replace(self.spec_file)


def _matches(want: dict[str, Any], attrs: dict[str, Any]) -> bool:
    return all(str(attrs.get(k)) == str(v) for k, v in want.items())


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> "_FileLock":
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
