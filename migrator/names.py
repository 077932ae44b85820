"""Table names as one text: the key that maps, events, labels and the store use for a table.

Below every package (the store, results and the warehouse all name tables this way), so it
imports nothing of migrator's.
"""

from __future__ import annotations

import re

_PLAIN_KEY_PART = re.compile(r'^[^."]+$')


def _key_part(name: str) -> str:
    if _PLAIN_KEY_PART.match(name):
        return name
    # Quoted as warehouse.sql.quote_ident quotes an identifier (not imported: names sit below the warehouse).
    if not name or "\x00" in name:
        raise ValueError(f"not a valid identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def table_key(schema: str, table: str) -> str:
    """One text per table for maps, events and labels: ``schema.table``, with a part put in
    double quotes (``"`` doubled) when it holds ``.`` or ``"``. So
    ``"a.b".c`` and ``a."b.c"`` stay two tables, and plain names read as usual."""
    return f"{_key_part(schema)}.{_key_part(table)}"


def split_table_key(key: str) -> tuple[str, str]:
    """The (schema, table) pair back from :func:`table_key`'s text."""
    parts: list[str] = []
    i = 0
    while i <= len(key):
        if key.startswith('"', i):
            j, name = i + 1, ""
            while True:
                k = key.find('"', j)
                if k < 0:
                    raise ValueError(f"not a table key: {key!r}")
                if key.startswith('""', k):
                    name += key[j:k] + '"'
                    j = k + 2
                    continue
                name += key[j:k]
                i = k + 1
                break
        else:
            k = key.find(".", i)
            k = len(key) if k < 0 or len(parts) == 1 else k
            name, i = key[i:k], k
        parts.append(name)
        if i == len(key):
            break
        if key[i] != "." or len(parts) == 2:
            raise ValueError(f"not a table key: {key!r}")
        i += 1
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"not a table key: {key!r}")
    return parts[0], parts[1]


# -- the renamed-away source cluster -------------------------------------------------------------

#: Cutover renames the source `<source>-unencrypted-<yyyymmdd>` (a cluster identifier: at most 63
#: characters, no trailing or doubled hyphen), cutting the source's name so the whole fits.
RENAMED_INFIX = "-unencrypted-"
_CLUSTER_ID_MAX = 63
_STAMP_LENGTH = 8


def renamed_away_prefix(source_id: str) -> str:
    """Everything of the renamed-away name before its date: the IAM policy's pattern is this plus `*`,
    so the name cutover picks and the resource the policy grants cannot disagree."""
    kept = source_id[:_CLUSTER_ID_MAX - len(RENAMED_INFIX) - _STAMP_LENGTH].rstrip("-")
    return kept + RENAMED_INFIX


def renamed_away_name(source_id: str, stamp: str) -> str:
    """`<source>-unencrypted-<yyyymmdd>`; ``stamp`` is the date as yyyymmdd."""
    if len(stamp) != _STAMP_LENGTH or not stamp.isdigit():
        raise ValueError(f"not a yyyymmdd date: {stamp!r}")
    return renamed_away_prefix(source_id) + stamp
