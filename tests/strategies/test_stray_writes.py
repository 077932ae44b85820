"""Issue 25 part 3, through the CLI against the sandbox: after the cutover renamed the source away,
each `run` at the decommission gate checks the old cluster's logs for stray writes and records the
check; `status` and `report` show them first; `decommission --confirm` refuses (exit 7, naming the
tables) until `--accept-stray-writes`, which is recorded with who and when; a hole in the record
longer than the logs keep is missing proof, never "nothing written". Also the sandbox's
STL_CONNECTION_LOG and log retention the watch relies on, and the hole arithmetic itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, update

from migrator.config import load_config
from migrator.sandbox.client import SandboxClient as Sandbox
from migrator.store.models import RemoteAction
from migrator.strategies import stray_record
from migrator.strategies.stray_record import CheckRecord, holes
from tests.inbox import serving
from tests.strategies.support import PW_ENV, Migration, make_cluster, migration, one_line

TARGET_PW_ENV = "TGT_PW"


# -- the hole arithmetic (no sandbox) --------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _c(since_days: float, until_days: float, ok: bool = True) -> CheckRecord:
    return CheckRecord(T0 + timedelta(days=until_days), T0 + timedelta(days=since_days),
                       T0 + timedelta(days=until_days), ok, {}, [])


def _at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_checks_less_than_the_retention_apart_leave_no_hole() -> None:
    checks = [_c(0, 1), _c(0, 6), _c(5, 12), _c(10, 17)]
    assert holes(T0, checks, _at(17), fresh=True) == []


def test_a_gap_longer_than_the_retention_is_a_hole_before_the_first_check_between_two_and_at_the_end() -> None:
    first = holes(T0, [_c(3, 10)], _at(10), fresh=True)
    assert [(h.start, h.end) for h in first] == [(_at(0), _at(3))] and "before the first check" in first[0].why
    between = holes(T0, [_c(0, 1), _c(9, 16)], _at(16), fresh=True)
    assert [(h.start, h.end) for h in between] == [(_at(1), _at(9))] and "between two checks" in between[0].why
    # a failed check covers nothing; without a fresh check the time since the last one is unproven
    tail = holes(T0, [_c(0, 1), _c(0, 2, ok=False)], _at(2), fresh=False)
    assert [(h.start, h.end) for h in tail] == [(_at(1), _at(2))]
    assert [(h.start, h.end) for h in holes(T0, [], _at(1), fresh=False)] == [(_at(0), _at(1))]


# -- the sandbox models what the watch reads ---------------------------------------------------------

def test_sandbox_connection_log_names_the_client_address_and_is_for_superusers(sb: Sandbox) -> None:
    make_cluster(sb, "sw-connlog", tables=0)
    conn = sb.connect("sw-connlog", autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute("select trim(event), trim(remotehost), trim(remoteport), trim(username) from stl_connection_log"
                       " where pid = pg_backend_pid() order by recordtime")
        rows = cursor.fetchall()
    finally:
        conn.close()
    events = [r[0] for r in rows]
    assert events[:2] == ["authenticated", "initiating session"], rows
    assert rows[1][1] == "127.0.0.1" and rows[1][2].isdigit() and int(rows[1][2]) > 0
    assert rows[1][3] == sb.cluster_info("sw-connlog").user
    with psycopg.connect(sb.admin_dsn("sw-connlog"), autocommit=True) as pg:
        pg.execute("create role sw_plain login")
        pg.execute("set role sw_plain")
        visible = pg.execute("select count(*) from pg_sandbox.stl_connection_log").fetchone()
    assert visible == (0,)  # "visible only to superusers"


def test_sandbox_logs_keep_seven_days(sb: Sandbox) -> None:
    make_cluster(sb, "sw-retain", tables=0)
    with psycopg.connect(sb.admin_dsn("sw-retain"), autocommit=True) as pg:
        pg.execute("insert into pg_sandbox.stl_insert (userid, query, endtime, rows, tbl) values"
                   " (1, 1, (now() at time zone 'utc') - interval '8 days', 1, 1),"
                   " (1, 2, (now() at time zone 'utc') - interval '6 days', 1, 1)")
    session = sb.connect("sw-retain", autocommit=True)  # a new session: the log past its retention is gone
    try:
        session.cursor().execute("select 1")  # served once the session is logged (and the old log purged)
    finally:
        session.close()
    with psycopg.connect(sb.admin_dsn("sw-retain"), autocommit=True) as pg:
        kept = pg.execute("select query from pg_sandbox.stl_insert where query in (1, 2)").fetchall()
    assert kept == [(2,)]


# -- through the CLI ------------------------------------------------------------------------------------

def _unload_copy(sb: Sandbox, tmp: Path, source_id: str) -> Migration:
    make_cluster(sb, source_id, tables=2, rows=20)
    conn = sb.connect(source_id, autocommit=True)
    try:
        conn.cursor().execute("create table public.orders (id integer, note varchar(32))")
        conn.cursor().execute("insert into public.orders values (1, 'before')")
    finally:
        conn.close()
    m = migration(sb, tmp, source_id, strategy="unload-copy", cluster_id=f"{source_id}-enc",
                  password_env=TARGET_PW_ENV, staging={"s3_uri": f"s3://{sb.info.bucket}/{source_id}/"})
    m.env.update({TARGET_PW_ENV: "TargetPassw0rd", "MIGRATOR_FREEZE_QUIET_SECONDS": "0"})
    assert PW_ENV in m.env
    return m


def _to_decommission_gate(m: Migration) -> str:
    m.init()
    ran = m.run("--assume-frozen", "--approve-cutover")
    assert ran.returncode == 8, ran.stderr + ran.stdout
    assert m.phase() == "awaiting_decommission"
    with m.store() as store:
        found = store.get_action(store.require_migration(m.name), "cutover:plan")
    assert found is not None
    return str(found.response["old_name"])


def _stray_insert(sb: Sandbox, old_name: str) -> str:
    """A client that still reaches the old cluster (by its new name) inserts a row; returns the table."""
    conn = sb.connect(old_name, autocommit=True)
    try:
        conn.cursor().execute("insert into public.orders values (2, 'after the rename')")
    finally:
        conn.close()
    return "public.orders"


def _events(m: Migration, trigger: str) -> list[Any]:
    with m.store() as store:
        migration_view = store.require_migration(m.name)
        return [e for e in store.events(migration_view, subject=stray_record.SUBJECT) if e.trigger == trigger]


def _exists(sb: Sandbox, cluster_id: str) -> bool:
    return any(c["ClusterIdentifier"] == cluster_id for c in sb.client("redshift").describe_clusters()["Clusters"])


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with serving("/hook") as found:
        yield found


def test_a_write_to_the_old_cluster_stops_decommission_until_accepted(
        sb: Sandbox, tmp_path: Path, inbox: tuple[str, list[dict[str, Any]]]) -> None:
    url, messages = inbox
    m = _unload_copy(sb, tmp_path, "sw-stray")
    m.config.write_text(m.config.read_text() + '\n[notify]\nwebhook_url_env = "HOOK_URL"\n')
    m.env["HOOK_URL"] = url
    old_name = _to_decommission_gate(m)
    assert "stray_writes" not in [msg["event"] for msg in messages]
    table = _stray_insert(sb, old_name)

    sent = len(messages)
    waiting = m.run()
    assert waiting.returncode == 8, waiting.stderr  # the gate, as before
    # people are told, first, and once: a run that finds nothing new sends no second one
    assert [msg["event"] for msg in messages[sent:]] == ["stray_writes", "gate_waiting"]
    assert table in messages[sent]["summary"] and old_name in messages[sent]["summary"]
    assert m.run().returncode == 8
    assert [msg["event"] for msg in messages].count("stray_writes") == 1
    checks = _events(m, stray_record.CHECK_EVENT)
    last = checks[-1].detail
    assert last["ok"] is True and last["cluster"] == old_name
    assert table in last["tables"], last
    write = next(w for w in last["writes"] if w["table"] == table)
    assert write["kind"] == "insert" and write["rows"] == 1
    assert write["user"] == sb.cluster_info(old_name).user and write["host"].startswith("127.0.0.1:")
    assert "insert into" in write["statement"]
    assert datetime.fromisoformat(last["since"]) <= datetime.fromisoformat(write["at"]) \
        <= datetime.fromisoformat(last["until"]) + timedelta(seconds=5)

    status = m.cli("status")
    assert status.returncode == 0, status.stderr
    first = next(line for line in status.stdout.splitlines() if line.strip())
    assert first.startswith("STRAY WRITES") and table in first and old_name in first, status.stdout

    refused = m.cli("decommission", "--confirm")
    assert refused.returncode == 7, refused.stderr + refused.stdout
    line = one_line(refused.stderr)
    assert "decommission refused" in line and table in line and "--accept-stray-writes" in line
    assert _exists(sb, old_name) and m.phase() == "awaiting_decommission"
    assert _events(m, stray_record.ACCEPT_EVENT) == []

    report = m.cli("report", "--format", "md")
    assert report.returncode == 0, report.stderr
    assert report.stdout.index("Stray writes to the old source") < report.stdout.index("## Overview")
    assert table in report.stdout

    accepted = m.cli("decommission", "--confirm", "--accept-stray-writes")
    assert accepted.returncode == 0, accepted.stderr + accepted.stdout
    assert not _exists(sb, old_name) and m.phase() == "completed"
    acceptances = _events(m, stray_record.ACCEPT_EVENT)
    assert len(acceptances) == 1
    got = acceptances[0].detail
    assert got["tables"] == [table] and got["user"] and got["at"] and got["via"] == "gate"


def test_with_no_stray_write_decommission_proceeds_after_a_last_check(sb: Sandbox, tmp_path: Path) -> None:
    m = _unload_copy(sb, tmp_path, "sw-clean")
    old_name = _to_decommission_gate(m)
    assert m.run().returncode == 8
    done = m.cli("decommission", "--confirm")
    assert done.returncode == 0, done.stderr + done.stdout
    assert not _exists(sb, old_name) and m.phase() == "completed"
    checks = _events(m, stray_record.CHECK_EVENT)
    # the cutover run's gate, the plain run, decommission's gate and its last check before the delete
    assert len(checks) >= 4 and all(c.detail["ok"] and not c.detail["tables"] for c in checks)
    assert checks[-1].from_state == "decommissioning"
    assert _events(m, stray_record.ACCEPT_EVENT) == []


def _backdate_rename(m: Migration, days: float) -> None:
    """As if the cutover had renamed the source ``days`` ago (the store is the record of time)."""
    engine = create_engine(load_config(m.config).store_url)
    with engine.begin() as conn:
        conn.execute(update(RemoteAction).where(RemoteAction.action_key == "cutover:rename_source")
                     .values(started_at=datetime.now(UTC) - timedelta(days=days)))
    engine.dispose()


@pytest.mark.parametrize("strategy", ["snapshot-restore"])
def test_a_hole_longer_than_the_logs_keep_is_missing_proof(sb: Sandbox, tmp_path: Path, strategy: str) -> None:
    make_cluster(sb, "sw-hole", tables=1, rows=10)
    m = migration(sb, tmp_path, "sw-hole", strategy=strategy, cluster_id="sw-hole-enc")
    m.env["MIGRATOR_FREEZE_QUIET_SECONDS"] = "0"
    old_name = _to_decommission_gate(m)

    # a check that cannot be made proves nothing: the run still stops at the gate, the failure is
    # recorded and shown, and decommission says the proof since the last good check is missing
    password = m.env[PW_ENV]
    m.env[PW_ENV] = "not-the-password"
    assert m.run().returncode == 8
    failed = _events(m, stray_record.CHECK_EVENT)[-1].detail
    assert failed["ok"] is False and failed["error"] and failed["cluster"] == old_name
    assert "not-the-password" not in json.dumps(failed)
    status = m.cli("status")
    assert "the last check failed" in next(x for x in status.stdout.splitlines() if x.strip()), status.stdout
    refused = m.cli("decommission", "--confirm")
    assert refused.returncode == 7, refused.stderr + refused.stdout
    assert "proof" in one_line(refused.stderr) and "no check could be made since" in one_line(refused.stderr)
    assert _exists(sb, old_name)
    m.env[PW_ENV] = password

    _backdate_rename(m, 10)  # the first check was made 10 days after the rename: 3 days no log reaches

    refused = m.cli("decommission", "--confirm")
    assert refused.returncode == 7, refused.stderr + refused.stdout
    line = one_line(refused.stderr)
    assert "proof" in line and "missing" in line and "before the first check" in line, line
    assert _exists(sb, old_name) and m.phase() == "awaiting_decommission"

    accepted = m.cli("decommission", "--confirm", "--accept-stray-writes")
    assert accepted.returncode == 0, accepted.stderr + accepted.stdout
    assert not _exists(sb, old_name)
    (acceptance,) = _events(m, stray_record.ACCEPT_EVENT)
    assert acceptance.detail["tables"] == [] and len(acceptance.detail["holes"]) == 1
    assert "before the first check" in acceptance.detail["holes"][0]["why"]
