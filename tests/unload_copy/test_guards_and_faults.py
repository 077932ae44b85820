"""Guards failing for real, sandbox faults during a run, and rollback on both sides of the cutover."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.unload_copy.conftest import Migration


def _phase(m: Migration) -> str:
    return str(json.loads(m.cli("status", "--json").stdout)["phase"])


def _one_line(proc, code: int, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def _target_creates(m: Migration) -> list[dict]:  # type: ignore[type-arg]
    return [c for c in m.sb.calls("CreateCluster") if c.get("cluster_id") == m.target]


def test_target_name_taken_is_refused_and_nothing_created(migration: Migration) -> None:
    m = migration
    m.sb.create_cluster(m.target)
    m.init()
    _one_line(m.cli("run"), 7, f"target cluster id {m.target} is already taken")
    assert len(_target_creates(m)) == 1  # only ours above, none by the tool
    assert _phase(m) == "preflight"


def test_disabled_key_and_public_bucket_reported_together(migration: Migration) -> None:
    m = migration
    s3 = m.sb.client("s3")
    s3.create_bucket(Bucket="uc-open-bucket")
    text = m.config.read_text().replace(f's3_uri = "s3://{m.sb.info.bucket}/', 's3_uri = "s3://uc-open-bucket/')
    text = text.replace(f'[staging]\n', '[staging]\n', 1).replace(
        f'kms_key_id = "{m.sb.info.kms_alias}"\n\n[tables]', f'kms_key_id = "{m.sb.info.disabled_kms_key_id}"\n\n[tables]')
    m.config.write_text(text)
    m.init()
    _one_line(m.cli("run"), 7, "2 problems", "is not enabled",
              "staging bucket uc-open-bucket: public access is not fully blocked")
    assert _target_creates(m) == [] and _phase(m) == "preflight"


def test_one_key_used_twice_is_one_problem_listed_once(migration: Migration) -> None:
    m = migration
    m.config.write_text(m.config.read_text().replace(f'kms_key_id = "{m.sb.info.kms_alias}"',
                                                     f'kms_key_id = "{m.sb.info.disabled_kms_key_id}"'))
    m.init()
    refused = m.cli("run", "--quiet")
    _one_line(refused, 7, "1 problem", "is not enabled")
    assert refused.stderr.count("is not enabled") == 1
    assert _target_creates(m) == []


def test_writes_do_not_stop_the_copy_but_hold_the_cutover_window_until_quiet(migration: Migration) -> None:
    """Production stays writable while tables copy (the run reaches the gate under writes); the
    window opened by `cutover` waits for the freeze, and says so in one line while writes go on."""
    m = migration
    m.init()
    stop = threading.Event()

    def writer() -> None:
        conn = m.sb.connect(m.source, autocommit=True)
        cur = conn.cursor()
        cur.execute("create table busy (v int)")
        while not stop.is_set():
            cur.execute("insert into busy values (1)")
        conn.close()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    # The writer never stops while this run waits: a few seconds of waiting show it as well as the
    # fixture's 30 (the guard gives up at its timeout either way).
    m.env["MIGRATOR_FREEZE_TIMEOUT_SECONDS"] = "5"
    try:
        gate = m.cli("run", timeout=300)
        assert gate.returncode == 8 and "cutover" in gate.stderr, gate.stderr
        assert _phase(m) == "awaiting_cutover"
        blocked = m.cli("cutover", timeout=120)
        _one_line(blocked, 7, "write freeze not reached", "WriteIOPS up to")
        assert _phase(m) == "freezing"
    finally:
        stop.set()
        thread.join()
    m.env["MIGRATOR_FREEZE_TIMEOUT_SECONDS"] = "60"
    resumed = m.cli("run")
    assert resumed.returncode == 8, resumed.stderr
    assert _phase(m) == "awaiting_decommission"
    # The inserts made while the tables were copied are all on the production name.
    conn = m.sb.connect(m.source, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("select count(*) from busy")
        copied = cur.fetchone()[0]
    finally:
        conn.close()
    old_name = next(c for c in m.sb.cluster_ids() if c.startswith(f"{m.source}-unencrypted-"))
    conn = m.sb.connect(old_name, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("select count(*) from busy")
        written = cur.fetchone()[0]
    finally:
        conn.close()
    assert copied == written > 0


def test_s3_slowdown_is_retried_and_the_run_completes(migration: Migration) -> None:
    m = migration
    m.init()
    m.sb.faults.add("s3_slowdown", times=3, match={"operation": "HeadObject"})
    try:
        done = m.cli("run", "--assume-frozen", "--quiet")
    finally:
        m.sb.faults.clear()
    assert done.returncode == 8, done.stderr
    assert len(m.sb.faults.fired("s3_slowdown")) >= 3
    assert m.table_digests(m.target) == m.table_digests(m.source)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("waiting: ") and "cutover" in lines[0], done.stderr


def _run_with_fault(m: Migration, kind: str, *args: str, **fault: Any) -> Any:
    """`migrator run --assume-frozen ARGS` with one sandbox fault armed (cleared afterwards)."""
    m.sb.faults.add(kind, **fault)
    try:
        return m.cli("run", "--assume-frozen", *args)
    finally:
        m.sb.faults.clear()


def _ended_identical(m: Migration, done: Any, kind: str) -> None:
    """The run reached the cutover gate, the fault fired, and the target holds what the source does."""
    assert done.returncode == 8, done.stderr
    assert m.sb.faults.fired(kind)
    assert m.table_digests(m.target) == m.table_digests(m.source)


def _log(m: Migration) -> str:
    return (m.config.resolve().parent / ".migrator" / "migrator.log").read_text()


def test_connection_dropped_mid_copy_is_retried(migration: Migration) -> None:
    m = migration
    m.init()
    done = _run_with_fault(m, "drop_connection", "--quiet", match={"statement": "copy", "cluster": m.target})
    _ended_identical(m, done, "drop_connection")
    # --quiet: the outcome only; the retry warning went to the log file and the history.
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("waiting: ") and "cutover" in lines[0], done.stderr
    log = _log(m)
    assert "WARNING" in log and "retry 1/" in log
    events = json.loads(m.cli("history", "--json").stdout)["events"]
    warnings = [e for e in events if e["trigger"] == "warning"]
    assert warnings and any("retry 1/" in e["detail"]["message"] for e in warnings)


def test_connection_dropped_mid_unload_ends_the_first_and_runs_it_again(migration: Migration) -> None:
    """An UNLOAD whose connection died may still be running: the step ends the first one on the
    server, then unloads again (CLEANPATH replaces what the first wrote), and the run ends identical."""
    m = migration
    m.init()
    # Into the copy first (a kill right after the first table's UNLOAD), so that the next UNLOAD
    # sent is a table step's, not the rehearsal's.
    m.env["MIGRATOR_FAILPOINT"] = "after_unload"
    assert m.cli("run", "--assume-frozen").returncode == -9
    del m.env["MIGRATOR_FAILPOINT"]
    done = _run_with_fault(m, "drop_connection", "--quiet", match={"statement": "unload", "cluster": m.source})
    _ended_identical(m, done, "drop_connection")
    assert "the first UNLOAD was ended, running it again" in _log(m)


def test_connection_dropped_mid_rehearsal_unload_ends_it_and_runs_it_again(migration: Migration) -> None:
    """The rehearsal's UNLOAD lost with its connection: the first one is ended on the server, the
    rehearsal unloads again on a new session, and the run goes on (it stopped with exit 9 before)."""
    from migrator.strategies.probe import type_groups
    from migrator.warehouse.connection import Session
    from migrator.warehouse.inventory import read_inventory

    m = migration
    m.init()
    # Preflight's probe sends one UNLOAD per type group first; the next one is the rehearsal's.
    with Session.of(m.sb.connect(m.source, autocommit=True)) as source:
        probed = len(type_groups(read_inventory(source)))
    done = _run_with_fault(m, "drop_connection", "--quiet", nth=probed + 1,
                           match={"statement": "unload", "cluster": m.source})
    _ended_identical(m, done, "drop_connection")
    events = json.loads(m.cli("history", "--json").stdout)["events"]
    assert [e["detail"]["rehearsal_table"] for e in events if "rehearsal_table" in (e["detail"] or {})]
    log = _log(m)
    # Said by the rehearsal itself (the table steps' retries log from elsewhere).
    assert any("migrator.strategies.unload_copy: UNLOAD" in line and "the first UNLOAD was ended" in line
               for line in log.splitlines()), log


def test_connection_lost_mid_probe_is_one_preflight_problem_and_a_rerun_passes(migration: Migration) -> None:
    """The probe's temporary tables go with a lost session: they are not reported as left behind."""
    m = migration
    m.init()
    failed = _run_with_fault(m, "drop_connection", match={"statement": "unload", "cluster": m.source})
    assert failed.returncode == 7, failed.stderr
    assert "preflight found 1 problem" in failed.stderr and "connection lost" in failed.stderr
    assert "could not drop temporary table" not in failed.stderr
    assert m.cli("run", "--assume-frozen").returncode == 8


