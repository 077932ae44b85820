"""Parsing of Redshift CREATE TABLE into a PostgreSQL statement plus the attributes
PostgreSQL has no place for (distribution, sort keys, encodings, backup, identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrator.sandbox.interfaces import BackendError
from migrator.sandbox.redshift.sqltokens import (
    Edit,
    Token,
    apply_edits,
    matching_paren,
    split_top_level,
)

ENCODINGS = {
    "RAW", "AZ64", "BYTEDICT", "DELTA", "DELTA32K", "LZO", "MOSTLY8", "MOSTLY16", "MOSTLY32",
    "RUNLENGTH", "TEXT255", "TEXT32K", "ZSTD", "AUTO",
}
_TYPE_STOP = {
    "ENCODE", "DISTKEY", "SORTKEY", "IDENTITY", "GENERATED", "DEFAULT", "NOT", "NULL", "PRIMARY",
    "UNIQUE", "REFERENCES", "CONSTRAINT", "COLLATE", "CHECK",
}
# "Character types": widths in bytes, VARCHAR at most 65535, CHAR at most 4096.
MAX_VARCHAR = 65535
MAX_CHAR = 4096


def syntax_error(message: str) -> BackendError:
    return BackendError("42601", message)


@dataclass
class TableAttrs:
    diststyle: str | None = None
    distkey: str | None = None
    sortkind: str | None = None  # COMPOUND, INTERLEAVED, AUTO
    sortkeys: list[str] = field(default_factory=list)
    encode_auto: bool | None = None
    backup: bool = True
    encodings: dict[str, str] = field(default_factory=dict)
    identity: dict[str, tuple[int, int]] = field(default_factory=dict)
    like_parent: str | None = None  # regclass text of a LIKE parent


def _type_args(tokens: list[Token]) -> list[str]:
    return [t.text for t in tokens if not t.is_op("(") and not t.is_op(")") and not t.is_op(",")]


def map_type(tokens: list[Token]) -> str | None:
    """PostgreSQL spelling for a Redshift type, or None to keep the text as written."""
    words: list[str] = []
    i = 0
    while i < len(tokens) and tokens[i].kind == "word":
        words.append(tokens[i].upper)
        i += 1
    args = _type_args(tokens[i:])
    name = " ".join(words)
    if name in ("VARCHAR", "CHARACTER VARYING", "CHAR VARYING", "NVARCHAR", "TEXT", "NCHAR VARYING"):
        if name == "TEXT" and args:
            return None
        if not args:
            return "varchar(256)"
        if args[0].upper() == "MAX":
            return f"varchar({MAX_VARCHAR})"
        if args[0].isdigit() and int(args[0]) > MAX_VARCHAR:
            raise BackendError("22023", f"length for type varchar cannot exceed {MAX_VARCHAR}")
        if name in ("NVARCHAR", "NCHAR VARYING") and args[0].isdigit():
            return f"varchar({args[0]})"  # PostgreSQL has no NVARCHAR; Redshift makes it VARCHAR
        return None
    if name in ("CHAR", "CHARACTER", "NCHAR", "BPCHAR"):
        if args and args[0].upper() == "MAX":
            return f"char({MAX_CHAR})"
        if not args:
            return "char(256)" if name == "BPCHAR" else "char(1)"
        if args[0].isdigit() and int(args[0]) > MAX_CHAR:
            raise BackendError("22023", f"length for type char cannot exceed {MAX_CHAR}")
        return None
    if name == "FLOAT" and not args:
        return "float8"
    if name in ("DECIMAL", "NUMERIC") and not args:
        return "numeric(18,0)"
    if name in ("VARBYTE", "VARBINARY", "BINARY VARYING"):
        if args and (not args[0].isdigit() or not 1 <= int(args[0]) <= 1_024_000):
            raise BackendError("22023", "length for type varbyte must be between 1 and 1024000")
        return "pg_sandbox.varbyte"
    if name == "SUPER" and not args:
        return "pg_sandbox.super"
    if name in ("GEOMETRY", "GEOGRAPHY") and not args:
        return f"pg_sandbox.{name.lower()}"
    return None


@dataclass
class ColumnParse:
    name: str
    edits: list[Edit]
    encoding: str | None = None
    distkey: bool = False
    sortkey: bool = False
    identity: tuple[int, int] | None = None


def _int_token(t: Token) -> int:
    try:
        return int(t.text)
    except ValueError:
        raise syntax_error(f'syntax error at or near "{t.text}"') from None


def parse_column(el: list[Token]) -> ColumnParse:
    name_tok = el[0]
    if not name_tok.is_ident:
        raise syntax_error(f'syntax error at or near "{name_tok.text}"')
    col = ColumnParse(name=name_tok.ident_name, edits=[])
    # The type: words and their parenthesised arguments, up to the first constraint keyword.
    i = 1
    while i < len(el) and not (el[i].kind == "word" and el[i].upper in _TYPE_STOP):
        if el[i].is_op("("):
            i = matching_paren(el, i) + 1
        else:
            i += 1
    type_tokens = el[1:i]
    if type_tokens:
        mapped = map_type(type_tokens)
        if mapped is not None:
            col.edits.append(Edit(type_tokens[0].start, type_tokens[-1].end, mapped))
    while i < len(el):
        t = el[i]
        if t.is_kw("ENCODE") and i + 1 < len(el):
            enc = el[i + 1].text.upper()
            if enc not in ENCODINGS or enc == "AUTO":
                raise syntax_error(f'invalid encoding type "{el[i + 1].text}" specified for column "{col.name}"')
            col.encoding = enc.lower()
            col.edits.append(Edit(t.start, el[i + 1].end, ""))
            i += 2
        elif t.is_kw("DISTKEY"):
            col.distkey = True
            col.edits.append(Edit(t.start, t.end, ""))
            i += 1
        elif t.is_kw("SORTKEY"):
            col.sortkey = True
            col.edits.append(Edit(t.start, t.end, ""))
            i += 1
        elif t.is_kw("IDENTITY") and i + 1 < len(el) and el[i + 1].is_op("("):
            close = matching_paren(el, i + 1)
            col.identity = _identity_args(el[i + 2:close])
            # Plain IDENTITY refuses explicit values outside COPY EXPLICIT_IDS ("CREATE TABLE"):
            # PostgreSQL's ALWAYS identity refuses them in INSERT and UPDATE too.
            col.edits.append(Edit(t.start, el[close].end, _identity_sql(col.identity, always=True)))
            i = close + 1
        elif t.is_kw("GENERATED") and _is_default_identity(el, i):
            # Redshift spells it GENERATED BY DEFAULT AS IDENTITY(seed, step).
            paren = i + 5
            close = matching_paren(el, paren)
            col.identity = _identity_args(el[paren + 1:close])
            col.edits.append(Edit(t.start, el[close].end, _identity_sql(col.identity, always=False)))
            i = close + 1
        elif t.is_kw("COLLATE") and i + 1 < len(el) and el[i + 1].is_kw("CASE_SENSITIVE", "CASE_INSENSITIVE"):
            col.edits.append(Edit(t.start, el[i + 1].end, ""))
            i += 2
        elif t.is_op("("):
            i = matching_paren(el, i) + 1
        else:
            i += 1
    return col


def _is_default_identity(el: list[Token], i: int) -> bool:
    return (
        i + 5 < len(el) and el[i + 1].is_kw("BY") and el[i + 2].is_kw("DEFAULT")
        and el[i + 3].is_kw("AS") and el[i + 4].is_kw("IDENTITY") and el[i + 5].is_op("(")
    )


def _identity_args(args: list[Token]) -> tuple[int, int]:
    parts = split_top_level(args)
    if len(parts) != 2 or any(len(p) not in (1, 2) for p in parts):
        raise syntax_error("IDENTITY takes (seed, step)")

    def num(p: list[Token]) -> int:
        if len(p) == 2 and p[0].is_op("-"):
            return -_int_token(p[1])
        return _int_token(p[0])

    seed, step = num(parts[0]), num(parts[1])
    if step == 0:
        raise BackendError("22023", "IDENTITY step cannot be 0")
    return seed, step


def _identity_sql(identity: tuple[int, int], *, always: bool) -> str:
    seed, step = identity
    kind = "always" if always else "by default"
    return f"generated {kind} as identity (start with {seed} increment by {step})"


def ident_list(tokens: list[Token]) -> list[str]:
    names: list[str] = []
    for part in split_top_level(tokens):
        if len(part) != 1 or not part[0].is_ident:
            raise syntax_error("expected a column name list")
        names.append(part[0].ident_name)
    return names


def parse_table_attrs(tokens: list[Token], attrs: TableAttrs) -> list[Edit]:
    """Consume Redshift table attributes; returns edits removing them. Unknown tokens stay."""
    edits: list[Edit] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if t.is_kw("DISTSTYLE") and nxt is not None:
            style = nxt.text.upper()
            if style not in ("AUTO", "EVEN", "KEY", "ALL"):
                raise syntax_error(f'syntax error at or near "{nxt.text}"')
            attrs.diststyle = style
            edits.append(Edit(t.start, nxt.end, ""))
            i += 2
        elif t.is_kw("DISTKEY") and nxt is not None and nxt.is_op("("):
            close = matching_paren(tokens, i + 1)
            names = ident_list(tokens[i + 2:close])
            if len(names) != 1:
                raise syntax_error("DISTKEY takes exactly one column")
            if attrs.distkey is not None and attrs.distkey != names[0]:
                raise syntax_error("multiple DISTKEY specifications are not allowed")
            attrs.distkey = names[0]
            edits.append(Edit(t.start, tokens[close].end, ""))
            i = close + 1
        elif t.is_kw("COMPOUND", "INTERLEAVED", "SORTKEY"):
            kind = "COMPOUND"
            start = t
            if t.upper != "SORTKEY":
                kind = t.upper
                i += 1
                if i >= len(tokens) or not tokens[i].is_kw("SORTKEY"):
                    raise syntax_error(f'syntax error at or near "{t.text}"')
            if i + 1 < len(tokens) and tokens[i + 1].is_kw("AUTO"):
                attrs.sortkind, attrs.sortkeys = "AUTO", []
                edits.append(Edit(start.start, tokens[i + 1].end, ""))
                i += 2
                continue
            if i + 1 >= len(tokens) or not tokens[i + 1].is_op("("):
                raise syntax_error("SORTKEY needs a column list")
            close = matching_paren(tokens, i + 1)
            if attrs.sortkeys:
                raise syntax_error("multiple SORTKEY specifications are not allowed")
            attrs.sortkind, attrs.sortkeys = kind, ident_list(tokens[i + 2:close])
            if kind == "INTERLEAVED" and len(attrs.sortkeys) > 8:
                raise syntax_error("an interleaved sort key can have at most 8 columns")
            edits.append(Edit(start.start, tokens[close].end, ""))
            i = close + 1
        elif t.is_kw("ENCODE") and nxt is not None and nxt.is_kw("AUTO"):
            attrs.encode_auto = True
            edits.append(Edit(t.start, nxt.end, ""))
            i += 2
        elif t.is_kw("BACKUP") and nxt is not None and nxt.is_kw("YES", "NO"):
            attrs.backup = nxt.upper == "YES"
            edits.append(Edit(t.start, nxt.end, ""))
            i += 2
        else:
            i += 1
    return edits


def qualified_name(tokens: list[Token], i: int) -> tuple[list[Token], int]:
    """Identifier parts of ``a.b.c`` starting at ``i``; returns (parts, next index)."""
    if i >= len(tokens) or not tokens[i].is_ident:
        raise syntax_error("expected a name")
    parts = [tokens[i]]
    i += 1
    while i + 1 < len(tokens) and tokens[i].is_op(".") and tokens[i + 1].is_ident:
        parts.append(tokens[i + 1])
        i += 2
    return parts, i


def regclass_text(parts: list[Token]) -> str:
    """Text for ``'...'::regclass`` naming exactly the relation written."""
    return ".".join('"' + p.ident_name.replace('"', '""') + '"' for p in parts)


@dataclass
class CreateTablePlan:
    pg_sql: str
    table: str  # regclass text
    attrs: TableAttrs
    if_not_exists: bool = False


def plan_create_table(sql: str, tokens: list[Token]) -> CreateTablePlan:
    i = 1
    while i < len(tokens) and tokens[i].is_kw("TEMP", "TEMPORARY", "LOCAL"):
        i += 1
    if not tokens[i].is_kw("TABLE"):
        raise syntax_error("expected TABLE")
    i += 1
    if_not_exists = False
    if i + 2 < len(tokens) and tokens[i].is_kw("IF") and tokens[i + 1].is_kw("NOT") and tokens[i + 2].is_kw("EXISTS"):
        i += 3
        if_not_exists = True
    parts, i = qualified_name(tokens, i)
    attrs = TableAttrs()
    edits: list[Edit] = []
    col_names: list[str] = []
    if i < len(tokens) and tokens[i].is_op("("):
        close = matching_paren(tokens, i)
        for el in split_top_level(tokens[i + 1:close]):
            if not el:
                continue
            head = el[0]
            if head.is_kw("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK"):
                continue
            if head.is_kw("LIKE"):
                parent, _ = qualified_name(el, 1)
                attrs.like_parent = regclass_text(parent)
                continue
            col = parse_column(el)
            col_names.append(col.name)
            edits.extend(col.edits)
            if col.encoding:
                attrs.encodings[col.name] = col.encoding
            if col.identity:
                attrs.identity[col.name] = col.identity
            if col.distkey:
                if attrs.distkey is not None:
                    raise syntax_error("multiple DISTKEY specifications are not allowed")
                attrs.distkey = col.name
            if col.sortkey:
                if attrs.sortkeys:
                    raise syntax_error("multiple SORTKEY specifications are not allowed")
                attrs.sortkind, attrs.sortkeys = "COMPOUND", [col.name]
        i = close + 1
    # Table attributes run up to AS (CTAS) or the end.
    end = i
    while end < len(tokens) and not tokens[end].is_kw("AS"):
        end += 1
    edits.extend(parse_table_attrs(tokens[i:end], attrs))
    _check_dist(attrs)
    # Explicit column encodings turn ENCODE AUTO off (AWS: a table is ENCODE AUTO only when
    # no column names an encoding).
    attrs.encode_auto = not attrs.encodings
    return CreateTablePlan(apply_edits(sql, edits), regclass_text(parts), attrs, if_not_exists)


def _check_dist(attrs: TableAttrs) -> None:
    if attrs.distkey is not None:
        if attrs.diststyle not in (None, "KEY"):
            raise syntax_error(f"DISTSTYLE {attrs.diststyle} cannot be used with DISTKEY")
        attrs.diststyle = "KEY"
    elif attrs.diststyle == "KEY":
        raise syntax_error("DISTSTYLE KEY requires a DISTKEY column")
