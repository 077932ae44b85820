"""A stop asked for by a signal (SIGINT, SIGTERM, SIGHUP): the runner stops at its next safe
point, records why, releases its lease and raises the error whose exit code is 128 + the
signal's number; a second signal never lands inside a checkpoint write. Through the real runner
and store with the scripted data plane; the subprocess tests are tests/unload_copy/test_signals.py
and tests/strategies/test_signals.py."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType

import pytest

from migrator import commands, interrupt
from migrator.config import load_config
from migrator.engine import gates
from migrator.engine.context import PhaseContext, RunOptions
from migrator.engine.runner import INTERRUPTED_EVENT, Runner
from migrator.errors import EXIT_CODES, ApprovalRequired
from migrator.procinfo import ProcessIdentity
from migrator.retry import Backoff, wait_until
from migrator.store import Store, db, utcnow
from tests.engine.scripted import scripted_registry
from tests.harness import write_config


@pytest.fixture
def config_path(tmp_path: Path, store_url: str) -> Path:
    db.upgrade(store_url)
    return write_config(tmp_path / "migrator.toml", migration={"store": store_url})


@pytest.fixture(autouse=True)
def no_stop_left() -> Iterator[None]:
    """A stop is per process: never let one leak into another test."""
    interrupt._STOP.reset()
    yield
    interrupt._STOP.reset()


def _runner(config_path: Path, store: Store, registry_extra: dict[str, object] | None = None) -> Runner:
    registry = scripted_registry()
    for name, action in (registry_extra or {}).items():
        registry.actions[name] = action  # type: ignore[assignment]
    return Runner(load_config(config_path), store, registry, RunOptions())


def _interrupted_events(store: Store) -> list[dict[str, object]]:
    m = store.require_migration("m1")
    return [dict(e.detail) for e in store.events(m) if e.trigger == INTERRUPTED_EVENT]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_stop_asked_in_a_phase_ends_the_run_after_that_move(config_path: Path, store_url: str,
                                                              signum: int, code: int) -> None:
    def replay_then_signal(ctx: PhaseContext) -> str:
        interrupt.request(signum)  # as the handler does when the signal arrives mid-phase
        return "objects_replayed"

    with Store.open(store_url) as store:
        with pytest.raises(interrupt.Interrupted) as stopped:
            _runner(config_path, store, {"replay_objects": replay_then_signal}).run()
        assert stopped.value.exit_code == code and code in {c for c, _ in EXIT_CODES}
        assert interrupt.signal_name(signum) in stopped.value.message
        m = store.require_migration("m1")
        # The phase's own work was finished and recorded; nothing after it started.
        assert m.phase == "rehearsing" and m.last_error is None
        assert store.get_run_lease(m) is None
        assert _interrupted_events(store) == [{"signal": interrupt.signal_name(signum),
                                              "where": "in phase 'rehearsing'"}]
        interrupt._STOP.reset()
        with pytest.raises(ApprovalRequired):  # the re-run continues to the gate
            _runner(config_path, store).run()
        assert store.require_migration("m1").phase == "awaiting_cutover"


def test_a_wait_ends_at_once_on_a_stop_and_is_not_an_error(config_path: Path, store_url: str) -> None:
    """The wait's pause (30 s here) is cut short; the stop is not recorded as the phase failing."""
    polls: list[float] = []

    def waits_in_the_rehearsal(ctx: PhaseContext) -> str:
        def check() -> None:
            polls.append(time.monotonic())
            if len(polls) == 1:
                interrupt.request(signal.SIGTERM)
            return None

        wait_until(check, what="the rehearsal UNLOAD", timeout=3600, backoff=Backoff(base=30.0, cap=30.0),
                   should_stop=ctx.should_stop)
        return "rehearsed"

    with Store.open(store_url) as store:
        started = time.monotonic()
        with pytest.raises(interrupt.Terminated) as stopped:
            _runner(config_path, store, {"rehearse": waits_in_the_rehearsal}).run()
        assert time.monotonic() - started < 15.0, "the 30 s pause was not cut short"
        assert stopped.value.exit_code == 143 and "during phase 'rehearsing'" in stopped.value.message
        m = store.require_migration("m1")
        assert m.phase == "rehearsing" and m.last_error is None and store.get_run_lease(m) is None


