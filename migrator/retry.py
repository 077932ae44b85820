"""Retrying transient failures with exponential backoff and full jitter, and
waiting on remote state with the same schedule."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from migrator import interrupt
from migrator.errors import MigratorError, OutcomeUnknown, TransientError

T = TypeVar("T")
log = logging.getLogger("migrator.retry")


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    cap: float = 60.0
    max_attempts: int = 6

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        bound = min(self.cap, self.base * (2 ** attempt))
        return (rng or random).uniform(0, bound)


def with_retries(fn: Callable[[], T], *, what: str, backoff: Backoff = Backoff(),
                 sleep: Callable[[float], None] = time.sleep,
                 is_transient: Callable[[BaseException], bool] | None = None) -> T:
    """Call ``fn``; retry errors that are retryable, re-raise the rest at once.

    OutcomeUnknown is never retried here, whatever ``is_transient`` says: the first call may have
    taken effect or still be running, so the caller must reconcile before doing it again."""
    attempt = 0
    while True:
        try:
            return fn()
        except OutcomeUnknown:
            raise
        except Exception as exc:  # classified below; anything else propagates untouched
            transient = (isinstance(exc, MigratorError) and exc.retryable) or bool(is_transient and is_transient(exc))
            if not transient:
                raise
            attempt += 1
            if attempt >= backoff.max_attempts:
                if isinstance(exc, MigratorError):
                    raise
                raise TransientError(f"{what} still failing after {attempt} attempts: {exc}") from exc
            pause = backoff.delay(attempt)
            log.warning("%s failed (%s); retry %d/%d in %.1fs", what, exc, attempt, backoff.max_attempts - 1, pause)
            sleep(pause)


def wait_until(check: Callable[[], T | None], *, what: str, timeout: float,
               backoff: Backoff = Backoff(base=2.0, cap=30.0),
               sleep: Callable[[float], None] = interrupt.sleep, clock: Callable[[], float] = time.monotonic,
               should_stop: Callable[[], bool] = lambda: False) -> T:
    """Poll ``check`` until it returns a value, with growing (jittered) pauses (cut short by a
    stop request, which ``should_stop`` then reports)."""
    deadline = clock() + timeout
    attempt = 0
    while True:
        result = check()
        if result is not None:
            return result
        if should_stop():
            raise TransientError(f"stopped while waiting for {what}")
        if clock() >= deadline:
            raise TransientError(f"timed out after {timeout:.0f}s waiting for {what}",
                                 hint="re-run to resume waiting; nothing is sent twice")
        attempt += 1
        sleep(max(0.05, backoff.delay(attempt)))
