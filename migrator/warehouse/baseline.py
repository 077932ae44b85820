"""The validation queries of AWS's encryption procedure, and their comparison.

- user tables: what `select count(*) from pg_table_def where schemaname != 'pg_catalog'`
  is meant to count. pg_table_def only shows schemas on the session's search_path, so the
  query runs with every user schema appended to the path (then the path is put back), and
  counts tables, not column rows.
- rows per table: `svv_table_info.tbl_rows`; svv_table_info omits empty tables, so every
  user table it does not list is recorded with 0 rows.
- checksums: optional; a hook gives a value per table (the data plane has one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrator.warehouse.sql import option_literal as quote_literal
from migrator.warehouse.sql import quote_ident

#: Schemas that belong to Redshift (or the sandbox's emulation of it), never to users.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "pg_internal", "pg_automv", "catalog_history",
                  "redshift_sys")

SQL = {
    "search_path": "select current_setting('search_path')",
    "user_schemas": ("select nspname from pg_namespace where nspname not like 'pg\\_temp\\_%' "
                     "and nspname not like 'pg\\_toast\\_temp\\_%' and nspname not in ({system}) order by 1"),
    "table_def_tables": ("select count(distinct schemaname || '.' || tablename) from pg_table_def "
                         "where schemaname != 'pg_catalog' and schemaname not in ({system})"),
    "tables": ("select schemaname, tablename from pg_tables where schemaname not like 'pg\\_temp\\_%' "
               "and schemaname not in ({system}) order by 1, 2"),
    "rows": 'select trim(schema), trim("table"), tbl_rows from svv_table_info',
}


def _system_list() -> str:
    return ", ".join(quote_literal(s) for s in SYSTEM_SCHEMAS)


def query(name: str) -> str:
    return SQL[name].format(system=_system_list())


Checksum = Callable[[Any, str, str], str | None]


@dataclass(frozen=True)
class Baseline:
    user_tables: int
    rows: dict[str, int]
    checksums: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"user_tables": self.user_tables, "rows": dict(self.rows), "checksums": dict(self.checksums)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Baseline":
        return cls(int(data["user_tables"]), {k: int(v) for k, v in data["rows"].items()},
                   {k: str(v) for k, v in (data.get("checksums") or {}).items()})


@dataclass(frozen=True)
class Difference:
    table: str | None
    what: str
    expected: Any
    found: Any

    def __str__(self) -> str:
        where = self.table or "cluster"
        return f"{where}: {self.what} {self.found!r}, expected {self.expected!r}"


def _rows(cursor: Any, sql: str) -> list[Sequence[Any]]:
    cursor.execute(sql)
    return list(cursor.fetchall() or [])


def _path_with(current: str, schemas: Sequence[str]) -> str:
    present = {p.strip() for p in current.split(",")}
    extra = [quote_ident(s) for s in schemas if s not in present and quote_ident(s) not in present]
    return ", ".join([p for p in (current.strip(),) if p] + extra)


def count_user_tables(cursor: Any) -> int:
    """Tables pg_table_def shows once every user schema is on the search path."""
    original = str(_rows(cursor, query("search_path"))[0][0])
    schemas = [str(r[0]).strip() for r in _rows(cursor, query("user_schemas"))]
    cursor.execute("set search_path to " + _path_with(original, schemas))
    try:
        return int(_rows(cursor, query("table_def_tables"))[0][0])
    finally:
        cursor.execute("set search_path to " + original)


def rows_per_table(cursor: Any) -> dict[str, int]:
    tables = {f"{str(s).strip()}.{str(t).strip()}": 0 for s, t in _rows(cursor, query("tables"))}
    for schema, table, rows in _rows(cursor, query("rows")):
        tables[f"{str(schema).strip()}.{str(table).strip()}"] = int(rows or 0)
    return dict(sorted(tables.items()))


def take(conn: Any, checksum: Checksum | None = None) -> Baseline:
    """Run the validation queries on an open redshift_connector (DB-API) connection."""
    cursor = conn.cursor()
    try:
        user_tables = count_user_tables(cursor)
        rows = rows_per_table(cursor)
        sums: dict[str, str] = {}
        if checksum is not None:
            for qualified in rows:
                schema, _, table = qualified.partition(".")
                value = checksum(conn, schema, table)
                if value is not None:
                    sums[qualified] = value
    finally:
        cursor.close()
    if not getattr(conn, "autocommit", True):
        conn.rollback()  # read-only work; end the transaction the driver opened
    return Baseline(user_tables, rows, sums)


def compare(expected: Baseline, found: Baseline) -> list[Difference]:
    """Every way ``found`` differs from ``expected``; empty when they agree."""
    out: list[Difference] = []
    if expected.user_tables != found.user_tables:
        out.append(Difference(None, "user tables", expected.user_tables, found.user_tables))
    for table in sorted(set(expected.rows) | set(found.rows)):
        if table not in found.rows:
            out.append(Difference(table, "table", "present", "missing"))
        elif table not in expected.rows:
            out.append(Difference(table, "table", "absent", "present"))
        elif expected.rows[table] != found.rows[table]:
            out.append(Difference(table, "rows", expected.rows[table], found.rows[table]))
    for table in sorted(set(expected.checksums) & set(found.checksums)):
        if expected.checksums[table] != found.checksums[table]:
            out.append(Difference(table, "checksum", expected.checksums[table], found.checksums[table]))
    return out


def summary(differences: Sequence[Difference], limit: int = 5) -> str:
    shown = "; ".join(str(d) for d in differences[:limit])
    more = f" (and {len(differences) - limit} more)" if len(differences) > limit else ""
    return shown + more
