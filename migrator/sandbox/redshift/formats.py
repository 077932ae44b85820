"""File formats for the sandbox's UNLOAD and COPY.

Rows travel between PostgreSQL and these functions as lists of text values
(``str``, or ``None`` for NULL) in PostgreSQL's own text representation, which
is lossless for every type the sandbox supports. This module converts them to
and from what Redshift writes to S3: pipe-delimited text (with Redshift's
ESCAPE/ADDQUOTES rules), CSV, and Parquet with typed columns; plus the
compression codecs (gzip, bzip2, zstd).
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
import re
import struct
from dataclasses import dataclass
from functools import cached_property
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Callable, Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

Row = list[str | None]

# ---------------------------------------------------------------- column types


@dataclass(frozen=True)
class ColumnType:
    """A result or table column as PostgreSQL's format_type() describes it."""

    name: str
    type_name: str  # e.g. "numeric(18,4)", "character varying(20)"

    # Parsed once per column, not once per value: COPY checks every value against these.
    @cached_property
    def base(self) -> str:
        # The emulated Redshift types (domains) read the same whatever the search path.
        return re.sub(r"\(\d+(?:,\d+)?\)", "", self.type_name).strip().removeprefix("pg_sandbox.")

    @cached_property
    def modifiers(self) -> tuple[int, ...]:
        m = re.search(r"\((\d+)(?:,(\d+))?\)", self.type_name)
        if not m:
            return ()
        return tuple(int(g) for g in m.groups() if g is not None)

    @cached_property
    def is_text(self) -> bool:
        return self.base in ("character varying", "character", "text", "bpchar", "name")

    def manifest_type(self) -> dict[str, object]:
        """The ``type`` object of a VERBOSE manifest's schema element."""
        out: dict[str, object] = {"base": self.base}
        mods = self.modifiers
        if self.base == "numeric" and mods:
            out["precision"] = mods[0]
            out["scale"] = mods[1] if len(mods) > 1 else 0
        elif self.is_text and mods:
            out["max_length"] = mods[0]
        return out


_INT_TYPES = {"smallint": pa.int16(), "integer": pa.int32(), "bigint": pa.int64()}


def arrow_type(col: ColumnType, values: Sequence[str | None] = ()) -> pa.DataType:
    base = col.base
    if base in _INT_TYPES:
        return _INT_TYPES[base]
    if base == "numeric":
        mods = col.modifiers
        if mods and mods[0] <= 38:
            return pa.decimal128(mods[0], mods[1] if len(mods) > 1 else 0)
        # Unconstrained numeric (e.g. an aggregate): Redshift would have a declared
        # precision; take the widest scale present so no digit is lost.
        scale = max((len(v.split(".")[1]) for v in values if v and "." in v), default=0)
        return pa.decimal128(38, min(scale, 37))
    if base == "real":
        return pa.float32()
    if base == "double precision":
        return pa.float64()
    if base == "boolean":
        return pa.bool_()
    if base == "date":
        return pa.date32()
    if base == "timestamp without time zone":
        return pa.timestamp("us")
    if base == "timestamp with time zone":
        # UNLOAD to Parquet writes only the timestamp of a TIMESTAMPTZ, not its zone
        # ("UNLOAD", FORMAT AS PARQUET); values are UTC.
        return pa.timestamp("us")
    if base == "time without time zone":
        return pa.time64("us")
    return pa.string()


def _from_pg_text(dtype: pa.DataType) -> Callable[[str], object]:
    if pa.types.is_integer(dtype):
        return int
    if pa.types.is_decimal(dtype):
        return Decimal
    if pa.types.is_floating(dtype):
        return float
    if pa.types.is_boolean(dtype):
        return lambda s: s == "t"
    if pa.types.is_date(dtype):
        return date.fromisoformat
    if pa.types.is_timestamp(dtype):
        if dtype.tz:
            return lambda s: datetime.fromisoformat(s).astimezone(timezone.utc)
        return _naive_utc
    if pa.types.is_time(dtype):
        return time.fromisoformat
    return str


