"""Who this process is, and whether another process on this host still lives."""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def process_start_ticks(pid: int) -> str | None:
    """Kernel start time of ``pid`` (Linux), used to tell a live holder from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 counts from after the parenthesised command name, which may contain spaces.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, started: str | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is not None:
        now = process_start_ticks(pid)
        if now is not None and now != started:
            return False
        if now is None and Path("/proc").is_dir():
            return False
    state = _proc_state(pid)
    return state not in ("Z", "X")


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()
    return rest[0] if rest else None


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: str | None

    @property
    def label(self) -> str:
        return f"{self.host}:{self.pid}"


@cache
def _hostname() -> str:
    return socket.gethostname()


@cache
def os_user() -> str:
    """The operating-system user running this process (recorded with every approval)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER: the uid still says who
        return f"uid {os.getuid()}"


_current: ProcessIdentity | None = None


def me() -> ProcessIdentity:
    """This process's identity, recomputed after a fork (the pid changes)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        _current = ProcessIdentity(_hostname(), pid, process_start_ticks(pid))
    return _current
