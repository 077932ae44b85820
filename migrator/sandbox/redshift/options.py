"""Parsing of Redshift's ``UNLOAD`` and ``COPY ... FROM 's3://...'`` statements.

A small tokenizer (keywords, quoted identifiers, string literals, numbers,
punctuation) feeds two parsers that return plain option records. Both read their
options from one table, `OPTIONS` (each option: its keyword, the kind of value
it takes, the statements that accept it, the field it sets, and what it
conflicts with). Option conflicts are checked here so both commands fail before
touching S3 or the database, with messages modelled on Redshift's.

String literals: ``''`` is a quote; ``\\'`` and ``\\\\`` are unescaped as
Redshift does inside the UNLOAD query text; any other backslash sequence is
kept verbatim (so ``DELIMITER '\\t'`` and ``NULL AS '\\N'`` keep their meaning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Literal

from migrator.sandbox.interfaces import BackendError

SYNTAX = "42601"
FEATURE = "0A000"
INVALID_PARAMETER = "22023"


def syntax_error(message: str) -> BackendError:
    return BackendError(SYNTAX, message)


@dataclass(frozen=True)
class Token:
    kind: str  # word | ident | string | number | punct | end
    text: str  # lower-cased for words; unescaped for ident/string
    pos: int


_TOKEN = re.compile(
    r"""(?P<ws>\s+|--[^\n]*|/\*.*?\*/)
      | (?P<string>'(?:[^'\\]|''|\\.)*')
      | (?P<ident>"(?:[^"]|"")*")
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<punct>[(),.;=*])""",
    re.VERBOSE | re.DOTALL,
)


def _unquote_string(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"''|\\'|\\\\", lambda m: "\\" if m.group(0) == "\\\\" else "'", body)


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m:
            snippet = sql[pos:pos + 10].split()[0] if sql[pos:].strip() else sql[pos:]
            raise syntax_error(f'syntax error at or near "{snippet}"')
        kind = m.lastgroup or "ws"
        text = m.group(0)
        if kind == "string":
            tokens.append(Token("string", _unquote_string(text), pos))
        elif kind == "ident":
            tokens.append(Token("ident", text[1:-1].replace('""', '"'), pos))
        elif kind == "word":
            tokens.append(Token("word", text.lower(), pos))
        elif kind != "ws":
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(sql)))
    return tokens


class _Cursor:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def accept(self, *words: str) -> bool:
        tok = self.peek
        if tok.kind == "word" and tok.text in words:
            self.i += 1
            return True
        return False

    def accept_punct(self, p: str) -> bool:
        if self.peek.kind == "punct" and self.peek.text == p:
            self.i += 1
            return True
        return False

    def fail(self) -> BackendError:
        tok = self.peek
        return syntax_error("syntax error at end of input" if tok.kind == "end"
                            else f'syntax error at or near "{tok.text}"')

    def expect_punct(self, p: str) -> None:
        if not self.accept_punct(p):
            raise self.fail()

    def string(self) -> str:
        if self.peek.kind != "string":
            raise self.fail()
        return self.next().text

    def number(self) -> int:
        if self.peek.kind != "number" or "." in self.peek.text:
            raise self.fail()
        return int(self.next().text)

    def name(self) -> str:
        tok = self.peek
        if tok.kind in ("word", "ident"):
            return self.next().text
        raise self.fail()

    def at_end(self) -> bool:
        while self.accept_punct(";"):
            pass
        return self.peek.kind == "end"


@dataclass
class Authorization:
    iam_role: str | None = None
    credentials: str | None = None

    def role_arns(self) -> list[str]:
        if self.iam_role is not None:
            return [r.strip() for r in self.iam_role.split(",")]
        if self.credentials:
            m = re.search(r"aws_iam_role=([^;]+)", self.credentials)
            if m:
                return [r.strip() for r in m.group(1).split(",")]
        return []


@dataclass
class UnloadOptions:
    query: str
    target: str
    auth: Authorization = field(default_factory=Authorization)
    format: str = "TEXT"  # TEXT | CSV | PARQUET | JSON
    manifest: bool = False
    verbose: bool = False
    header: bool = False
    delimiter: str | None = None
    addquotes: bool = False
    escape: bool = False
    null_as: str | None = None
    compression: str | None = None  # GZIP | BZIP2 | ZSTD
    encrypted: bool = False
    encrypted_auto: bool = False
    kms_key_id: str | None = None
    allowoverwrite: bool = False
    cleanpath: bool = False
    parallel: bool = True
    maxfilesize: int | None = None  # bytes
    rowgroupsize: int | None = None
    region: str | None = None
    extension: str | None = None
    partition_by: list[str] = field(default_factory=list)


@dataclass
class CopyOptions:
    schema: str | None
    table: str
    columns: list[str] | None
    source: str
    auth: Authorization = field(default_factory=Authorization)
    manifest: bool = False
    format: str = "TEXT"  # TEXT | CSV | PARQUET
    quote: str = '"'
    delimiter: str | None = None
    escape: bool = False
    removequotes: bool = False
    null_as: str | None = None
    emptyasnull: bool = False
    blanksasnull: bool = False
    compression: str | None = None
    explicit_ids: bool = False
    dateformat: str | None = None
    timeformat: str | None = None
    compupdate: str | None = None
    statupdate: str | None = None
    acceptinvchars: str | None = None
    ignoreheader: int = 0
    region: str | None = None
    encrypted: bool = False
    maxerror: int = 0
    truncatecolumns: bool = False
    trimblanks: bool = False
    fillrecord: bool = False
    ignoreblanklines: bool = False
    #: Every parameter the statement named (lower case, as parsed), for per-format checks.
    used: set[str] = field(default_factory=set)


def decode_delimiter(text: str) -> str:
    """Redshift accepts escape sequences such as '\\t' as the delimiter."""
    table = {"\\t": "\t", "\\n": "\n", "\\\\": "\\", "\\|": "|"}
    value = table.get(text, text)
    if re.fullmatch(r"\\[0-7]{3}", text):
        value = chr(int(text[1:], 8))
    if len(value) != 1:
        raise BackendError(INVALID_PARAMETER, f"DELIMITER must be a single character, got '{text}'")
    return value


def _once(seen: set[str], name: str) -> None:
    if name in seen:
        raise syntax_error(f"conflicting or redundant options: {name.upper()} specified more than once")
    seen.add(name)


def _authorization(cur: _Cursor, auth: Authorization, seen: set[str]) -> bool:
    if cur.accept("iam_role"):
        _once(seen, "iam_role")
        if cur.accept("default"):
            auth.iam_role = "default"
        else:
            auth.iam_role = cur.string()
        return True
    if cur.accept("credentials"):
        _once(seen, "credentials")
        cur.accept("as")
        auth.credentials = cur.string()
        return True
    if cur.accept("access_key_id", "secret_access_key", "session_token"):
        auth.credentials = (auth.credentials or "") + cur.string() + ";"
        return True
    cur.accept("with")
    return False


def _on_off(cur: _Cursor) -> bool:
    if cur.accept("on", "true"):
        return True
    if cur.accept("off", "false"):
        return False
    return True


def parse_unload(sql: str) -> UnloadOptions:
    cur = _Cursor(tokenize(sql))
    if not cur.accept("unload"):
        raise cur.fail()
    cur.expect_punct("(")
    query = cur.string()
    cur.expect_punct(")")
    if not cur.accept("to"):
        raise cur.fail()
    opts = UnloadOptions(query=query, target=cur.string())
    _parse_options(cur, "UNLOAD", opts, opts.auth)
    validate_unload(opts)
    return opts


def _size(cur: _Cursor) -> int:
    tok = cur.next()
    if tok.kind != "number":
        raise syntax_error(f'syntax error at or near "{tok.text}"')
    value = float(tok.text)
    unit = 1024 * 1024
    if cur.accept("gb"):
        unit = 1024 ** 3
    else:
        cur.accept("mb")
    return int(value * unit)


# ------------------------------------------------------------------ the option table

UNLOAD = "UNLOAD"
COPY = "COPY"
Statement = Literal["UNLOAD", "COPY"]


class Kind(Enum):
    """What follows an option's keyword, and what it sets."""

    FLAG = "flag"  # nothing: sets True
    STRING = "string"  # a string literal
    DELIMITER = "delimiter"  # a string literal naming one character ('\\t', '\\174' ...)
    NUMBER = "number"  # an integer
    SIZE = "size"  # a number with an optional MB (default) or GB
    ON_OFF = "on/off"  # optional ON|TRUE (default) or OFF|FALSE
    UPDATE_MODE = "update mode"  # optional ON|TRUE (default), OFF|FALSE or PRESET: "ON", "OFF", "PRESET"
    OPTIONAL_STRING = "optional string"  # an optional [AS] string literal; '?' without one
    FORMAT = "format"  # a data format name (also after FORMAT [AS]): sets format to its upper-case name
    COMPRESSION = "compression"  # a compression name: sets compression to its upper-case name
    PARTITION = "partition"  # BY (column, ...) [INCLUDE]: appends the columns
    UNSUPPORTED = "unsupported"  # refused by the sandbox (SQLSTATE 0A000) as soon as it is read


