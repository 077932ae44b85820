"""Stopping a command that changes state: SIGINT (Ctrl-C), SIGTERM and SIGHUP.

The first signal asks the run to stop at its next safe point: between phase moves, at the next
poll of a wait, and before a table worker starts its next step (the step it runs is finished and
recorded); never inside a `deferred` window such as the two renames of a swap. The run then
releases its lease and exits with the signal's code (128 + signal number: 130, 143, 129). A second signal stops at once (the exception is raised where the main
thread stands), except while the main thread is inside the checkpoint store: it then lands just
after that write. Either way the store holds only whole writes and a re-run resumes.

Commands install the handlers with :func:`handling_signals`; the engine asks :func:`requested`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from migrator.errors import MigratorError

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Pause before a second signal that arrived during a checkpoint write is looked at again.
_DEFER_SECONDS = 0.02
#: Code that writes the checkpoint: a second signal never lands inside it.
_STORE_CODE = (f"{os.sep}migrator{os.sep}store{os.sep}", f"{os.sep}sqlalchemy{os.sep}")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(MigratorError):
    """The run stopped at a safe point because a signal asked it to (SIGINT); re-run to resume."""

    exit_code = 130

    def __init__(self, signum: int, where: str) -> None:
        super().__init__(f"interrupted by {signal_name(signum)} {where}; the run lease is released and the "
                         "checkpoint is consistent", hint="re-run the same command to continue")
        self.signum = signum

    @staticmethod
    def by(signum: int, where: str) -> "Interrupted":
        """The error for ``signum``, whose exit code is 128 + its number."""
        kind = {signal.SIGTERM: Terminated, signal.SIGHUP: HungUp}.get(signal.Signals(signum), Interrupted)
        return kind(signum, where)


class Terminated(Interrupted):
    """Stopped at a safe point by SIGTERM (a service manager, Kubernetes, `timeout`)."""

    exit_code = 143


class HungUp(Interrupted):
    """Stopped at a safe point by SIGHUP (the terminal or the SSH session went away)."""

    exit_code = 129


class HardStop(KeyboardInterrupt):
    """A second signal: raised where the main thread stands (never inside a store write)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


class _Stop:
    """The process's stop request (one per process: signals are per process)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.count = 0
        #: Open `deferred` blocks: a stop asked for inside one takes effect after it.
        self.deferring = 0
        self.lock = threading.RLock()  # the handler runs in the main thread, which may hold it

    def reset(self) -> None:
        self.event.clear()
        self.signum, self.count, self.deferring = None, 0, 0


_STOP = _Stop()


def requested() -> bool:
    """Whether a signal asked this process to stop (and no `deferred` block holds the stop back)."""
    return _STOP.event.is_set() and _STOP.deferring == 0


def stop_signal() -> int | None:
    return _STOP.signum


def sleep(seconds: float) -> None:
    """time.sleep that ends early when a stop is requested (waits then see it at once)."""
    if _STOP.deferring:
        time.sleep(max(0.0, seconds))
    else:
        _STOP.event.wait(max(0.0, seconds))


@contextmanager
def deferred() -> Iterator[None]:
    """A window that must not be left half-way (the two renames of a swap: stopping between them
    would leave the production name without a cluster): a stop asked for inside it takes effect
    at the first safe point after it. A second signal still stops at once."""
    with _STOP.lock:
        _STOP.deferring += 1
    try:
        yield
    finally:
        with _STOP.lock:
            _STOP.deferring = max(0, _STOP.deferring - 1)


def check(where: str) -> None:
    """Raise :class:`Interrupted` if a stop was requested."""
    if requested() and _STOP.signum is not None:
        raise Interrupted.by(_STOP.signum, where)


def request(signum: int) -> None:
    """Ask for a stop as the first signal does (also for tests and embedders)."""
    with _STOP.lock:
        if _STOP.signum is None:
            _STOP.signum = signum
        _STOP.count += 1
    _STOP.event.set()


def _in_store(frame: FrameType | None) -> bool:
    while frame is not None:
        name = frame.f_code.co_filename
        if any(part in name for part in _STORE_CODE):
            return True
        frame = frame.f_back
    return False


def _handler(signum: int, frame: FrameType | None) -> None:
    first = _STOP.signum is None
    request(signum)
    if first:
        os.write(2, f"{signal_name(signum)}: stopping at the next safe point (the checkpoint stays "
                    f"consistent); send it again to stop at once\n".encode())
        return
    if _in_store(frame):
        # Never break a checkpoint write: look again just after it.
        threading.Timer(_DEFER_SECONDS, os.kill, (os.getpid(), signum)).start()
        return
    raise HardStop(signum)


@contextmanager
def handling_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the block at a safe point (see the module's docstring).
    Outside the main thread (no handler can be installed there) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STOP.reset()
    previous: dict[signal.Signals, Any] = {}
    for sig in SIGNALS:
        previous[sig] = signal.signal(sig, _handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _STOP.reset()
