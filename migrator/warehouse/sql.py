"""The one place identifiers are quoted, literals escaped and statements built.

Ordinary statements bind their values as parameters (redshift_connector's ``%s``); only
the option literals of UNLOAD/COPY (paths, role ARNs, key ids, NULL markers, the UNLOAD
query text) cannot be bound, and go through :func:`option_literal`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import quote

from migrator.aws.staging import split_s3_url
from migrator.errors import ConfigError

_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@/\-]+$")


def quote_ident(name: str) -> str:
    """A Redshift delimited identifier: any text except NUL, with ``"`` doubled."""
    if not name or "\x00" in name:
        raise ValueError(f"not a valid identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def ident_list(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(quote_ident(n) for n in names)


def option_literal(value: str) -> str:
    """A string literal for UNLOAD/COPY text: Redshift unescapes ``\\\\`` and ``\\'`` there,
    so backslashes are doubled and quotes doubled; NUL cannot be represented."""
    if "\x00" in value:
        raise ValueError("a NUL character cannot appear in a SQL literal")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


_QUERY_GROUP = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def set_query_group(group: str) -> str:
    """SET takes no bind parameters: the name is checked (config's rule) before it is quoted."""
    if not _QUERY_GROUP.match(group):
        raise ValueError(f"{group!r} is not a query group name")
    return f"set query_group to '{group}'"


def check_role_arn(arn: str) -> str:
    if not _ARN.match(arn):
        raise ConfigError(f"not an IAM role ARN: {arn!r}", hint="arn:aws:iam::<account>:role/<name>")
    return arn


def _path_part(name: str) -> str:
    """Percent-encoding with ``.`` encoded too (``quote`` leaves it alone): the one ``.`` between
    schema and table is then the separator, and ``%`` itself is encoded, so the text decodes
    back to exactly one pair."""
    return quote(name, safe="").replace(".", "%2E")


def staging_prefix(staging_uri: str, migration: str, schema: str, table: str, attempt: int) -> str:
    """``<staging>/<migration>/<schema>.<table>/attempt-<n>/`` with every name percent-encoded
    (``.``, ``/``, ``%`` and quotes included): a name cannot escape its table's prefix, and
    ``"a.b"."c"`` and ``"a"."b.c"`` never share one."""
    bucket, prefix = split_s3_url(staging_uri)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return (f"s3://{bucket}/{prefix}{_path_part(migration)}/{_path_part(schema)}.{_path_part(table)}"
            f"/attempt-{int(attempt)}/")


_SECRET_OPTIONS = re.compile(
    r"(?i)\b(CREDENTIALS|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|MASTER_SYMMETRIC_KEY|PASSWORD)"
    r"(\s+(?:AS\s+)?)'(?:[^'\\]|''|\\.)*'")


def redact(statement: str) -> str:
    """A statement fit for history and logs: the value of every option that can carry a secret
    (CREDENTIALS, ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, MASTER_SYMMETRIC_KEY,
    PASSWORD) becomes '***'. The tool itself only ever writes IAM_ROLE (an ARN names a role,
    it grants nothing by itself) and KMS key ids, which stay readable."""
    return _SECRET_OPTIONS.sub(lambda m: f"{m.group(1)}{m.group(2)}'***'", statement)


@cache
def query(name: str) -> str:
    """A named query from migrator/warehouse/sql/<name>.sql."""
    return resources.files("migrator.warehouse").joinpath("sql", f"{name}.sql").read_text("utf-8").strip().rstrip(";")


# --------------------------------------------------------------------------- UNLOAD / COPY

PARQUET = "PARQUET"
TEXT = "TEXT"  # pipe-delimited, ESCAPE and NULL AS '\N' on both sides, uncompressed (no ADDQUOTES: see text_options)
#: For tables with VARBYTE, which COPY loads from CSV (hex), Parquet or ORC only, and UNLOAD
#: writes to text or CSV only ("Loading a column of the VARBYTE data type").
CSV = "CSV"
NULL_MARKER = "\\N"
#: CSV has no ESCAPE: a string equal to the NULL AS text is written unquoted, exactly as NULL.
#: So the CSV route uses a marker no ordinary string holds, and the unload checks the table's
#: text columns for it first (csv_marker_check).
CSV_NULL_MARKER = "\\N:migrator:null"


@dataclass(frozen=True)
class DataFormat:
    name: str  # PARQUET | TEXT | CSV
    reason: str


def select_all(schema: str, table: str, columns: list[str]) -> str:
    return f"SELECT {ident_list(columns)} FROM {qualified(schema, table)}"


def _is(type_name: str, *prefixes: str) -> bool:
    return type_name.strip().lower().startswith(prefixes)


#: How a column crosses the load's stage table (pipeline.binary_stage), by route: the value and a
#: flag column beside it. VARBYTE on CSV: an empty value is an empty unquoted field, which COPY
#: loads into a non-character column as NULL, so the flag marks it empty. SUPER on text/CSV:
#: UNLOAD writes SUPER itself as JSON of any size (JSON_SERIALIZE stops at the VARCHAR limit of
#: 65535 bytes) but writes SQL NULL as ``null`` too ("SUPER data columns ignore NULL AS"), so the
#: flag marks SQL NULL.
STAGE_EMPTY = "empty"
STAGE_NULL = "null"


def stage_flag(type_name: str, fmt: str) -> str | None:
    """STAGE_EMPTY, STAGE_NULL or None: whether the column carries a flag through the stage."""
    if fmt == CSV and _is(type_name, "varbyte", "varbinary", "binary varying"):
        return STAGE_EMPTY
    if fmt in (TEXT, CSV) and _is(type_name, "super"):
        return STAGE_NULL
    return None


def unload_column(name: str, type_name: str, fmt: str, staged: bool = False) -> str:
    """One select-list item (or two, with a stage flag) of the UNLOAD query.

    Text route: REAL goes out as DOUBLE (a REAL prints at most FLT_DIG + 2 = 8 digits, not
    always enough to name one REAL; as a DOUBLE with extra_float_digits 2 it prints 17, and
    COPY rounds that back to the same REAL). Through the stage (``staged``), VARBYTE and SUPER
    go out as themselves with their flag (stage_flag): no VARCHAR limit on the way. Without the
    stage (a table whose plain IDENTITY refuses the stage's INSERT), SUPER goes out as
    JSON_SERIALIZE() for SQL values only: a VARCHAR, so SQL NULL is the NULL AS marker (Redshift's
    JSON_SERIALIZE(NULL) is the text ``null``), limited to 65535 bytes a value."""
    c = quote_ident(name)
    if fmt in (TEXT, CSV) and _is(type_name, "real", "float4"):
        return f"CAST({c} AS DOUBLE PRECISION) AS {c}"
    flag = stage_flag(type_name, fmt) if staged else None
    if flag is not None:
        # A name of its own per flag (a select list may not repeat one), short whatever the column's.
        alias = quote_ident("migrator_flag_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16])
        test = f"OCTET_LENGTH({c}) = 0" if flag == STAGE_EMPTY else f"{c} IS NULL"
        return f"{c}, CASE WHEN {test} THEN 1 ELSE 0 END AS {alias}"
    if fmt in (TEXT, CSV) and _is(type_name, "super"):
        return f"CASE WHEN {c} IS NULL THEN NULL ELSE JSON_SERIALIZE({c}) END AS {c}"
    return c


def unload_query(schema: str, table: str, columns: list[tuple[str, str]], fmt: str, staged: bool = False) -> str:
    """The SELECT an UNLOAD runs; ``columns`` are (name, type) in table order; ``staged``: the
    load goes through the stage table (pipeline.binary_stage), so flagged columns carry flags."""
    items = ", ".join(unload_column(n, t, fmt, staged) for n, t in columns)
    return f"SELECT {items} FROM {qualified(schema, table)}"


def text_options() -> str:
    """Delimited text, the same on UNLOAD and COPY. ESCAPE makes every delimiter, newline and
    backslash in the data unambiguous, so ADDQUOTES/REMOVEQUOTES are not needed (and VARBYTE
    refuses them); a backslash is escaped, so a string ``\\N`` never reads as the NULL marker,
    and an empty string stays an empty field, apart from NULL. Uncompressed: COPY splits a large
    uncompressed delimited file into scan ranges across the slices, while a GZIP (or ZSTD) file
    loads on one slice ("Loading data files": only uncompressed CSV and columnar files split)."""
    return f"DELIMITER AS '|' ESCAPE NULL AS {option_literal(NULL_MARKER)}"


def csv_options() -> str:
    """CSV, the same on UNLOAD and COPY: fields holding the delimiter, quotes or line breaks are
    quoted; VARBYTE is hex; NULL is CSV_NULL_MARKER (see there). Uncompressed, so COPY can split
    it (see text_options)."""
    return f"FORMAT AS CSV NULL AS {option_literal(CSV_NULL_MARKER)}"


def csv_marker_check(schema: str, table: str, text_columns: list[str]) -> str | None:
    """A count of rows where a text column equals CSV_NULL_MARKER (bound as the one parameter
    per column), or None when the table has no text column."""
    if not text_columns:
        return None
    where = " OR ".join(f"{quote_ident(c)} = %s" for c in text_columns)
    return f"SELECT count(*) FROM {qualified(schema, table)} WHERE {where}"


#: The only parameters "COPY from columnar data formats" lists (besides FORMAT AS): FROM,
#: IAM_ROLE/CREDENTIALS (or access keys), STATUPDATE, MANIFEST, ACCEPTINVCHARS, FILLRECORD and
#: EXPLICIT_IDS. No COMPUPDATE.
COLUMNAR_COPY_PARAMETERS = ("FROM", "IAM_ROLE", "CREDENTIALS", "STATUPDATE", "MANIFEST", "ACCEPTINVCHARS",
                            "FILLRECORD", "EXPLICIT_IDS", "FORMAT")
#: UNLOAD ... FORMAT PARQUET refuses these.
PARQUET_UNLOAD_FORBIDDEN = ("DELIMITER", "FIXEDWIDTH", "ADDQUOTES", "ESCAPE", "NULL AS", "HEADER", "GZIP",
                            "BZIP2", "ZSTD")


#: UNLOAD's MAXFILESIZE bounds ("UNLOAD": 5 MB to 6.2 GB).
MIN_FILE_BYTES = 5 * 1024 ** 2
MAX_FILE_BYTES = int(6.2 * 1024 ** 3)


def files_per_slice(source_slices: int, target_slices: int) -> int:
    """Files each source slice should write so the UNLOAD's file count (source slices x this) is a
    multiple of the target's slices: COPY then spreads the files evenly over every target slice."""
    from math import gcd

    s, t = max(1, source_slices), max(1, target_slices)
    return t // gcd(s, t)


def max_file_size(estimated_bytes: int, source_slices: int, target_slices: int) -> int | None:
    """MAXFILESIZE (bytes) for an UNLOAD of about ``estimated_bytes``: each of the source's slices
    writes files_per_slice() files, so the count is a multiple of the target's slices; None when
    the data is too small for 5 MB files to give that many (then one file per slice)."""
    per_slice = max(0, estimated_bytes) / max(1, source_slices)
    k = files_per_slice(source_slices, target_slices)
    # Any size in [share/k, share/(k-1)) gives a slice exactly k files; aim for the middle, so a
    # slice holding a little more or less than its share still writes k (one file: 25% headroom).
    size = int(per_slice / (k - 0.5)) if k > 1 else int(per_slice * 1.25)
    if size < MIN_FILE_BYTES:
        return None
    return min(size, MAX_FILE_BYTES)


def size_option(size_bytes: int) -> str:
    """MAXFILESIZE's value in MB (the unit Redshift documents, an integer here)."""
    return f"MAXFILESIZE {max(5, -(-size_bytes // 1024 ** 2))} MB"


def unload_sql(query_text: str, prefix_url: str, *, iam_role_arn: str, kms_key_id: str, fmt: str,
               max_file_bytes: int | None = None) -> str:
    """UNLOAD with SSE-KMS under the given key, a verbose manifest, and CLEANPATH so a rerun
    of the same attempt replaces what a crashed run left. IAM role only: no access keys.
    Parquet carries no text options (it refuses them); text carries text_options().
    PARALLEL ON (every slice writes its own files), and MAXFILESIZE when given (max_file_size)."""
    split_s3_url(prefix_url)
    parts = [f"UNLOAD ({option_literal(query_text)})", f"TO {option_literal(prefix_url)}",
             f"IAM_ROLE {option_literal(check_role_arn(iam_role_arn))}"]
    if fmt == PARQUET:
        parts.append("FORMAT AS PARQUET")
    elif fmt == TEXT:
        parts.append(text_options())
    elif fmt == CSV:
        parts.append(csv_options())
    else:
        raise ValueError(f"unknown format {fmt}")
    parts += ["MANIFEST VERBOSE", f"ENCRYPTED KMS_KEY_ID {option_literal(kms_key_id)}", "CLEANPATH", "PARALLEL ON"]
    if max_file_bytes is not None:
        parts.append(size_option(max_file_bytes))
    return " ".join(parts)


def copy_sql(schema: str, table: str, manifest_url: str, *, iam_role_arn: str, fmt: str,
             explicit_ids: bool, temporary: bool = False) -> str:
    """COPY from the manifest. Never ``ENCRYPTED`` (that means client-side encryption; the
    staged files are SSE-KMS and S3 decrypts them for the role). Parquet: only the parameters
    the columnar list names, EXPLICIT_IDS among them ("COPY from columnar data formats"), so an
    IDENTITY table keeps its ids on the Parquet route too."""
    split_s3_url(manifest_url)
    into = quote_ident(table) if temporary else qualified(schema, table)  # a temp table has no schema to name
    parts = [f"COPY {into}", f"FROM {option_literal(manifest_url)}",
             f"IAM_ROLE {option_literal(check_role_arn(iam_role_arn))}", "MANIFEST"]
    if fmt == PARQUET:
        return " ".join(parts + ["FORMAT AS PARQUET"] + (["EXPLICIT_IDS"] if explicit_ids else []) + ["STATUPDATE OFF"])
    if fmt not in (TEXT, CSV):
        raise ValueError(f"unknown format {fmt}")
    parts.append(text_options() if fmt == TEXT else csv_options())
    if explicit_ids:
        parts.append("EXPLICIT_IDS")
    parts += ["COMPUPDATE OFF", "STATUPDATE OFF"]
    return " ".join(parts)


# --------------------------------------------------------------------------- table parts (ranges)

#: Column types whose ranges are cheap to cut and to read (zone maps on a sort key skip the rest).
RANGE_TYPES = ("smallint", "int2", "integer", "int4", "int", "bigint", "int8", "numeric", "decimal", "date",
               "timestamp")


def rangeable(type_name: str) -> bool:
    t = type_name.strip().lower()
    return t.startswith(RANGE_TYPES) and not t.startswith(("timestamp with time zone", "timestamptz"))


def _bound_cast(type_name: str) -> str:
    t = type_name.strip().lower()
    if t.startswith(("numeric", "decimal")):
        return type_name  # keep its precision and scale
    if t.startswith("date"):
        return "DATE"
    if t.startswith("timestamp"):
        return "TIMESTAMP"
    return "BIGINT"


def range_predicate(column: str, type_name: str, lower: str | None, upper: str | None,
                    first: bool) -> tuple[str, list[str]]:
    """A part's WHERE text with its bounds as parameters: lower <= col < upper (None open);
    the first part also holds the column's NULLs, so the parts cover every row exactly once."""
    col, cast = quote_ident(column), _bound_cast(type_name)
    terms, params = [], []
    if lower is not None:
        terms.append(f"{col} >= CAST(%s AS {cast})")
        params.append(lower)
    if upper is not None:
        terms.append(f"{col} < CAST(%s AS {cast})")
        params.append(upper)
    where = " AND ".join(terms) or "TRUE"
    if first:
        where = f"({where} OR {col} IS NULL)"
    return where, params


def inline_predicate(column: str, type_name: str, lower: str | None, upper: str | None, first: bool) -> str:
    """range_predicate with its bounds written as literals: UNLOAD's query is itself a literal and
    takes no parameters. The bounds are our own text of numbers and dates, escaped all the same."""
    where, params = range_predicate(column, type_name, lower, upper, first)
    for value in params:
        if "\x00" in value:
            raise ValueError("a NUL character cannot appear in a bound")
        where = where.replace("%s", "'" + value.replace("'", "''") + "'", 1)
    return where


def unload_part_query(schema: str, table: str, columns: list[tuple[str, str]], fmt: str, where: str,
                      staged: bool = False) -> str:
    """The SELECT of one part's UNLOAD (unload_query with the part's inline predicate)."""
    return f"{unload_query(schema, table, columns, fmt, staged)} WHERE {where}"


def part_prefix(staging_uri: str, migration: str, schema: str, table: str, part_no: int, attempt: int) -> str:
    """``<table prefix>/part-<nnnnn>/attempt-<n>/``: under the table's own prefix, so the table's
    cleanup and the rollback's cover it; a part's attempts never share a prefix."""
    table_prefix = staging_prefix(staging_uri, migration, schema, table, 0).rstrip("/").rsplit("/", 1)[0]
    return f"{table_prefix}/part-{int(part_no):05d}/attempt-{int(attempt)}/"


def part_bounds_sql(schema: str, table: str, column: str) -> str:
    """min, max and rows of the part column: cheap on a sort key (zone maps), one column otherwise."""
    col = quote_ident(column)
    return f"SELECT MIN({col}), MAX({col}), COUNT(*) FROM {qualified(schema, table)}"


def part_counts_sql(schema: str, table: str, predicates: list[str]) -> str:
    """Rows in each part, in one pass over the one column (each predicate's parameters in order)."""
    items = ", ".join(f"SUM(CASE WHEN {p} THEN 1 ELSE 0 END)" for p in predicates)
    return f"SELECT {items} FROM {qualified(schema, table)}"


def delete_where_sql(schema: str, table: str, where: str) -> str:
    return f"DELETE FROM {qualified(schema, table)} WHERE {where}"


def analyze_sql(schema: str, table: str) -> str:
    return f"ANALYZE {qualified(schema, table)}"


def vacuum_sort_sql(schema: str, table: str) -> str:
    return f"VACUUM SORT ONLY {qualified(schema, table)}"


def count_sql(schema: str, table: str) -> str:
    return f"SELECT COUNT(*) FROM {qualified(schema, table)}"


# --------------------------------------------------------------------------- probe (one sampled row)

#: The alias of the sampled row inside the probe's UNLOAD query and checksum.
PROBE_SAMPLE_ALIAS = "migrator_probe_sample"


def probe_prefix(staging_uri: str, migration: str, schema: str, table: str) -> str:
    """``<staging>/<migration>/probe/<schema>.<table>/``: beside the tables' own prefixes (a
    table's part always holds the one unencoded ``.``, ``probe`` never does), and under the
    migration's prefix, so a rollback's cleanup covers it too."""
    table_part = staging_prefix(staging_uri, migration, schema, table, 0).rstrip("/").rsplit("/", 2)
    return f"{table_part[0]}/probe/{table_part[1]}/"


def sample_query(schema: str, table: str, columns: list[str], order_by: str) -> str:
    """One row of the table, the same row every time it is asked: ordered by ``order_by`` (the
    row's content hash), so the UNLOAD and the checksum see the same row without a full sort
    by every column (which SUPER, GEOMETRY and VARBYTE do not allow)."""
    return f"SELECT {ident_list(columns)} FROM {qualified(schema, table)} ORDER BY {order_by} LIMIT 1"


def first_rows_query(schema: str, table: str, columns: list[str], rows: int) -> str:
    """Some ``rows`` rows of the table, whichever the scan meets first (no ORDER BY: no sort of
    the table); nested in UNLOAD's query through unload_query_over, as LIMIT must be. For the
    rehearsal's sample of a table loaded in file groups (no column whose range is cheap)."""
    return f"SELECT {ident_list(columns)} FROM {qualified(schema, table)} LIMIT {max(1, int(rows))}"


def unload_query_over(sample: str, columns: list[tuple[str, str]], fmt: str, staged: bool = False) -> str:
    """The UNLOAD query over a nested sample: Redshift refuses LIMIT in UNLOAD's outer SELECT
    ("UNLOAD", Usage notes: use a nested LIMIT), so the LIMIT stays inside the subquery, and the
    outer select list is the real UNLOAD's (unload_column)."""
    items = ", ".join(unload_column(n, t, fmt, staged) for n, t in columns)
    return f"SELECT {items} FROM ({sample}) AS {quote_ident(PROBE_SAMPLE_ALIAS)}"


def fingerprint_over(relation: str, row_hash: str) -> str:
    """Rows and summed row hashes (checksum.row_hash) of ``relation``: a quoted temporary table,
    or ``(<sample>) AS alias`` (see sampled)."""
    return f"select count(*), coalesce(sum(cast({row_hash} as decimal(38,0))), 0) from {relation}"


def sampled(sample: str) -> str:
    return f"({sample}) AS {quote_ident(PROBE_SAMPLE_ALIAS)}"


def create_temp_table_sql(name: str, column_lines: list[str]) -> str:
    """CREATE TEMP TABLE with the real target's column definitions (replay.ddl.column_ddl)."""
    return f"CREATE TEMP TABLE {quote_ident(name)} (" + ", ".join(column_lines) + ")"


def freeze_sample_sql(name: str, sample: str) -> str:
    """The sampled row kept in a temporary table, so the UNLOAD and the checksum read the same row
    even while production writes to the table (an update or insert would change which row
    ``ORDER BY <hash> LIMIT 1`` picks)."""
    return f"CREATE TEMP TABLE {quote_ident(name)} AS {sample}"


def frozen_sample_query(name: str, columns: list[str]) -> str:
    return f"SELECT {ident_list(columns)} FROM {quote_ident(name)}"


def drop_temp_table_sql(name: str) -> str:
    return f"DROP TABLE IF EXISTS {quote_ident(name)}"
