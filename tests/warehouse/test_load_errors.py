"""A failed COPY explains itself (issue 13, item 3): the first rows of stl_load_errors for that
COPY, with the raw value truncated and anything secret-looking removed, on the raised error."""

from __future__ import annotations

from typing import Any

import pytest

from migrator.errors import MigratorError
from migrator.warehouse import pipeline
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import read_inventory
from migrator.warehouse.sql import TEXT, DataFormat
from tests.warehouse.helpers import stage

SRC, TGT = "le-src", "le-tgt"
KEY_ID = "AKIAABCDEFGHIJKLMNOP"


def test_failed_copy_carries_its_load_errors(sb: Any) -> None:
    sb.create_cluster(SRC)
    sb.create_cluster(TGT, encrypted=True, kms_key_id=sb.info.kms_key_arn)
    with Session.of(sb.connect(SRC, autocommit=True)) as src, Session.of(sb.connect(TGT, autocommit=True)) as tgt, \
            Session.of(sb.connect(TGT, autocommit=False)) as tx:
        src.run('create schema "le"')
        src.run('create table "le"."t" ("id" integer, "v" varchar(400))')
        src.run("insert into \"le\".\"t\" values (1, '12'), (2, %s)", [KEY_ID + " " + "y" * 300])
        # The target's column cannot hold the text: COPY rejects row 2.
        tgt.run('create schema "le"')
        tgt.run('create table "le"."t" ("id" integer, "v" integer)')
        t = next(iter(read_inventory(src, include=["le.t"])))
        pipeline.ensure_bookkeeping(tgt)
        u = stage(sb, src, t, migration="le", fmt=DataFormat(TEXT, "test"))
        heard: list[tuple[str, str]] = []
        with pytest.raises(MigratorError) as caught:
            pipeline.load_exactly_once(tx, "le", "t", manifest_url=u.manifest_url, fmt=u.format,
                                       iam_role_arn=sb.info.iam_role_arn, migration="le", attempt=1,
                                       explicit_ids=False, expected_rows=2, columns=t.columns,
                                       on_statement=lambda kind, sql: heard.append((kind, sql)))
    # The failed COPY was handed to the caller before it ran, and rides on the error.
    assert [k for k, _ in heard] == ["copy"] and heard[0][1].startswith('COPY "le"."t" FROM')
    assert getattr(caught.value, "statement") == heard[0][1]
    rows = getattr(caught.value, "load_errors")
    assert rows, "the error carries stl_load_errors rows"
    first = rows[0]
    # The file and the raw value come from stl_load_errors; the value is scrubbed and truncated.
    assert first.column == "v" and first.line >= 1 and first.reason
    assert first.filename.startswith(f"s3://{sb.info.bucket}/")
    assert "yyyy" in first.raw_value and KEY_ID not in first.raw_value
    assert "first load error" in str(caught.value) and "column v" in caught.value.one_line()
    assert KEY_ID not in str(caught.value)
    for row in rows:
        assert KEY_ID not in row.raw_value and KEY_ID not in row.reason
        assert len(row.raw_value) <= pipeline.RAW_VALUE_CHARS + 20
    assert not pipeline.reconcile_load(Session.of(sb.connect(TGT, autocommit=True)), "le", "le", "t").committed


def test_redact_hides_every_secret_option() -> None:
    from migrator.warehouse.sql import redact

    sql = ("COPY t FROM 's3://b/m' CREDENTIALS 'aws_access_key_id=AKIAABCDEFGHIJKLMNOP;aws_secret_access_key=s''x' "
           "ACCESS_KEY_ID 'AKIAABCDEFGHIJKLMNOP' SECRET_ACCESS_KEY 'abc\\'d' SESSION_TOKEN 'tok' "
           "MASTER_SYMMETRIC_KEY 'k' IAM_ROLE 'arn:aws:iam::123456789012:role/R' MANIFEST")
    out = redact(sql)
    for secret in ("AKIA", "s''x", "abc", "tok", "'k'"):
        assert secret not in out, (secret, out)
    assert "IAM_ROLE 'arn:aws:iam::123456789012:role/R' MANIFEST" in out and out.count("'***'") == 5


def test_scrub_removes_secret_looking_text() -> None:
    assert pipeline.scrub(f"id {KEY_ID} end") == "id [redacted] end"
    assert "wJalrXUtnFEMI" not in pipeline.scrub("k=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert pipeline.scrub("password: hunter2 x") == "[redacted] x"
    assert pipeline.scrub("a" * 200).endswith("…[truncated]")
    assert pipeline.scrub("plain 12") == "plain 12"


def test_csv_route_refuses_a_table_holding_its_null_marker(sb: Any) -> None:
    """CSV (the VARBYTE route) writes a string equal to its NULL AS text exactly as NULL; a
    table holding that text is refused before anything is unloaded, not silently changed."""
    from migrator.errors import RemoteError
    from migrator.warehouse.sql import CSV_NULL_MARKER

    sb.create_cluster("csvm-src")
    with Session.of(sb.connect("csvm-src", autocommit=True)) as src:
        src.run('create table "public"."m" ("id" integer, "b" varbyte(8), "s" varchar(40))')
        src.run("insert into \"public\".\"m\" values (1, from_hex('00'), 'x'), (2, null, %s)", [CSV_NULL_MARKER])
        t = next(iter(read_inventory(src, include=["public.m"])))
        with pytest.raises(RemoteError, match="1 row\\(s\\) hold the text"):
            stage(sb, src, t, migration="csvm")
        assert [k for k in sb.client("s3").list_objects_v2(Bucket=sb.info.bucket, Prefix="wh/csvm/")
                .get("Contents", [])] == []
