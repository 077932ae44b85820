"""Order-independent content checksums, computed by the same SQL on both clusters.

Row hash: FNV_HASH chained over the columns (each call's seed is the previous hash, which
makes the chain FNV-1a over the concatenated renderings, with no length limit on the row).
Each column is rendered as ``'v' || <len> || ':' || <text>`` — the length makes column
boundaries unambiguous — or ``'n'`` for NULL, so NULL and '' differ. The table checksum is
the SUM of the row hashes as DECIMAL(38,0): BIGINT sums could overflow, and a sum (unlike
XOR) still counts duplicate rows. When checksums differ, per-column aggregates (non-NULL
count and summed column hash) name the columns that disagree.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

from migrator.errors import MigratorError, ValidationMismatch
from migrator.names import table_key
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import ColumnInfo
from migrator.warehouse.sql import qualified, query, quote_ident


#: Bytes of a binary value hashed per FNV_HASH call: as hex, 64000 characters, inside the VARCHAR
#: limit of 65535 bytes that TO_HEX's result has ("Character types"; a 32768-byte value or more
#: through TO_HEX is an error).
CHUNK_BYTES = 32000
#: VARBYTE without a declared length is VARBYTE(64000) ("VARBYTE type"); the bytes a SUPER, GEOMETRY
#: or GEOGRAPHY value (or a VARBYTE of unknown length) is hashed over in full. A longer value (SUPER
#: holds up to 16 MB) has its length and its first BINARY_HASHED_BYTES bytes compared.
DEFAULT_VARBYTE_BYTES = 64000
BINARY_HASHED_BYTES = 1_024_000
_BINARY = ("varbyte", "varbinary", "binary varying")
_LENGTH = re.compile(r"\((\d+)\)")


def _text(col: ColumnInfo) -> str:
    """The column as VARCHAR, the same way on every Redshift cluster (short types only: binary,
    SUPER and spatial values are hashed in chunks, see _binary)."""
    c = quote_ident(col.name)
    t = col.type.lower()
    if t.startswith("bool"):
        return f"(case when {c} then 't' else 'f' end)"  # Redshift cannot cast BOOLEAN to VARCHAR
    if t.startswith(("real", "float4")):
        # REAL prints FLT_DIG + extra_float_digits = 8 digits at most: not always enough to name
        # one REAL. Widened to DOUBLE (exact), it prints 17, which name one value.
        return f"cast(cast({c} as double precision) as varchar(65535))"
    return f"cast({c} as varchar(65535))"


def _binary(col: ColumnInfo) -> tuple[str, int] | None:
    """(a VARBYTE expression of the value, the bytes to hash) for the types whose text can pass the
    VARCHAR limit: VARBYTE itself, SUPER as JSON_SERIALIZE_TO_VARBYTE (JSON_SERIALIZE fails past
    65535 bytes, and returns 'null' for SQL NULL), GEOMETRY as ST_AsEWKB (up to 1,048,447 bytes a
    value), GEOGRAPHY as ST_AsEWKB of it cast to GEOMETRY; else None."""
    c = quote_ident(col.name)
    t = col.type.lower()
    if t.startswith("super"):
        return f"json_serialize_to_varbyte({c})", BINARY_HASHED_BYTES
    if t.startswith("geometry"):
        return f"st_asewkb({c})", BINARY_HASHED_BYTES
    if t.startswith("geography"):
        # ST_AsEWKB takes GEOMETRY only ("ST_AsEWKB": geom is a GEOMETRY); the cast copies the
        # coordinates and the SRID unchanged ("Querying spatial data": a simple cast between the two).
        return f"st_asewkb(cast({c} as geometry))", BINARY_HASHED_BYTES
    if t.startswith(_BINARY):
        declared = _LENGTH.search(t)
        return c, min(int(declared.group(1)), BINARY_HASHED_BYTES) if declared else DEFAULT_VARBYTE_BYTES
    return None


def column_hash(col: ColumnInfo, seed: str) -> str:
    """FNV_HASH of the column's rendering, chained from ``seed`` (which appears once): ``'n'`` for
    NULL, else ``'v' || <length> || ':'`` then the text (the length makes column boundaries
    unambiguous). A binary value (_binary) is hashed on its own, chunk by chunk (TO_HEX of
    CHUNK_BYTES at a time: FNV_HASH chained over pieces is FNV-1a over their concatenation, and a
    chunk past the value's end is empty and leaves the hash as it is), so no VARCHAR ever holds more
    than one chunk; that BIGINT is then chained into the row's hash."""
    c = quote_ident(col.name)
    binary = _binary(col)
    if binary is None:
        text = _text(col)
        return f"fnv_hash(coalesce('v' || cast(length({text}) as varchar(20)) || ':' || {text}, 'n'), {seed})"
    value, hashed = binary
    expr = f"fnv_hash('v' || cast(octet_length({value}) as varchar(20)) || ':', cast(0 as bigint))"
    for k in range(-(-hashed // CHUNK_BYTES)):
        expr = f"fnv_hash(to_hex(substring({value}, {1 + k * CHUNK_BYTES}, {CHUNK_BYTES})), {expr})"
    own = f"(case when {c} is null then fnv_hash('n', cast(0 as bigint)) else {expr} end)"
    return f"fnv_hash({own}, {seed})"


def row_hash(columns: list[ColumnInfo]) -> str:
    expr = "cast(0 as bigint)"
    for col in columns:
        expr = column_hash(col, expr)
    return expr


def checksum_sql(schema: str, table: str, columns: list[ColumnInfo], tag: int | None = None) -> str:
    """The table's row count and checksum (with ``tag``, a first column holding it: the table's
    place in a grouped statement)."""
    first = "" if tag is None else f"{int(tag)}, "
    return (f"select {first}count(*), coalesce(sum(cast({row_hash(columns)} as decimal(38,0))), 0) "
            f"from {qualified(schema, table)}")


def column_aggregates_sql(schema: str, table: str, columns: list[ColumnInfo]) -> str:
    parts = []
    for col in columns:
        parts.append(f"count({quote_ident(col.name)})")
        parts.append(f"coalesce(sum(cast({column_hash(col, 'cast(0 as bigint)')} as decimal(38,0))), 0)")
    return f"select {', '.join(parts)} from {qualified(schema, table)}"


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    checksum: Decimal


@dataclass
class Comparison:
    table: str
    source: Fingerprint
    target: Fingerprint
    differing_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def equal(self) -> bool:
        return self.source == self.target

    def describe(self) -> str:
        text = (f"{self.table}: source rows={self.source.rows} checksum={self.source.checksum}, "
                f"target rows={self.target.rows} checksum={self.target.checksum}")
        if self.differing_columns:
            text += "; differing columns: " + ", ".join(self.differing_columns)
        return text


#: Redshift prints floats with DBL_DIG/FLT_DIG + extra_float_digits digits; its default 0 gives
#: 15 for a DOUBLE, which hides a one-ulp difference. 2 is its maximum (17 digits: exact).
FLOAT_DIGITS_SQL = query("exact_float_text")


def exact_float_text(session: Session) -> None:
    """Every digit of a float in this session's text output (set before each use: a SET inside
    a transaction that is rolled back is undone)."""
    session.run(FLOAT_DIGITS_SQL, kind="validate")


def fingerprint(session: Session, schema: str, table: str, columns: list[ColumnInfo]) -> Fingerprint:
    exact_float_text(session)
    row = session.run(checksum_sql(schema, table, columns), kind="validate",
                      what=f"checksum {table_key(schema, table)}")[0]
    return Fingerprint(int(row[0]), Decimal(row[1]))


#: How much SQL one grouped checksum statement carries at most (Redshift takes statements up to
#: 16 MB, "Quotas and limits in Amazon Redshift"; kept far below so one statement stays cheap to
#: parse), and how many tables.
GROUP_SQL_CHARS = 256 * 1024
GROUP_TABLES = 100


def fingerprints(session: Session, tables: list[tuple[str, str, list[ColumnInfo]]]
                 ) -> dict[tuple[str, str], Fingerprint]:
    """The fingerprints of many tables, several tables per statement (UNION ALL of each table's
    checksum_sql, tagged with its position), instead of one statement each. A group that fails
    (a table dropped or locked meanwhile) is read again table by table, so one table's error
    names that table alone."""
    out: dict[tuple[str, str], Fingerprint] = {}
    exact_float_text(session)
    group: list[tuple[str, str, list[ColumnInfo]]] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not group:
            return
        union = "\nunion all\n".join(checksum_sql(s, t, c, tag=i) for i, (s, t, c) in enumerate(group))
        try:
            rows = session.run(union, kind="validate", what=f"checksum of {len(group)} tables")
            for row in rows:
                schema, table, _columns = group[int(row[0])]
                out[(schema, table)] = Fingerprint(int(row[1]), Decimal(row[2]))
        except MigratorError:
            if len(group) == 1:
                raise
            if not session.conn.autocommit:
                session.rollback()
            for schema, table, columns in group:
                row = session.run(checksum_sql(schema, table, columns), kind="validate",
                                  what=f"checksum {table_key(schema, table)}")[0]
                out[(schema, table)] = Fingerprint(int(row[0]), Decimal(row[1]))
        group.clear()
        size = 0

    for schema, table, columns in tables:
        sql = checksum_sql(schema, table, columns)
        if group and (size + len(sql) > GROUP_SQL_CHARS or len(group) >= GROUP_TABLES):
            flush()
        group.append((schema, table, columns))
        size += len(sql)
    flush()
    if not session.conn.autocommit:
        session.rollback()
    return out


def column_aggregates(session: Session, schema: str, table: str, columns: list[ColumnInfo]
                      ) -> dict[str, tuple[int, Decimal]]:
    exact_float_text(session)
    row = session.run(column_aggregates_sql(schema, table, columns), kind="validate",
                      what=f"column aggregates {table_key(schema, table)}")[0]
    return {c.name: (int(row[2 * i]), Decimal(row[2 * i + 1])) for i, c in enumerate(columns)}


def compare_table(source: Session, target: Session, schema: str, table: str,
                  columns: list[ColumnInfo]) -> Comparison:
    """Both fingerprints; on a difference, also the columns whose aggregates differ."""
    started = time.perf_counter()
    result = Comparison(table_key(schema, table), fingerprint(source, schema, table, columns),
                        fingerprint(target, schema, table, columns))
    if not result.equal:
        a = column_aggregates(source, schema, table, columns)
        b = column_aggregates(target, schema, table, columns)
        result.differing_columns = [c.name for c in columns if a[c.name] != b[c.name]]
    for s in (source, target):
        if not s.conn.autocommit:
            s.rollback()
    result.seconds = time.perf_counter() - started
    return result


def require_equal(result: Comparison) -> Comparison:
    if not result.equal:
        raise ValidationMismatch(result.describe(), hint="the table is failed; re-run reloads it")
    return result
