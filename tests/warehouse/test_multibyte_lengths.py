"""Multi-byte text at the byte limit of its column migrates exactly ("Character types": CHAR and
VARCHAR lengths are bytes; the sandbox counts bytes as Redshift does): VARCHAR(12) holding four
3-byte characters, VARCHAR(16) four 4-byte characters, VARCHAR(65535) 21,845 3-byte characters
(the largest VARCHAR, full), a NVARCHAR(6) at its limit and a CHAR(5) of ASCII. The replayed DDL
must keep the byte lengths (a target column one byte narrower would refuse the value), and every
value must arrive identical on every staging format the product uses, checked by our own
fingerprint read straight from PostgreSQL, not by the tool's checksum.

One module cluster pair; one migration per format (sandbox end-to-end tests are expensive)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from migrator.warehouse import checksum, pipeline, replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, read_inventory
from migrator.warehouse.sql import CSV, PARQUET, TEXT, DataFormat
from tests.warehouse.helpers import load, stage

SRC, TGT = "mb-src", "mb-tgt"
VALUES = {
    "v12": "日本語！",  # 4 x 3 bytes = 12
    "v16": "🚀🎉👍🌍",  # 4 x 4 bytes = 16
    "vmax": "長" * 21_845,  # 65,535 bytes
    "nv": "ñéñ",  # 3 x 2 bytes = 6
    "c": "abcde",
}
COLUMNS = [("v12", "varchar(12)"), ("v16", "varchar(16)"), ("vmax", "varchar(65535)"), ("nv", "nvarchar(6)"),
           ("c", "char(5)")]


@pytest.fixture(scope="module")
def clusters(sb: Any) -> Iterator[None]:
    sb.create_cluster(SRC)
    sb.create_cluster(TGT, encrypted=True, kms_key_id=sb.info.kms_key_arn)
    conn = sb.connect(SRC, autocommit=True)
    cur = conn.cursor()
    cur.execute('create schema "mb"')
    for fmt in ("text", "csv", "parquet"):
        cols = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
        cur.execute(f'create table "mb"."{fmt}" ("id" integer, {cols})')
        names = ", ".join(f'"{name}"' for name, _ in COLUMNS)
        cur.execute(f'insert into "mb"."{fmt}" ("id", {names}) values (1, %s, %s, %s, %s, %s)',
                    tuple(VALUES[name] for name, _ in COLUMNS))
        cur.execute(f'insert into "mb"."{fmt}" ("id", "v12") values (2, \'ab\')')
    conn.close()
    yield


def _ours(sb: Any, cluster: str, table: str) -> list[tuple[Any, ...]]:
    """Every value and its byte length, from PostgreSQL directly (bypassing the proxy)."""
    cols = ", ".join(f'md5("{n}"), octet_length("{n}"), "{n}" is null' for n, _ in COLUMNS)
    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(f'select "id", {cols} from "mb"."{table}" order by 1').fetchall()]


def _widths(sb: Any, cluster: str, table: str) -> list[tuple[str, str]]:
    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            "where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum",
            (f'"mb"."{table}"',)).fetchall()]


def _table(src: Session, name: str) -> TableInfo:
    return next(iter(read_inventory(src, include=[f"mb.{name}"])))


@pytest.mark.parametrize("fmt", [TEXT, CSV, PARQUET])
def test_multibyte_text_at_the_byte_limit_migrates_identically(sb: Any, clusters: None, fmt: str) -> None:
    table = fmt.lower()
    with Session.of(sb.connect(SRC, autocommit=True)) as src, Session.of(sb.connect(TGT, autocommit=True)) as tgt, \
            Session.of(sb.connect(TGT, autocommit=False)) as tx:
        t = _table(src, table)
        replay.replay_objects(src, tgt, tables=[t])
        assert _widths(sb, TGT, table) == _widths(sb, SRC, table)  # byte lengths kept
        pipeline.ensure_bookkeeping(tgt)
        staged = stage(sb, src, t, migration=f"mb-{table}", fmt=DataFormat(fmt, "test"))
        assert staged.format.name == fmt and staged.rows == 2
        load(sb, tx, t, staged, migration=f"mb-{table}")
        source = _ours(sb, SRC, table)
        lengths = dict(zip([n for n, _ in COLUMNS], source[0][2::3]))
        assert lengths == {"v12": 12, "v16": 16, "vmax": 65_535, "nv": 6, "c": 5}, lengths
        assert _ours(sb, TGT, table) == source
        assert checksum.compare_table(src, tgt, t.schema, t.name, t.columns).equal


def test_a_column_one_byte_narrower_refuses_the_value(sb: Any, clusters: None) -> None:
    """What makes the test above meaningful: the target enforces bytes, so a replay that
    counted characters (VARCHAR(4) for four 3-byte characters) would fail the load."""
    conn = sb.connect(TGT, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute('create table "public"."narrow" ("v" varchar(11))')
        with pytest.raises(Exception) as err:
            cur.execute('insert into "public"."narrow" values (%s)', (VALUES["v12"],))
        assert "value too long for type character varying(11)" in str(err.value)
    finally:
        conn.close()
