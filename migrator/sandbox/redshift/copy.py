"""Redshift's ``COPY table FROM 's3://...'``, emulated on the client's session.

Files are read from S3 (a manifest's entries, or every object under the
prefix), parsed the way Redshift parses them, checked row by row, and loaded
with ``COPY ... FROM STDIN`` inside the client's transaction, so a ROLLBACK
undoes the load.

Choices and limits:

* The command tag is ``COPY`` without a count: Redshift's drivers see no
  reliable row count (hence ``pg_last_copy_count()``, fed here through the
  ``redshift.last_copy_count`` / ``redshift.last_copy_id`` settings; the id is the COPY's
  query id in the system log).
* Rows are checked before loading (column count, integers, decimals, floats,
  booleans, string length, NOT NULL) so a bad row is reported with its file,
  line, column and a Redshift-style reason through ``on_load_error``, and up
  to MAXERROR bad rows are skipped. Dates and times are left to PostgreSQL's
  parser, which accepts what DATEFORMAT/TIMEFORMAT 'auto' accept; other
  DATEFORMAT/TIMEFORMAT strings are accepted and treated as 'auto'.
* CHAR/VARCHAR lengths are counted in UTF-8 bytes, as Redshift counts them ("Character
  types"): a longer value is error 1204 "String length exceeds DDL length" (TRUNCATECOLUMNS
  cuts it to the whole characters that fit), and a CHAR column takes only single-byte
  characters (error 1220, "Multibyte character load errors").
* ``ENCRYPTED`` means client-side encryption, which the sandbox never writes:
  reading an SSE-KMS object (or any object without a client-side envelope)
  with ENCRYPTED fails.
* Without MANIFEST every object under the prefix is loaded, including a
  ``manifest`` file sitting there, exactly as Redshift would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Sequence

from botocore.exceptions import ClientError

from migrator.sandbox.interfaces import Backend, BackendError, Column, QueryResult, SessionInfo
from migrator.sandbox.redshift import formats
from migrator.sandbox.redshift.context import (
    INTERNAL,
    DataContext,
    notify,
    check_fault,
    check_role,
    check_session,
    list_keys,
    local_query_id,
    quote_ident,
    quote_literal,
    s3_error,
    set_session_value,
    split_s3_url,
    takes_keyword,
)
from migrator.sandbox.redshift.formats import ColumnType, ParseError, Record, Row
from migrator.sandbox.redshift.options import CopyOptions


@dataclass
class TargetColumn:
    name: str
    type: ColumnType
    identity: bool
    not_null: bool


@dataclass
class LoadError:
    file: str
    line: int
    column: str
    reason: str
    raw: str = ""
    code: int = 1200  # STL_LOAD_ERRORS.err_code ("Load error reference")
    field: str = ""  # STL_LOAD_ERRORS.raw_field_value: the value that failed, when one did


@dataclass
class SourceFile:
    url: str
    body: bytes


class LoadFailed(Exception):
    pass


_INT_RANGES = {"smallint": (-(2 ** 15), 2 ** 15 - 1), "integer": (-(2 ** 31), 2 ** 31 - 1),
               "bigint": (-(2 ** 63), 2 ** 63 - 1)}
_INT_NAMES = {"smallint": "Short", "integer": "Integer", "bigint": "Long"}
_BOOLS = {"t", "f", "true", "false", "1", "0", "y", "n", "yes", "no", "on", "off"}


def _invalid_digit(value: str, kind: str) -> str:
    for pos, ch in enumerate(value):
        if not (ch.isdigit() or (pos == 0 and ch in "+-") or (kind in ("Decimal", "Double") and ch in ".eE")):
            return f"Invalid digit, Value '{ch}', Pos {pos}, Type: {kind}"
    return f"Invalid digit, Value '{value[:1]}', Pos 0, Type: {kind}"


def check_value(col: TargetColumn, value: str) -> str | None:
    """A Redshift-style reason why ``value`` cannot go into ``col``, or None."""
    base = col.type.base
    if base in _INT_RANGES:
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            return _invalid_digit(text, _INT_NAMES[base])
        low, high = _INT_RANGES[base]
        if not low <= int(text) <= high:
            return f"Overflow, Value '{text}' out of range for type: {_INT_NAMES[base]}"
        return None
    if base == "numeric":
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            return _invalid_digit(text, "Decimal")
        mods = col.type.modifiers
        if mods and number.is_finite():
            precision, scale = mods[0], (mods[1] if len(mods) > 1 else 0)
            digits = len(str(abs(int(number)))) if abs(number) >= 1 else 0
            if digits > precision - scale:
                return f"Numeric data overflow (result precision), Value '{text}'"
        return None
    if base in ("real", "double precision"):
        try:
            float(value.strip())
        except ValueError:
            return _invalid_digit(value.strip(), "Double")
        return None
    if base == "boolean":
        if value.strip().lower() not in _BOOLS:
            return f"Invalid boolean value, Value '{value}'"
        return None
    if col.type.is_text and col.type.modifiers:
        size = len(value.encode("utf-8"))
        if size > col.type.modifiers[0]:
            return f"String length exceeds DDL length ({size} > {col.type.modifiers[0]})"
    return None


def multibyte_in_char(col: TargetColumn, value: str) -> str | None:
    """Error 1220's reason when a CHAR column gets a character above 7F ("Multibyte character
    load errors": CHAR takes single-byte UTF-8 characters only)."""
    if col.type.base not in ("character", "bpchar") or value.isascii():
        return None
    bad = next(ch for ch in value if not ch.isascii())
    return ("Multibyte character not supported for CHAR (Hint: Try using VARCHAR). Invalid char: "
            + " ".join(f"{b:02x}" for b in bad.encode("utf-8")))


