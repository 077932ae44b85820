"""Redshift's UNLOAD, emulated on the client's PostgreSQL session and S3.

Choices where the sandbox differs from, or had to guess about, real Redshift:

* Encryption: without ENCRYPTED objects are stored SSE-S3 (``AES256``), as
  Redshift does by default. With ENCRYPTED (any format) the sandbox stores
  SSE-KMS (``aws:kms``, with ``SSEKMSKeyId`` when KMS_KEY_ID is given). Real
  Redshift uses client-side encryption for text/CSV with ENCRYPTED and a
  MASTER_SYMMETRIC_KEY; that is not emulated. The key is checked first with
  KMS ``DescribeKey`` (moto echoes SSE headers without checking keys), so an
  unknown, disabled or pending-deletion key fails the UNLOAD before any write.
* Slices: PARALLEL ON spreads rows over ``DataContext.slices`` slices (default
  4) in contiguous blocks. Text and CSV write one file per slice even when the
  slice got no rows (Redshift leaves such empty files too); Parquet writes no
  file for an empty slice, so a zero-row Parquet UNLOAD writes no data file.
  PARALLEL OFF writes slice 0000 only.
* Column types come from a ``LIMIT 0`` temporary table built from the query,
  so a query with two columns of the same name cannot be unloaded.
* MAXFILESIZE splits a slice's output into ``_part_01``, ``_part_02``, ...
* The session is assumed to use DateStyle ISO (PostgreSQL's default) so the
  text values of dates and timestamps are what Redshift writes.
* REAL/DOUBLE in text and CSV have ``6 + extra_float_digits`` / ``15 + extra_float_digits``
  significant digits (``%.*g``, as Redshift's PostgreSQL 8.0 base prints them), so with the
  default 0 a reload loses precision; Parquet keeps the exact values.
* VARBYTE unloads only to text/CSV, as hex digits; SUPER is written as JSON and a SQL
  NULL as JSON ``null`` (NULL AS does not apply to SUPER), so SQL NULL and JSON null
  are the same in text/CSV. TIMESTAMPTZ in Parquet keeps the UTC time, not the zone.
* The command tag is ``UNLOAD`` and no rows are returned.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any, Sequence

from botocore.exceptions import ClientError

from migrator.sandbox.interfaces import Backend, BackendError, Column, QueryResult, SessionInfo
from migrator.sandbox.redshift import formats
from migrator.sandbox.redshift.context import (
    notify,
    INTERNAL,
    DataContext,
    check_fault,
    check_role,
    check_session,
    list_keys,
    quote_ident,
    quote_literal,
    s3_error,
    set_session_value,
    split_s3_url,
)
from migrator.sandbox.redshift.formats import ColumnType, Row
from migrator.sandbox.redshift.identifiers import fold_query
from migrator.sandbox.redshift.options import UnloadOptions
from migrator.sandbox.redshift.sqltokens import TokenizeError, tokenize

MAX_FILE_SIZE = int(6.2 * 1024 ** 3)
NOT_EMPTY = (
    "Specified unload destination on S3 is not empty. Consider using a different bucket / prefix, "
    "manually removing the target files in S3, or using the ALLOWOVERWRITE option."
)


@dataclass
class DataFile:
    url: str
    key: str
    body: bytes
    rows: int


def describe_query(backend: Backend, query: str) -> list[ColumnType]:
    """Names and declared types (with typmods) of a query's result columns."""
    temp = f"__sandbox_unload_{secrets.token_hex(6)}"
    backend.query(f"create temp table {quote_ident(temp)} as select * from ({query}) as _q limit 0")
    try:
        result = backend.query(
            "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
            f"where a.attrelid = {quote_literal(quote_ident(temp))}::regclass and a.attnum > 0 "
            "and not a.attisdropped order by a.attnum"
        )
    finally:
        backend.query(f"drop table if exists {quote_ident(temp)}")
    return [ColumnType(str(name), str(type_name)) for name, type_name in result.rows]