def test_one_table_failing_terminally_is_isolated(migration: Migration) -> None:
    m = migration
    # A plainly named one: the sandbox's fault matches "schema.table" text, ambiguous for '.' in names.
    victim = sorted(t for t in m.table_digests(m.source) if '"' not in t and "[" not in t)[0]
    m.init()
    m.sb.faults.add("sql_error", times=-1, match={"statement": "copy", "table": victim},
                    sqlstate="XX000", message="injected: disk full")
    try:
        failed = m.cli("run", "--assume-frozen")
    finally:
        m.sb.faults.clear()
    _one_line(failed, 10, "1 table(s) did not copy", victim)
    tables = {t["table"]: t for t in json.loads(m.cli("status", "--json", "--tables").stdout)["tables"]}
    assert tables[victim]["state"] == "failed" and "disk full" in tables[victim]["last_error"]
    assert all(t["state"] == "validated" for name, t in tables.items() if name != victim)
    resumed = m.cli("run", "--assume-frozen")
    assert resumed.returncode == 8, resumed.stderr
    assert m.table_digests(m.target) == m.table_digests(m.source)


def test_rollback_before_cutover_leaves_source_and_can_delete_target(migration: Migration) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    assert m.cli("run", "--assume-frozen").returncode == 8
    done = m.cli("rollback", "--delete-target", "--confirm")
    assert done.returncode == 0, done.stderr
    assert _phase(m) == "rolled_back"
    assert m.table_digests(m.source) == before
    rs = m.sb.client("redshift")
    assert rs.describe_clusters(ClusterIdentifier=m.source)["Clusters"][0]["Encrypted"] is False
    assert [c for c in m.sb.calls("DeleteCluster") if c.get("cluster_id") == m.target]
    again = m.cli("rollback")
    _one_line(again, 2, "already rolled back")


