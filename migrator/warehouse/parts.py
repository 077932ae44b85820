"""Table parts on the warehouse side: choosing a part column and its boundaries, one part's
UNLOAD (PARALLEL ON, MAXFILESIZE fitted to the target's slices), and its rows + checksum.

How boundaries are chosen: the column is the leading sort key where it is a number or a date
(zone maps let each part's range read skip every other block), else an IDENTITY column, else
another numeric/date column (NOT NULL first). The range [min, max] of that column (cheap: one
column, and on a sort key the zone maps answer it) is cut into equal widths, then one pass over
that one column counts each part's rows (they order the work largest first). The last part is
open-ended above, so rows appended after the plan (a growing key) fall into it; the first also
holds the column's NULLs. Bounds are text, bound as parameters everywhere but inside UNLOAD's
query literal.

A table with no such column (only text, boolean, ... columns) is unloaded once, PARALLEL ON with
MAXFILESIZE fitted to (parts x target slices), and its files are loaded in groups: each part is a
run of that UNLOAD's manifest entries (its bounds are entry indices, its column None), loaded by
its own COPY from its own manifest. No cheap predicate picks a group's rows on either cluster, so
such parts are compared by rows only and the table by its whole checksum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from migrator.names import table_key
from migrator.warehouse.checksum import FLOAT_DIGITS_SQL, row_hash
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import ColumnInfo, TableInfo
from migrator.warehouse.pipeline import (StatementHook, UnloadResult, choose_format, refuse_csv_marker_in_data, run_recorded,
                                        staged_route)
from migrator.warehouse.sql import (CSV, DataFormat, first_rows_query, inline_predicate, max_file_size,
                                    part_bounds_sql, part_counts_sql, part_prefix, qualified, range_predicate,
                                    rangeable, staging_prefix, unload_part_query, unload_query, unload_query_over,
                                    unload_sql)


@dataclass(frozen=True)
class PartRange:
    part_no: int
    parts_total: int
    column: str
    type: str
    lower: str | None
    upper: str | None
    rows: int

    def where(self) -> tuple[str, list[str]]:
        return range_predicate(self.column, self.type, self.lower, self.upper, self.part_no == 0)

    def inline(self) -> str:
        return inline_predicate(self.column, self.type, self.lower, self.upper, self.part_no == 0)


def part_column(info: TableInfo) -> ColumnInfo | None:
    """The column whose ranges make parts, in order of preference (see the module docstring)."""
    by_name = {c.name: c for c in info.columns}
    if info.sortkey_kind != "INTERLEAVED" and info.sortkeys:
        lead = by_name.get(info.sortkeys[0])
        if lead is not None and rangeable(lead.type):
            return lead
    for c in info.columns:
        if c.identity and rangeable(c.type):
            return c
    candidates = [c for c in info.columns if rangeable(c.type)]
    candidates.sort(key=lambda c: not c.not_null)
    return candidates[0] if candidates else None


def _as_number(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return Decimal(str(value.timestamp() if value.tzinfo else (value - datetime(1970, 1, 1)).total_seconds()))
    if isinstance(value, date):
        return Decimal((value - date(1970, 1, 1)).days)
    return Decimal(str(value))


def _as_bound(number: Decimal, sample: Any, type_name: str) -> str:
    if isinstance(sample, datetime):
        return (datetime(1970, 1, 1) + timedelta(seconds=float(number))).isoformat(sep=" ")
    if isinstance(sample, date):
        return (date(1970, 1, 1) + timedelta(days=int(number))).isoformat()
    if type_name.strip().lower().startswith(("numeric", "decimal")):
        return str(number)
    return str(int(number))


def plan_ranges(session: Session, info: TableInfo, parts: int) -> list[PartRange]:
    """Up to ``parts`` ranges of the part column covering every row (fewer when the column has
    fewer distinct steps); [] when the table has no such column or no rows to split."""
    column = part_column(info)
    if column is None or parts < 2:
        return []
    low, high, _rows = session.run(part_bounds_sql(info.schema, info.name, column.name), kind="catalog",
                                   what=f"part bounds {table_key(info.schema, info.name)}")[0]
    lo, hi = _as_number(low), _as_number(high)
    if lo is None or hi is None or hi <= lo:
        return []
    integral = not column.type.strip().lower().startswith(("numeric", "decimal", "timestamp"))
    span = hi - lo
    if integral:
        parts = int(min(parts, span + 1))
    cuts: list[str] = []
    for i in range(1, parts):
        point = lo + span * i / parts
        if integral:
            point = Decimal(int(point))
        text = _as_bound(point, low, column.type)
        if not cuts or text != cuts[-1]:
            cuts.append(text)
    bounds = [None, *cuts]
    uppers = [*cuts, None]
    ranges = [PartRange(i, len(bounds), column.name, column.type, lo_b, up_b, 0)
              for i, (lo_b, up_b) in enumerate(zip(bounds, uppers))]
    predicates, params = [], []
    for r in ranges:
        where, p = r.where()
        predicates.append(where)
        params += p
    counts = session.run(part_counts_sql(info.schema, info.name, predicates), params, kind="catalog",
                         what=f"part rows {table_key(info.schema, info.name)}")[0]
    if not session.conn.autocommit:
        session.rollback()
    return [PartRange(r.part_no, r.parts_total, r.column, r.type, r.lower, r.upper, int(n or 0))
            for r, n in zip(ranges, counts)]


def slice_count(session: Session) -> int:
    """The cluster's slices (STV_SLICES)."""
    rows = session.run("select count(*) from stv_slices", kind="catalog")
    if not session.conn.autocommit:
        session.rollback()
    return max(1, int(rows[0][0])) if rows else 1


