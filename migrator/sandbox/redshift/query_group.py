"""``query_group`` as Redshift knows it ("query_group" in the configuration reference, "SET",
"Assigning queries to queues based on query groups"), and who may change the session's user.

- ``SET [SESSION|LOCAL] query_group TO|= 'label'`` sets the label of the session's following
  queries: STL_QUERY.label carries it ("default" when unset), and WLM routes them to the queue
  whose query group list holds it. ``RESET query_group`` and ``SET query_group TO DEFAULT``
  clear it. Like every SET, it is undone when its transaction rolls back; SET LOCAL ends with the
  transaction. The value is tracked on the proxy's ``SessionInfo`` (the system log reads it there)
  and mirrored in a PostgreSQL placeholder setting so ``SHOW query_group`` answers it.
- ``SET SESSION AUTHORIZATION``, ``RESET SESSION AUTHORIZATION``, ``SET ROLE`` and ``RESET ROLE``
  are a superuser's ("SET SESSION AUTHORIZATION": "Only superusers can ..."). The proxy logs a
  client in as PostgreSQL's superuser and then acts as the client's user, so PostgreSQL itself
  would let anyone change back: a regular user's attempt is refused here.
"""

from __future__ import annotations

from migrator.sandbox.interfaces import SessionInfo
from migrator.sandbox.redshift.sqltokens import Edit, Token, literal, rewrite_tokens, statements

SETTING = "query_group"
MIRROR = f"redshift.{SETTING}"
#: STL_QUERY.label is char(320).
MAX_LABEL = 320


def _raise(sqlstate: str, message: str) -> str:
    return (f"DO $rs$BEGIN RAISE EXCEPTION USING ERRCODE = {literal(sqlstate)}, "
            f"MESSAGE = {literal(message)}; END$rs$")


def _authorization_edit(s: list[Token], session: SessionInfo) -> Edit | None:
    if session.superuser:
        return None
    words = [t.upper for t in s[:4]]
    verb = words[0] if words else ""
    # SET [SESSION|LOCAL] SESSION AUTHORIZATION ..., RESET SESSION AUTHORIZATION, SET [SESSION|LOCAL] ROLE, RESET ROLE
    rest = words[2:] if len(words) > 1 and words[1] in ("SESSION", "LOCAL") and verb == "SET" else words[1:]
    changes_user = verb in ("SET", "RESET") and any(
        r[:2] == ["SESSION", "AUTHORIZATION"] or r[:1] == ["ROLE"] for r in (rest, words[1:]))
    if not changes_user:
        return None
    return Edit(s[0].start, s[-1].end, _raise("42501", "permission denied to set session authorization"))


def _setting_edit(s: list[Token], session: SessionInfo) -> Edit | None:
    first = s[0]
    if first.is_kw("SHOW") and len(s) == 2 and s[1].is_kw("QUERY_GROUP"):
        return Edit(first.start, s[-1].end,
                    f"select coalesce(nullif(current_setting('{MIRROR}', true), ''), 'unset') as {SETTING}")
    if first.is_kw("RESET") and len(s) == 2 and s[1].is_kw("QUERY_GROUP"):
        session.query_group = session.query_group_on_commit = ""
        return Edit(first.start, s[-1].end, f"reset {MIRROR}")
    if not first.is_kw("SET"):
        return None
    local = len(s) > 1 and s[1].is_kw("LOCAL")
    i = 2 if len(s) > 1 and s[1].is_kw("SESSION", "LOCAL") else 1
    if i >= len(s) or not s[i].is_kw("QUERY_GROUP"):
        return None
    if i + 2 >= len(s) or not (s[i + 1].is_kw("TO") or s[i + 1].is_op("=")):
        return Edit(first.start, s[-1].end, _raise("42601", "syntax error in SET query_group"))
    value_tokens = s[i + 2:]
    scope = "local " if local else ""
    if len(value_tokens) == 1 and value_tokens[0].is_kw("DEFAULT"):
        _set(session, "", local)
        return Edit(first.start, s[-1].end, f"set {scope}{MIRROR} to default")
    if len(value_tokens) != 1 or value_tokens[0].kind not in ("string", "word", "qident", "number"):
        return Edit(first.start, s[-1].end, _raise("42601", "query_group takes one label"))
    token = value_tokens[0]
    label = token.text[1:-1].replace("''", "'") if token.kind == "string" else (
        token.ident_name if token.kind in ("word", "qident") else token.text)
    if len(label.encode("utf-8")) > MAX_LABEL:
        return Edit(first.start, s[-1].end, _raise("22023", f"query_group is longer than {MAX_LABEL} bytes"))
    _set(session, label, local)
    return Edit(first.start, s[-1].end, f"set {scope}{MIRROR} to {literal(label)}")


def _set(session: SessionInfo, label: str, local: bool) -> None:
    session.query_group = label
    if not local:
        session.query_group_on_commit = label


def rewrite(sql: str, session: SessionInfo) -> str | None:
    """``sql`` with query_group statements turned into their mirror, or None if unchanged."""
    lowered = sql.lower()
    mentions_group = SETTING in lowered
    mentions_authorization = not session.superuser and ("authorization" in lowered or "role" in lowered)
    if not mentions_group and not mentions_authorization:
        return None

    def edits(tokens: list[Token]) -> list[Edit]:
        found: list[Edit] = []
        for s in statements(tokens):
            edit = _authorization_edit(s, session) if mentions_authorization else None
            if edit is None and mentions_group:
                edit = _setting_edit(s, session)
            if edit is not None:
                found.append(edit)
        return found

    return rewrite_tokens(sql, edits)


__all__ = ["MIRROR", "SETTING", "rewrite"]