@dataclass(frozen=True)
class Option:
    """One option keyword of UNLOAD and/or COPY: how it is read, where it goes and what it conflicts with."""

    word: str
    kind: Kind
    statements: frozenset[str]
    #: The options record's field it sets (None: read and kept only in CopyOptions.used).
    attr: str | None = None
    #: Its name for "specified more than once" and for COPY's parameter checks (default: the word).
    name: str | None = None
    #: An optional AS may come between the keyword and its value.
    as_keyword: bool = False
    #: (word, field): an optional word right after it; (its presence is a flag, or it takes [AS] string).
    follow: tuple[str, str, Kind] | None = None
    #: How errors name it (default: the name in upper case).
    label: str | None = None
    #: Data formats it cannot be used with (error wording per statement and format: FORMAT_CONFLICTS).
    refused_with: frozenset[str] = frozenset()
    #: Data formats it can only be used with.
    only_with: str | None = None
    #: Another option (its name) it cannot be used with, and one it needs.
    excludes: str | None = None
    requires: str | None = None
    #: Allowed in COPY from a columnar format (PARQUET).
    columnar: bool = False
    #: The message of the 0A000 error an UNSUPPORTED option raises.
    unsupported: str | None = None
    #: A data format name that FORMAT [AS] may name (every FORMAT option is one).
    format_name: bool = False

    @property
    def key(self) -> str:
        return self.name or self.word

    @property
    def title(self) -> str:
        return self.label or self.key.upper()