def truncate_bytes(value: str, limit: int) -> str:
    """The longest prefix of whole characters within ``limit`` UTF-8 bytes (TRUNCATECOLUMNS)."""
    data = value.encode("utf-8")
    if len(data) <= limit:
        return value
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return data[:cut].decode("utf-8")


def _reason_code(reason: str) -> int:
    if reason.startswith("String length exceeds DDL length"):
        return 1204
    if reason.startswith("Multibyte character not supported for CHAR"):
        return 1220
    return 1200


class CopyIntercept:
    columns: Sequence[Column] = ()
    #: The statement checks sql_error faults itself (it knows the table), so the proxy must not count them too.
    handles_sql_error_faults = True

    def __init__(self, ctx: DataContext, opts: CopyOptions, sql: str) -> None:
        self.ctx = ctx
        self.opts = opts
        self.sql = sql

    @property
    def qualified(self) -> str:
        o = self.opts
        return (quote_ident(o.schema) + "." if o.schema else "") + quote_ident(o.table)

    def execute(self, backend: Backend, session: SessionInfo) -> QueryResult:
        o = self.opts
        check_session(backend)
        schema, relname = self._resolve(backend)
        check_fault(self.ctx, "copy", f"{schema}.{relname}", session)
        check_role(self.ctx, o.auth, session)
        if backend.transaction_status == "T":
            # Concurrent COPYs into one table are a serialised load ("Use a single COPY command"):
            # the second waits until the first's transaction ends.
            backend.query(f"lock table {self.qualified} in share row exclusive mode")
        columns = self._target_columns(backend, relname)
        self._check_varbyte(columns)
        s3 = self.ctx.s3_client_factory()
        files = self._read_files(s3)
        rows, errors = self._parse(files, columns)
        if len(errors) > o.maxerror:
            self._report(session, f"{quote_ident(schema)}.{quote_ident(relname)}", errors)
            raise self._failure(relname, errors[0])
        self._report(session, f"{quote_ident(schema)}.{quote_ident(relname)}", errors)
        col_list = ", ".join(quote_ident(c.name) for c in columns)
        try:
            backend.copy_in(f"copy {self.qualified} ({col_list}) from stdin", formats.encode_pg_text(rows))
        except BackendError as exc:
            if exc.sqlstate == "25P02":
                raise
            err = LoadError(files[0].url if files else o.source, 0, "", exc.message)
            self._report(session, f"{quote_ident(schema)}.{quote_ident(relname)}", [err])
            raise self._failure(relname, err) from exc
        # PG_LAST_COPY_ID is the COPY's query id, the one its STL_QUERY, STL_LOAD_COMMITS and
        # STL_LOAD_ERRORS rows carry. Set in the COPY's transaction, so a COPY that fails or is
        # rolled back leaves the previous value.
        query = self._hook(self.ctx.on_load_commit, session, f"{quote_ident(schema)}.{quote_ident(relname)}",
                           [f.url for f in files], len(rows))
        set_session_value(backend, "redshift.last_copy_count", str(len(rows)))
        set_session_value(backend, "redshift.last_copy_id", str(query if isinstance(query, int) else local_query_id()))
        return QueryResult("COPY")

    def _hook(self, hook: Callable[..., Any] | None, *args: Any, **kwargs: Any) -> Any:
        """A system-log hook told the statement's text (its query is logged under one id)."""
        if takes_keyword(hook, "query_text"):
            kwargs["query_text"] = self.sql
        return notify(hook, *args, **kwargs)

    # ------------------------------------------------------------------ table
    def _resolve(self, backend: Backend) -> tuple[str, str]:
        result = backend.query(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            f"where c.oid = {quote_literal(self.qualified)}::regclass"
        )
        schema, relname = result.rows[0]
        return str(schema), str(relname)

    def _target_columns(self, backend: Backend, relname: str) -> list[TargetColumn]:
        result = backend.query(
            "select a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity, a.attnotnull "
            f"from pg_attribute a where a.attrelid = {quote_literal(self.qualified)}::regclass "
            "and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' order by a.attnum"
        )
        table = [TargetColumn(str(n), ColumnType(str(n), str(t)), ident not in ("", None), nn == "t")
                 for n, t, ident, nn in result.rows]
        o = self.opts
        if o.columns is None:
            return [c for c in table if o.explicit_ids or not c.identity]
        by_name = {c.name: c for c in table}
        chosen: list[TargetColumn] = []
        for name in o.columns:
            if name not in by_name:
                raise BackendError("42703", f'column "{name}" of relation "{relname}" does not exist')
            col = by_name[name]
            if col.identity and not o.explicit_ids:
                raise BackendError("0A000", f'cannot set an identity column to a value: "{name}" '
                                            "(use EXPLICIT_IDS)")
            chosen.append(col)
        return chosen

    def _check_varbyte(self, columns: list[TargetColumn]) -> None:
        """"Loading a column of the VARBYTE data type": from CSV (hex), Parquet or ORC only,
        and not with REMOVEQUOTES."""
        binary = [c.name for c in columns if c.type.base == "varbyte"]
        if not binary:
            return
        if self.opts.format not in ("CSV", "PARQUET"):
            raise BackendError("0A000", f'VARBYTE column "{binary[0]}" can only be loaded from CSV, Parquet or '
                                        "ORC files")
        if self.opts.removequotes:
            raise BackendError("0A000", f'REMOVEQUOTES is not supported with VARBYTE column "{binary[0]}"')

    # ------------------------------------------------------------------ files
    def _read_files(self, s3: Any) -> list[SourceFile]:
        o = self.opts
        bucket, key = split_s3_url(o.source)
        entries: list[tuple[str, bool, int | None]] = []
        if o.manifest:
            entries = self._manifest_entries(s3, bucket, key)
        else:
            objects = [obj for obj in list_keys(s3, bucket, key) if not obj["Key"].endswith("/")]
            if not objects:
                raise BackendError(INTERNAL, f"S3ServiceException:The specified S3 prefix '{key}' does not exist,"
                                             "Status 404,Error NoSuchKey")
            entries = [(f"s3://{bucket}/{obj['Key']}", True, None) for obj in objects]
        files: list[SourceFile] = []
        for url, mandatory, length in entries:
            body = self._get(s3, url, mandatory)
            if body is None:
                continue
            if length is not None and length != len(body):
                raise BackendError(INTERNAL, f"Manifest entry for '{url}' has content_length {length} but the "
                                             f"S3 object is {len(body)} bytes")
            files.append(SourceFile(url, body))
        return files

    def _manifest_entries(self, s3: Any, bucket: str, key: str) -> list[tuple[str, bool, int | None]]:
        body = self._get(s3, f"s3://{bucket}/{key}", True)
        assert body is not None
        try:
            doc = json.loads(body)
            raw_entries = doc["entries"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(INTERNAL, f"Manifest file is not in correct json format: '{self.opts.source}'") from exc
        entries: list[tuple[str, bool, int | None]] = []
        for entry in raw_entries:
            url = str(entry.get("url", ""))
            meta = entry.get("meta") or {}
            length = meta.get("content_length")
            if self.opts.format == "PARQUET" and length is None:
                raise BackendError(INTERNAL, f"Manifest entry for '{url}' has no meta.content_length, "
                                             "which COPY from columnar formats requires")
            entries.append((url, bool(entry.get("mandatory", False)), None if length is None else int(length)))
        return entries

    def _get(self, s3: Any, url: str, mandatory: bool) -> bytes | None:
        bucket, key = split_s3_url(url)
        try:
            resp = s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404") and not mandatory:
                return None
            if code in ("NoSuchKey", "404"):
                raise BackendError(INTERNAL, f"S3ServiceException:The specified key does not exist: '{url}',"
                                             "Status 404,Error NoSuchKey") from exc
            raise s3_error(exc) from exc
        if self.opts.encrypted and url != self.opts.source:
            if resp.get("ServerSideEncryption") == "aws:kms":
                raise BackendError(INTERNAL, f"COPY with ENCRYPTED expects client-side encrypted files, but '{url}' "
                                             "is stored with SSE-KMS; remove ENCRYPTED to load it")
            if "x-amz-key" not in resp.get("Metadata", {}) and "x-amz-key-v2" not in resp.get("Metadata", {}):
                raise BackendError(INTERNAL, f"COPY with ENCRYPTED: '{url}' has no client-side encryption envelope "
                                             "(x-amz-key metadata)")
        return bytes(resp["Body"].read())

    # ---------------------------------------------------------------- parsing
    def _parse(self, files: Sequence[SourceFile], columns: list[TargetColumn]) -> tuple[list[Row], list[LoadError]]:
        rows: list[Row] = []
        errors: list[LoadError] = []
        for f in files:
            if self.opts.format == "PARQUET":
                self._parse_parquet(f, columns, rows, errors)
            else:
                self._parse_text(f, columns, rows, errors)
        return rows, errors

    def _parse_parquet(self, f: SourceFile, columns: list[TargetColumn], rows: list[Row],
                       errors: list[LoadError]) -> None:
        try:
            names, data = formats.read_parquet(f.body)
        except Exception as exc:  # pyarrow raises several types for a non-Parquet file
            raise BackendError(INTERNAL, f"Spectrum Scan Error: file '{f.url}' is not a valid Parquet file: "
                                         f"{exc}") from exc
        if len(names) != len(columns):
            raise BackendError(INTERNAL, f"Unmatched number of columns between table and file. Table columns: "
                                         f"{len(columns)}, Data columns: {len(names)}, File name: {f.url}")
        zoned = [i for i, c in enumerate(columns) if c.type.base == "timestamp with time zone"]
        for n, row in enumerate(data, start=1):
            for i in zoned:
                # A Parquet timestamp without zone loads into TIMESTAMPTZ as UTC, whatever the session's zone.
                v = row[i]
                if v is not None and not re.search(r"[+-]\d\d(:?\d\d)?$", v):
                    row[i] = v + "+00"
            self._check_row(f.url, n, "", columns, row, rows, errors)

    def _records(self, f: SourceFile) -> Iterable[Record]:
        o = self.opts
        try:
            data = formats.decompress(f.body, o.compression)
        except ValueError as exc:
            raise LoadFailed(f"{exc}") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if o.acceptinvchars is None:
                line = data[:exc.start].count(b"\n") + 1
                raise LoadFailed(f"Invalid UTF8 byte sequence at line {line}") from exc
            text = data.decode("utf-8", errors="replace").replace("\ufffd", o.acceptinvchars or "?")
        if o.format == "CSV":
            return formats.read_csv(text, delimiter=o.delimiter or ",", quote=o.quote)
        return formats.read_delimited(text, delimiter=o.delimiter or "|", escape=o.escape,
                                      removequotes=o.removequotes)

    def _parse_text(self, f: SourceFile, columns: list[TargetColumn], rows: list[Row],
                    errors: list[LoadError]) -> None:
        o = self.opts
        null_as = "\\N" if o.null_as is None else o.null_as
        try:
            for index, rec in enumerate(self._records(f)):
                if index < o.ignoreheader:
                    continue
                if o.ignoreblanklines and rec.raw.strip() == "":
                    continue
                values: list[str | None] = []
                for fld in rec.fields:
                    is_null = (not fld.quoted and fld.value == null_as) if o.format == "CSV" else fld.raw == null_as
                    values.append(None if is_null else fld.value)
                self._check_row(f.url, rec.line, rec.raw, columns, values, rows, errors, text=True)
        except ParseError as exc:
            errors.append(LoadError(f.url, exc.line, "", exc.reason, exc.raw))
        except LoadFailed as exc:
            errors.append(LoadError(f.url, 0, "", str(exc)))

    def _check_row(self, url: str, line: int, raw: str, columns: list[TargetColumn], values: list[str | None],
                   rows: list[Row], errors: list[LoadError], text: bool = False) -> None:
        o = self.opts
        if len(values) > len(columns):
            errors.append(LoadError(url, line, columns[-1].name if columns else "", "Extra column(s) found", raw))
            return
        if len(values) < len(columns):
            if not o.fillrecord:
                errors.append(LoadError(url, line, columns[len(values)].name, "Delimiter not found", raw))
                return
            values = values + [None] * (len(columns) - len(values))
        row: Row = []
        for col, value in zip(columns, values):
            if value is not None and text:
                value = self._text_value(col, value)
                # VARBYTE as hex; GEOMETRY/GEOGRAPHY as hex WKB/EWKB ("Loading a column of the
                # GEOMETRY or GEOGRAPHY data type"; WKT/EWKT input is not emulated).
                if value is not None and col.type.base in ("varbyte", "geometry", "geography"):
                    if len(value) % 2 or any(ch not in "0123456789abcdefABCDEF" for ch in value):
                        errors.append(LoadError(url, line, col.name, f"Invalid hex value, Value '{value[:20]}'", raw,
                                                field=value))
                        return
                    value = "\\x" + value
            if value is None:
                if col.not_null:
                    errors.append(LoadError(url, line, col.name, "Missing data for not-null field", raw))
                    return
                row.append(None)
                continue
            if o.truncatecolumns and col.type.is_text and col.type.modifiers:
                value = truncate_bytes(value, col.type.modifiers[0])
            reason = multibyte_in_char(col, value) or check_value(col, value)
            if reason is not None:
                errors.append(LoadError(url, line, col.name, reason, raw, _reason_code(reason), field=value))
                return
            row.append(value)
        rows.append(row)

    def _text_value(self, col: TargetColumn, value: str) -> str | None:
        o = self.opts
        if not col.type.is_text:
            # Redshift loads an empty field of a non-character column as NULL.
            return None if value.strip() == "" else value
        if value == "" and o.emptyasnull:
            return None
        if o.blanksasnull and value.strip(" \t") == "" and value != "":
            return None
        if o.blanksasnull and value == "" and o.emptyasnull:
            return None
        if o.trimblanks and col.type.base == "character varying":
            return value.rstrip(" ")
        return value

    # ---------------------------------------------------------------- errors
    def _report(self, session: SessionInfo, relname: str, errors: list[LoadError]) -> None:
        # `relname` arrives schema-qualified and quoted: the log resolves it on its own connection.
        # The system log takes the row's file, raw line and raw field value too ("STL_LOAD_ERRORS":
        # filename, raw_line, raw_field_value), which the product reads back and scrubs.
        hook = self.ctx.on_load_error
        takes_code = takes_keyword(hook, "err_code")
        takes_raw = takes_keyword(hook, "raw_field_value")
        for err in errors:
            extra: dict[str, object] = {"err_code": err.code} if takes_code else {}
            if takes_raw:
                extra.update(filename=err.file, raw_line=err.raw, raw_field_value=err.field)
            self._hook(hook, session, relname, err.line, err.column, err.reason, **extra)

    @staticmethod
    def _failure(relname: str, first: LoadError) -> BackendError:
        detail = (f"error: {first.reason}; file: {first.file}; "
                  f"line: {first.line}; column: {first.column}")
        return BackendError(INTERNAL, f"Load into table '{relname}' failed. "
                                      "Check 'stl_load_errors' system table for details.", detail)
