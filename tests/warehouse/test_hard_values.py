"""Values that a careless route changes: floats to the last bit, strings that look like NULL
markers, NULL next to JSON null, bytes (issue 9, items 2.5 and 2.6).

Clusters of this module only. Bit-exactness is checked on PostgreSQL directly (admin DSN,
extra_float_digits 3), not through the code under test.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from migrator.warehouse import checksum, pipeline, replay
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, read_inventory
from migrator.warehouse.sql import PARQUET, TEXT, DataFormat
from tests.warehouse.helpers import load, stage

SRC, TGT = "hv-src", "hv-tgt"


def _f4(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _f4_next(x: float) -> float:
    bits = struct.unpack("I", struct.pack("f", x))[0]
    return struct.unpack("f", struct.pack("I", bits + 1))[0]


# Doubles whose 15-digit text (Redshift's default) names another double, and reals whose
# 8-digit text (FLT_DIG + 2) names another real.
DOUBLES = [0.1, math.nextafter(0.1, 1.0), 1 / 3, 5e-324, -0.0, 1.7976931348623157e308, 2.0 ** 53 + 2,
           math.nextafter(1.0, 2.0), 123456.78901234567]
REALS = [_f4(0.1), _f4_next(_f4(0.1)), _f4(1 / 3), _f4_next(1.0), _f4(3.4028234e38), _f4(16777217.0), -0.0,
         _f4_next(_f4(123.456))]
STRINGS = ["\\N", "NULL", "", "null", " ", "a|b", 'q"u', "back\\slash", "line\nbreak", None]


@pytest.fixture(scope="module")
def clusters(sb: Any) -> Iterator[tuple[str, str]]:
    sb.create_cluster(SRC)
    sb.create_cluster(TGT, encrypted=True, kms_key_id=sb.info.kms_key_arn)
    conn = sb.connect(SRC, autocommit=True)
    cur = conn.cursor()
    cur.execute('create schema "hv"')
    cur.execute('create table "hv"."floats" ("id" integer not null, "r" real, "d" double precision)')
    for i in range(max(len(DOUBLES), len(REALS))):
        cur.execute('insert into "hv"."floats" values (%s, %s, %s)',
                    (i, REALS[i] if i < len(REALS) else None, DOUBLES[i] if i < len(DOUBLES) else None))
    cur.execute('create table "hv"."strings" ("id" integer not null, "s" varchar(64), "c" char(4))')
    for i, value in enumerate(STRINGS):
        cur.execute('insert into "hv"."strings" values (%s, %s, %s)', (i, value, value[:4] if value else value))
    conn.close()
    yield SRC, TGT


@pytest.fixture
def pair(sb: Any, clusters: tuple[str, str]) -> Iterator[tuple[Session, Session, Session]]:
    with Session.of(sb.connect(SRC, autocommit=True)) as s, Session.of(sb.connect(TGT, autocommit=True)) as t, \
            Session.of(sb.connect(TGT, autocommit=False)) as tx:
        yield s, t, tx


def _exact(sb: Any, cluster: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(sb.admin_dsn(cluster), autocommit=True) as conn:
        conn.execute("set extra_float_digits = 3")
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def _table(src: Session, key: str) -> TableInfo:
    return next(t for t in read_inventory(src, include=[key]))


def _move(sb: Any, src: Session, tgt: Session, tgt_tx: Session, t: TableInfo, fmt: str, migration: str) -> None:
    replay.replay_objects(src, tgt, tables=[t])
    pipeline.ensure_bookkeeping(tgt)
    u = stage(sb, src, t, migration=migration, fmt=DataFormat(fmt, "test"))
    load(sb, tgt_tx, t, u, migration=migration)


@pytest.mark.parametrize("fmt", [PARQUET, TEXT])
def test_floats_round_trip_bit_exact(sb: Any, pair: tuple[Session, Session, Session], fmt: str) -> None:
    src, tgt, tx = pair
    t = _table(src, "hv.floats")
    _move(sb, src, tgt, tx, t, fmt, f"fl-{fmt}")
    sql = 'select "id", float4send("r"), float8send("d") from "hv"."floats" order by 1'
    assert _exact(sb, TGT, sql) == _exact(sb, SRC, sql)
    assert checksum.compare_table(src, tgt, t.schema, t.name, t.columns).equal


def test_checksum_sees_one_ulp(sb: Any, pair: tuple[Session, Session, Session]) -> None:
    src, tgt, tx = pair
    t = _table(src, "hv.floats")
    _move(sb, src, tgt, tx, t, PARQUET, "fl-ulp")
    with psycopg.connect(sb.admin_dsn(TGT), autocommit=True) as conn:
        conn.execute('update "hv"."floats" set "d" = %s where "id" = 0', (math.nextafter(0.1, 1.0),))
    result = checksum.compare_table(src, tgt, t.schema, t.name, t.columns)
    assert not result.equal and result.differing_columns == ["d"]
    _move(sb, src, tgt, tx, t, PARQUET, "fl-ulp2")
    with psycopg.connect(sb.admin_dsn(TGT), autocommit=True) as conn:
        conn.execute('update "hv"."floats" set "r" = %s where "id" = 0', (_f4_next(_f4(0.1)),))
    result = checksum.compare_table(src, tgt, t.schema, t.name, t.columns)
    assert not result.equal and result.differing_columns == ["r"]


def test_float_sessions_ask_for_every_digit(sb: Any, pair: tuple[Session, Session, Session]) -> None:
    """Redshift's extra_float_digits defaults to 0 (15 digits for a DOUBLE): every session of the
    tool raises it to its maximum, 2, once when it connects (outside any transaction, so a
    rollback keeps it), and prints REAL through DOUBLE; the SET a step sends before each use is
    not sent again (one round trip per table saved)."""
    src, tgt, tx = pair
    t = _table(src, "hv.floats")
    assert src.run("show extra_float_digits") == [("2",)] and tgt.run("show extra_float_digits") == [("2",)]
    sent = src.ran
    checksum.fingerprint(src, t.schema, t.name, t.columns)
    assert src.ran == sent + 1 and src.settled >= 1  # the checksum only; its SET was in effect already
    if not tx.conn.autocommit:
        tx.run("select 1")
        tx.rollback()
    assert tx.run("show extra_float_digits") == [("2",)]
    sql = checksum.checksum_sql(t.schema, t.name, t.columns)
    assert 'cast("r" as double precision)' in sql


@pytest.mark.parametrize("fmt", [PARQUET, TEXT])
def test_null_marker_lookalikes_survive(sb: Any, pair: tuple[Session, Session, Session], fmt: str) -> None:
    src, tgt, tx = pair
    t = _table(src, "hv.strings")
    _move(sb, src, tgt, tx, t, fmt, f"str-{fmt}")
    sql = 'select "id", "s", "c", "s" is null from "hv"."strings" order by 1'
    assert _exact(sb, TGT, sql) == _exact(sb, SRC, sql)
    assert checksum.compare_table(src, tgt, t.schema, t.name, t.columns).equal
