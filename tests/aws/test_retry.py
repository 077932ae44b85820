"""with_retries: backoff with jitter for transient errors; never a blind retry of an unknown outcome."""

from __future__ import annotations

import random

import pytest

from migrator.errors import OutcomeUnknown, RemoteError, TransientError
from migrator.retry import Backoff, with_retries


def test_transient_errors_are_retried_with_bounded_jitter() -> None:
    pauses: list[float] = []
    calls = iter([TransientError("throttled"), TransientError("throttled"), "done"])

    def fn() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    backoff = Backoff(base=1.0, cap=3.0, max_attempts=5)
    assert with_retries(fn, what="x", backoff=backoff, sleep=pauses.append) == "done"
    assert len(pauses) == 2 and 0 <= pauses[0] <= 2.0 and 0 <= pauses[1] <= 3.0
    rng = random.Random(7)
    assert all(0 <= backoff.delay(a, rng) <= 3.0 for a in range(1, 20))


@pytest.mark.parametrize("error", [OutcomeUnknown("COPY: connection lost", backend_pid=7), RemoteError("load error")])
def test_unknown_outcomes_and_terminal_errors_are_not_retried(error: Exception) -> None:
    calls: list[int] = []

    def fn() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        with_retries(fn, what="x", sleep=lambda _: None, is_transient=lambda exc: True
                     if isinstance(exc, OutcomeUnknown) else False)
    assert calls == [1]