def _naive_utc(s: str) -> datetime:
    """A timestamp's text; one with an offset (TIMESTAMPTZ) becomes its UTC wall time."""
    value = datetime.fromisoformat(s)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _float_text(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


_FLOAT_DIGITS = {"real": 6, "double precision": 15}  # FLT_DIG, DBL_DIG


def redshift_float(text: str, base: str, extra_digits: int) -> str:
    """A REAL/DOUBLE value as Redshift prints it: ``%.*g`` with FLT_DIG/DBL_DIG plus extra_float_digits."""
    if text in ("NaN", "Infinity", "-Infinity"):
        return text
    value = float(text)
    if base == "real":
        value = struct.unpack("<f", struct.pack("<f", value))[0]  # the float4 itself, not its shortest decimal
    return "%.*g" % (max(1, _FLOAT_DIGITS[base] + extra_digits), value)


def redshift_float_text(rows: list[Row], columns: Sequence[ColumnType], extra_digits: int) -> None:
    """Rewrite the REAL/DOUBLE fields of ``rows`` (exact PostgreSQL text) in place."""
    targets = [(i, c.base) for i, c in enumerate(columns) if c.base in _FLOAT_DIGITS]
    if not targets:
        return
    for row in rows:
        for i, base in targets:
            v = row[i]
            if v is not None:
                row[i] = redshift_float(v, base, extra_digits)


def redshift_binary_and_super_text(rows: list[Row], columns: Sequence[ColumnType]) -> None:
    """In place, for UNLOAD text/CSV: VARBYTE as bare hex digits (PostgreSQL writes ``\\x``
    first), GEOMETRY/GEOGRAPHY as hex EWKB; SUPER as JSON, SQL NULL included (``null``: "SUPER data columns ignore NULL AS")."""
    binary = [i for i, c in enumerate(columns) if c.base == "varbyte"]
    spatial = [i for i, c in enumerate(columns) if c.base in ("geometry", "geography")]
    sup = [i for i, c in enumerate(columns) if c.base == "super"]
    if not binary and not sup and not spatial:
        return
    for row in rows:
        for i in binary:
            v = row[i]
            if v is not None and v.startswith("\\x"):
                row[i] = v[2:]
        for i in spatial:  # GEOMETRY/GEOGRAPHY unload as hex EWKB (upper-case, as Redshift prints it)
            v = row[i]
            if v is not None and v.startswith("\\x"):
                row[i] = v[2:].upper()
        for i in sup:
            if row[i] is None:
                row[i] = "null"


def _to_pg_text(dtype: pa.DataType) -> Callable[[object], str]:
    if pa.types.is_boolean(dtype):
        return lambda v: "t" if v else "f"
    if pa.types.is_floating(dtype):
        return lambda v: _float_text(float(v))  # type: ignore[arg-type]
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) or pa.types.is_time(dtype):
        return lambda v: v.isoformat(sep=" ") if isinstance(v, datetime) else v.isoformat()  # type: ignore[attr-defined]
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return lambda v: "\\x" + bytes(v).hex()  # type: ignore[arg-type]
    return str


# ---------------------------------------------------------- PostgreSQL text COPY

_PG_UNESCAPE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_PG_ESCAPE_RE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_PG_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_PG_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _pg_unescape_field(field: str) -> str | None:
    if field == "\\N":
        return None
    if "\\" not in field:
        return field

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return chr(int(m.group(1), 8))
        if m.group(2):
            return chr(int(m.group(2), 16))
        ch = m.group(3)
        return _PG_UNESCAPE.get(ch, ch)

    return _PG_ESCAPE_RE.sub(repl, field)


def decode_pg_text(data: bytes) -> list[Row]:
    """Rows of ``COPY ... TO STDOUT`` in PostgreSQL's text format."""
    text = data.decode("utf-8")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [[_pg_unescape_field(f) for f in line.split("\t")] for line in lines]


def _pg_escape(value: str) -> str:
    if _PG_NEEDS_ESCAPE.search(value):
        return _PG_NEEDS_ESCAPE.sub(lambda m: _PG_ESCAPES[m.group(0)], value)
    return value


def encode_pg_text(rows: Sequence[Row]) -> bytes:
    """Rows in PostgreSQL's text COPY format, for ``COPY ... FROM STDIN``."""
    out = io.StringIO()
    for row in rows:
        out.write("\t".join("\\N" if v is None else _pg_escape(v) for v in row))
        out.write("\n")
    return out.getvalue().encode("utf-8")


# ------------------------------------------------------------------ compression