BOTH = frozenset({UNLOAD, COPY})
UNLOAD_ONLY = frozenset({UNLOAD})
COPY_ONLY = frozenset({COPY})
_PARQUET_JSON = frozenset({"PARQUET", "JSON"})
_COLUMNAR_AND_JSON = frozenset({"PARQUET", "CSV", "JSON"})
_NULL_AS = "NULL AS"
_COMPRESSION_LABEL = "GZIP/BZIP2/ZSTD compression"

#: Every UNLOAD and COPY option, except authorization (IAM_ROLE, CREDENTIALS, ACCESS_KEY_ID ...: see
#: _authorization). The order matters where it decides which error a statement meets first: the
#: combination rules and the format rules are checked in this order.
OPTIONS: tuple[Option, ...] = (
    # data formats
    Option("csv", Kind.FORMAT, UNLOAD_ONLY, "format", name="format"),
    Option("parquet", Kind.FORMAT, UNLOAD_ONLY, "format", name="format"),
    Option("json", Kind.FORMAT, UNLOAD_ONLY, "format", name="format"),
    Option("csv", Kind.FORMAT, COPY_ONLY, "format", name="format", follow=("quote", "quote", Kind.STRING)),
    Option("parquet", Kind.FORMAT, COPY_ONLY, "format", name="format"),
    Option("json", Kind.UNSUPPORTED, COPY_ONLY, unsupported="COPY from JSON is not supported by the sandbox",
           format_name=True),
    Option("orc", Kind.UNSUPPORTED, COPY_ONLY, unsupported="COPY from ORC is not supported by the sandbox",
           format_name=True),
    Option("avro", Kind.UNSUPPORTED, COPY_ONLY, unsupported="COPY from AVRO is not supported by the sandbox",
           format_name=True),
    # files
    Option("manifest", Kind.FLAG, UNLOAD_ONLY, "manifest", follow=("verbose", "verbose", Kind.FLAG)),
    Option("manifest", Kind.FLAG, COPY_ONLY, "manifest", columnar=True),
    Option("allowoverwrite", Kind.FLAG, UNLOAD_ONLY, "allowoverwrite", excludes="cleanpath"),
    Option("cleanpath", Kind.FLAG, UNLOAD_ONLY, "cleanpath"),
    Option("parallel", Kind.ON_OFF, UNLOAD_ONLY, "parallel"),
    Option("maxfilesize", Kind.SIZE, UNLOAD_ONLY, "maxfilesize", as_keyword=True),
    Option("extension", Kind.STRING, UNLOAD_ONLY, "extension"),
    Option("partition", Kind.PARTITION, UNLOAD_ONLY, "partition_by"),
    Option("region", Kind.STRING, BOTH, "region", as_keyword=True),
    # encryption
    Option("encrypted", Kind.FLAG, UNLOAD_ONLY, "encrypted", follow=("auto", "encrypted_auto", Kind.FLAG)),
    Option("encrypted", Kind.FLAG, COPY_ONLY, "encrypted"),
    Option("kms_key_id", Kind.STRING, UNLOAD_ONLY, "kms_key_id", requires="encrypted"),
    Option("master_symmetric_key", Kind.UNSUPPORTED, UNLOAD_ONLY,
           unsupported="client-side encryption (MASTER_SYMMETRIC_KEY) is not supported by the sandbox"),
    Option("master_symmetric_key", Kind.STRING, COPY_ONLY),
    # text layout (UNLOAD's format rules in this order: DELIMITER, ADDQUOTES, ESCAPE, NULL AS, HEADER,
    # compression, then ROWGROUPSIZE)
    Option("delimiter", Kind.DELIMITER, UNLOAD_ONLY, "delimiter", as_keyword=True, refused_with=_PARQUET_JSON),
    Option("delimiter", Kind.DELIMITER, COPY_ONLY, "delimiter", as_keyword=True),
    Option("fixedwidth", Kind.UNSUPPORTED, UNLOAD_ONLY, unsupported="FIXEDWIDTH is not supported by the sandbox UNLOAD"),
    Option("addquotes", Kind.FLAG, UNLOAD_ONLY, "addquotes", refused_with=_COLUMNAR_AND_JSON),
    Option("escape", Kind.FLAG, UNLOAD_ONLY, "escape", refused_with=_COLUMNAR_AND_JSON),
    Option("escape", Kind.FLAG, COPY_ONLY, "escape", refused_with=frozenset({"CSV"})),
    Option("removequotes", Kind.FLAG, COPY_ONLY, "removequotes", refused_with=frozenset({"CSV"})),
    Option("null", Kind.STRING, UNLOAD_ONLY, "null_as", as_keyword=True, label=_NULL_AS, refused_with=_PARQUET_JSON),
    Option("null", Kind.STRING, COPY_ONLY, "null_as", as_keyword=True, label=_NULL_AS),
    Option("header", Kind.FLAG, UNLOAD_ONLY, "header", refused_with=_PARQUET_JSON),
    *(Option(word, Kind.COMPRESSION, UNLOAD_ONLY, "compression", name="compression", label=_COMPRESSION_LABEL,
             refused_with=frozenset({"PARQUET"})) for word in ("gzip", "bzip2", "zstd", "lzop")),
    *(Option(word, Kind.COMPRESSION, COPY_ONLY, "compression", name="compression", label=_COMPRESSION_LABEL)
      for word in ("gzip", "bzip2", "zstd", "lzop")),
    Option("rowgroupsize", Kind.SIZE, UNLOAD_ONLY, "rowgroupsize", as_keyword=True, only_with="PARQUET"),
    # COPY's loading of values
    Option("emptyasnull", Kind.FLAG, COPY_ONLY, "emptyasnull"),
    Option("blanksasnull", Kind.FLAG, COPY_ONLY, "blanksasnull"),
    Option("explicit_ids", Kind.FLAG, COPY_ONLY, "explicit_ids", columnar=True),
    Option("truncatecolumns", Kind.FLAG, COPY_ONLY, "truncatecolumns"),
    Option("trimblanks", Kind.FLAG, COPY_ONLY, "trimblanks"),
    Option("fillrecord", Kind.FLAG, COPY_ONLY, "fillrecord", columnar=True),
    Option("ignoreblanklines", Kind.FLAG, COPY_ONLY, "ignoreblanklines"),
    Option("acceptanydate", Kind.FLAG, COPY_ONLY),
    Option("dateformat", Kind.STRING, COPY_ONLY, "dateformat", as_keyword=True),
    Option("timeformat", Kind.STRING, COPY_ONLY, "timeformat", as_keyword=True),
    Option("compupdate", Kind.UPDATE_MODE, COPY_ONLY, "compupdate"),
    Option("statupdate", Kind.UPDATE_MODE, COPY_ONLY, "statupdate", columnar=True),
    Option("acceptinvchars", Kind.OPTIONAL_STRING, COPY_ONLY, "acceptinvchars", columnar=True),
    Option("ignoreheader", Kind.NUMBER, COPY_ONLY, "ignoreheader", as_keyword=True),
    Option("maxerror", Kind.NUMBER, COPY_ONLY, "maxerror", as_keyword=True),
)


