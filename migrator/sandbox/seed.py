"""Seed data for an emulated Redshift cluster: realistic, nasty, deterministic.

All DDL is written in Redshift syntax. Given a DSN (or psycopg connection) it is run
through RedshiftDialect, so the catalog records distribution, sort keys and encodings
exactly as the proxy would; given an ``execute`` callable (e.g. a redshift_connector
cursor through the proxy) statements go as they are. Data is generated inside
PostgreSQL with INSERT ... SELECT over generate_series, from arithmetic on the row
number and the seed only, so the same seed gives the same rows (and checksums).

Roles are server-wide in PostgreSQL while Redshift users belong to one cluster: when a
seed user already exists (another emulated cluster on the same server made it) it is
reused, not re-created.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

import psycopg

from migrator.sandbox.interfaces import SessionInfo
from migrator.sandbox.redshift.dialect import RedshiftDialect
from migrator.sandbox.redshift.sqltokens import literal, quote_ident

Rows = Sequence[Sequence[object]]
Execute = Callable[[str], Union[Rows, None]]

SCHEMAS = ["public", "sales", "Ops Data"]
BASE_NAMES = ["customers", "Order Items", "events", "select", 'quote"d', "line_items", "Clicks", "audit log"]
NASTY = [
    "plain", "tab\there", "new\nline", "cr\r\nlf", "pipe|and^caret", "it's \"quoted\"", "back\\slash\\N",
    "unicode ñ 日本語 🚀", "  padded  ", "comma,separated", "N", "\\N", "NULL", "semi;colon", "€uro",
    "ⅷ \u00a0nbsp", "trailing space ",
]
# CHAR columns hold single-byte characters only ("Character types"): the short values a CHAR
# column gets are ASCII; multi-byte text lives in VARCHAR columns sized in bytes.
SHORT = ["ab", "  lead", "e", "A|B", "q't", "x^y", "JP", "9", "tab\tx", "end "]

USERS = [("seed_etl", "EtlPass123"), ("Seed Reader", None)]
GROUP = "seed_readers"


@dataclass
class SeedSummary:
    tables: dict[str, int] = field(default_factory=dict)  # quoted qualified name -> rows
    views: list[str] = field(default_factory=list)
    late_binding_views: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)  # SQL UDFs, as qualified name(arg types)
    procedures: list[str] = field(default_factory=list)
    materialized_views: list[str] = field(default_factory=list)
    default_privileges: list[str] = field(default_factory=list)  # the ALTER DEFAULT PRIVILEGES run
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Runner:
    """Runs statements through the dialect on a psycopg connection, or via a callable."""

    def __init__(self, target: Union[str, psycopg.Connection, Execute]) -> None:
        self._own: psycopg.Connection | None = None
        self._execute: Execute | None = None
        if isinstance(target, str):
            self._own = psycopg.connect(target, autocommit=True)
            conn: psycopg.Connection | None = self._own
        elif isinstance(target, psycopg.Connection):
            conn = target
        else:
            conn = None
            self._execute = target
        if conn is not None:
            from migrator.sandbox.redshift.psycopg_backend import PsycopgBackend

            self._backend = PsycopgBackend(conn)
            info = conn.info
            self._session = SessionInfo(info.dbname, info.dbname, info.user, info.backend_pid)
            self._dialect = RedshiftDialect()

    def run(self, sql: str) -> None:
        if self._execute is not None:
            self._execute(sql)
            return
        intercept = self._dialect.classify(sql, self._session)
        if intercept is None:
            self._backend.query(sql)
        else:
            intercept.execute(self._backend, self._session)  # type: ignore[attr-defined]

    def query(self, sql: str) -> list[tuple[object, ...]]:
        if self._execute is not None:
            return [tuple(r) for r in (self._execute(sql) or [])]
        return [tuple(r) for r in self._backend.query(sql).rows]

    def close(self) -> None:
        if self._own is not None:
            self._own.close()


def _q(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _arr(values: Sequence[str]) -> str:
    return "array[" + ", ".join(literal(v) for v in values) + "]::varchar[]"


def _pick(values: Sequence[str], key: str) -> str:
    return f"({_arr(values)})[1 + (({key}) % {len(values)})::int]"


def _nullable(expr: str, modulus: int = 11) -> str:
    """NULL and empty string side by side, at fixed positions."""
    return f"case when h % {modulus} = 0 then null when h % {modulus} = 1 then '' else {expr} end"


# (column name, Redshift type and attributes, insert expression over g (row number) and h (hash))
WIDE: list[tuple[str, str, str | None]] = [
    ("id", "bigint identity(1, 1) encode az64 not null", None),
    ("region_id", "integer not null", "1 + (h % 10)"),
    ("c_smallint", "smallint encode az64", "((h % 65535) - 32767)::smallint"),
    ("c_integer", "integer", "(h - 1073741823)::int"),
    ("c_bigint", "bigint encode zstd", "h * 2147483629 - 4611686018427387904"),
    ("c_numeric", "numeric(18,4)", "((h - 1000000000)::numeric / 16)::numeric(18,4)"),
    ("c_numeric38", "decimal(38,10)", "(h::numeric * 123456789012345 + 0.0123456789)::numeric(38,10)"),
    ("c_real", "real", "case when h % 13 = 0 then null else (h % 1000003)::real / 3 end"),
    ("c_double", "double precision", "h::float8 / 7 * (case when h % 2 = 0 then 1 else -1 end)"),
    ("c_bool", "boolean", "case h % 3 when 0 then true when 1 then false end"),
    ("c_char", "char(10) encode bytedict", _nullable(_pick(SHORT, "h / 11"))),
    ("c_varchar", "varchar(256) encode lzo", _nullable(_pick(NASTY, "h / 11"))),
    ("c_long", "varchar(max) encode zstd",
     "case when g % 5000 = 1 then repeat('長いテキスト|' || chr(10), 3000) "
     f"when g % 7 = 0 then null else {_pick(NASTY, 'h / 7')} || ' #' || g end"),
    ("c_date", "date", "date '1970-01-01' + (h % 40000)::int"),
    ("c_timestamp", "timestamp",
     "timestamp '1999-12-31 23:59:59' + h * interval '1 second' + (g % 1000000) * interval '1 microsecond'"),
    ("c_timestamptz", "timestamptz", "timestamptz '2001-02-03 04:05:06.789+00' + (h % 100000000) * interval '1 second'"),
    ("c_time", "time", "time '00:00:00' + (h % 86400) * interval '1 second' + (g % 1000) * interval '1 millisecond'"),
    ("Mixed Case", "varchar(40)", "'MC-' || g"),
    ("select", "integer", "(g % 100)::int"),
    ("col with space", "varchar(20)", "case when g % 5 = 0 then null else 'sp ' || g end"),
    ('quote"col', "smallint", "(g % 7)::smallint"),
]
NARROW: list[tuple[str, str, str | None]] = [
    ("id", "integer not null encode raw", "g::int"),
    ("name", "varchar(120) not null", "'name ' || g || ' ' || " + _pick(NASTY, "h")),
    ("amount", "numeric(12,2) encode az64", "case when h % 9 = 0 then null else ((h % 10000000)::numeric / 100)::numeric(12,2) end"),
    ("created", "date encode delta", "date '2015-01-01' + (g % 3000)::int"),
    ("active", "bool", "h % 2 = 0"),
    ("code", "nchar(3)", _pick(["AAA", "b  ", "c", "Z"], "h")),
    ("label", "nvarchar(12)", _pick(["ç", "日本語", "€uro", "🚀🚀🚀", "plain"], "h")),  # <= 12 bytes each
]
EVENTS: list[tuple[str, str, str | None]] = [
    ("event_id", "bigint not null", "g::bigint * 1000 + (h % 1000)"),
    ("occurred_at", "timestamp not null", "timestamp '2020-01-01' + g * interval '1.5 seconds'"),
    ("kind", "varchar(16) encode bytedict", _pick(["click", "view", "buy", "Refund", ""], "h")),
    ("payload", "varchar(max)", _nullable(_pick(NASTY, "h / 3") + " || repeat('x', (h % 200)::int)", 13)),
    ("score", "float4", "(h % 1000)::real / 8"),
]


def _sizes(tables: int, rows: int) -> list[int]:
    """A few big tables, many small ones, some empty."""
    out = []
    for i in range(tables):
        if i % 5 == 4:
            out.append(0)
        elif i < 2:
            out.append(rows)
        elif i % 4 == 2:
            out.append(rows // 2)
        else:
            out.append(min(rows, max(rows // (10 * i), 1)) if rows else 0)
    return out


def _layout(kind: str, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if kind == "wide":
        return [
            "diststyle key distkey (id) compound sortkey (c_timestamp, id)",
            "diststyle even interleaved sortkey (c_integer, c_date)",
            "diststyle all sortkey (id)",
            "backup no",
        ][choice]
    if kind == "narrow":
        return ["distkey (id) sortkey (created)", "diststyle even", "diststyle all compound sortkey (id, name)",
                "diststyle auto sortkey auto"][choice]
    return ["diststyle even sortkey (occurred_at)", "distkey (event_id) interleaved sortkey (occurred_at, kind)",
            "encode auto", "diststyle key distkey (kind)"][choice]


#: Schemas and tables whose names break naive "schema.table" handling: "a.b"."c" and "a"."b.c"
#: are two tables; the others hold brackets (rich markup if printed carelessly), a slash, a
#: percent sign and quotes.
HARD_NAMES: list[tuple[str, str]] = [("a.b", "c"), ("a", "b.c"), ("public", "[/]"), ("public", "[link=x]y[/link]"),
                                     ("Ops Data", 'per%cent/slash"quote\'s')]
HARD_TYPES_TABLE = ("public", "hard types")
# Full-precision floats: REAL/DOUBLE extremes and values no short decimal reproduces.
_HARD_ROWS = [
    # (id, varbyte hex, super json, real, double, string, explicit identity)
    (1, "00ff61", '{"k": [1, null], "s": "x"}', "0.1", "0.1", "\\N", "1000"),
    (2, "", "null", "3.4028235e38", "1.7976931348623157e308", "NULL", None),
    (3, None, None, "1.17549435e-38", "4.9406564584124654e-324", "", None),
    (4, "5c4e", '"NULL"', "-0", "0.30000000000000004", None, "7"),
    (5, "0a0d09", "[]", "16777217", "0.3333333333333333", "\\", None),
    (6, None, '""', "1e-45", "-2.2250738585072014e-308", " ", None),
]


#: The hard types table's rows, for tests that check them on a migrated cluster.
HARD_ROWS = _HARD_ROWS


def seed_cluster(target: Union[str, psycopg.Connection, Execute], *, tables: int, rows: int, seed: int = 0,
                 prefix: str = "", hard: bool = False) -> SeedSummary:
    """Create ``tables`` tables (plus a regions dimension) with up to ``rows`` rows each.

    ``target``: a DSN, a psycopg connection (autocommit), or ``execute(sql)`` returning rows
    for SELECTs. ``prefix`` lets a second call add tables beside the first call's.
    ``hard`` adds tables of hard types and names (VARBYTE, SUPER with SQL NULL and JSON null,
    full-precision REAL/DOUBLE, strings that look like NULL markers, GENERATED BY DEFAULT AS
    IDENTITY with explicit ids, and the names in HARD_NAMES). The sandbox's own seeds
    (`sandbox up`, `sandbox seed`, the demo) turn it on.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    r = _Runner(target)
    summary = SeedSummary()
    try:
        for schema in SCHEMAS[1:]:
            r.run(f"create schema if not exists {quote_ident(schema)}")
        regions = _q("public", f"{prefix}regions")
        r.run(f"create table if not exists {regions} (region_id integer not null encode raw primary key,"
              " name varchar(50) not null encode zstd unique) diststyle all sortkey (region_id)")
        r.run(f"insert into {regions} select g, 'Region ' || g || ' ' || {_pick(NASTY, 'g')} from generate_series(1, 10) g"
              f" where not exists (select 1 from {regions})")
        summary.tables[regions] = 10
        sizes = _sizes(tables, rows)
        first_in_schema: dict[str, tuple[str, list[str]]] = {}
        for i in range(tables):
            kind = ("wide", "narrow", "events")[i % 3]
            columns = {"wide": WIDE, "narrow": NARROW, "events": EVENTS}[kind]
            schema = SCHEMAS[i % len(SCHEMAS)]
            base = BASE_NAMES[i % len(BASE_NAMES)]
            name = prefix + (base if i < len(BASE_NAMES) else f"{base}_{i}")
            table = _q(schema, name)
            constraints = {"wide": ", primary key (id)", "narrow": ", unique (id)", "events": ""}[kind]
            cols = ", ".join(f"{quote_ident(n)} {t}" for n, t, _ in columns)
            r.run(f"create table {table} ({cols}{constraints}) {_layout(kind, rng)}")
            n = sizes[i]
            if n:
                salt = seed * 7919 + i * 104729
                names = ", ".join(quote_ident(c) for c, _, e in columns if e is not None)
                exprs = ", ".join(e for _, _, e in columns if e is not None)
                r.run(f"insert into {table} ({names}) select {exprs} from (select g, "
                      f"((g::bigint * 2654435761 + {salt}) % 2147483647) as h from generate_series(1, {n}) g) s")
            if kind == "wide":
                # After the load: PostgreSQL then checks the key in one pass, not per row.
                r.run(f"alter table {table} add foreign key (region_id) references {regions} (region_id)")
            summary.tables[table] = n
            first_in_schema.setdefault(schema, (table, [c for c, _, _ in columns[:3]]))
        for schema, (table, cols) in first_in_schema.items():
            view = _q(schema, f"{prefix}v_{schema.lower().replace(' ', '_')}")
            r.run(f"create view {view} as select {', '.join(quote_ident(c) for c in cols)} from {table}")
            summary.views.append(view)
        late = _q(SCHEMAS[-1], f"{prefix}Late Regions")
        r.run(f"create view {late} as select region_id, name from {regions} with no schema binding")
        summary.views.append(late)
        summary.late_binding_views.append(late)
        _roles(r, summary)
        for schema in SCHEMAS:
            r.run(f"grant usage on schema {quote_ident(schema)} to group {GROUP}")
            r.run(f"grant select on all tables in schema {quote_ident(schema)} to group {GROUP}")
            r.run(f"grant all on all tables in schema {quote_ident(schema)} to {quote_ident(USERS[0][0])}")
        _routines_and_mvs(r, summary, prefix, regions)
        if hard:
            _hard_tables(r, summary, prefix)
        r.run("analyze")
    finally:
        r.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _roles(r: _Runner, summary: SeedSummary) -> None:
    existing = {str(row[0]) for row in r.query("select rolname from pg_roles")}
    for user, password in USERS:
        if user not in existing:
            pw = f"password {literal(password)}" if password else "password disable"
            r.run(f"create user {quote_ident(user)} {pw}")
        summary.users.append(user)
    if GROUP not in existing:
        r.run(f"create group {GROUP}")
    r.run(f"alter group {GROUP} add user {quote_ident(USERS[1][0])}")
    summary.groups.append(GROUP)


