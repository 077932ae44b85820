"""Session settings as Redshift reports and parses them (a text rewrite before PostgreSQL).

The emulation's catalog schema (pg_sandbox) must stay on PostgreSQL's search_path so
``svv_table_info``, ``fnv_hash`` ... resolve unqualified, yet Redshift users never see it:

- ``SHOW search_path`` and ``current_setting('search_path')`` answer Redshift's form
  (``$user, public``: ``$user`` unquoted, pg_sandbox left out) through
  ``pg_sandbox.rs_search_path()``.
- ``SET [SESSION|LOCAL] search_path TO|= ...`` keeps the user's list and appends
  pg_sandbox, so a user-set path still reaches the system views.
- ``SET extra_float_digits`` accepts -15 .. 2 only (Redshift's range; PostgreSQL's is
  -15 .. 3) and fails otherwise with the message Redshift's PostgreSQL 8.0 base gives.

- ``relacl``, ``nspacl``, ``proacl``, ``defaclacl``, ``datacl``, ``lanacl`` in a select list come
  back in Redshift's ACL letters (``pg_sandbox.rs_acl``), as text.

- ``pg_get_viewdef`` and ``pg_views.definition`` keep the schema of every relation in a
  late-binding view's definition.

Statements are rewritten one token span at a time; everything else reaches PostgreSQL
byte for byte. ``set_config('search_path', ...)`` is not rewritten (a known gap).
"""

from __future__ import annotations

from migrator.sandbox.redshift.catalog import SCHEMA
from migrator.sandbox.redshift.sqltokens import Edit, Token, literal, rewrite_tokens, statements

EXTRA_FLOAT_DIGITS_MAX = 2
EXTRA_FLOAT_DIGITS_MIN = -15


def extra_float_digits_error(value: str) -> tuple[str, str] | None:
    """(sqlstate, message) when ``value`` is outside Redshift's range, else None."""
    try:
        n = int(value.strip().strip("'"))
    except ValueError:
        return "22023", f'parameter "extra_float_digits" requires an integer value'
    if not EXTRA_FLOAT_DIGITS_MIN <= n <= EXTRA_FLOAT_DIGITS_MAX:
        return ("22023", f'{n} is outside the valid range for parameter "extra_float_digits" '
                         f"({EXTRA_FLOAT_DIGITS_MIN} .. {EXTRA_FLOAT_DIGITS_MAX})")
    return None


def _raise_sql(sqlstate: str, message: str) -> str:
    body = f"BEGIN RAISE EXCEPTION USING ERRCODE = {literal(sqlstate)}, MESSAGE = {literal(message)}; END"
    tag = "rs"
    while f"${tag}$" in body:
        tag += "x"
    return f"DO ${tag}${body}${tag}$"


def _rewrite_statement(sql: str, s: list[Token]) -> list[Edit]:
    first = s[0]
    if first.is_kw("SHOW") and len(s) == 2 and s[1].is_kw("SEARCH_PATH"):
        return [Edit(first.start, s[-1].end, f"select {SCHEMA}.rs_search_path() as search_path")]
    if first.is_kw("SET"):
        i = 1
        if i < len(s) and s[i].is_kw("SESSION", "LOCAL"):
            i += 1
        if i + 1 < len(s) and (s[i + 1].is_kw("TO") or s[i + 1].is_op("=")):
            value = s[i + 2:]
            if s[i].is_kw("SEARCH_PATH"):
                if not value or (len(value) == 1 and value[0].is_kw("DEFAULT")):
                    return []
                return [Edit(value[-1].end, value[-1].end, f", {SCHEMA}")]
            if s[i].is_kw("EXTRA_FLOAT_DIGITS") and value and not (len(value) == 1 and value[0].is_kw("DEFAULT")):
                text = "".join(t.text for t in value)
                err = extra_float_digits_error(text)
                if err is not None:
                    return [Edit(first.start, s[-1].end, _raise_sql(*err))]
        return []
    edits: list[Edit] = []
    for k in range(len(s) - 3):
        if (s[k].is_kw("CURRENT_SETTING") and s[k + 1].is_op("(") and s[k + 2].kind == "string"
                and s[k + 2].text.lower() == "'search_path'" and s[k + 3].is_op(")")):
            start = s[k - 2].start if k >= 2 and s[k - 1].is_op(".") and s[k - 2].is_kw("PG_CATALOG") else s[k].start
            edits.append(Edit(start, s[k + 3].end, f"{SCHEMA}.rs_search_path()"))
    return edits