def _by_word(statement: str) -> dict[str, Option]:
    found: dict[str, Option] = {}
    for option in OPTIONS:
        if statement in option.statements:
            if option.word in found:
                raise AssertionError(f"{statement} option {option.word} is in OPTIONS twice")
            found[option.word] = option
    return found


_OPTIONS_BY_WORD = {statement: _by_word(statement) for statement in (UNLOAD, COPY)}
#: The data format names FORMAT [AS] may name, per statement.
_FORMAT_NAMES = {statement: frozenset(w for w, o in options.items() if o.kind is Kind.FORMAT or o.format_name)
                 for statement, options in _OPTIONS_BY_WORD.items()}
#: An option refused with a data format: the error, per statement and format.
FORMAT_CONFLICTS = {
    (UNLOAD, "PARQUET"): "{option} is not supported for UNLOAD to PARQUET format",
    (UNLOAD, "JSON"): "{option} is not supported for UNLOAD to JSON format",
    (UNLOAD, "CSV"): "{option} cannot be used with FORMAT CSV in UNLOAD",
    (COPY, "CSV"): "CSV is not compatible with {option}",
}


def _parse_options(cur: _Cursor, statement: Statement, opts: UnloadOptions | CopyOptions,
                   auth: Authorization) -> set[str]:
    """Read the options up to the end of the statement into ``opts``; returns the names of those given."""
    options = _OPTIONS_BY_WORD[statement]
    seen: set[str] = set()
    while not cur.at_end():
        if _authorization(cur, auth, seen):
            continue
        tok = cur.next()
        word = tok.text if tok.kind == "word" else ""
        if word == "format":
            cur.accept("as")
            fmt = cur.next()
            if fmt.kind != "word" or fmt.text not in _FORMAT_NAMES[statement]:
                raise syntax_error(f'syntax error at or near "{fmt.text}"')
            word = fmt.text
        option = options.get(word)
        if option is None:
            cur.i -= 1 if tok.kind != "end" else 0
            raise cur.fail()
        _read_option(cur, option, opts, seen)
    return seen


