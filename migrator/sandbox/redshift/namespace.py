"""CURRENT_NAMESPACE: Redshift's bare keyword (no parentheses) answering the cluster's namespace
GUID (the tail of DescribeClusters' ClusterNamespaceArn) as a CHAR/VARCHAR string.

PostgreSQL has no such keyword: the proxy rewrites the bare word into a call of a function the
host defines per cluster (``pg_sandbox.current_namespace()``), so the column is still named
``current_namespace``. A rename keeps the function (and so the namespace); a restore gets its own.
"""

from __future__ import annotations

import uuid

from migrator.sandbox.redshift.catalog import SCHEMA
from migrator.sandbox.redshift.sqltokens import Edit, Token, rewrite_tokens

KEYWORD = "current_namespace"
FUNCTION = f"{SCHEMA}.{KEYWORD}"


def define_sql(namespace_id: str) -> str:
    """The statement that makes the database answer ``namespace_id`` (a GUID, checked)."""
    guid = str(uuid.UUID(namespace_id))  # only a well-formed GUID ever reaches the SQL text
    return (f"create or replace function {FUNCTION}() returns varchar language sql immutable "
            f"as $$ select '{guid}'::varchar $$")


def rewrite(sql: str) -> str | None:
    """``sql`` with every bare ``current_namespace`` made a function call, or None when it has none."""
    if KEYWORD not in sql.lower():
        return None
    return rewrite_tokens(sql, _keyword_edits)


def _keyword_edits(tokens: list[Token]) -> list[Edit]:
    edits: list[Edit] = []
    for i, token in enumerate(tokens):
        if token.kind != "word" or token.text.lower() != KEYWORD:
            continue
        after = tokens[i + 1].text if i + 1 < len(tokens) else ""
        before = tokens[i - 1].text if i > 0 else ""
        if after == "(" or before == ".":
            continue  # a function or a qualified name of the user's own: not the keyword
        edits.append(Edit(token.start, token.end, f"{FUNCTION}()"))
    return edits
