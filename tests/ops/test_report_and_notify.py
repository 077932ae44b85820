"""A real unload-copy migration with a webhook: people are told when a gate waits and when a run
fails, and `migrator report` gives the evidence an auditor asks for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inbox import serving
from tests.unload_copy.conftest import Migration, migration  # noqa: F401 (fixture)


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with serving("/hook/s3cr3t-token") as found:
        yield found


@pytest.mark.slow
def test_gate_notification_then_evidence_report(migration: Migration,  # noqa: F811
                                                inbox: tuple[str, list[dict[str, Any]]]) -> None:
    url, messages = inbox
    m = migration
    m.config.write_text(m.config.read_text() + '\n[notify]\nwebhook_url_env = "HOOK_URL"\n')
    m.env["HOOK_URL"] = url
    m.init()

    first = m.cli("run", "--quiet")
    assert first.returncode == 8, first.stderr
    [waiting] = messages
    assert waiting["event"] == "gate_waiting" and "cutover" in waiting["summary"]

    cut = m.cli("cutover")
    assert cut.returncode == 8, cut.stderr  # now waiting at the decommission gate
    assert [msg["event"] for msg in messages] == ["gate_waiting", "gate_waiting"]

    history = json.loads(m.cli("history", "--json").stdout)
    notified = [e for e in history["events"] if e["trigger"] == "notified"]
    assert len(notified) == 2 and all(e["detail"]["ok"] for e in notified)
    assert "s3cr3t-token" not in json.dumps(history), "the webhook's token must not reach the history"

    out = m.directory / "evidence.html"
    written = m.cli("report", "--format", "html", "-o", str(out))
    assert written.returncode == 0, written.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page.split("<body>")[1]
    assert "@media print" in page

    doc = json.loads(m.cli("report", "--format", "json").stdout)
    tables = doc["tables"]
    assert tables and all(t["checksums_match"] and t["staging_verified"] for t in tables)
    assert doc["summary"]["rows_loaded"] == doc["summary"]["rows_source"] > 0
    [approval] = doc["approvals"]
    assert approval["gate"] == "cutover" and approval["user"] and approval["host"]
    phases = [p["phase"] for p in doc["phases"]]
    assert "copying" in phases and "cutting_over" in phases
    assert all(p["seconds"] is not None for p in doc["phases"][:-1])
    target = [e for e in doc["encryption_observed"] if e["encrypted"]]
    assert target, "the encrypted target as AWS described it is in the evidence"
    assert any(e["encrypted"] is False for e in doc["encryption_observed"]), "and the unencrypted source before"
    md = m.cli("report")
    assert md.returncode == 0 and "## Tables" in md.stdout and "## Approvals" in md.stdout


@pytest.mark.slow
def test_a_failed_run_is_notified(migration: Migration,  # noqa: F811
                                  inbox: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    url, messages = inbox
    m = migration
    # A staging key that does not exist: preflight fails the run (exit 7).
    m.config.write_text(m.config.read_text().replace(
        f'kms_key_id = "{m.sb.info.kms_alias}"\n\n[tables]', 'kms_key_id = "alias/no-such-key"\n\n[tables]')
        + '\n[notify]\nwebhook_url_env = "HOOK_URL"\n')
    m.env["HOOK_URL"] = url
    m.init()
    failed = m.cli("run", "--quiet")
    assert failed.returncode == 7, failed.stderr
    assert [msg["event"] for msg in messages] == ["run_failed"]
    assert "no-such-key" in messages[0]["summary"]


@pytest.mark.slow
def test_a_slow_sns_is_tried_briefly_and_never_holds_the_run(migration: Migration) -> None:  # noqa: F811
    """SNS answering slower than the notification timeout: the delivery is recorded as failed
    after at most two short tries, not after the run's own patient AWS retries."""
    m = migration
    sns = m.sb.client("sns")
    topic = sns.create_topic(Name=f"slow-{m.name}")["TopicArn"]
    m.config.write_text(m.config.read_text().replace(
        f'kms_key_id = "{m.sb.info.kms_alias}"\n\n[tables]', 'kms_key_id = "alias/no-such-key"\n\n[tables]')
        + f'\n[notify]\nsns_topic_arn = "{topic}"\n')
    m.env["MIGRATOR_NOTIFY_TIMEOUT_SECONDS"] = "1"
    m.init()
    faults = m.sb.faults
    before = len([f for f in faults.fired("latency") if f["attrs"].get("operation") == "Publish"])
    faults.add("latency", times=-1, match={"service": "sns", "operation": "Publish"}, seconds=3.0)
    try:
        failed = m.cli("run", "--quiet")
    finally:
        faults.clear()
    assert failed.returncode == 7, failed.stderr
    tries = len([f for f in faults.fired("latency") if f["attrs"].get("operation") == "Publish"]) - before
    assert 1 <= tries <= 2
    history = json.loads(m.cli("history", "--json").stdout)
    [notified] = [e for e in history["events"] if e["trigger"] == "notified"]
    assert notified["detail"]["channel"] == "sns" and notified["detail"]["ok"] is False
    assert "Timeout" in notified["detail"]["error"]
