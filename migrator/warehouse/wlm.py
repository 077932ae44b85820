"""Which WLM queue a query group reaches on a cluster (the STV_WLM_* tables), for preflight:
the rules are read in order and the first whose ``(query group: ...)`` condition matches wins
(Database Developer Guide, "WLM queue assignment rules"; wildcards ``*`` and ``?`` when the
queue has query_group_wild_card on)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from migrator.warehouse.sql import query

_QUERY_GROUP_RULE = re.compile(r"^\(query group: (.+)\)$")


@dataclass(frozen=True)
class WlmQueue:
    service_class: int
    name: str
    slots: int  # -1: automatic WLM decides
    memory_mb: int  # per slot; -1: automatic WLM decides

    def describe(self) -> str:
        if self.slots < 0:
            return f'queue "{self.name}" (service class {self.service_class}, automatic WLM: slots and memory managed)'
        return (f'queue "{self.name}" (service class {self.service_class}, {self.slots} slots, '
                f"{self.memory_mb} MB per slot)")


@dataclass(frozen=True)
class WlmRoute:
    readable: bool  # False: the login cannot see the WLM tables (not a superuser)
    queue: WlmQueue | None


def route_of(session: Any, group: str) -> WlmRoute:
    """The queue ``group`` is routed to, if any rule names it."""
    classes = {int(r[0]): (WlmQueue(int(r[0]), str(r[1]), int(r[2]), int(r[3])), bool(r[4]))
               for r in session.run(query("wlm_service_classes"), kind="catalog")}
    if not classes:
        return WlmRoute(False, None)
    for _, condition, service_class in session.run(query("wlm_classification"), kind="catalog"):
        m = _QUERY_GROUP_RULE.match(str(condition))
        found = classes.get(int(service_class))
        if m is None or found is None or int(service_class) <= 5:
            continue  # system and superuser queues are not the migration's
        queue, wild = found
        pattern = m.group(1)
        if pattern == group or (wild and fnmatch.fnmatchcase(group, pattern)):
            return WlmRoute(True, queue)
    return WlmRoute(True, None)
