"""A small SQL tokenizer that keeps each token's span in the original text.

The dialect rewrites statements by editing spans, so everything it does not touch
(comments, literal text, quoting) reaches PostgreSQL byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<string>[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)?\$.*?\$(?P=tag)?\$)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<word>[A-Za-z_\u0080-\U0010ffff][A-Za-z_0-9$\u0080-\U0010ffff]*)
  | (?P<op>::|<=|>=|<>|!=|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)


class TokenizeError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # word, qident, string, dollar, number, op
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    def is_kw(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    def is_op(self, op: str) -> bool:
        return self.kind == "op" and self.text == op

    @property
    def is_ident(self) -> bool:
        return self.kind in ("word", "qident")

    @property
    def ident_name(self) -> str:
        """The identifier as stored: bare words fold to lower case, quoted ones keep theirs."""
        if self.kind == "qident":
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()


def tokenize(sql: str) -> list[Token]:
    """Significant tokens (no whitespace or comments)."""
    out: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if m is None:  # pragma: no cover - the pattern's last branch matches any char
            raise TokenizeError(f"cannot tokenize at offset {pos}")
        kind = m.lastgroup or "op"
        if kind == "tag":
            kind = "dollar"
        text = m.group(0)
        if kind == "op" and text in ("'", '"'):
            raise TokenizeError("unterminated quoted string or identifier")
        if kind not in ("ws", "comment"):
            out.append(Token(kind, text, m.start(), m.end()))
        pos = m.end()
    return out


def strip_semicolons(tokens: list[Token]) -> list[Token]:
    while tokens and tokens[-1].is_op(";"):
        tokens = tokens[:-1]
    return tokens


def split_top_level(tokens: list[Token], sep: str = ",") -> list[list[Token]]:
    """Split on ``sep`` outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.is_op("("):
            depth += 1
        elif t.is_op(")"):
            depth -= 1
        if depth == 0 and t.is_op(sep):
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def matching_paren(tokens: list[Token], open_index: int) -> int:
    depth = 0
    for i in range(open_index, len(tokens)):
        if tokens[i].is_op("("):
            depth += 1
        elif tokens[i].is_op(")"):
            depth -= 1
            if depth == 0:
                return i
    raise TokenizeError("unbalanced parentheses")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """The one place Python values become SQL literals (standard_conforming_strings on)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if "\x00" in text:
        raise ValueError("NUL byte in SQL literal")
    return "'" + text.replace("'", "''") + "'"


def name_array(names: list[str]) -> str:
    return "array[" + ", ".join(literal(n) for n in names) + "]::name[]" if names else "'{}'::name[]"


def statements(tokens: list[Token]) -> list[list[Token]]:
    """The tokens of each ``;``-separated statement, empty ones left out."""
    out: list[list[Token]] = [[]]
    for t in tokens:
        if t.is_op(";"):
            out.append([])
        else:
            out[-1].append(t)
    return [s for s in out if s]


@dataclass
class Edit:
    start: int
    end: int
    text: str


def apply_edits(sql: str, edits: list[Edit]) -> str:
    out: list[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: e.start):
        out.append(sql[pos:e.start])
        out.append(e.text)
        pos = e.end
    out.append(sql[pos:])
    return "".join(out)


def rewrite_tokens(sql: str, find_edits: Callable[[list[Token]], Iterable[Edit]]) -> str | None:
    """What every SQL text rewriter of the sandbox does once it decided to look: ``sql`` tokenized and
    the edits ``find_edits`` finds in its tokens applied. None when nothing changes, or when the text
    does not tokenize (PostgreSQL then reports it as it sees it)."""
    try:
        tokens = tokenize(sql)
    except TokenizeError:
        return None
    edits = list(find_edits(tokens))
    return apply_edits(sql, edits) if edits else None
