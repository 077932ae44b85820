"""The unload-copy data path as the operator sees it: every UNLOAD and COPY in history without
a secret, load errors explained, names printed as themselves, tables told apart by their
(schema, table) pair, staged files gone after a rollback, a lost COMMIT reconciled."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from migrator.aws.staging import list_objects
from migrator.config import load_config
from migrator.names import table_key
from migrator.strategies.table_steps import remove_staged_files
from tests.unload_copy.conftest import Migration

# Whole migrations through the CLI against the sandbox: minutes, not seconds.
pytestmark = pytest.mark.slow

LINK = "[link=x]y[/link]"


def _events(m: Migration, *args: str) -> list[dict[str, Any]]:
    out = m.cli("history", "--json", *args)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout)["events"])


def _staged(m: Migration) -> list[str]:
    return [o["Key"] for o in list_objects(m.sb.client("s3"), m.sb.info.bucket, m.config.read_text()
                                           .split(f"s3://{m.sb.info.bucket}/")[1].split('"')[0])]


def test_history_has_every_unload_and_copy_and_names_print_as_themselves(migration: Migration) -> None:
    m = migration
    tables = set(m.table_digests(m.source))
    m.init()
    done = m.cli("run", "--assume-frozen")
    assert done.returncode == 8, done.stderr
    events = _events(m)
    statements = [e for e in events if e["trigger"] == "statement"]
    for table in tables:
        mine = [e["detail"] for e in statements if e["subject"] == f"table:{table}"]
        assert [d["kind"] for d in mine].count("unload") == 1, (table, mine)
        assert [d["kind"] for d in mine].count("copy") == 1, (table, mine)
        assert all(d["statement"].startswith(("UNLOAD", "COPY")) for d in mine)
    secrets = [m.env["UC_SOURCE_PASSWORD"], m.env["UC_TARGET_PASSWORD"], m.sb.info.secret_key, m.sb.info.access_key]
    text = json.dumps(events)
    assert not [s for s in secrets if s in text]
    # "a.b".c and a."b.c" are two tables, each with its own history.
    dotted, other = table_key("a.b", "c"), table_key("a", "b.c")
    assert dotted in tables and other in tables and dotted != other
    only = _events(m, "--table", dotted)
    assert only and {e["subject"] for e in only} == {f"table:{dotted}"}
    assert {e["subject"] for e in _events(m, "--table", other)} == {f"table:{other}"}
    # Rich output shows catalog names as written, markup-looking ones included.
    status = m.cli("status", "--tables")
    assert status.returncode == 0, status.stderr
    assert "public.[/]" in status.stdout and f"public.{LINK}" in status.stdout and dotted in status.stdout
    inventory = m.cli("inventory")
    assert inventory.returncode == 0, inventory.stderr
    assert "public.[/]" in inventory.stdout and f"public.{LINK}" in inventory.stdout
    history = m.cli("history", "--table", f"public.{LINK}")
    assert history.returncode == 0 and f"table:public.{LINK}" in history.stdout, history.stderr


def test_failed_copy_shows_load_errors_and_rollback_removes_staged_files(migration: Migration) -> None:
    m = migration
    victim = "public.[/]"
    m.init()
    m.sb.faults.add("sql_error", times=1, match={"statement": "copy", "table": victim},
                    sqlstate="XX000", message="injected: disk full")
    try:
        failed = m.cli("run", "--assume-frozen")
    finally:
        m.sb.faults.clear()
    assert failed.returncode == 10, failed.stderr
    # The target's table now refuses the rows (a label longer than 3 characters): a real load error.
    with psycopg.connect(m.sb.admin_dsn(m.target), autocommit=True) as pg:
        pg.execute('alter table public."[/]" alter column label type varchar(3)')
    again = m.cli("run", "--assume-frozen")
    assert again.returncode == 10, again.stderr
    assert "String length exceeds DDL length" in again.stderr and "first load error" in again.stderr
    rows = {t["table"]: t for t in json.loads(m.cli("status", "--json", "--tables").stdout)["tables"]}
    assert "String length exceeds DDL length" in rows[victim]["last_error"]
    shown = m.cli("status", "--tables")
    assert "String length exceeds DDL length" in shown.stdout.replace("\n", " ") or "String" in shown.stdout
    failures = [e["detail"] for e in _events(m, "--table", victim) if e["trigger"] == "statement_failed"]
    assert failures[0]["statement"].startswith("COPY") and "disk full" in failures[0]["error"]
    assert any("String length exceeds DDL length" in line for f in failures for line in f["load_errors"])
    # The first attempt's staged files went before the second attempt; the second's are still there.
    staged = _staged(m)
    assert staged and all("/attempt-2/" in key for key in staged), staged
    done = m.cli("rollback", "--delete-target", "--confirm")
    assert done.returncode == 0, done.stderr
    assert _staged(m) == []


def test_staged_files_are_kept_on_rollback_with_staging_keep(migration: Migration,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    m = migration
    m.config.write_text(m.config.read_text().replace("[tables]", "keep = true\n\n[tables]"))
    for name, value in m.limited_env().items():
        monkeypatch.setenv(name, value)
    config = load_config(m.config)
    prefix = f"{m.config.read_text().split(f's3://{m.sb.info.bucket}/')[1].split(chr(34))[0]}"
    key = f"{prefix}{config.settings.migration.name}/public.t/attempt-1/0000_part_00"
    m.sb.client("s3").put_object(Bucket=m.sb.info.bucket, Key=key, Body=b"x")
    assert remove_staged_files(config) == 0
    assert _staged(m) == [key]
    m.config.write_text(m.config.read_text().replace("keep = true\n", ""))
    assert remove_staged_files(load_config(m.config)) == 1
    assert _staged(m) == []


def test_connection_lost_at_commit_is_reconciled_from_the_marker(migration: Migration) -> None:
    m = migration
    m.init()
    m.sb.faults.add("drop_connection", times=1, match={"statement": "commit", "cluster": m.target})
    try:
        done = m.cli("run", "--assume-frozen")
    finally:
        m.sb.faults.clear()
    assert done.returncode == 8, done.stderr
    assert m.sb.faults.fired("drop_connection")
    reconciled = [e for e in _events(m) if e["trigger"] == "load_reconciled"]
    assert len(reconciled) == 1 and reconciled[0]["detail"]["committed"] in (True, False)
    assert m.table_digests(m.target) == m.table_digests(m.source)


def test_concurrent_loads_under_serializable_isolation_commit(migration: Migration) -> None:
    """Four workers load four tables at once into a SERIALIZABLE target: each load's marker is
    its own table, so no transaction fails with Redshift's error 1023."""
    m = migration
    m.config.write_text(m.config.read_text().replace("concurrency = 3", "concurrency = 4"))
    m.init()
    # A first run creates the target and its tables, and every COPY fails.
    m.sb.faults.add("sql_error", times=-1, match={"statement": "copy", "cluster": m.target}, sqlstate="XX000", message="injected")
    try:
        failed = m.cli("run", "--assume-frozen")
    finally:
        m.sb.faults.clear()
    assert failed.returncode == 10, failed.stderr
    m.sb.set_isolation(m.target, "SERIALIZABLE")
    conn = m.sb.connect(m.target, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("show transaction_isolation")
        assert cur.fetchall()[0][0] == "serializable"
    finally:
        conn.close()
    done = m.cli("run", "--assume-frozen")
    assert done.returncode == 8, done.stderr
    events = _events(m)
    # Error 1023 reads "Serializable isolation violation on table ..." and would have been retried.
    assert "Serializable isolation violation" not in json.dumps(events) + done.stderr
    assert not [e for e in events if e["trigger"] == "retry_scheduled"]
    assert m.table_digests(m.target) == m.table_digests(m.source)
