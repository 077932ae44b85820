"""`migrator sandbox up` runs the sandbox in a background process: this module.

The daemon owns every part (proxies and moto live in its memory); `down` sends it
SIGTERM and it stops them all, PostgreSQL servers included.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from migrator.errors import EnvironmentProblem, UsageError
from migrator.procinfo import pid_alive
from migrator.sandbox.info import INFO_FILE, SandboxInfo

PID_FILE = "daemon.pid"
LOG_FILE = "daemon.log"


def _stop_when_gone(owner_pid: int) -> None:
    """SIGTERM ourselves once the process that started us is gone (killed before it could call
    `down`): a leftover daemon keeps PostgreSQL servers, disk and CPU for nobody."""
    while pid_alive(owner_pid):
        time.sleep(1.0)  # watching a foreign process; there is no handle to wait on
    os.kill(os.getpid(), signal.SIGTERM)


def serve(directory: Path, tables: int, rows: int, seed: int, durations: dict[str, float] | None = None,
          owner_pid: int | None = None) -> None:
    from migrator.sandbox.sandbox import Sandbox  # the heavy part (moto, proxies), only in the daemon

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # The kernel hands a process-directed signal to any thread that does not block it; pause()
    # in the main thread then sleeps on while a proxy or moto thread took the SIGTERM (a stop
    # that hung for minutes). Every caught signal writes a byte to the wakeup pipe whichever
    # thread took it, so waiting on the pipe wakes the main thread and runs the handler.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    with Sandbox(directory, seed_tables=tables, seed_rows=rows, seed=seed, durations=durations) as sb:
        (directory / PID_FILE).write_text(str(os.getpid()))
        print(f"ready {sb.info.endpoint_url}", flush=True)
        if owner_pid is not None:
            threading.Thread(target=_stop_when_gone, args=(owner_pid,), name="sandbox-owner", daemon=True).start()
        while not stop:
            os.read(wake_read, 64)
    (directory / PID_FILE).unlink(missing_ok=True)
    (directory / INFO_FILE).unlink(missing_ok=True)


def running_pid(directory: Path) -> int | None:
    try:
        pid = int((directory / PID_FILE).read_text())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def up(directory: Path, *, tables: int = 6, rows: int = 1000, seed: int = 0, timeout: float = 120.0,
       durations: dict[str, float] | None = None, owner_pid: int | None = None) -> SandboxInfo:
    """Start the daemon; with ``owner_pid`` it stops by itself once that process is gone."""
    directory = directory.resolve()
    if running_pid(directory):
        raise UsageError(f"a sandbox is already running in {directory}", hint=f"`migrator sandbox down --dir {directory}`")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / INFO_FILE).unlink(missing_ok=True)
    log = open(directory / LOG_FILE, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "migrator.sandbox.daemon", str(directory), "--tables", str(tables),
                             "--rows", str(rows), "--seed", str(seed), "--durations", json.dumps(durations or {}),
                             *(["--owner-pid", str(owner_pid)] if owner_pid is not None else [])],
                            stdout=subprocess.PIPE, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()  # blocks until ready or the daemon dies
    if not line.startswith("ready"):
        proc.wait(timeout=timeout)
        tail = (directory / LOG_FILE).read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise EnvironmentProblem(f"sandbox failed to start: {tail[0]}", hint=f"see {directory / LOG_FILE}")
    proc.stdout.close()
    return SandboxInfo.load(directory)


def down(directory: Path, timeout: float = 180.0) -> bool:
    pid = running_pid(directory.resolve())
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):  # a zombie (our own exited child) counts as gone
            return True
        time.sleep(0.05)  # waiting for another process to exit; there is no handle to wait on
    raise EnvironmentProblem(f"sandbox daemon {pid} did not stop within {timeout:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m migrator.sandbox.daemon")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--tables", type=int, default=6)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--durations", default="{}", help='control-plane seconds, e.g. {"modify_seconds": 5}')
    parser.add_argument("--owner-pid", type=int, default=None, help="stop when this process is gone")
    args = parser.parse_args()
    serve(args.directory.resolve(), args.tables, args.rows, args.seed, json.loads(args.durations) or None,
          owner_pid=args.owner_pid)


if __name__ == "__main__":
    main()
