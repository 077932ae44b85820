"""The run loop: resumes from the store, stops at gates, refuses changed configs and
second runs, and hands back the work of dead processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from migrator.engine.context import RunOptions
from migrator.engine.runner import Runner
from migrator.errors import ApprovalRequired, ConfigChanged, LeaseHeld, PreflightFailed
from migrator.procinfo import ProcessIdentity
from migrator.store import Store, TableSpec, TableView, db
from tests.conftest import make_config
from tests.engine.scripted import TABLES, scripted_registry


@pytest.fixture
def config(tmp_path: Path, store_url: str):  # type: ignore[no-untyped-def]
    db.upgrade(store_url)
    return make_config(tmp_path, store_url)


def test_runs_to_the_cutover_gate_then_finishes_once_approved(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired, match="waiting for cutover approval"):
            Runner(config, store, scripted_registry()).run()
        m = store.require_migration("m1")
        assert m.phase == "awaiting_cutover" and m.last_error is None
        assert {t.state for t in store.list_tables(m)} == {"validated"}
        assert store.get_run_lease(m) is None  # released even when stopping at a gate
        with pytest.raises(ApprovalRequired, match="decommission"):
            Runner(config, store, scripted_registry(), RunOptions(approve_cutover=True)).run()
        m = store.record_approval(store.require_migration("m1"), "decommission", {"via": "test"})
        report = Runner(config, store, scripted_registry()).run()
        assert report.end_phase == "completed" and report.start_phase == "awaiting_decommission"
        assert store.require_migration("m1").finished_at is not None
        phases = [e.to_state for e in store.events(m, subject="migration") if e.trigger not in ("created",)
                  and e.from_state != e.to_state]
        assert phases == ["preflight", "inventory", "provisioning", "replaying_objects", "rehearsing",
                          "copying", "validating", "awaiting_cutover", "freezing", "catching_up", "cutting_over",
                          "awaiting_decommission", "decommissioning", "completed"]


def test_a_failed_table_blocks_the_phase_with_the_guard_named(config, store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        with pytest.raises(PreflightFailed, match="refused by guard.*all_tables_done"):
            Runner(config, store, scripted_registry(fail_table="public.t3")).run()
        m = store.require_migration("m1")
        assert m.phase == "copying" and "all_tables_done" in (m.last_error or "")
        failed = store.find_table(m, "public", "t3")
        assert failed is not None and failed.state == "failed" and failed.last_error == "injected failure"
        # The operator fixes the cause and retries: the failed table goes back to pending and the run finishes.
        from migrator.engine.flows import TableFlow

        runner = Runner(config, store, scripted_registry())
        TableFlow(runner.table_definition, runner.registry, store, failed, config.settings).fire("retry")
        with pytest.raises(ApprovalRequired):
            runner.run()
        assert {t.state for t in store.list_tables(m)} == {"validated"}


def test_changed_config_is_refused_once_work_was_done(config, tmp_path: Path, store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        Runner(config, store, scripted_registry(), RunOptions(max_steps=3)).run()
        changed = make_config(tmp_path, store_url, staging={"kms_key_id": "alias/other"})
        with pytest.raises(ConfigChanged, match="staging.kms_key_id"):
            Runner(changed, store, scripted_registry()).run()
        # Settings that do not alter finished work (concurrency) are accepted.
        harmless = make_config(tmp_path, store_url, tables={"concurrency": 8})
        Runner(harmless, store, scripted_registry(), RunOptions(max_steps=1)).run()


def test_config_change_before_any_work_is_accepted_and_logged(config, tmp_path: Path, store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Store.open(store_url) as store:
        Runner(config, store, scripted_registry(), RunOptions(max_steps=0)).run()
        changed = make_config(tmp_path, store_url, staging={"kms_key_id": "alias/other"})
        Runner(changed, store, scripted_registry(), RunOptions(max_steps=0)).run()
        m = store.require_migration("m1")
        assert m.config_hash == changed.config_hash()
        assert any(e.trigger == "config_changed" for e in store.events(m))


HOLDER = textwrap.dedent("""
    import sys
    from migrator.store import Store, TableSpec
    from migrator.engine.flows import TableFlow
    from migrator.engine.runner import Runner
    from tests.conftest import make_config
    from tests.engine.scripted import scripted_registry
    from pathlib import Path
    import os
    url, tmp = os.environ["TEST_STORE_URL"], Path(sys.argv[1])  # the URL may hold a password: not in argv
    config = make_config(tmp, url)
    store = Store.open(url)
    runner = Runner(config, store, scripted_registry())
    from migrator.engine.runner import ensure_migration
    m = ensure_migration(store, config, runner.definition, runner.table_definition.initial)
    store.acquire_run_lease(m, 3600)
    store.add_tables(m, [TableSpec("public", "big", 1, 1), TableSpec("public", "loaded_one", 1, 1)], "pending")
    for name, state in (("public.big", "unloading"), ("public.loaded_one", "loading")):
        flow = TableFlow(runner.table_definition, runner.registry, store, store.find_table(m, *name.split(".")))
        flow.fire("start_unload")
        if state == "loading":
            flow.fire("complete_unload", fields={"manifest_url": "s3://b/m"})
            flow.fire("start_load")
    print("READY", flush=True)
    sys.stdin.read()
