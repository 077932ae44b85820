"""`migrator run` stopped by SIGTERM or SIGHUP (a service manager, Kubernetes, `timeout`, a closed
terminal) at a known point of the copy: it exits with the signal's documented code, releases
its lease (status does not say a run is in progress), and the same command run again ends with
every row on the target. And a run killed with SIGKILL: status says it died, the next run takes
its lease over. Real processes against the sandbox (issue 25 §6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from migrator.errors import EXIT_CODES
from tests.unload_copy.conftest import Migration

# Whole migrations through the CLI against the sandbox: about a minute each.
pytestmark = pytest.mark.slow


def status_json(m: Migration) -> dict[str, Any]:
    shown = m.cli("status", "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


def events(m: Migration, trigger: str) -> list[dict[str, Any]]:
    return [e for e in json.loads(m.cli("history", "--json").stdout)["events"] if e["trigger"] == trigger]


@pytest.mark.parametrize(("signame", "point", "code"), [("TERM", "after_load_commit", 143),
                                                        ("HUP", "after_unload", 129)])
def test_a_run_stopped_by_a_signal_releases_its_lease_and_a_rerun_copies_every_row(
        migration: Migration, signame: str, point: str, code: int) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    # The run sends itself the signal at the point (a worker thread, in the middle of a table).
    m.env.update({"MIGRATOR_FAILPOINT": point, "MIGRATOR_FAILPOINT_SIGNAL": signame})
    stopped = m.cli("run", "--assume-frozen")
    assert stopped.returncode == code and code in {c for c, _ in EXIT_CODES}, stopped.stderr
    assert "Traceback" not in stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stopped: interrupted by SIG{signame} during phase 'copying'"), stopped.stderr
    assert m.phase() == "copying"
    shown = status_json(m)
    assert shown["run_holder"] is None and shown["run_died"] is None, shown
    assert "in progress" not in shown["next_step"] and shown["last_error"] is None
    assert [e["detail"]["signal"] for e in events(m, "interrupted")] == [f"SIG{signame}"]
    assert events(m, "lease_released")  # released by the stopped run itself, not taken over
    # The table in flight at the signal was finished and recorded; none was left owned.
    with m.store() as store:
        assert all(t.owner is None for t in store.list_tables(store.require_migration(m.name)))

    del m.env["MIGRATOR_FAILPOINT"], m.env["MIGRATOR_FAILPOINT_SIGNAL"]
    resumed = m.cli("run", "--assume-frozen")
    assert resumed.returncode == 8 and m.phase() == "awaiting_cutover", resumed.stderr
    assert not events(m, "lease_taken_over")
    assert m.table_digests(m.target) == before


def test_status_says_a_killed_run_died_and_the_next_run_takes_over(migration: Migration) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    m.env["MIGRATOR_FAILPOINT"] = "after_load_commit"  # SIGKILL: no chance to release the lease
    crashed = m.cli("run", "--assume-frozen")
    assert crashed.returncode == -9, crashed.stderr
    del m.env["MIGRATOR_FAILPOINT"]

    shown = status_json(m)
    assert shown["run_holder"] is None and "is no longer running" in shown["run_died"], shown
    assert "in progress" not in shown["next_step"]
    assert "the last run died" in shown["next_step"] and "takes over its lease" in shown["next_step"]
    text = m.cli("status")
    assert text.returncode == 0 and "the last run died" in text.stdout and "in progress" not in text.stdout
    with m.store() as store:  # status only read
        assert store.get_run_lease(store.require_migration(m.name)) is not None

    resumed = m.cli("run", "--assume-frozen")
    assert resumed.returncode == 8 and m.phase() == "awaiting_cutover", resumed.stderr
    assert len(events(m, "lease_taken_over")) == 1
    shown = status_json(m)
    assert shown["run_holder"] is None and shown["run_died"] is None
    assert m.table_digests(m.target) == before


def test_a_second_sigterm_stops_at_once_and_a_rerun_still_copies_every_row(migration: Migration) -> None:
    """Two SIGTERMs while tables are in flight (a service manager that does not wait): the run
    ends with 143 whichever of the two stops it, its lease released, and the re-run hands back
    whatever was in flight and ends with every row on the target."""
    import signal

    from tests.harness import wait_for

    m = migration
    before = m.table_digests(m.source)
    m.init()
    proc = m.popen("run", "--assume-frozen")

    def in_flight() -> bool:
        with m.store() as store:
            found = store.get_migration(m.name)
            return found is not None and any(t.owner for t in store.list_tables(found))

    wait_for(in_flight, "a table in flight", timeout=120, proc=proc)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("stopped: interrupted by SIGTERM", "interrupted (SIGTERM)")), err
    shown = status_json(m)
    assert shown["run_holder"] is None and "in progress" not in shown["next_step"], shown

    resumed = m.cli("run", "--assume-frozen")
    assert resumed.returncode == 8 and m.phase() == "awaiting_cutover", resumed.stderr
    assert m.table_digests(m.target) == before
