"""Every type and nasty value survives UNLOAD -> COPY, and the NULL trap shows when options are careless."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.sandbox.redshift_data.conftest import BUCKET, ROLE, Env

COLUMNS = """
    id int, si smallint, i int, bi bigint, n numeric(18,4), r real, d double precision, b boolean,
    c char(10), v varchar(200), dt date, ts timestamp, tstz timestamptz, t time
"""
NASTY = [
    "plain", "", "ünïcødé ✓ 日本", "line1\nline2", "tab\there", "pipe|pipe", "caret^caret",
    "double \"quote\"", "single 'quote'", "back\\slash", "\\N", "trailing space ", "cr\rlf\r\n", ",comma,",
]


def char_value(text: str) -> str:
    """What a CHAR(10) can hold of ``text``: single-byte characters only ("Character types")."""
    return text.encode("ascii", "replace").decode()[:10]


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def make_source(env: Env) -> None:
    env.run(f"create table src ({COLUMNS})")
    env.run(f"create table dst ({COLUMNS})")
    for k, text in enumerate(NASTY):
        env.backend.query(
            "insert into src values ("
            f"{k}, {-32768 + k}, {2147483647 - k}, {9223372036854775807 - k}, {k}99999999999.{k:04d}, "
            f"{k}.1, 1e-300 * {k + 1}, {'true' if k % 2 else 'false'}, {lit(char_value(text))}, {lit(text)}, "
            f"date '2024-02-{k + 1:02d}', timestamp '2024-02-29 23:59:59.{k:06d}', "
            f"timestamptz '2024-01-01 12:00:00.123456+05:30' + interval '{k} hour', time '23:59:59.99999{k % 10}')"
        )
    env.backend.query("insert into src (id) values (100)")  # NULL in every other column
    env.backend.query("insert into src (id, c, v) values (101, '', '')")  # '' next to NULLs


def differences(env: Env) -> tuple[int, int]:
    a = env.scalar("select count(*) from (select * from src except all select * from dst) x")
    b = env.scalar("select count(*) from (select * from dst except all select * from src) x")
    return int(a or 0), int(b or 0)


def test_source_has_the_nasty_values(env: Env) -> None:
    make_source(env)
    assert env.scalar("select count(*) from src where v is null") == "1"
    assert env.scalar("select count(*) from src where v = ''") == "2"
    assert env.scalar("select count(*) from src where v like '%|%' or v like '%\n%'") == "3"


@pytest.mark.parametrize("unload_opts, copy_opts", [
    ("format csv null as 'NULL_7f3a' manifest verbose", "manifest format csv null as 'NULL_7f3a'"),
    ("format parquet manifest verbose", "manifest format parquet"),
    ("escape null as '\\N' manifest", "manifest escape null as '\\N'"),
    ("addquotes escape null as '\\N' delimiter '^' gzip manifest", "manifest removequotes escape null as '\\N' delimiter '^' gzip"),
    ("format csv null as 'NULL_7f3a' zstd parallel off", "format csv null as 'NULL_7f3a' zstd"),
    ("escape null as '\\N' bzip2", "escape null as '\\N' bzip2"),
], ids=["csv", "parquet", "text-escape", "addquotes-gzip", "csv-zstd-no-manifest", "text-bzip2-no-manifest"])
def test_round_trip_is_exact(env: Env, unload_opts: str, copy_opts: str) -> None:
    make_source(env)
    env.run(f"unload ('select * from src order by id') to '{env.url('src_')}' iam_role '{ROLE}' {unload_opts}")
    source = env.url("src_manifest") if "manifest" in copy_opts.split()[0:1] else env.url("src_")
    # COMPUPDATE is not among the parameters COPY from columnar formats accepts.
    compupdate = "" if "parquet" in copy_opts else "compupdate off"
    result = env.run(f"copy dst from '{source}' iam_role '{ROLE}' {copy_opts} {compupdate} statupdate on")
    assert result.tag == "COPY"
    assert env.scalar("select current_setting('redshift.last_copy_count')") == str(len(NASTY) + 2)
    assert env.scalar("select count(*) from dst") == str(len(NASTY) + 2)
    assert differences(env) == (0, 0)


def test_null_trap_careless_options_turn_null_text_into_empty(env: Env) -> None:
    make_source(env)
    env.run(f"unload ('select * from src') to '{env.url('trap_')}' iam_role '{ROLE}' escape")
    env.run(f"copy dst from '{env.url('trap_')}' iam_role '{ROLE}' escape")
    # The NULL row came back with '' in its character columns: visibly wrong.
    assert env.scalar("select count(*) from dst where v is null") == "0"
    assert env.scalar("select v from dst where id = 100") == ""
    assert env.scalar("select n from dst where id = 100") is None  # non-character columns load '' as NULL
    assert differences(env) != (0, 0)


def test_null_trap_fixed_with_symmetric_null_as(env: Env) -> None:
    make_source(env)
    env.run(f"unload ('select * from src') to '{env.url('fix_')}' iam_role '{ROLE}' escape null as '\\N'")
    env.run(f"copy dst from '{env.url('fix_')}' iam_role '{ROLE}' escape null as '\\N'")
    assert env.scalar("select v is null from dst where id = 100") == "t"
    assert env.scalar("select v from dst where id = 101") == ""
    assert differences(env) == (0, 0)


def test_csv_files_read_by_python_csv(env: Env) -> None:
    make_source(env)
    env.run(f"unload ('select id, v from src order by id') to '{env.url('c_')}' iam_role '{ROLE}' "
            "format as csv header parallel off")
    keys = env.keys()
    assert keys == [f"{env.prefix}c_0000_part_00"]
    body = env.s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))
    assert rows[0] == ["id", "v"]
    by_id = {int(r[0]): r[1] for r in rows[1:]}
    for k, text in enumerate(NASTY):
        assert by_id[k] == text
    assert by_id[100] == ""  # NULL written as '' by default


def test_parquet_files_typed_and_readable(env: Env) -> None:
    make_source(env)
    env.run(f"unload ('select * from src') to '{env.url('p_')}' iam_role '{ROLE}' parquet manifest verbose")
    manifest = json.loads(env.s3.get_object(Bucket=BUCKET, Key=f"{env.prefix}p_manifest")["Body"].read())
    entries = manifest["entries"]
    assert len(entries) >= 2
    tables = []
    for entry in entries:
        assert entry["url"].startswith(env.url("p_")) and entry["url"].endswith("_part_00.parquet")
        bucket_key = entry["url"][len(f"s3://{BUCKET}/"):]
        body = env.s3.get_object(Bucket=BUCKET, Key=bucket_key)["Body"].read()
        assert entry["meta"]["content_length"] == len(body)
        table = pq.read_table(pa.BufferReader(body))
        assert entry["meta"]["record_count"] == table.num_rows
        tables.append(table)
    schema = tables[0].schema
    assert schema.field("si").type == pa.int16()
    assert schema.field("i").type == pa.int32()
    assert schema.field("bi").type == pa.int64()
    assert schema.field("n").type == pa.decimal128(18, 4)
    assert schema.field("r").type == pa.float32()
    assert schema.field("d").type == pa.float64()
    assert schema.field("b").type == pa.bool_()
    assert schema.field("v").type == pa.string()
    assert schema.field("dt").type == pa.date32()
    assert schema.field("ts").type == pa.timestamp("us")
    assert schema.field("tstz").type == pa.timestamp("us")  # UNLOAD to Parquet drops the zone ("UNLOAD")
    assert schema.field("t").type == pa.time64("us")
    assert sum(t.num_rows for t in tables) == manifest["meta"]["record_count"] == len(NASTY) + 2
    elements = {e["name"]: e["type"] for e in manifest["schema"]["elements"]}
    assert elements["n"] == {"base": "numeric", "precision": 18, "scale": 4}
    assert elements["v"] == {"base": "character varying", "max_length": 200}
    assert elements["i"] == {"base": "integer"}