""")


def _start_holder(store_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE,
                            env={**os.environ, "TEST_STORE_URL": store_url},
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def test_second_run_is_refused_while_the_holder_lives(config, store_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    holder = _start_holder(store_url, tmp_path)
    try:
        with Store.open(store_url) as store:
            with pytest.raises(LeaseHeld, match=f"being run by pid {holder.pid}"):
                Runner(config, store, scripted_registry()).run()
            assert store.require_migration("m1").phase == "created"
    finally:
        holder.kill()
        holder.wait()


def test_kill_9_holder_is_taken_over_and_its_tables_handed_back(config, store_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    holder = _start_holder(store_url, tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with Store.open(store_url) as store:
        committed = {"public.loaded_one": True}
        asked: list[str] = []

        def reconciler(t: TableView) -> dict[str, object]:
            asked.append(t.qualified_name)
            return {"load_committed": committed.get(t.qualified_name, False)}

        runner = Runner(config, store, scripted_registry(), RunOptions(max_steps=0), reconciler=reconciler)
        # The holder's lease has an hour left: the restart takes it over because its pid is dead here.
        report = runner.run()
        assert report.took_over_from is not None and str(holder.pid) in report.took_over_from
        # Only the table whose load may have committed asks the target; `requeue` contacts nothing.
        assert asked == ["public.loaded_one"]
        assert sorted(report.recovered_tables) == ["public.big", "public.loaded_one"]
        m = store.require_migration("m1")
        takeover = [e for e in store.events(m, subject="run") if e.trigger == "lease_taken_over"]
        assert len(takeover) == 1 and f"pid {holder.pid}" in takeover[0].detail["reason"]
        big = store.find_table(m, "public", "big")
        loaded = store.find_table(m, "public", "loaded_one")
        assert big is not None and big.state == "pending" and big.owner is None
        # The load had committed on the target: recorded as loaded, not redone.
        assert loaded is not None and loaded.state == "loaded"
        lost = [e for e in store.events(m, subject="table:public.loaded_one") if e.trigger == "reconcile_load"]
        assert lost[0].detail["previous_owner"].startswith(f"{os.uname().nodename}:{holder.pid}:")


def test_a_dead_pid_counts_only_on_its_own_host(config, store_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A restart takes over a lease at once only when its holder's pid is provably dead on this
    host; the same pid recorded by another host cannot be checked here, so that lease is waited
    for until its heartbeat expires (a worker elsewhere may be alive)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that ran on this host and is dead now
    with Store.open(store_url) as store:
        runner = Runner(config, store, scripted_registry())
        m = runner.ensure_migration()
        other = store.create_migration("m2", m.strategy, m.config_hash, {}, runner.definition.initial)
        host = store.identity.host
        Store(store.engine, identity=ProcessIdentity("elsewhere.example", gone.pid, "1")).acquire_run_lease(m, 3600)
        Store(store.engine, identity=ProcessIdentity(host, gone.pid, "1")).acquire_run_lease(other, 3600)
        with pytest.raises(LeaseHeld, match=f"pid {gone.pid} on elsewhere.example"):
            store.acquire_run_lease(m, ttl_seconds=60)
        taken = store.acquire_run_lease(other, ttl_seconds=60)  # an hour left, but its holder is dead here
        assert taken.pid == os.getpid()
        reason = [e for e in store.events(other, subject="run") if e.trigger == "lease_taken_over"][0].detail
        assert reason["reason"] == f"holder pid {gone.pid} on {host} is no longer running"
