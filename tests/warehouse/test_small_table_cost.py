"""The cuts in a small table's statements keep what they replace: a worker's marker table is
found by reconcile after a crash, a first attempt's load (no DELETE) and a later one (DELETE)
both leave exactly one copy, the manifest counts the rows an UNLOAD wrote, and grouped
checksums equal one statement per table."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.aws import staging
from migrator.errors import MigratorError
from migrator.warehouse import checksum, pipeline, replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, read_inventory
from tests.warehouse.helpers import stage

KEY = "Ops Data.events"


def _events(src: Session, tgt: Session) -> TableInfo:
    t = next(t for t in read_inventory(src, include=[KEY]))
    replay.replay_objects(src, tgt, tables=[t])
    pipeline.ensure_bookkeeping(tgt)
    return t


def _count(s: Session) -> int:
    return int(s.run('select count(*) from "Ops Data"."events"')[0][0])


def test_worker_marker_load_is_reconciled_and_loads_once(sb: Any, src: Session, tgt: Session) -> None:
    t = _events(src, tgt)
    tgt.run('delete from "Ops Data"."events"')
    u = stage(sb, src, t, migration="wm")
    marker = pipeline.ensure_worker_marker(tgt, "wm", "worker-1")
    other = pipeline.ensure_worker_marker(tgt, "wm", "worker-2")
    assert marker != other  # two workers never write one marker table
    # An autocommit session (a copy worker's): the load still runs in one transaction.
    first = pipeline.load_exactly_once(tgt, t.schema, t.name, manifest_url=u.manifest_url, fmt=u.format,
                                       iam_role_arn=sb.info.iam_role_arn, migration="wm", attempt=1,
                                       explicit_ids=bool(t.identity_columns), expected_rows=t.rows,
                                       columns=t.columns, marker=marker, known_empty=True)
    assert tgt.conn.autocommit and first.rows == t.rows and _count(tgt) == t.rows
    assert not any(s.startswith("DELETE") for s in first.statements)  # known empty: no DELETE
    state = pipeline.reconcile_load(tgt, "wm", t.schema, t.name, 1)
    assert state.committed and state.rows == t.rows and state.manifest == u.manifest_url
    assert not pipeline.reconcile_load(tgt, "wm", t.schema, t.name, 2).committed
    # Attempt 2 on the other worker: DELETE first, so the table still holds one copy; each
    # attempt's marker is found in whichever worker's table it is.
    u2 = stage(sb, src, t, migration="wm", attempt=2)
    again = pipeline.load_exactly_once(tgt, t.schema, t.name, manifest_url=u2.manifest_url, fmt=u2.format,
                                       iam_role_arn=sb.info.iam_role_arn, migration="wm", attempt=2,
                                       explicit_ids=bool(t.identity_columns), expected_rows=t.rows,
                                       columns=t.columns, marker=other)
    assert any(s.startswith("DELETE") for s in again.statements)
    assert _count(tgt) == t.rows
    assert pipeline.reconcile_load(tgt, "wm", t.schema, t.name, 2).committed
    assert pipeline.reconcile_load(tgt, "wm", t.schema, t.name, 1).committed


def test_rows_unloaded_come_from_the_manifest(sb: Any, src: Session) -> None:
    t = next(t for t in read_inventory(src, include=[KEY]))
    u = pipeline.unload_table(src, t.schema, t.name, t.columns, staging_uri=f"s3://{sb.info.bucket}/wh-count/",
                              migration="mc", attempt=1, iam_role_arn=sb.info.iam_role_arn,
                              kms_key_id=sb.info.kms_alias, count_rows=False)
    assert u.rows is None
    report = staging.verify_staging(sb.client("s3"), sb.client("kms"), u.manifest_url,
                                    kms_key_id=sb.info.kms_alias, expected_rows=None)
    assert report.rows == t.rows == int(src.run('select count(*) from "Ops Data"."events"')[0][0])


def test_grouped_checksums_equal_one_statement_each(sb: Any, src: Session) -> None:
    tables = read_inventory(src)
    assert len(tables) > 2
    one_by_one = {(t.schema, t.name): checksum.fingerprint(src, t.schema, t.name, t.columns) for t in tables}
    grouped = checksum.fingerprints(src, [(t.schema, t.name, t.columns) for t in tables])
    assert grouped == one_by_one
    # A group holding a table that is gone is read again one by one: the error names that table.
    with pytest.raises(MigratorError, match="no_such_table"):
        checksum.fingerprints(src, [(t.schema, t.name, t.columns) for t in tables]
                              + [("public", "no_such_table", tables[0].columns)])