ACL_COLUMNS = frozenset({"relacl", "nspacl", "proacl", "defaclacl", "datacl", "lanacl"})
_SELECT_LIST_END = frozenset({"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION", "INTERSECT",
                              "EXCEPT", "INTO", "WINDOW", "OFFSET"})


def _acl_edits(s: list[Token]) -> list[Edit]:
    """ACL columns in select lists as Redshift prints them (pg_sandbox.rs_acl), keeping their names."""
    edits: list[Edit] = []
    depth = 0
    select_depths: list[int] = []
    for k, t in enumerate(s):
        if t.is_op("("):
            depth += 1
            continue
        if t.is_op(")"):
            depth -= 1
            while select_depths and select_depths[-1] > depth:
                select_depths.pop()
            continue
        if t.is_kw("SELECT"):
            select_depths.append(depth)
            continue
        if select_depths and select_depths[-1] == depth and t.is_kw(*_SELECT_LIST_END):
            select_depths.pop()
            continue
        in_list = bool(select_depths) and select_depths[-1] <= depth
        if not (in_list and t.kind in ("word", "qident") and t.ident_name in ACL_COLUMNS):
            continue
        nxt = s[k + 1] if k + 1 < len(s) else None
        if nxt is not None and (nxt.is_op("(") or nxt.is_op(".")):
            continue
        start = k
        while start >= 2 and s[start - 1].is_op(".") and s[start - 2].kind in ("word", "qident"):
            start -= 2
        ref = "".join(x.text for x in s[start:k + 1])
        cast = nxt is not None and nxt.is_op("::")
        if select_depths[-1] != depth or cast:
            # Inside an expression (array_to_string(relacl, ...), relacl::text): the items as text[].
            edits.append(Edit(s[start].start, t.end, f"{SCHEMA}.rs_acl_items({ref})"))
            continue
        aliased = nxt is not None and (nxt.is_kw("AS") or (nxt.kind in ("word", "qident") and not nxt.is_kw(
            *_SELECT_LIST_END)))
        alias = "" if aliased else f" as {t.ident_name}"
        edits.append(Edit(s[start].start, t.end, f"{SCHEMA}.rs_acl({ref}){alias}"))
    return edits


def _viewdef_edits(s: list[Token]) -> list[Edit]:
    """pg_get_viewdef(...) → pg_sandbox.rs_get_viewdef(...): late-binding views stay qualified."""
    edits: list[Edit] = []
    for k, t in enumerate(s):
        qualified = k >= 2 and s[k - 1].is_op(".") and s[k - 2].is_kw("PG_CATALOG")
        start = s[k - 2].start if qualified else t.start
        if t.is_kw("PG_GET_VIEWDEF") and k + 1 < len(s) and s[k + 1].is_op("("):
            edits.append(Edit(start, t.end, f"{SCHEMA}.rs_get_viewdef"))
        elif t.is_kw("PG_VIEWS") and (qualified or (k > 0 and s[k - 1].is_kw("FROM", "JOIN") or
                                                    k > 0 and s[k - 1].is_op(","))):
            nxt = s[k + 1] if k + 1 < len(s) else None
            aliased = nxt is not None and (nxt.is_kw("AS") or (nxt.kind in ("word", "qident") and not nxt.is_kw(
                "WHERE", "JOIN", "LEFT", "RIGHT", "INNER", "FULL", "CROSS", "ON", "GROUP", "ORDER", "LIMIT",
                "UNION", "EXCEPT", "INTERSECT", "NATURAL", "HAVING", "WINDOW", "USING")))
            edits.append(Edit(start, t.end, f"{SCHEMA}.rs_views" + ("" if aliased else " as pg_views")))
    return edits


def rewrite(sql: str) -> str | None:
    """The text PostgreSQL should run instead of ``sql``, or None to run it unchanged."""
    lowered = sql.lower()
    acl = "acl" in lowered and any(c in lowered for c in ACL_COLUMNS)
    viewdef = "pg_get_viewdef" in lowered or "pg_views" in lowered
    if "search_path" not in lowered and "extra_float_digits" not in lowered and not acl and not viewdef:
        return None

    def edits(tokens: list[Token]) -> list[Edit]:
        found: list[Edit] = []
        for s in statements(tokens):
            found.extend(_rewrite_statement(sql, s))
            if acl:
                found.extend(_acl_edits(s))
            if viewdef:
                found.extend(_viewdef_edits(s))
        return found

    return rewrite_tokens(sql, edits)


__all__ = ["EXTRA_FLOAT_DIGITS_MAX", "extra_float_digits_error", "rewrite"]