def test_rollback_after_cutover_swaps_the_names_back(migration: Migration) -> None:
    m = migration
    before = m.table_digests(m.source)
    m.init()
    assert m.cli("run", "--assume-frozen", "--approve-cutover").returncode == 8
    rs = m.sb.client("redshift")
    assert rs.describe_clusters(ClusterIdentifier=m.source)["Clusters"][0]["Encrypted"] is True
    done = m.cli("rollback")
    assert done.returncode == 0, done.stderr
    assert rs.describe_clusters(ClusterIdentifier=m.source)["Clusters"][0]["Encrypted"] is False
    assert rs.describe_clusters(ClusterIdentifier=m.target)["Clusters"][0]["Encrypted"] is True
    assert m.table_digests(m.source) == before


def test_history_records_every_statement_of_object_replay(migration: Migration) -> None:
    m = migration
    m.init()
    assert m.cli("run", "--assume-frozen").returncode == 8
    events = json.loads(m.cli("history", "--json").stdout)["events"]
    replayed = [e for e in events if e["trigger"] == "objects_replayed"]
    assert replayed and any("CREATE TABLE" in s.upper() for s in replayed[0]["detail"]["statements"])
    table = m.cli("history")
    assert table.returncode == 0 and "objects_replayed" in table.stdout
