"""Read-only inventory of a cluster's user tables: layout, size, use.

Sources, all catalog views real Redshift has: pg_class/pg_namespace (every table, empty
ones too), svv_table_info (size, estimated visible rows, diststyle; omits empty tables),
pg_attribute (columns, types, NOT NULL, schema named explicitly), svv_redshift_columns
(encodings, dist/sort keys; pg_table_def per schema where it is missing), pg_attrdef
(defaults, IDENTITY), stl_scan (reads), stl_insert/stl_delete (writes),
pg_class.reldiststyle and stv_tbl_perm.backup.

``TableInfo.rows`` is svv_table_info.estimated_visible_rows: a planning figure (ordering,
progress). Validation counts exactly (baseline.py), never from svv_table_info: its tbl_rows
still counts rows deleted but not vacuumed.

Sandbox gaps (the PostgreSQL-based emulator lacks pg_attrdef.adsrc, reldiststyle and
stv_tbl_perm): defaults/identity fall back to a pg_get_expr variant; diststyle of an
empty table falls back to KEY (if pg_table_def marks a distkey) else AUTO; BACKUP is
reported as unknown (None).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from migrator.warehouse.connection import Session
from migrator.warehouse.sql import qualified, query, quote_ident, table_key

_DISTSTYLE_CODES = {0: "EVEN", 1: "KEY", 8: "ALL", 10: "AUTO", 11: "AUTO", 12: "AUTO"}
_IDENTITY = re.compile(r"^\"?identity\"?\(.*'(-?\d+)\s*,\s*(-?\d+)'.*\)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    encoding: str  # as pg_table_def shows it ('none' = RAW)
    not_null: bool
    distkey: bool
    sortkey: int  # 0, or position (negative positions mark interleaved keys)
    default: str | None = None
    identity: tuple[int, int] | None = None  # (seed, step)


@dataclass
class TableInfo:
    schema: str
    name: str
    table_id: int
    size_mb: int
    rows: int
    diststyle: str  # EVEN | KEY | ALL | AUTO
    distkey: str | None
    sortkey_kind: str | None  # COMPOUND | INTERLEAVED | AUTO | None
    sortkeys: list[str]
    encode_auto: bool | None  # None: unknown (empty table)
    backup: bool | None  # None: the catalog does not say
    columns: list[ColumnInfo] = field(default_factory=list)
    scans: int = 0
    last_write: datetime | None = None
    unused: bool = False

    @property
    def key(self) -> str:
        """Unambiguous text of the (schema, table) pair (see sql.table_key)."""
        return table_key(self.schema, self.name)

    @property
    def pair(self) -> tuple[str, str]:
        return (self.schema, self.name)

    @property
    def quoted(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def identity_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.identity]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "table": self.name, "size_mb": self.size_mb, "rows": self.rows,
                "diststyle": self.diststyle, "distkey": self.distkey, "sortkey_kind": self.sortkey_kind,
                "sortkeys": self.sortkeys, "encodings": {c.name: c.encoding for c in self.columns},
                "identity_columns": self.identity_columns, "scans": self.scans,
                "last_write": self.last_write.isoformat() if self.last_write else None, "unused": self.unused}


def matches(key: str, include: list[str], exclude: list[str]) -> bool:
    """Glob patterns on ``schema.table`` (case-sensitive, like quoted identifiers)."""
    return any(fnmatch.fnmatchcase(key, p) for p in include) and not any(fnmatch.fnmatchcase(key, p) for p in exclude)


def parse_identity(adsrc: str | None) -> tuple[int, int] | None:
    m = _IDENTITY.match((adsrc or "").strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def column_defaults(session: Session) -> dict[tuple[str, str, str], str]:
    rows = session.try_run(query("column_defaults"))
    if rows is None:
        rows = session.run(query("column_defaults_pg"), kind="catalog")
    return {(str(s), str(t), str(c)): str(src) for s, t, c, src in rows if src is not None}


ColumnRow = tuple[str, str, str, str, bool, bool, int]  # name, type, encoding, not null, distkey, sortkey


def table_columns(session: Session) -> dict[tuple[str, str], list[ColumnRow]]:
    """Columns per (schema, table), read with the schema named explicitly: names, types and NOT
    NULL from pg_attribute; encoding, distkey and sortkey from SVV_REDSHIFT_COLUMNS, or (where
    that view is missing) from pg_table_def one schema at a time (see physical_attributes)."""
    base = session.run(query("table_columns"), kind="catalog")
    schemas = {str(r[0]) for r in base}
    physical = physical_attributes(session, schemas)
    out: dict[tuple[str, str], list[ColumnRow]] = {}
    for schema, table, column, type_name, not_null in base:
        key = (str(schema), str(table), str(column))
        encoding, distkey, sortkey = physical.get(key, ("none", False, 0))
        out.setdefault(key[:2], []).append((key[2], str(type_name), encoding, bool(not_null), distkey, sortkey))
    return out


def physical_attributes(session: Session, schemas: set[str]) -> dict[tuple[str, str, str], tuple[str, bool, int]]:
    """(schema, table, column) -> (encoding, distkey, sortkey position)."""
    rows = session.try_run(query("redshift_columns"))
    if rows is None:
        rows = _table_def_per_schema(session, schemas)
    return {(str(s), str(t), str(c)): (str(e or "none").strip().lower(), bool(d), int(k or 0))
            for s, t, c, e, d, k in rows}


def _table_def_per_schema(session: Session, schemas: set[str]) -> list[tuple[Any, ...]]:
    """pg_table_def shows a table only when it is the first of its name on the search_path:
    each schema is read with itself first on the path (the session's resolved schemas after
    it, each quoted, so the catalog stays reachable). The path is never rebuilt from
    current_setting's text (Redshift reports ``$user`` unquoted there); RESET puts back the
    session's default, which is what the tool's own sessions run with."""
    resolved = _names_array(session.run("select current_schemas(false)", kind="catalog")[0][0])
    rows: list[tuple[Any, ...]] = []
    try:
        for schema in sorted(schemas):
            path = ", ".join(quote_ident(s) for s in [schema] + [r for r in resolved if r != schema])
            session.run(f"SET search_path TO {path}", kind="catalog")
            rows += session.run(query("table_def_schema"), [schema], kind="catalog")
    finally:
        session.run("RESET search_path", kind="catalog")
    return rows


def _names_array(value: Any) -> list[str]:
    """A name[] as the driver returns it: a list, or its '{a,"b c"}' text."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    body, out, cur, quoted, i = str(value or "").strip()[1:-1], [], "", False, 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and quoted and i + 1 < len(body):
            cur += body[i + 1]
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    if cur or body:
        out.append(cur)
    return out