def unload_part(session: Session, info: TableInfo, part: PartRange, *, staging_uri: str, migration: str,
                attempt: int, iam_role_arn: str, kms_key_id: str, estimated_bytes: int, source_slices: int,
                target_slices: int, fmt: DataFormat | None = None,
                on_statement: StatementHook | None = None) -> UnloadResult:
    """UNLOAD one part's range to its own attempt prefix (CLEANPATH), PARALLEL ON, MAXFILESIZE
    chosen so its files are a multiple of the target's slices."""
    fmt = fmt or choose_format(info.columns)
    prefix = part_prefix(staging_uri, migration, info.schema, info.name, part.part_no, attempt)
    select = unload_part_query(info.schema, info.name, [(c.name, c.type) for c in info.columns], fmt.name,
                               part.inline(), staged_route(fmt, info.columns))
    return _unload(session, info, select, prefix, iam_role_arn=iam_role_arn, kms_key_id=kms_key_id, fmt=fmt,
                   max_file_bytes=max_file_size(estimated_bytes, source_slices, target_slices),
                   check_csv=part.part_no == 0, on_statement=on_statement,
                   what=f"part {part.part_no + 1}/{part.parts_total}")


def unload_for_groups(session: Session, info: TableInfo, *, staging_uri: str, migration: str, attempt: int,
                      iam_role_arn: str, kms_key_id: str, estimated_bytes: int, source_slices: int,
                      target_slices: int, groups: int, fmt: DataFormat | None = None,
                      on_statement: StatementHook | None = None) -> UnloadResult:
    """The one UNLOAD of a table loaded in file groups: the whole table to its attempt prefix,
    PARALLEL ON, MAXFILESIZE chosen so the file count is a multiple of ``groups`` x the target's
    slices (each group then a multiple of the target's slices) when the table is big enough."""
    fmt = fmt or choose_format(info.columns)
    prefix = staging_prefix(staging_uri, migration, info.schema, info.name, attempt)
    select = unload_query(info.schema, info.name, [(c.name, c.type) for c in info.columns], fmt.name,
                          staged_route(fmt, info.columns))
    return _unload(session, info, select, prefix, iam_role_arn=iam_role_arn, kms_key_id=kms_key_id, fmt=fmt,
                   max_file_bytes=max_file_size(estimated_bytes, source_slices, max(1, groups) * target_slices),
                   check_csv=True, on_statement=on_statement, what="for file groups")


def unload_sample(session: Session, info: TableInfo, rows: int, *, staging_uri: str, migration: str,
                  iam_role_arn: str, kms_key_id: str, estimated_bytes: int, source_slices: int,
                  target_slices: int, fmt: DataFormat | None = None) -> UnloadResult:
    """The rehearsal's sample of a table loaded in file groups: about ``rows`` rows (one group's
    worth) UNLOADed the way the copy unloads the table (same select list, format, PARALLEL ON,
    MAXFILESIZE for that size), instead of the whole table. Redshift takes no LIMIT in UNLOAD's
    outer SELECT, so the LIMIT is nested ("UNLOAD", Usage notes)."""
    fmt = fmt or choose_format(info.columns)
    prefix = staging_prefix(staging_uri, migration, info.schema, info.name, 0)
    sample = first_rows_query(info.schema, info.name, [c.name for c in info.columns], rows)
    select = unload_query_over(sample, [(c.name, c.type) for c in info.columns], fmt.name,
                               staged_route(fmt, info.columns))
    return _unload(session, info, select, prefix, iam_role_arn=iam_role_arn, kms_key_id=kms_key_id, fmt=fmt,
                   max_file_bytes=max_file_size(estimated_bytes, source_slices, target_slices),
                   check_csv=True, on_statement=None, what=f"sample of {int(rows)} rows")