SUFFIXES = {"GZIP": ".gz", "BZIP2": ".bz2", "ZSTD": ".zst"}


def compress(data: bytes, kind: str | None) -> bytes:
    if kind is None:
        return data
    if kind == "GZIP":
        return gzip.compress(data, mtime=0)
    if kind == "BZIP2":
        return bz2.compress(data)
    if kind == "ZSTD":
        sink = pa.BufferOutputStream()
        stream = pa.CompressedOutputStream(sink, "zstd")
        stream.write(data)
        stream.close()
        return bytes(sink.getvalue().to_pybytes())
    raise ValueError(f"unknown compression {kind}")


def decompress(data: bytes, kind: str | None) -> bytes:
    """Raises ValueError when the data is not in ``kind``'s format."""
    if kind is None:
        return data
    try:
        if kind == "GZIP":
            return gzip.decompress(data)
        if kind == "BZIP2":
            return bz2.decompress(data)
        if kind == "ZSTD":
            return bytes(pa.CompressedInputStream(pa.BufferReader(data), "zstd").read())
    except (OSError, EOFError, pa.ArrowException) as exc:
        raise ValueError(f"{kind.lower()}: {exc}") from exc
    raise ValueError(f"unknown compression {kind}")


# ---------------------------------------------------------- Redshift text / CSV


def write_delimited(rows: Sequence[Row], header: Sequence[str] | None, *, delimiter: str, null_as: str,
                    escape: bool, addquotes: bool) -> bytes:
    """Redshift's default UNLOAD text format.

    With ESCAPE a backslash goes before linefeed, carriage return, the delimiter,
    backslash itself and (with ADDQUOTES) the double quote. NULL is written as
    ``null_as``, never quoted.
    """
    specials = {"\n", "\r", delimiter, "\\"} | ({'"'} if addquotes else set())
    pattern = re.compile("|".join(re.escape(c) for c in sorted(specials)))

    def render(v: str | None) -> str:
        if v is None:
            return null_as
        if escape:
            v = pattern.sub(lambda m: "\\" + m.group(0), v)
        return f'"{v}"' if addquotes else v

    return _lines(rows, header, delimiter, render)


def _lines(rows: Sequence[Row], header: Sequence[str] | None, delimiter: str,
           render: Callable[[str | None], str]) -> bytes:
    """One line per row (header first), fields rendered and joined: what text and CSV share."""
    out = io.StringIO()
    if header is not None:
        out.write(delimiter.join(render(h) for h in header) + "\n")
    for row in rows:
        out.write(delimiter.join(render(v) for v in row))
        out.write("\n")
    return out.getvalue().encode("utf-8")


def write_csv(rows: Sequence[Row], header: Sequence[str] | None, *, delimiter: str, null_as: str,
              quote: str = '"') -> bytes:
    """Redshift's FORMAT CSV: fields holding the delimiter, a quote, CR or LF are quoted; quotes doubled."""
    specials = re.compile("[" + re.escape(delimiter + quote) + "\r\n]")

    def render(v: str | None) -> str:
        if v is None:
            return null_as
        if specials.search(v):
            return quote + v.replace(quote, quote + quote) + quote
        return v

    return _lines(rows, header, delimiter, render)


@dataclass
class Field:
    raw: str  # the text as it stood in the file (quotes and escapes included)
    value: str  # after quote removal and unescaping
    quoted: bool = False


@dataclass
class Record:
    line: int  # 1-based line in the file where the record starts
    fields: list[Field]
    raw: str


class ParseError(ValueError):
    def __init__(self, line: int, reason: str, raw: str = "") -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.raw = raw


def read_delimited(text: str, *, delimiter: str, escape: bool, removequotes: bool) -> Iterator[Record]:
    """Records of Redshift's delimited text format (COPY's default)."""
    if not escape and not removequotes:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for n, line in enumerate(lines, start=1):
            yield Record(n, [Field(f, f) for f in line.split(delimiter)], line)
        return
    yield from _scan_delimited(text, delimiter, escape, removequotes)


