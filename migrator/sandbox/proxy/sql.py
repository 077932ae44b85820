"""Statement text as the proxy reads it: the first keyword, top-level statement splitting, write tags, and SQL that raises a given error."""

from __future__ import annotations

import re

from migrator.sandbox.redshift.sqltokens import literal as quote_literal


WRITE_TAGS = frozenset({"INSERT", "UPDATE", "DELETE", "COPY", "CREATE", "DROP", "ALTER", "TRUNCATE"})


def raise_statement(sqlstate: str, message: str, detail: str | None = None) -> str:
    """SQL that fails with exactly this error, to put the backend transaction in the failed state."""
    code = sqlstate if re.fullmatch(r"[0-9A-Z]{5}", sqlstate) and not sqlstate.startswith("00") else "XX000"
    options = f"ERRCODE = {quote_literal(code)}, MESSAGE = {quote_literal(message)}"
    if detail:
        options += f", DETAIL = {quote_literal(detail)}"
    body = f"BEGIN RAISE EXCEPTION USING {options}; END"
    tag = "proxy"
    while f"${tag}$" in body:
        tag += "x"
    return f"DO ${tag}${body}${tag}$"


_LEADING_NOISE = re.compile(r"(\s+|--[^\n]*(\n|$)|/\*.*?\*/|\()*", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def first_keyword(sql: str) -> str:
    """The statement's first word, lower-case ('select', 'copy', 'unload', ...)."""
    rest = sql[_LEADING_NOISE.match(sql).end():]  # type: ignore[union-attr]
    match = _WORD.match(rest)
    return match.group(0).lower() if match else ""


def split_statements(sql: str) -> list[str]:
    """Split a query string at top-level semicolons (quotes, dollar quotes and comments respected)."""
    parts: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch == "'" or ch == '"':
            backslashes = ch == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            i += 1
            while i < n:
                if backslashes and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == ch:
                    if i + 1 < n and sql[i + 1] == ch:
                        i += 2
                        continue
                    break
                i += 1
        elif ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif ch == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        elif ch == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                end = sql.find(tag.group(0), tag.end())
                i = n if end < 0 else end + len(tag.group(0))
                continue
        elif ch == ";":
            parts.append(sql[start:i])
            start = i + 1
        i += 1
    parts.append(sql[start:])
    return [p.strip() for p in parts if p.strip()]


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def is_write_tag(tag: str) -> bool:
    return tag.split(" ", 1)[0].upper() in WRITE_TAGS
