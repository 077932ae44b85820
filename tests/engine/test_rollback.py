"""Rollback is a runner operation: it holds the run lease (renewed by the heartbeat) for its whole
duration, checks the config like a run does, and races a `run` in neither direction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from migrator.engine.context import PhaseContext, RunOptions
from migrator.engine.runner import Runner
from migrator.errors import ConfigChanged, LeaseHeld, UsageError
from migrator.store import Store, db, utcnow
from tests.conftest import make_config
from tests.engine.scripted import scripted_registry
from tests.engine.test_runner import _start_holder

ROOT = Path(__file__).resolve().parents[2]

RUN_ONCE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from migrator.engine.runner import Runner
    from migrator.errors import MigratorError
    from migrator.store import Store
    from tests.conftest import make_config
    from tests.engine.scripted import scripted_registry
    import os
    url, tmp = os.environ["TEST_STORE_URL"], Path(sys.argv[1])  # the URL may hold a password: not in argv
    with Store.open(url) as store:
        try:
            report = Runner(make_config(tmp, url), store, scripted_registry()).run()
            print("RAN", report.end_phase)
        except MigratorError as exc:
            print(type(exc).__name__, exc.message)
""")


@pytest.fixture
def config(tmp_path: Path, store_url: str):  # type: ignore[no-untyped-def]
    db.upgrade(store_url)
    return make_config(tmp_path, store_url)


def _poll(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)  # polling the store, not synchronising by time


def test_a_run_started_during_a_rollback_is_refused_even_past_the_lease_ttl(config, store_url: str,
                                                                            tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        Runner(config, store, scripted_registry(), RunOptions(max_steps=4)).run()
        assert store.require_migration("m1").phase == "replaying_objects"
        outcome: dict[str, str] = {}

        def undo(ctx: PhaseContext) -> dict[str, Any]:
            lease = store.get_run_lease(ctx.migration)
            assert lease is not None
            first_expiry = lease.expires_at
            # Outlive the lease's TTL: only the heartbeat keeps it ours.
            _poll(lambda: utcnow() > first_expiry, "the first lease term to pass")
            renewed = store.get_run_lease(ctx.migration)
            assert renewed is not None and renewed.token == lease.token and renewed.expires_at > first_expiry
            racer = subprocess.run([sys.executable, "-c", RUN_ONCE, str(tmp_path)], cwd=ROOT,
                                   env={**os.environ, "TEST_STORE_URL": store_url},
                                   capture_output=True, text=True, timeout=120)
            outcome["racer"] = racer.stdout.strip() or racer.stderr
            return {"undone": True}

        report = Runner(config, store, scripted_registry(), lease_ttl=1.0).rollback(undo)
        assert outcome["racer"].startswith("LeaseHeld"), outcome
        assert report.from_phase == "replaying_objects" and report.phase == "rolled_back"
        m = store.require_migration("m1")
        assert m.phase == "rolled_back" and store.get_run_lease(m) is None
        move = [e for e in store.events(m, subject="migration") if e.trigger == "rolled_back"]
        assert move[0].detail == {"undone": True}
        # A run afterwards finds nothing to do: the machine ended.
        after = subprocess.run([sys.executable, "-c", RUN_ONCE, str(tmp_path)], cwd=ROOT,
                               env={**os.environ, "TEST_STORE_URL": store_url},
                               capture_output=True, text=True, timeout=120)
        assert after.stdout.strip() == "RAN rolled_back", after.stderr


def test_a_rollback_is_refused_while_a_run_holds_the_lease(config, store_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    holder = _start_holder(store_url, tmp_path)
    try:
        with Store.open(store_url) as store:
            undone: list[bool] = []
            with pytest.raises(LeaseHeld, match=f"being run by pid {holder.pid}"):
                Runner(config, store, scripted_registry()).rollback(lambda ctx: undone.append(True) or {})
            m = store.require_migration("m1")
            assert undone == [] and m.phase == "created"
            assert not [e for e in store.events(m) if e.trigger == "rolled_back"]
    finally:
        holder.kill()
        holder.wait()


def test_a_rollback_checks_the_config_like_a_run(config, store_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        Runner(config, store, scripted_registry(), RunOptions(max_steps=3)).run()
        changed = make_config(tmp_path, store_url, staging={"kms_key_id": "alias/other"})
        undone: list[bool] = []
        with pytest.raises(ConfigChanged, match="staging.kms_key_id"):
            Runner(changed, store, scripted_registry()).rollback(lambda ctx: undone.append(True) or {})
        assert undone == [] and store.require_migration("m1").phase == "provisioning"
        assert store.get_run_lease(store.require_migration("m1")) is None


def test_rollback_from_a_phase_without_the_move_is_refused_before_any_undo(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        Runner(config, store, scripted_registry(), RunOptions(max_steps=0)).run()
        Runner(config, store, scripted_registry()).rollback(lambda ctx: {})
        undone: list[bool] = []
        with pytest.raises(UsageError, match="cannot be rolled back"):
            Runner(config, store, scripted_registry()).rollback(lambda ctx: undone.append(True) or {})
        assert undone == []
