"""WLM queues from a parameter group's ``wlm_json_configuration`` into the WLM system tables.

From the Amazon Redshift Management Guide ("Configuring workload management": the
``wlm_json_configuration`` parameter, its properties ``query_concurrency``,
``memory_percent_to_use``, ``query_group``, ``query_group_wild_card``, ``user_group``,
``user_group_wild_card``, ``max_execution_time``, ``name``, ``auto_wlm``, ``priority``; the last
queue is the default queue and has no groups) and the Database Developer Guide
("STV_WLM_SERVICE_CLASS_CONFIG", "STV_WLM_CLASSIFICATION_CONFIG", "WLM queue assignment rules":
service classes 1-4 are the system's, 5 the superuser queue reached with query group
``superuser``, manual queues from 6, automatic WLM's from 100; a rule's condition reads
``(query group: name)`` or ``(user group: name)``; the default queue's ``(querytype: any)``).

Memory per slot (query_working_mem, MB) is modelled as the node type's memory times the queue's
share divided by its slots; automatic WLM shows -1 for slots and memory (it decides them itself).
A configuration Redshift would refuse (not a JSON list, a queue that is not an object, more than 8
manual queues, slots outside 1-50, memory shares over 100 %) is refused by ModifyClusterParameterGroup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

#: A new cluster's default parameter group: automatic WLM, one queue.
DEFAULT_WLM = '[{"auto_wlm":true}]'
#: Memory per node (MiB) of the node types the sandbox creates; others use the first.
NODE_MEMORY_MB = {"dc2.large": 15 * 1024, "ra3.xlplus": 32 * 1024, "dc2.8xlarge": 244 * 1024,
                  "ra3.4xlarge": 96 * 1024, "ra3.16xlarge": 384 * 1024, "ds2.xlarge": 31 * 1024}
MAX_MANUAL_QUEUES = 8


class WlmConfigError(ValueError):
    """A wlm_json_configuration Redshift would not accept."""


@dataclass
class Queue:
    service_class: int
    name: str
    slots: int
    memory_mb: int
    query_groups: list[str] = field(default_factory=list)
    user_groups: list[str] = field(default_factory=list)
    query_group_wild_card: bool = False
    user_group_wild_card: bool = False
    max_execution_time: int = 0
    auto: bool = False
    priority: str = "normal"


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise WlmConfigError(f"{what} must be a list of names")


def parse(text: str, node_type: str = "dc2.large") -> list[Queue]:
    """The queues a configuration defines, the default queue last; raises WlmConfigError."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise WlmConfigError(f"wlm_json_configuration is not valid JSON: {exc}") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise WlmConfigError("wlm_json_configuration must be a JSON list of queue objects")
    # A trailing {"short_query_queue": ...} entry configures SQA, not a queue.
    queues_json = [i for i in items if not set(i) <= {"short_query_queue"}]
    if not queues_json:
        raise WlmConfigError("wlm_json_configuration defines no queue")
    auto = any(bool(i.get("auto_wlm")) for i in queues_json)
    if not auto and len(queues_json) > MAX_MANUAL_QUEUES:
        raise WlmConfigError(f"at most {MAX_MANUAL_QUEUES} queues can be defined")
    memory = NODE_MEMORY_MB.get(node_type, NODE_MEMORY_MB["dc2.large"])
    total_percent = 0
    queues: list[Queue] = []
    for n, item in enumerate(queues_json):
        last = n == len(queues_json) - 1
        groups = _names(item.get("query_group"), "query_group")
        users = _names(item.get("user_group"), "user_group")
        if auto:
            slots, mem = -1, -1
        else:
            slots = item.get("query_concurrency", 5)
            if not isinstance(slots, int) or not 1 <= slots <= 50:
                raise WlmConfigError("query_concurrency must be an integer from 1 to 50")
            percent = item.get("memory_percent_to_use", 100 // len(queues_json))
            if not isinstance(percent, (int, float)) or percent < 0:
                raise WlmConfigError("memory_percent_to_use must be a number from 0 to 100")
            total_percent += percent
            mem = int(memory * percent / 100 / slots)
        service_class = (100 if auto else 6) + n
        name = str(item.get("name") or ("Default queue" if last and not groups and not users
                                        else f"Queue {n + 1}"))
        queues.append(Queue(service_class, name, slots, mem, groups, users,
                            bool(item.get("query_group_wild_card")), bool(item.get("user_group_wild_card")),
                            int(item.get("max_execution_time") or 0), auto, str(item.get("priority", "normal"))))
    if total_percent > 100:
        raise WlmConfigError("the queues' memory_percent_to_use add up to more than 100")
    if queues[-1].query_groups or queues[-1].user_groups:
        raise WlmConfigError("the last queue is the default queue and cannot have query or user groups")
    return queues


def apply(conn: psycopg.Connection, text: str, node_type: str = "dc2.large") -> list[Queue]:
    """Replace the WLM tables' rows with ``text``'s queues (a reboot's work)."""
    queues = parse(text, node_type)
    with conn.transaction():
        conn.execute("delete from pg_sandbox.wlm_classification")
        conn.execute("delete from pg_sandbox.wlm_service_class")
        system = [(1, "(system user) and (query group: health)"), (2, "(system user) and (query group: metrics)"),
                  (3, "(system user) and (query group: cmstats)"), (4, "(system user)"),
                  (5, "(super user) and (query group: superuser)")]
        for sc, _ in system:
            conn.execute(
                "insert into pg_sandbox.wlm_service_class values (%s, 'FIFO', 1, 1, 'false', 0, 100, 100, 0,"
                " %s, 0, false, false, 'off', 'normal', false)",
                (sc, "Superuser queue" if sc == 5 else f"System queue {sc}"))
        rules = list(system)
        for q in queues:
            conn.execute(
                "insert into pg_sandbox.wlm_service_class values (%s, 'FIFO', %s, %s, 'true', 0, %s, %s, 0, %s,"
                " %s, %s, %s, 'off', %s, false)",
                (q.service_class, q.slots, q.slots, q.memory_mb, q.memory_mb, q.name[:64], q.max_execution_time,
                 q.user_group_wild_card, q.query_group_wild_card, q.priority[:20]))
            rules += [(q.service_class, f"(query group: {g})") for g in q.query_groups]
            rules += [(q.service_class, f"(user group: {g})") for g in q.user_groups]
        rules.append((queues[-1].service_class, "(querytype: any)"))
        for n, (sc, condition) in enumerate(rules, start=1):
            conn.execute("insert into pg_sandbox.wlm_classification values (%s, %s, 0, 'assign', %s)",
                         (n, condition[:128], sc))
    return queues


__all__ = ["DEFAULT_WLM", "Queue", "WlmConfigError", "apply", "parse"]