def read_inventory(session: Session, *, include: list[str] | None = None, exclude: list[str] | None = None,
                   unused_days: int = 30, now: datetime | None = None) -> list[TableInfo]:
    """Every user table matching the patterns, largest first. ``session`` must be autocommit."""
    include = include or ["*.*"]
    exclude = exclude or []
    tables = [(str(s), str(t), int(oid)) for s, t, oid in session.run(query("user_tables"), kind="catalog")]
    tables = [t for t in tables if matches(f"{t[0]}.{t[1]}", include, exclude)]
    if not tables:
        return []
    info = {(str(r[0]), str(r[1])): r for r in session.run(query("table_info"), kind="catalog")}
    dist_codes = {int(oid): int(code) for oid, code in (session.try_run(query("reldiststyle")) or [])}
    backups = {int(i): bool(b) for i, b in (session.try_run(query("backup_flags")) or [])}
    columns = table_columns(session)
    defaults = column_defaults(session)
    cutoff = (now or datetime.now(timezone.utc)).replace(tzinfo=None) - timedelta(days=unused_days)
    scans = {int(tbl): int(n) for tbl, n in session.run(query("scans_since"), [cutoff], kind="catalog")}
    writes = {int(tbl): ts for tbl, ts in session.run(query("last_writes"), kind="catalog")}
    result = []
    for schema, name, oid in tables:
        cols = [_column(r, defaults.get((schema, name, r[0]))) for r in columns.get((schema, name), [])]
        row = info.get((schema, name))
        distkey = next((c.name for c in cols if c.distkey), None)
        diststyle = _diststyle(dist_codes.get(oid), row[5] if row else None, distkey)
        sortcols = sorted((c for c in cols if c.sortkey), key=lambda c: abs(c.sortkey))
        kind: str | None = None
        if row is not None and str(row[6] or "").upper() == "AUTO(SORTKEY)":
            kind = "AUTO"
        elif sortcols:
            kind = "INTERLEAVED" if any(c.sortkey < 0 for c in sortcols) else "COMPOUND"
        encode_auto = None if row is None else "AUTO(ENCODE)" in str(row[7] or "").upper()
        result.append(TableInfo(
            schema=schema, name=name, table_id=oid, size_mb=int(row[3]) if row else 0,
            rows=int(row[4]) if row else 0, diststyle=diststyle, distkey=distkey if diststyle == "KEY" else None,
            sortkey_kind=kind, sortkeys=[c.name for c in sortcols] if kind != "AUTO" else [],
            encode_auto=encode_auto, backup=backups.get(oid), columns=cols, scans=scans.get(oid, 0),
            last_write=writes.get(oid), unused=scans.get(oid, 0) == 0))
    result.sort(key=lambda t: (-t.size_mb, -t.rows, t.key))
    return result


def _column(row: ColumnRow, adsrc: str | None) -> ColumnInfo:
    identity = parse_identity(adsrc)
    name, type_name, encoding, not_null, distkey, sortkey = row
    return ColumnInfo(name=name, type=type_name, encoding=encoding, not_null=not_null, distkey=distkey,
                      sortkey=sortkey, default=None if identity else adsrc, identity=identity)


def _diststyle(code: int | None, info_style: Any, distkey: str | None) -> str:
    if code is not None and code in _DISTSTYLE_CODES:
        return _DISTSTYLE_CODES[code]
    if info_style:
        text = str(info_style).upper()
        if text.startswith("AUTO"):
            return "AUTO"
        if text.startswith("KEY"):
            return "KEY"
        if text in ("EVEN", "ALL"):
            return text
    return "KEY" if distkey else "AUTO"
