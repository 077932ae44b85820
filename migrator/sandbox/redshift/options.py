"""Parsing of Redshift's ``UNLOAD`` and ``COPY ... FROM 's3://...'`` statements.

A small tokenizer (keywords, quoted identifiers, string literals, numbers,
punctuation) feeds two parsers that return plain option records. Option
conflicts are checked here so both commands fail before touching S3 or the
database, with messages modelled on Redshift's.

String literals: ``''`` is a quote; ``\\'`` and ``\\\\`` are unescaped as
Redshift does inside the UNLOAD query text; any other backslash sequence is
kept verbatim (so ``DELIMITER '\\t'`` and ``NULL AS '\\N'`` keep their meaning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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


_COMPRESSIONS = {"gzip": "GZIP", "bzip2": "BZIP2", "zstd": "ZSTD", "lzop": "LZOP"}


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
    seen: set[str] = set()
    while not cur.at_end():
        if _authorization(cur, opts.auth, seen):
            continue
        tok = cur.next()
        word = tok.text if tok.kind == "word" else ""
        if word == "format":
            cur.accept("as")
            fmt = cur.next()
            if fmt.kind != "word" or fmt.text not in ("csv", "parquet", "json"):
                raise syntax_error(f'syntax error at or near "{fmt.text}"')
            word = fmt.text
        if word in ("csv", "parquet", "json"):
            _once(seen, "format")
            opts.format = word.upper()
        elif word == "manifest":
            _once(seen, word)
            opts.manifest = True
            opts.verbose = cur.accept("verbose")
        elif word == "header":
            _once(seen, word)
            opts.header = True
        elif word == "delimiter":
            _once(seen, word)
            cur.accept("as")
            opts.delimiter = decode_delimiter(cur.string())
        elif word == "fixedwidth":
            raise BackendError(FEATURE, "FIXEDWIDTH is not supported by the sandbox UNLOAD")
        elif word == "addquotes":
            _once(seen, word)
            opts.addquotes = True
        elif word == "escape":
            _once(seen, word)
            opts.escape = True
        elif word == "null":
            _once(seen, word)
            cur.accept("as")
            opts.null_as = cur.string()
        elif word in _COMPRESSIONS:
            _once(seen, "compression")
            opts.compression = _COMPRESSIONS[word]
        elif word == "encrypted":
            _once(seen, word)
            opts.encrypted = True
            opts.encrypted_auto = cur.accept("auto")
        elif word == "kms_key_id":
            _once(seen, word)
            opts.kms_key_id = cur.string()
        elif word == "master_symmetric_key":
            raise BackendError(FEATURE, "client-side encryption (MASTER_SYMMETRIC_KEY) is not supported by the sandbox")
        elif word == "allowoverwrite":
            _once(seen, word)
            opts.allowoverwrite = True
        elif word == "cleanpath":
            _once(seen, word)
            opts.cleanpath = True
        elif word == "parallel":
            _once(seen, word)
            opts.parallel = _on_off(cur)
        elif word == "maxfilesize":
            _once(seen, word)
            cur.accept("as")
            opts.maxfilesize = _size(cur)
        elif word == "rowgroupsize":
            _once(seen, word)
            cur.accept("as")
            opts.rowgroupsize = _size(cur)
        elif word == "region":
            _once(seen, word)
            cur.accept("as")
            opts.region = cur.string()
        elif word == "extension":
            _once(seen, word)
            opts.extension = cur.string()
        elif word == "partition":
            if not cur.accept("by"):
                raise cur.fail()
            cur.expect_punct("(")
            opts.partition_by.append(cur.name())
            while cur.accept_punct(","):
                opts.partition_by.append(cur.name())
            cur.expect_punct(")")
            cur.accept("include")
        else:
            cur.i -= 1 if tok.kind != "end" else 0
            raise cur.fail()
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


def validate_unload(o: UnloadOptions) -> None:
    if not o.target.startswith("s3://") or not o.target[5:].split("/")[0]:
        raise BackendError(INVALID_PARAMETER, f"Invalid S3 path '{o.target}' for UNLOAD: it must start with s3://")
    if o.auth.iam_role is None and o.auth.credentials is None:
        raise BackendError(INVALID_PARAMETER, "UNLOAD requires authorization: specify IAM_ROLE or CREDENTIALS")
    if o.allowoverwrite and o.cleanpath:
        raise syntax_error("ALLOWOVERWRITE and CLEANPATH cannot be used together")
    if o.kms_key_id and not o.encrypted:
        raise BackendError(INVALID_PARAMETER, "KMS_KEY_ID can only be used with the ENCRYPTED option")
    if o.format == "PARQUET":
        for name, used in (("DELIMITER", o.delimiter is not None), ("ADDQUOTES", o.addquotes),
                           ("ESCAPE", o.escape), ("NULL AS", o.null_as is not None), ("HEADER", o.header),
                           ("GZIP/BZIP2/ZSTD compression", o.compression is not None)):
            if used:
                raise BackendError(INVALID_PARAMETER, f"{name} is not supported for UNLOAD to PARQUET format")
    elif o.format == "CSV":
        for name, used in (("ADDQUOTES", o.addquotes), ("ESCAPE", o.escape)):
            if used:
                raise BackendError(INVALID_PARAMETER, f"{name} cannot be used with FORMAT CSV in UNLOAD")
    elif o.format == "JSON":
        for name, used in (("DELIMITER", o.delimiter is not None), ("ADDQUOTES", o.addquotes),
                           ("ESCAPE", o.escape), ("NULL AS", o.null_as is not None), ("HEADER", o.header)):
            if used:
                raise BackendError(INVALID_PARAMETER, f"{name} is not supported for UNLOAD to JSON format")
    if o.format != "PARQUET" and o.rowgroupsize is not None:
        raise BackendError(INVALID_PARAMETER, "ROWGROUPSIZE can only be used with FORMAT PARQUET")
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
    opts.used = _copy_options(cur, opts)
    validate_copy(opts)
    return opts


def _copy_options(cur: _Cursor, opts: CopyOptions) -> set[str]:
    seen: set[str] = set()
    while not cur.at_end():
        if _authorization(cur, opts.auth, seen):
            continue
        tok = cur.next()
        word = tok.text if tok.kind == "word" else ""
        if word == "format":
            cur.accept("as")
            fmt = cur.next()
            if fmt.kind != "word" or fmt.text not in ("csv", "parquet", "json", "orc", "avro"):
                raise syntax_error(f'syntax error at or near "{fmt.text}"')
            word = fmt.text
        if word in ("csv", "parquet"):
            _once(seen, "format")
            opts.format = word.upper()
            if word == "csv" and cur.accept("quote"):
                cur.accept("as")
                opts.quote = cur.string()
        elif word in ("json", "orc", "avro"):
            raise BackendError(FEATURE, f"COPY from {word.upper()} is not supported by the sandbox")
        elif word == "manifest":
            _once(seen, word)
            opts.manifest = True
        elif word == "delimiter":
            _once(seen, word)
            cur.accept("as")
            opts.delimiter = decode_delimiter(cur.string())
        elif word in ("escape", "removequotes", "emptyasnull", "blanksasnull", "explicit_ids", "encrypted",
                      "truncatecolumns", "trimblanks", "fillrecord", "ignoreblanklines", "acceptanydate"):
            _once(seen, word)
            if hasattr(opts, word):
                setattr(opts, word, True)
        elif word == "null":
            _once(seen, word)
            cur.accept("as")
            opts.null_as = cur.string()
        elif word in _COMPRESSIONS:
            _once(seen, "compression")
            opts.compression = _COMPRESSIONS[word]
        elif word in ("dateformat", "timeformat"):
            _once(seen, word)
            cur.accept("as")
            setattr(opts, word, cur.string())
        elif word in ("compupdate", "statupdate"):
            _once(seen, word)
            value = "ON"
            if cur.accept("off", "false"):
                value = "OFF"
            elif cur.accept("preset"):
                value = "PRESET"
            else:
                cur.accept("on", "true")
            setattr(opts, word, value)
        elif word == "acceptinvchars":
            _once(seen, word)
            opts.acceptinvchars = "?"
            if cur.accept("as") or cur.peek.kind == "string":
                opts.acceptinvchars = cur.string()
        elif word in ("ignoreheader", "maxerror"):
            _once(seen, word)
            cur.accept("as")
            setattr(opts, word, cur.number())
        elif word == "region":
            _once(seen, word)
            cur.accept("as")
            opts.region = cur.string()
        elif word == "master_symmetric_key":
            _once(seen, word)
            cur.string()
        else:
            cur.i -= 1 if tok.kind != "end" else 0
            raise cur.fail()
    return seen


#: "COPY from columnar data formats": only these parameters (plus FORMAT and the credentials).
COLUMNAR_COPY_PARAMETERS = frozenset({"format", "iam_role", "credentials", "manifest", "explicit_ids",
                                      "statupdate", "acceptinvchars", "fillrecord"})
_PARAMETER_NAMES = {"null": "NULL AS", "compression": "GZIP/BZIP2/ZSTD compression"}


def validate_copy(o: CopyOptions) -> None:
    if o.auth.iam_role is None and o.auth.credentials is None:
        raise BackendError(INVALID_PARAMETER, "COPY requires authorization: specify IAM_ROLE or CREDENTIALS")
    if o.format == "CSV":
        for name, used in (("ESCAPE", o.escape), ("REMOVEQUOTES", o.removequotes)):
            if used:
                raise BackendError(INVALID_PARAMETER, f"CSV is not compatible with {name}")
    if o.format == "PARQUET":
        for word in sorted(o.used - COLUMNAR_COPY_PARAMETERS):
            name = _PARAMETER_NAMES.get(word, word.upper())
            raise BackendError(INVALID_PARAMETER, f"{name} argument is not supported for PARQUET based COPY")
    if o.compression == "LZOP":
        raise BackendError(FEATURE, "LZOP is not supported by the sandbox COPY")
    if o.delimiter is not None and o.null_as is not None and o.delimiter in o.null_as:
        raise BackendError(INVALID_PARAMETER, "NULL AS string cannot contain the delimiter")