def test_a_rollback_stopped_before_its_steps_changes_nothing(config_path: Path, store_url: str) -> None:
    undone: list[str] = []

    def undo(ctx: PhaseContext) -> dict[str, object]:
        undone.append(ctx.migration.phase)
        return {}

    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired):
            _runner(config_path, store).run()
        interrupt.request(signal.SIGHUP)
        with pytest.raises(interrupt.HungUp):
            _runner(config_path, store).rollback(undo)
        m = store.require_migration("m1")
        assert undone == [] and m.phase == "awaiting_cutover" and store.get_run_lease(m) is None
        interrupt._STOP.reset()
        _runner(config_path, store).rollback(undo)
        assert undone == ["awaiting_cutover"] and store.require_migration("m1").phase == "rolled_back"


def test_cutover_and_decommission_continue_in_the_phases_they_started(config_path: Path) -> None:
    """`migrator cutover` stopped in `cutting_over` is run again: nothing to approve, no refusal;
    the phases before the gate and the other gate's phases still refuse."""
    definition = commands._definition(load_config(config_path).settings.migration.strategy)
    cutover, decommission = gates.started_by(definition, "cutover"), gates.started_by(definition, "decommission")
    assert "cutting_over" in cutover and "decommissioning" in decommission
    before_gate = {"created", "preflight", "inventory", "copying", "validating"}
    assert not (cutover | decommission) & before_gate
    assert not cutover & decommission and "awaiting_decommission" not in cutover


def _store_frame() -> FrameType:
    """A frame that looks like the store's code (a checkpoint write in progress)."""
    namespace: dict[str, object] = {"sys": sys}
    exec(compile("def frame():\n    return sys._getframe()\n", "/x/migrator/store/store.py", "exec"), namespace)
    return namespace["frame"]()  # type: ignore[operator,no-any-return]


def test_a_second_signal_waits_for_the_checkpoint_write_then_stops_at_once() -> None:
    with interrupt.handling_signals():
        interrupt._handler(signal.SIGTERM, sys._getframe())  # the first: a stop at the next safe point
        assert interrupt.requested()
        interrupt._handler(signal.SIGTERM, _store_frame())  # the second, inside a store write: deferred
        with pytest.raises(interrupt.HardStop) as hard:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the deferred signal is delivered again, here
                time.sleep(0.01)
        assert hard.value.signum == signal.SIGTERM
    assert not interrupt.requested()  # the handlers and the request end with the command


def test_status_says_a_run_whose_heartbeat_expired_died(config_path: Path, store_url: str) -> None:
    """A lease held on another host (its pid cannot be checked here) whose heartbeat expired."""
    other = ProcessIdentity(host="elsewhere.example", pid=4242, started="1")
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired):
            _runner(config_path, store).run()
        m = store.require_migration("m1")
        lease = Store(store.engine, identity=other).acquire_run_lease(m, ttl_seconds=0.001)
        assert lease.expires_at < utcnow() + timedelta(seconds=1)
    time_out = lease.expires_at.isoformat(timespec="seconds")
    deadline = time.monotonic() + 5
    while utcnow() <= lease.expires_at and time.monotonic() < deadline:  # polls the clock past the expiry
        time.sleep(0.01)
    shown = commands.status(config_path)
    assert shown.run_holder is None
    assert shown.run_died == f"holder's heartbeat expired at {time_out}"
    assert "a run is in progress" not in shown.next_step
    assert shown.next_step.startswith(f"the last run died (holder's heartbeat expired at {time_out}); "
                                      f"the next `migrator run -c {config_path}` takes over its lease; ")
    assert "waiting for cutover approval" in shown.next_step


def test_status_of_a_live_run_still_says_wait(config_path: Path, store_url: str) -> None:
    with Store.open(store_url) as store:
        m = _runner(config_path, store).ensure_migration()
        store.acquire_run_lease(m, ttl_seconds=600)  # this process: alive
    shown = commands.status(config_path)
    assert shown.run_died is None and shown.run_holder is not None
    assert shown.next_step.startswith("wait: a run is in progress")


def test_a_stop_asked_inside_a_deferred_window_takes_effect_after_it() -> None:
    """The swap's two renames: a stop never lands between them (the production name would have no
    cluster); the wait right after the window sees it."""
    with interrupt.deferred():
        interrupt.request(signal.SIGTERM)
        assert not interrupt.requested()
        started = time.monotonic()
        interrupt.sleep(0.05)  # inside the window a pause is a pause (no busy polling)
        assert time.monotonic() - started >= 0.05
    assert interrupt.requested()
    with pytest.raises(interrupt.Terminated):
        interrupt.check("after the swap")