def _unload(session: Session, info: TableInfo, select: str, prefix: str, *, iam_role_arn: str, kms_key_id: str,
            fmt: DataFormat, max_file_bytes: int | None, check_csv: bool, on_statement: StatementHook | None,
            what: str) -> UnloadResult:
    statement = unload_sql(select, prefix, iam_role_arn=iam_role_arn, kms_key_id=kms_key_id, fmt=fmt.name,
                           max_file_bytes=max_file_bytes)
    started = time.perf_counter()
    if fmt.name == CSV and check_csv:
        refuse_csv_marker_in_data(session, info.schema, info.name, info.columns)
    session.run(FLOAT_DIGITS_SQL, kind="unload")
    run_recorded(session, statement, kind="unload", what=f"UNLOAD {table_key(info.schema, info.name)} {what}",
                 on_statement=on_statement)
    rows = session.run("select pg_last_unload_count()", kind="unload")
    return UnloadResult(prefix, prefix + "manifest", fmt, statement, int(rows[0][0]) if rows else -1,
                        time.perf_counter() - started)


@dataclass(frozen=True)
class FileGroup:
    """One part of a table loaded in file groups: manifest entries [first, end) of its UNLOAD."""

    part_no: int
    parts_total: int
    first: int
    end: int
    rows: int
    bytes: int


def plan_file_groups(files: list[tuple[int, int]], groups: int) -> list[FileGroup]:
    """``files`` (bytes, rows) in manifest order cut into up to ``groups`` runs of equal file counts
    (with the UNLOAD's count a multiple of groups x target slices, each run is a multiple of the
    target's slices); [] when fewer than two runs can be made."""
    n = len(files)
    count = min(max(0, groups), n)
    if count < 2:
        return []
    cuts = [i * n // count for i in range(count + 1)]
    return [FileGroup(i, count, cuts[i], cuts[i + 1], sum(r for _, r in files[cuts[i]:cuts[i + 1]]),
                      sum(b for b, _ in files[cuts[i]:cuts[i + 1]])) for i in range(count)]


def group_manifest_url(table_manifest_url: str, part_no: int, attempt: int) -> str:
    """A file group's own manifest: beside its UNLOAD's files (so the table's cleanup covers it),
    one prefix per part and attempt (so a reload never reads another attempt's list)."""
    base = table_manifest_url.rsplit("/", 1)[0]
    return f"{base}/groups/part-{int(part_no):05d}/attempt-{int(attempt)}/manifest"


def part_fingerprint(session: Session, info: TableInfo, part: PartRange) -> tuple[int, Decimal]:
    """Rows and summed row hashes (checksum.row_hash) of the part's range: the same SQL on both sides."""
    where, params = part.where()
    session.run(FLOAT_DIGITS_SQL, kind="validate")
    sql = (f"select count(*), coalesce(sum(cast({row_hash(info.columns)} as decimal(38,0))), 0) "
           f"from {qualified(info.schema, info.name)} where {where}")
    row = session.run(sql, params, kind="validate",
                      what=f"checksum {table_key(info.schema, info.name)} part {part.part_no + 1}")[0]
    if not session.conn.autocommit:
        session.rollback()
    return int(row[0]), Decimal(row[1])


def table_rows(session: Session, schema: str, table: str) -> int:
    from migrator.warehouse.sql import count_sql

    rows = session.run(count_sql(schema, table), kind="validate")
    if not session.conn.autocommit:
        session.rollback()
    return int(rows[0][0])


def parts_fingerprints(session: Session, info: TableInfo, ranges: list[PartRange]) -> dict[int, tuple[int, Decimal]]:
    """Rows and checksum of every part in ONE pass per side (GROUP BY the part a row falls in),
    for the re-check of a table copied again: the cost of one table checksum, not one per part.
    Rows outside every part (none, unless the boundaries and the data disagree) count as part -1."""
    if not ranges:
        return {}
    cases, params = [], []
    for r in ranges:
        where, p = r.where()
        cases.append(f"WHEN {where} THEN {int(r.part_no)}")
        params += p
    bucket = f"CASE {' '.join(cases)} ELSE -1 END"
    session.run(FLOAT_DIGITS_SQL, kind="validate")
    sql = (f"select {bucket} as part_no, count(*), coalesce(sum(cast({row_hash(info.columns)} as decimal(38,0))), 0) "
           f"from {qualified(info.schema, info.name)} group by 1")
    rows = session.run(sql, params, kind="validate", what=f"part checksums {table_key(info.schema, info.name)}")
    if not session.conn.autocommit:
        session.rollback()
    found = {int(r.part_no): (0, Decimal(0)) for r in ranges}
    for part_no, n, total in rows:
        found[int(part_no)] = (int(n), Decimal(total))
    return found


def differing_parts(source: Session, target: Session, info: TableInfo, ranges: list[PartRange]) -> list[int]:
    """The part numbers whose rows or checksum differ between the clusters (-1: rows outside every part)."""
    a = parts_fingerprints(source, info, ranges)
    b = parts_fingerprints(target, info, ranges)
    return sorted(p for p in set(a) | set(b) if a.get(p, (0, Decimal(0))) != b.get(p, (0, Decimal(0))))