def _read_option(cur: _Cursor, option: Option, opts: UnloadOptions | CopyOptions, seen: set[str]) -> None:
    kind = option.kind
    if kind is Kind.UNSUPPORTED:
        raise BackendError(FEATURE, option.unsupported or f"{option.title} is not supported by the sandbox")
    if kind is Kind.PARTITION:  # may be given more than once
        if not cur.accept("by"):
            raise cur.fail()
        cur.expect_punct("(")
        columns = [cur.name()]
        while cur.accept_punct(","):
            columns.append(cur.name())
        cur.expect_punct(")")
        cur.accept("include")
        getattr(opts, option.attr or "partition_by").extend(columns)
        return
    _once(seen, option.key)
    if option.as_keyword:
        cur.accept("as")
    value = _read_value(cur, kind, option.word)
    if option.attr is not None:
        setattr(opts, option.attr, value)
    if option.follow is not None:
        word, attr, follow_kind = option.follow
        if follow_kind is Kind.FLAG:
            setattr(opts, attr, cur.accept(word))
        elif cur.accept(word):
            cur.accept("as")
            setattr(opts, attr, _read_value(cur, follow_kind, word))


def _read_value(cur: _Cursor, kind: Kind, word: str) -> object:
    if kind is Kind.FLAG:
        return True
    if kind is Kind.STRING:
        return cur.string()
    if kind is Kind.DELIMITER:
        return decode_delimiter(cur.string())
    if kind is Kind.NUMBER:
        return cur.number()
    if kind is Kind.SIZE:
        return _size(cur)
    if kind is Kind.ON_OFF:
        return _on_off(cur)
    if kind is Kind.UPDATE_MODE:
        if cur.accept("off", "false"):
            return "OFF"
        if cur.accept("preset"):
            return "PRESET"
        cur.accept("on", "true")
        return "ON"
    if kind is Kind.OPTIONAL_STRING:
        return cur.string() if cur.accept("as") or cur.peek.kind == "string" else "?"
    if kind in (Kind.FORMAT, Kind.COMPRESSION):
        return word.upper()
    raise AssertionError(f"option kind {kind} has no value")