def _scan_delimited(text: str, delimiter: str, escape: bool, removequotes: bool) -> Iterator[Record]:
    line = 1
    start_line = 1
    fields: list[Field] = []
    raw: list[str] = []
    value: list[str] = []
    record_raw: list[str] = []
    in_quotes = False
    quoted = False
    i = 0
    n = len(text)

    def close_field() -> None:
        nonlocal raw, value, quoted
        fields.append(Field("".join(raw), "".join(value), quoted))
        raw, value, quoted = [], [], False

    while i < n:
        ch = text[i]
        if escape and ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            raw.append(ch + nxt)
            value.append(nxt)
            record_raw.append(ch + nxt)
            line += nxt == "\n"
            i += 2
            continue
        record_raw.append(ch)
        if removequotes and ch == '"':
            if not in_quotes and not raw:
                in_quotes = quoted = True
                raw.append(ch)
            elif in_quotes:
                in_quotes = False
                raw.append(ch)
            else:
                raw.append(ch)
                value.append(ch)
        elif ch == delimiter and not in_quotes:
            close_field()
        elif ch == "\n" and not in_quotes:
            close_field()
            record_raw.pop()
            yield Record(start_line, fields, "".join(record_raw))
            fields, record_raw = [], []
            line += 1
            start_line = line
        else:
            raw.append(ch)
            value.append(ch)
            line += ch == "\n"
        i += 1
    if in_quotes:
        raise ParseError(start_line, "Unterminated quoted string (REMOVEQUOTES)", "".join(record_raw))
    if raw or fields or record_raw:
        close_field()
        yield Record(start_line, fields, "".join(record_raw))


def read_csv(text: str, *, delimiter: str, quote: str) -> Iterator[Record]:
    """Records of CSV: quoted fields may hold delimiters, newlines and doubled quotes."""
    line = 1
    start_line = 1
    fields: list[Field] = []
    raw: list[str] = []
    value: list[str] = []
    record_raw: list[str] = []
    state = "start"  # start | unquoted | quoted | after_quote
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        record_raw.append(ch)
        if state == "quoted":
            raw.append(ch)
            if ch == quote:
                if i + 1 < n and text[i + 1] == quote:
                    value.append(quote)
                    raw.append(quote)
                    record_raw.append(quote)
                    i += 2
                    continue
                state = "after_quote"
            else:
                value.append(ch)
                line += ch == "\n"
            i += 1
            continue
        if ch == delimiter or ch == "\n":
            fields.append(Field("".join(raw), "".join(value), state == "after_quote"))
            raw, value = [], []
            state = "start"
            if ch == "\n":
                record_raw.pop()
                yield Record(start_line, fields, "".join(record_raw).rstrip("\r"))
                fields, record_raw = [], []
                line += 1
                start_line = line
        elif ch == quote and state == "start":
            state = "quoted"
            raw.append(ch)
        elif ch == "\r" and state == "after_quote" and i + 1 < n and text[i + 1] == "\n":
            pass
        elif state == "after_quote":
            raise ParseError(start_line, "Invalid quote formatting for CSV", "".join(record_raw))
        else:
            state = "unquoted"
            raw.append(ch)
            value.append(ch)
        i += 1
    if state == "quoted":
        raise ParseError(start_line, "Unterminated quoted field in CSV", "".join(record_raw))
    if raw or fields or state != "start":
        fields.append(Field("".join(raw), "".join(value), state == "after_quote"))
        yield Record(start_line, fields, "".join(record_raw))


# --------------------------------------------------------------------- Parquet


def write_parquet(rows: Sequence[Row], columns: Sequence[ColumnType], row_group_size: int | None = None) -> bytes:
    arrays = []
    fields = []
    for idx, col in enumerate(columns):
        texts = [r[idx] for r in rows]
        dtype = arrow_type(col, texts)
        conv = _from_pg_text(dtype)
        arrays.append(pa.array([None if t is None else conv(t) for t in texts], type=dtype))
        fields.append(pa.field(col.name, dtype))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return bytes(sink.getvalue().to_pybytes())


def read_parquet(data: bytes) -> tuple[list[str], list[Row]]:
    """Column names and rows (PostgreSQL text values) of a Parquet file."""
    table = pq.read_table(pa.BufferReader(data))
    names = list(table.column_names)
    columns: list[list[str | None]] = []
    for col in table.columns:
        conv = _to_pg_text(col.type)
        columns.append([None if v is None else conv(v) for v in col.to_pylist()])
    rows = [list(r) for r in zip(*columns)] if columns else []
    return names, rows
