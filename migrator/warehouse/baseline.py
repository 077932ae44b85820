"""The validation queries of AWS's encryption procedure, and their comparison.

- user tables: AWS counts them with `select count(*) from pg_table_def ...`, but
  pg_table_def only shows the first table of a name on the search_path (two schemas with a
  table "t" would count once). The count comes from pg_tables instead, schema by schema.
- rows per table: exact ``count(*)`` per table. Never svv_table_info.tbl_rows, which still
  counts rows marked deleted until VACUUM (and omits empty tables).
- checksums: optional; a hook gives a value per table (the data plane has one).

Tables are keyed by names.table_key(schema, table): ``"a.b".c`` and ``a."b.c"`` are two tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrator.names import table_key
from migrator.warehouse.sql import option_literal as quote_literal
from migrator.warehouse.sql import qualified, quote_ident

__all__ = ["Baseline", "Difference", "compare", "quote_ident", "quote_literal", "summary", "take"]

#: Schemas that belong to Redshift or to us, never to users. Besides these, every schema whose
#: name starts with pg_ is a system schema (the prefix is reserved: users cannot create one).
SYSTEM_SCHEMAS = ("information_schema", "catalog_history", "migrator_bookkeeping")

SQL = {
    "tables": ("select schemaname, tablename from pg_tables where left(schemaname, 3) <> 'pg_' "
               "and schemaname not in ({system}) order by 1, 2"),
}

#: Tables counted per statement (one UNION ALL of exact counts).
COUNT_BATCH = 50


def _system_list() -> str:
    return ", ".join(quote_literal(s) for s in SYSTEM_SCHEMAS)


def query(name: str) -> str:
    return SQL[name].format(system=_system_list())


def exact_counts_sql(tables: Sequence[tuple[str, str]]) -> str:
    """One statement counting each table exactly; row i of the answer is tables[i]."""
    return " union all ".join(f"select {i} as n, count(*) as c from {qualified(s, t)}"
                              for i, (s, t) in enumerate(tables))


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


def user_tables(cursor: Any) -> list[tuple[str, str]]:
    """Every user table as its (schema, table) pair, whatever the search_path."""
    return [(str(s).strip(), str(t).strip()) for s, t in _rows(cursor, query("tables"))]


def count_user_tables(cursor: Any) -> int:
    return len(user_tables(cursor))


def exact_counts(cursor: Any, tables: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """``count(*)`` per table, COUNT_BATCH tables per statement."""
    out: dict[tuple[str, str], int] = {}
    for start in range(0, len(tables), COUNT_BATCH):
        batch = list(tables[start:start + COUNT_BATCH])
        for n, count in _rows(cursor, exact_counts_sql(batch)):
            out[batch[int(n)]] = int(count)
    return out


def rows_per_table(cursor: Any, tables: Sequence[tuple[str, str]] | None = None) -> dict[str, int]:
    """Exact rows per table, keyed by table_key."""
    pairs = list(tables) if tables is not None else user_tables(cursor)
    counts = exact_counts(cursor, pairs)
    return dict(sorted((table_key(s, t), counts[(s, t)]) for s, t in pairs))


def take(conn: Any, checksum: Checksum | None = None,
         keep: Callable[[str, str], bool] | None = None) -> Baseline:
    """Run the validation queries on an open redshift_connector (DB-API) connection; with ``keep``,
    only the tables it accepts (the migration's include/exclude) count: an excluded table is not
    migrated, so it is never a difference."""
    cursor = conn.cursor()
    try:
        pairs = [pair for pair in user_tables(cursor) if keep is None or keep(*pair)]
        rows = rows_per_table(cursor, pairs)
        sums: dict[str, str] = {}
        if checksum is not None:
            for schema, table in pairs:
                value = checksum(conn, schema, table)
                if value is not None:
                    sums[table_key(schema, table)] = value
    finally:
        cursor.close()
    if not getattr(conn, "autocommit", True):
        conn.rollback()  # read-only work; end the transaction the driver opened
    return Baseline(len(pairs), rows, sums)


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