def _routines_and_mvs(r: _Runner, summary: SeedSummary, prefix: str, regions: str) -> None:
    """One SQL UDF, one stored procedure, one materialized view and one default privilege, in
    Redshift syntax, so object replay has each kind to reproduce."""
    udf = _q("public", f"{prefix}f_region_label")
    r.run(f"create or replace function {udf} (integer, varchar) returns varchar immutable"
          " as $$ select 'R' || $1 || ': ' || $2 $$ language sql")
    summary.functions.append(f"{udf}(integer, varchar)")
    proc = _q(SCHEMAS[-1], f"{prefix}sp_count_regions")
    r.run(f"create or replace procedure {proc} (min_id integer, total inout bigint) as $$\n"
          "begin\n"
          f"    select count(*) into total from {regions} where region_id >= min_id; -- inclusive\n"
          "end;\n"
          "$$ language plpgsql")
    summary.procedures.append(f"{proc}(integer, bigint)")
    mv = _q(SCHEMAS[1], f"{prefix}mv_region_buckets")
    r.run(f"create materialized view {mv} as select region_id % 3 as bucket, count(*) as regions,"
          f" max(name) as last_name from {regions} group by region_id % 3")
    summary.materialized_views.append(mv)
    grant = f"alter default privileges in schema {quote_ident(SCHEMAS[1])} grant select on tables to group {GROUP}"
    r.run(grant)
    summary.default_privileges.append(grant)


