"""Reading Redshift query-protocol parameters: booleans, tag lists, ``Name.Member.N`` lists, times."""

from __future__ import annotations

import re
from datetime import datetime, timezone


def as_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() == "true"


def tag_list(params: dict[str, str]) -> list[dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(r"Tags\.Tag\.(\d+)\.(Key|Value)", key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return [found[i] for i in sorted(found)]


def member_list(params: dict[str, str], name: str, member: str) -> list[str]:
    """A query-protocol list parameter (``Name.Member.N``) in order."""
    found: dict[int, str] = {}
    for key, value in params.items():
        m = re.fullmatch(rf"{name}\.{member}\.(\d+)", key)
        if m:
            found[int(m.group(1))] = value
    return [found[i] for i in sorted(found)]


def parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
