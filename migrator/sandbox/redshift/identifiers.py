"""Identifier case as Redshift folds it ("Names and identifiers", "enable_case_sensitive_identifier").

On Redshift, ASCII letters in quoted identifiers fold to lower case too, unless the session
(or the cluster's parameter group) has ``enable_case_sensitive_identifier`` on: then quoted
identifiers keep their case. PostgreSQL always keeps the case of a quoted identifier, so the
proxy lowers the ASCII letters of every quoted identifier in a statement before PostgreSQL
sees it, unless the session turned the setting on.

The setting itself is tracked per session here (the proxy's ``SessionInfo``) and mirrored in
a PostgreSQL placeholder setting, so ``SHOW enable_case_sensitive_identifier`` answers it.
"""

from __future__ import annotations

import re

from migrator.sandbox.interfaces import SessionInfo
from migrator.sandbox.redshift.sqltokens import Edit, Token, rewrite_tokens, statements

SETTING = "enable_case_sensitive_identifier"
#: Where PostgreSQL keeps the value (a placeholder setting needs a dotted name).
MIRROR = f"redshift.{SETTING}"

_QUOTED_UPPER = re.compile(r'"[^"]*[A-Z]')
_TRUE = {"true", "on", "1", "yes", "t"}
_FALSE = {"false", "off", "0", "no", "f"}


def _lower_ascii(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _value(tokens: list[Token]) -> bool | None:
    text = "".join(t.text for t in tokens).strip("'").lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _setting_edit(s: list[Token], session: SessionInfo) -> Edit | None:
    """SET/RESET/SHOW of the setting: record it on the session, let PostgreSQL keep the mirror."""
    first = s[0]
    if first.is_kw("SHOW") and len(s) == 2 and s[1].is_kw(SETTING.upper()):
        # A placeholder PostgreSQL has seen once reads '' after its SET is rolled back.
        return Edit(first.start, s[-1].end,
                    f"select coalesce(nullif(current_setting('{MIRROR}', true), ''), 'false') as {SETTING}")
    if first.is_kw("RESET") and len(s) == 2 and s[1].is_kw(SETTING.upper()):
        session.case_sensitive = session.case_sensitive_on_commit = False
        return Edit(first.start, s[-1].end, f"reset {MIRROR}")
    if not first.is_kw("SET"):
        return None
    local = len(s) > 1 and s[1].is_kw("LOCAL")
    i = 2 if len(s) > 1 and s[1].is_kw("SESSION", "LOCAL") else 1
    if i >= len(s) or not s[i].is_kw(SETTING.upper()):
        return None
    if i + 1 >= len(s) or not (s[i + 1].is_kw("TO") or s[i + 1].is_op("=")):
        return None
    value_tokens = s[i + 2:]
    scope = "local " if local else ""
    if len(value_tokens) == 1 and value_tokens[0].is_kw("DEFAULT"):
        _set(session, False, local)
        return Edit(first.start, s[-1].end, f"set {scope}{MIRROR} to default")
    value = _value(value_tokens)
    if value is None:
        shown = "".join(t.text for t in value_tokens).replace("'", "''")
        return Edit(first.start, s[-1].end,
                    "DO $rs$BEGIN RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = "
                    f"'parameter \"{SETTING}\" requires a Boolean value (got {shown})'; END$rs$")
    _set(session, value, local)
    return Edit(first.start, s[-1].end, f"set {scope}{MIRROR} to '{'true' if value else 'false'}'")


def _set(session: SessionInfo, value: bool, local: bool) -> None:
    session.case_sensitive = value
    if not local:
        session.case_sensitive_on_commit = value


def rewrite(sql: str, session: SessionInfo) -> str | None:
    """``sql`` with quoted identifiers folded as the session's setting says, or None if unchanged."""
    lowered = sql.lower()
    mentions_setting = SETTING in lowered
    if not mentions_setting and (session.case_sensitive or not _QUOTED_UPPER.search(sql)):
        return None

    def edits(tokens: list[Token]) -> list[Edit]:
        found: list[Edit] = []
        for s in statements(tokens):
            if mentions_setting:
                edit = _setting_edit(s, session)
                if edit is not None:
                    found.append(edit)
                    continue
            if not session.case_sensitive:
                found += _folds(s)
        return found

    return rewrite_tokens(sql, edits)


def _folds(tokens: list[Token]) -> list[Edit]:
    return [Edit(t.start, t.end, folded) for t in tokens
            if t.kind == "qident" and (folded := _lower_ascii(t.text)) != t.text]


def fold_query(sql: str, session: SessionInfo) -> str:
    """A query the cluster runs inside another statement (UNLOAD's), its quoted names folded
    as the session's setting says."""
    if session.case_sensitive or not _QUOTED_UPPER.search(sql):
        return sql
    folded = rewrite_tokens(sql, _folds)  # None also when malformed: PostgreSQL reports that itself
    return sql if folded is None else folded


__all__ = ["MIRROR", "SETTING", "fold_query", "rewrite"]