def _hard_tables(r: _Runner, summary: SeedSummary, prefix: str) -> None:
    for schema, name in HARD_NAMES:
        r.run(f"create schema if not exists {quote_ident(schema)}")
        table = _q(schema, prefix + name)
        r.run(f"create table {table} (id integer not null, label varchar(40)) diststyle even")
        r.run(f"insert into {table} values (1, {literal(schema + ' / ' + name)}), (2, null)")
        summary.tables[table] = 2
    typed = _q(HARD_TYPES_TABLE[0], prefix + HARD_TYPES_TABLE[1])
    r.run(f"create table {typed} (id integer not null, vb varbyte(64), sp super, r real, d double precision,"
          " s varchar(20), gid bigint generated by default as identity(1, 1)) diststyle even sortkey (id)")
    for rid, vb, sp, real, dbl, text, gid in _HARD_ROWS:
        values = [str(rid), "null" if vb is None else f"from_hex({literal(vb)})",
                  "null" if sp is None else f"json_parse({literal(sp)})", f"{literal(real)}::real",
                  f"{literal(dbl)}::double precision", "null" if text is None else literal(text)]
        cols = "id, vb, sp, r, d, s" + (", gid" if gid is not None else "")
        if gid is not None:
            values.append(gid)
        r.run(f"insert into {typed} ({cols}) values ({', '.join(values)})")
    summary.tables[typed] = len(_HARD_ROWS)
