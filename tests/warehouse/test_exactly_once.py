"""Load markers, planted unencrypted objects, paginated cleanup, and a real SIGKILL mid-COPY."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from migrator.aws.staging import cleanup_prefix, list_objects, verify_staging
from migrator.errors import RemoteError, SecurityError
from migrator.warehouse import checksum, pipeline, replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, read_inventory
from migrator.aws.staging import split_s3_url
from tests.warehouse.helpers import load, stage

KEY = "Ops Data.events"


def _events(src: Session, tgt: Session) -> TableInfo:
    t = next(t for t in read_inventory(src, include=[KEY]))
    replay.replay_objects(src, tgt, tables=[t])
    pipeline.ensure_bookkeeping(tgt)
    return t


def _count(s: Session) -> int:
    return int(s.run('select count(*) from "Ops Data"."events"')[0][0])


def test_marker_reconcile_semantics(sb: Any, src: Session, tgt: Session, tgt_tx: Session) -> None:
    t = _events(src, tgt)
    assert not pipeline.reconcile_load(tgt, "mk", t.schema, t.name, 1).committed
    u = stage(sb, src, t, migration="mk")
    load(sb, tgt_tx, t, u, migration="mk")
    tgt_tx.close()  # the "crash": the store never heard of the commit
    state = pipeline.reconcile_load(tgt, "mk", t.schema, t.name, 1)
    assert state.committed and state.rows == t.rows and state.manifest == u.manifest_url
    assert not pipeline.reconcile_load(tgt, "mk", t.schema, t.name, 2).committed
    # An uncommitted load leaves neither rows nor marker behind.
    with Session.of(sb.connect("analytics-enc", autocommit=False)) as tx:
        pipeline.ensure_marker(tx, "mk2", t.schema, t.name)  # commits on its own, before the load's work
        tx.run('delete from "Ops Data"."events"')
        for sql, params in pipeline.marker_writes("mk2", t.schema, t.name, 1, u.manifest_url, 0):
            tx.run(sql, params)
        tx.rollback()
    assert not pipeline.reconcile_load(tgt, "mk2", t.schema, t.name, 1).committed
    assert _count(tgt) == t.rows


def test_a_copy_that_loads_other_than_the_unloaded_rows_is_rolled_back(sb: Any, src: Session, tgt: Session,
                                                                         tgt_tx: Session) -> None:
    """The count check rides on the marker insert (no separate pg_last_copy_count() read): a
    COPY that loaded other than the rows its UNLOAD wrote leaves neither rows nor marker."""
    t = _events(src, tgt)
    u = stage(sb, src, t, migration="count")
    before = _count(tgt)  # the module's sandbox is shared: earlier tests may have loaded this table
    for wrong in (u.rows + 1, u.rows - 1):
        with pytest.raises(RemoteError, match=f"other than the {wrong} its UNLOAD wrote") as info:
            pipeline.load_exactly_once(tgt_tx, t.schema, t.name, manifest_url=u.manifest_url, fmt=u.format,
                                       iam_role_arn=sb.info.iam_role_arn, migration="count", attempt=1,
                                       explicit_ids=bool(t.identity_columns), expected_rows=wrong,
                                       columns=t.columns)
        assert "rolled back" in (info.value.hint or "")
        assert _count(tgt) == before
        assert not pipeline.reconcile_load(tgt, "count", t.schema, t.name, 1).committed
    result = load(sb, tgt_tx, t, u, migration="count")
    assert result.rows == u.rows == _count(tgt) > 0
    assert pipeline.reconcile_load(tgt, "count", t.schema, t.name, 1).rows == u.rows
    assert not any("pg_last_copy_count" in s and s.lstrip().lower().startswith("select") for s in tgt_tx.statements)


def test_concurrent_load_markers_do_not_conflict_under_serializable(sb: Any, tgt: Session) -> None:
    """Redshift's SERIALIZABLE isolation fails one of two concurrent transactions that read and
    write one table (error 1023; PostgreSQL's SSI, under the sandbox, the same with 40001).
    Two loads of different tables, interleaved, both commit their markers."""
    pipeline.ensure_bookkeeping(tgt)
    for table in ("a", "b"):
        pipeline.ensure_marker(tgt, "ser", "s", table)
    with Session.of(sb.connect("analytics-enc", autocommit=False)) as one, \
            Session.of(sb.connect("analytics-enc", autocommit=False)) as two:
        for s in (one, two):
            s.run("set transaction isolation level serializable")
        # 0 rows: no COPY ran in these sessions, and the marker insert checks pg_last_copy_count().
        writes = {t: pipeline.marker_writes("ser", "s", t, 1, f"s3://b/{t}/manifest", 0) for t in ("a", "b")}
        for (sql_a, p_a), (sql_b, p_b) in zip(writes["a"], writes["b"]):
            one.run(sql_a, p_a)
            two.run(sql_b, p_b)
        one.commit()
        two.commit()
    assert pipeline.reconcile_load(tgt, "ser", "s", "a", 1).committed
    assert pipeline.reconcile_load(tgt, "ser", "s", "b", 1).committed
    assert pipeline.marker_name("ser", "s", "a") != pipeline.marker_name("ser", "s", "b")
    assert pipeline.marker_name("m", "a.b", "c") != pipeline.marker_name("m", "a", "b.c")


def test_every_unload_and_copy_is_handed_to_the_caller(sb: Any, src: Session, tgt: Session,
                                                        tgt_tx: Session) -> None:
    t = _events(src, tgt)
    heard: list[tuple[str, str]] = []
    hook = lambda kind, sql: heard.append((kind, sql))  # noqa: E731
    u = pipeline.unload_table(src, t.schema, t.name, t.columns, staging_uri=f"s3://{sb.info.bucket}/wh/",
                              migration="hook", attempt=1, iam_role_arn=sb.info.iam_role_arn,
                              kms_key_id=sb.info.kms_alias, on_statement=hook)
    result = pipeline.load_exactly_once(tgt_tx, t.schema, t.name, manifest_url=u.manifest_url, fmt=u.format,
                                        iam_role_arn=sb.info.iam_role_arn, migration="hook", attempt=1,
                                        explicit_ids=bool(t.identity_columns), expected_rows=u.rows,
                                        columns=t.columns, on_statement=hook)
    assert heard == [("unload", u.recorded), ("copy", result.copy_statement)]
    assert heard[0][1].startswith("UNLOAD (") and heard[1][1].startswith("COPY ")


def test_unencrypted_planted_object_is_a_security_error(sb: Any, src: Session, tgt: Session) -> None:
    t = _events(src, tgt)
    u = stage(sb, src, t, migration="plant")
    s3, kms = sb.client("s3"), sb.client("kms")
    doc = json.loads(s3.get_object(Bucket=sb.info.bucket, Key=split_s3_url(u.manifest_url)[1])["Body"].read())
    bucket, key = split_s3_url(doc["entries"][0]["url"])
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=body)  # same bytes, no SSE-KMS
    with pytest.raises(SecurityError, match="not SSE-KMS") as info:
        verify_staging(s3, kms, u.manifest_url, kms_key_id=sb.info.kms_key_arn, expected_rows=t.rows)
    assert info.value.exit_code == 11
    s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=sb.info.other_region_kms_key_arn)
    with pytest.raises(SecurityError, match="KMS key"):  # another region: not even resolvable here
        verify_staging(s3, kms, u.manifest_url, kms_key_id=sb.info.kms_alias, expected_rows=t.rows)


def test_cleanup_removes_every_page(sb: Any) -> None:
    s3 = sb.client("s3")
    prefix = "wh/cleanup/attempt-1/"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=sb.info.bucket, Key=f"{prefix}{i:05d}", Body=b"x"),
                      range(1005)))
    s3.put_object(Bucket=sb.info.bucket, Key="wh/cleanup/attempt-10/keep", Body=b"x")
    assert cleanup_prefix(s3, f"s3://{sb.info.bucket}/{prefix}") == 1005
    assert list_objects(s3, sb.info.bucket, prefix) == []
    assert len(list_objects(s3, sb.info.bucket, "wh/cleanup/attempt-10/")) == 1


CHILD = r"""
import json, sys
import redshift_connector
from migrator.warehouse import pipeline
from migrator.warehouse.connection import Session
from migrator.warehouse.sql import DataFormat
a = json.loads(sys.stdin.readline())  # the password travels on stdin, never in argv
conn = redshift_connector.connect(host=a["host"], port=a["port"], database="dev", user=a["user"],
                                  password=a["password"], ssl=False)
conn.autocommit = False
print("loading", flush=True)
pipeline.load_exactly_once(Session.of(conn), a["schema"], a["table"], manifest_url=a["manifest"],
                           fmt=DataFormat(a["fmt"], ""), iam_role_arn=a["role"], migration="crash", attempt=1,
                           explicit_ids=False, expected_rows=a["rows"], columns=[])  # no VARBYTE
print("committed", flush=True)
"""


def test_sigkill_mid_copy_then_rerun_loads_exactly_once(sb: Any, src: Session, tgt: Session,
                                                        tgt_tx: Session) -> None:
    t = _events(src, tgt)
    u = stage(sb, src, t, migration="crash")
    load(sb, tgt_tx, t, u, migration="crash")  # a first complete load: the rows are there once
    info = sb.cluster_info("analytics-enc")
    sb.faults.add("latency", match={"statement": "copy"}, seconds=5)
    args = json.dumps({"host": info.host, "port": info.port, "user": info.user, "password": info.password,
                       "schema": t.schema, "table": t.name, "manifest": u.manifest_url, "fmt": u.format.name,
                       "role": sb.info.iam_role_arn, "rows": t.rows})
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, **sb.env()})
    assert child.stdin is not None
    child.stdin.write(args + "\n")
    child.stdin.flush()
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "loading"
        # Wait until the COPY is being held by the fault (it fired), then kill the loader for real.
        from migrator.retry import Backoff, wait_until

        wait_until(lambda: sb.faults.fired("latency") or None, what="COPY held", timeout=20,
                   backoff=Backoff(base=0.05, cap=0.2))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        sb.faults.clear()
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    state = pipeline.reconcile_load(tgt, "crash", t.schema, t.name, 1)
    assert state.committed and state.rows == t.rows  # the first load's marker; the killed one never committed
    with Session.of(sb.connect("analytics-enc", autocommit=False)) as tx:
        load(sb, tx, t, u, migration="crash")  # the rerun
    assert _count(tgt) == t.rows
    assert checksum.compare_table(src, tgt, t.schema, t.name, t.columns).equal