def _is_given(opts: object, attr: str) -> bool:
    """The option's field differs from its default (so a record built without parsing is checked too)."""
    default = next(f for f in fields(opts)  # type: ignore[arg-type]
                   if f.name == attr).default
    return bool(getattr(opts, attr) != default)


def _check_combinations(statement: str, opts: object) -> None:
    """Options that exclude or need another one, in table order (an option counts when its value is
    truthy: an empty KMS_KEY_ID needs no ENCRYPTED)."""
    names = {o.key: o for o in OPTIONS if statement in o.statements}
    for option in OPTIONS:
        if statement not in option.statements or option.attr is None or not getattr(opts, option.attr):
            continue
        if option.excludes is not None and getattr(opts, names[option.excludes].attr or ""):
            raise syntax_error(f"{option.title} and {names[option.excludes].title} cannot be used together")
        if option.requires is not None and not getattr(opts, names[option.requires].attr or ""):
            raise BackendError(INVALID_PARAMETER, f"{option.title} can only be used with the "
                                                  f"{names[option.requires].title} option")


def _check_format(statement: str, opts: UnloadOptions | CopyOptions) -> None:
    """Options refused with the statement's data format, or needing another, in table order."""
    message = FORMAT_CONFLICTS.get((statement, opts.format))
    for option in OPTIONS:
        if statement not in option.statements or option.attr is None or not _is_given(opts, option.attr):
            continue
        if message is not None and opts.format in option.refused_with:
            raise BackendError(INVALID_PARAMETER, message.format(option=option.title))
        if option.only_with is not None and opts.format != option.only_with:
            raise BackendError(INVALID_PARAMETER, f"{option.title} can only be used with FORMAT {option.only_with}")