def strip_query(query: str) -> str:
    return query.strip().rstrip(";").strip()


def refuse_outer_limit(query: str) -> None:
    """"UNLOAD", Usage notes (Limit clause): LIMIT only inside a nested SELECT."""
    try:
        tokens = tokenize(query)
    except TokenizeError:
        return  # PostgreSQL reports the malformed query itself
    depth = 0
    for token in tokens:
        if token.is_op("("):
            depth += 1
        elif token.is_op(")"):
            depth -= 1
        elif depth == 0 and token.is_kw("LIMIT"):
            raise BackendError("0A000", "LIMIT is not supported in the outer SELECT of UNLOAD; "
                                        "use a nested one: select * from (select ... limit n)")


class UnloadIntercept:
    columns: Sequence[Column] = ()
    #: The statement checks sql_error faults itself (it knows the table), so the proxy must not count them too.
    handles_sql_error_faults = True

    def __init__(self, ctx: DataContext, opts: UnloadOptions, sql: str) -> None:
        self.ctx = ctx
        self.opts = opts
        self.sql = sql

    # ------------------------------------------------------------------ driver
    def execute(self, backend: Backend, session: SessionInfo) -> QueryResult:
        o = self.opts
        check_session(backend)
        refuse_outer_limit(strip_query(o.query))
        check_fault(self.ctx, "unload", o.target, session)
        check_role(self.ctx, o.auth, session)
        if o.format == "JSON":
            raise BackendError("0A000", "UNLOAD to JSON is not supported by the sandbox")
        bucket, prefix = split_s3_url(o.target)
        s3 = self.ctx.s3_client_factory()
        sse = self._encryption_args()
        query = fold_query(strip_query(o.query), session)
        columns = describe_query(backend, query)
        if o.format == "PARQUET" and any(c.base == "varbyte" for c in columns):
            raise BackendError("0A000", "VARBYTE columns can only be unloaded to text or CSV format")
        if o.format == "PARQUET" and any(c.base in ("geometry", "geography") for c in columns):
            raise BackendError("0A000", "GEOMETRY and GEOGRAPHY columns can only be unloaded to text or CSV format")
        self._prepare_destination(s3, bucket, prefix)
        rows = self._query_rows(backend, query, columns)
        self._slice_count = self._cluster_slices(backend)
        files = self._render(bucket, prefix, columns, rows)
        total_bytes = 0
        for f in files:
            self._put(s3, bucket, f.key, f.body, sse)
            total_bytes += len(f.body)
        if o.manifest:
            manifest = self._manifest(files, columns, len(rows), total_bytes)
            self._put(s3, bucket, prefix + "manifest", manifest, sse)
        set_session_value(backend, "redshift.last_unload_count", str(len(rows)))
        # One UNLOAD is one query, however many files its slices write: every file is logged
        # under the statement's own query id (the system log keys it on the statement's text).
        for f in files:
            notify(self.ctx.on_unload, session, self.sql, f.url, f.rows, len(f.body))
        return QueryResult("UNLOAD")

    def _query_rows(self, backend: Backend, query: str, columns: list[ColumnType]) -> list[Row]:
        """The query's rows as text. Floats are read exactly (Parquet keeps every bit); text
        and CSV then write REAL/DOUBLE with the digits Redshift writes at the session's
        extra_float_digits (6 / 15 significant digits plus the setting)."""
        shown = backend.query("show extra_float_digits").rows
        session_digits = int(shown[0][0] or 0) if shown else 0
        backend.query("set extra_float_digits = 3")
        try:
            rows = formats.decode_pg_text(backend.copy_out(f"copy ({query}) to stdout"))
        finally:
            if backend.transaction_status != "E":
                backend.query(f"set extra_float_digits = {session_digits}")
        if self.opts.format != "PARQUET":
            formats.redshift_float_text(rows, columns, session_digits)
            formats.redshift_binary_and_super_text(rows, columns)
        return rows

    # ---------------------------------------------------------- preconditions
    def _encryption_args(self) -> dict[str, str]:
        o = self.opts
        if not o.encrypted:
            return {"ServerSideEncryption": "AES256"}
        if o.kms_key_id is None:
            return {"ServerSideEncryption": "aws:kms"}
        self._check_kms_key(o.kms_key_id)
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": o.kms_key_id}

    def _check_kms_key(self, key_id: str) -> None:
        if self.ctx.kms_client_factory is None:
            return
        kms = self.ctx.kms_client_factory()
        try:
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            if code in ("NotFoundException", "NotFound"):
                raise BackendError(INTERNAL, f"S3ServiceException:Invalid keyId '{key_id}',Status 400,"
                                             "Error KMS.NotFoundException") from exc
            if code == "AccessDeniedException":
                raise BackendError(INTERNAL, "S3ServiceException:User is not authorized to use KMS key "
                                             f"'{key_id}',Status 403,Error AccessDenied") from exc
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise BackendError(INTERNAL, f"S3ServiceException:{message},Status {status},Error KMS.{code}") from exc
        state = meta.get("KeyState", "Enabled" if meta.get("Enabled", True) else "Disabled")
        if state == "Disabled" or not meta.get("Enabled", True):
            raise BackendError(INTERNAL, f"S3ServiceException:{meta.get('Arn', key_id)} is disabled.,Status 400,"
                                         "Error KMS.DisabledException")
        if state != "Enabled":
            raise BackendError(INTERNAL, f"S3ServiceException:{meta.get('Arn', key_id)} is pending deletion.,"
                                         "Status 400,Error KMS.KMSInvalidStateException")

    def _prepare_destination(self, s3: Any, bucket: str, prefix: str) -> None:
        o = self.opts
        if o.allowoverwrite:
            return
        existing = list_keys(s3, bucket, prefix)
        if not existing:
            return
        if not o.cleanpath:
            raise BackendError(INTERNAL, NOT_EMPTY)
        try:
            for start in range(0, len(existing), 1000):
                batch = [{"Key": obj["Key"]} for obj in existing[start:start + 1000]]
                s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        except ClientError as exc:
            raise s3_error(exc) from exc

    # --------------------------------------------------------------- rendering
    def _suffix(self) -> str:
        o = self.opts
        ext = ""
        if o.extension:
            ext = "." + o.extension.lstrip(".")
        elif o.format == "PARQUET":
            ext = ".parquet"
        comp = formats.SUFFIXES.get(o.compression or "", "")
        if comp and not ext.endswith(comp):
            ext += comp
        return ext

    def _cluster_slices(self, backend: Backend) -> int:
        """The cluster's own slice count (pg_sandbox.cluster_info, what STV_SLICES shows), so a
        2-slice and a 4-slice cluster write different numbers of files; the context's default
        where the catalogue has none."""
        try:
            found = backend.query("select slices from pg_sandbox.cluster_info limit 1").rows
        except Exception:  # noqa: BLE001 - a bare PostgreSQL without the catalogue
            found = []
        return int(found[0][0]) if found and found[0][0] else self.ctx.slices

    def _slices(self, rows: list[Row]) -> list[list[Row]]:
        count = max(1, getattr(self, "_slice_count", self.ctx.slices)) if self.opts.parallel else 1
        size = math.ceil(len(rows) / count) if rows else 0
        return [rows[i * size:(i + 1) * size] for i in range(count)]

    def _render(self, bucket: str, prefix: str, columns: list[ColumnType], rows: list[Row]) -> list[DataFile]:
        o = self.opts
        limit = o.maxfilesize or MAX_FILE_SIZE
        files: list[DataFile] = []
        suffix = self._suffix()
        for slice_no, slice_rows in enumerate(self._slices(rows)):
            if o.format == "PARQUET":
                if not slice_rows:
                    continue
                parts = self._parquet_parts(slice_rows, columns, limit)
            else:
                parts = self._text_parts(slice_rows, columns, limit)
            for part_no, (body, count) in enumerate(parts):
                key = f"{prefix}{slice_no:04d}_part_{part_no:02d}{suffix}"
                files.append(DataFile(f"s3://{bucket}/{key}", key, body, count))
        return files

    def _text_parts(self, rows: list[Row], columns: list[ColumnType], limit: int) -> list[tuple[bytes, int]]:
        o = self.opts
        header = [c.name for c in columns] if o.header else None
        if o.format == "CSV":
            def render(chunk: list[Row], head: list[str] | None) -> bytes:
                return formats.write_csv(chunk, head, delimiter=o.delimiter or ",", null_as=o.null_as or "")
        else:
            def render(chunk: list[Row], head: list[str] | None) -> bytes:
                return formats.write_delimited(chunk, head, delimiter=o.delimiter or "|", null_as=o.null_as or "",
                                               escape=o.escape, addquotes=o.addquotes)
        if o.maxfilesize is None:
            # Only 6.2 GB splits a file; the sandbox never gets there, so skip the per-row sizing.
            return [(formats.compress(render(rows, header), o.compression), len(rows))]
        parts: list[tuple[bytes, int]] = []
        chunk: list[Row] = []
        size = len(render([], header))
        for row in rows:
            row_size = len(render([row], None))
            if chunk and size + row_size > limit:
                parts.append((render(chunk, header), len(chunk)))
                chunk, size = [], len(render([], header))
            chunk.append(row)
            size += row_size
        parts.append((render(chunk, header), len(chunk)))
        return [(formats.compress(body, o.compression), n) for body, n in parts]

    def _parquet_parts(self, rows: list[Row], columns: list[ColumnType], limit: int) -> list[tuple[bytes, int]]:
        group = self.opts.rowgroupsize
        body = formats.write_parquet(rows, columns)
        pieces = max(1, math.ceil(len(body) / limit))
        if pieces == 1:
            return [(formats.write_parquet(rows, columns, self._row_group_rows(rows, body, group)), len(rows))]
        size = math.ceil(len(rows) / pieces)
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
        return [(formats.write_parquet(c, columns), len(c)) for c in chunks]

    @staticmethod
    def _row_group_rows(rows: list[Row], body: bytes, group_bytes: int | None) -> int | None:
        if not group_bytes or not rows:
            return None
        per_row = max(1, len(body) // len(rows))
        return max(1, group_bytes // per_row)

    def _manifest(self, files: list[DataFile], columns: list[ColumnType], rows: int, total: int) -> bytes:
        entries: list[dict[str, Any]] = []
        header = 1 if self.opts.header else 0
        for f in files:
            # Every UNLOAD manifest carries meta.content_length ("Using a manifest to specify
            # data files": COPY from Parquet/ORC and Spectrum need it); VERBOSE adds the row
            # count, which includes the header line when HEADER is on (UNLOAD, MANIFEST VERBOSE).
            meta: dict[str, Any] = {"content_length": len(f.body)}
            if self.opts.verbose:
                meta["record_count"] = f.rows + header
            entries.append({"url": f.url, "meta": meta})
        doc: dict[str, Any] = {"entries": entries}
        if self.opts.verbose:
            doc["schema"] = {"elements": [{"name": c.name, "type": c.manifest_type()} for c in columns]}
            doc["meta"] = {"content_length": total, "record_count": rows + header * len(files)}
            doc["author"] = {"name": "Amazon Redshift", "version": "1.0.0"}
        return json.dumps(doc, indent=1).encode("utf-8")

    def _put(self, s3: Any, bucket: str, key: str, body: bytes, sse: dict[str, str]) -> None:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, **sse)
        except ClientError as exc:
            raise s3_error(exc) from exc