def _label(name: str) -> str:
    """How errors name a COPY parameter."""
    for option in OPTIONS:
        if COPY in option.statements and option.key == name:
            return option.title
    return name.upper()


def validate_unload(o: UnloadOptions) -> None:
    if not o.target.startswith("s3://") or not o.target[5:].split("/")[0]:
        raise BackendError(INVALID_PARAMETER, f"Invalid S3 path '{o.target}' for UNLOAD: it must start with s3://")
    if o.auth.iam_role is None and o.auth.credentials is None:
        raise BackendError(INVALID_PARAMETER, "UNLOAD requires authorization: specify IAM_ROLE or CREDENTIALS")
    _check_combinations("UNLOAD", o)
    _check_format("UNLOAD", o)
    if o.partition_by:
        raise BackendError(FEATURE, "PARTITION BY is not supported by the sandbox UNLOAD")
    if o.maxfilesize is not None and not (5 * 1024 ** 2 <= o.maxfilesize <= int(6.2 * 1024 ** 3)):
        raise BackendError(INVALID_PARAMETER, "MAXFILESIZE must be between 5 MB and 6.2 GB")
    if o.delimiter is not None and o.null_as is not None and o.delimiter in o.null_as:
        raise BackendError(INVALID_PARAMETER, "NULL AS string cannot contain the delimiter")


def is_s3_copy(sql: str) -> bool:
    """Cheap pre-check so classify() rejects most statements without tokenizing."""
    return bool(re.match(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*copy\b", sql, re.IGNORECASE | re.DOTALL))


def is_unload(sql: str) -> bool:
    return bool(re.match(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*unload\b", sql, re.IGNORECASE | re.DOTALL))


def parse_copy(sql: str) -> CopyOptions | None:
    """None when the COPY is PostgreSQL's own (STDIN/STDOUT, local files, TO): the proxy passes it through."""
    try:
        tokens = tokenize(sql)
    except BackendError:
        return None
    cur = _Cursor(tokens)
    if not cur.accept("copy"):
        return None
    first = cur.name() if cur.peek.kind in ("word", "ident") else None
    if first is None:
        return None
    schema: str | None = None
    table = first
    if cur.accept_punct("."):
        schema, table = first, cur.name()
    columns: list[str] | None = None
    if cur.accept_punct("("):
        columns = [cur.name()]
        while cur.accept_punct(","):
            columns.append(cur.name())
        cur.expect_punct(")")
    if not cur.accept("from"):
        return None
    if cur.peek.kind != "string" or not cur.peek.text.lower().startswith("s3://"):
        return None
    opts = CopyOptions(schema=schema, table=table, columns=columns, source=cur.string())
    opts.used = _parse_options(cur, "COPY", opts, opts.auth)
    validate_copy(opts)
    return opts


#: "COPY from columnar data formats": only these parameters (plus FORMAT and the credentials).
COLUMNAR_COPY_PARAMETERS = frozenset({"format", "iam_role", "credentials"}
                                     | {o.key for o in OPTIONS if COPY in o.statements and o.columnar})


def validate_copy(o: CopyOptions) -> None:
    if o.auth.iam_role is None and o.auth.credentials is None:
        raise BackendError(INVALID_PARAMETER, "COPY requires authorization: specify IAM_ROLE or CREDENTIALS")
    _check_format("COPY", o)
    if o.format == "PARQUET":
        for word in sorted(o.used - COLUMNAR_COPY_PARAMETERS):
            raise BackendError(INVALID_PARAMETER, f"{_label(word)} argument is not supported for PARQUET based COPY")
    if o.compression == "LZOP":
        raise BackendError(FEATURE, "LZOP is not supported by the sandbox COPY")
    if o.delimiter is not None and o.null_as is not None and o.delimiter in o.null_as:
        raise BackendError(INVALID_PARAMETER, "NULL AS string cannot contain the delimiter")
