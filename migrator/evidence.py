"""Evidence for an auditor, read from the checkpoint store (never written).

One document per migration: what the tool is and how it was configured, the encryption
state as AWS described it at each point the migration recorded it, every table with its rows
and checksums on both sides, every approval (who, when), each phase's timing, and the
retries and faults it survived. Rendered as JSON, Markdown or one self-contained HTML file
(no external assets; readable when printed).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from migrator import __version__
from migrator.store import MigrationView, Store
from migrator.store.views import EventView, RemoteActionView, TableView

Format = Literal["md", "html", "json"]
FORMATS: tuple[Format, ...] = ("md", "html", "json")
#: Triggers that mean the migration had to recover from something.
_RECOVERY_TRIGGERS = ("retry_scheduled", "warning", "fail", "lost", "requeue", "reconcile_load", "takeover",
                      "lease_taken_over", "source_changed", "recopy", "answer_lost")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _encryption_records(value: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every mapping inside a recorded answer that states a cluster's encryption."""
    if isinstance(value, Mapping):
        if "encrypted" in value or "Encrypted" in value:
            yield path, value
        for key, inner in value.items():
            yield from _encryption_records(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _encryption_records(inner, f"{path}[{i}]")


def _encryption(actions: list[RemoteActionView]) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for action in actions:
        for where, record in _encryption_records(action.response or {}):
            seen.append({
                "at": _iso(action.finished_at or action.started_at), "recorded_by": action.action_key,
                "field": where or None,
                "cluster_id": record.get("cluster_id") or record.get("ClusterIdentifier"),
                "encrypted": bool(record.get("encrypted", record.get("Encrypted"))),
                "kms_key": record.get("kms_key_arn") or record.get("kms_key_id") or record.get("KmsKeyId"),
                "status": record.get("status") or record.get("ClusterStatus"),
            })
    return seen


def _table(task: TableView) -> dict[str, Any]:
    both = task.source_checksum is not None and task.target_checksum is not None
    return {
        "schema": task.schema_name, "table": task.table_name, "state": task.state, "attempts": task.attempt,
        "source_rows": task.source_rows, "rows_unloaded": task.rows_unloaded, "rows_loaded": task.rows_loaded,
        "source_checksum": task.source_checksum, "target_checksum": task.target_checksum,
        "checksums_match": (task.source_checksum == task.target_checksum) if both else None,
        "staged_format": task.unload_format, "staged_bytes": task.bytes_unloaded,
        # A table only leaves its unload step once every staged file was checked against the staging key.
        "staging_verified": task.manifest_url is not None,
        "last_error": task.last_error,
    }


def _phases(events: list[EventView], migration: MigrationView) -> list[dict[str, Any]]:
    moves = [e for e in events if e.subject == "migration" and e.to_state and e.from_state != e.to_state]
    phases: list[dict[str, Any]] = []
    for i, move in enumerate(moves):
        left = moves[i + 1].at if i + 1 < len(moves) else migration.finished_at
        phases.append({"phase": move.to_state, "entered": _iso(move.at), "left": _iso(left),
                       "seconds": round((left - move.at).total_seconds(), 3) if left else None,
                       "by": move.trigger})
    return phases


def _approvals(events: list[EventView]) -> list[dict[str, Any]]:
    return [{"gate": e.trigger.split(":", 1)[1], "at": e.detail.get("at") or _iso(e.at),
             "user": e.detail.get("user"), "host": e.detail.get("host"), "phase": e.detail.get("phase"),
             "via": e.detail.get("via")}
            for e in events if e.trigger.startswith("approve:")]


def _recoveries(events: list[EventView]) -> dict[str, Any]:
    found = [e for e in events if e.trigger in _RECOVERY_TRIGGERS]
    return {"counts": dict(sorted(Counter(e.trigger for e in found).items())),
            "events": [{"at": _iso(e.at), "subject": e.subject, "trigger": e.trigger,
                        "reason": e.detail.get("reason") or e.detail.get("error") or e.detail.get("message")}
                       for e in found]}


def _moment(events: list[EventView], predicate: Any) -> datetime | None:
    return next((e.at for e in events if predicate(e)), None)


def _window(events: list[EventView]) -> dict[str, Any]:
    """The write downtime (writes frozen -> the production name answering from the new cluster), the
    copy it was weighed against, and each catch-up pass of the cutover window."""
    # Writers stop when the operator approves the window (unload-copy) or before the freeze is
    # observed (snapshot-restore, whose freeze comes first): whichever happened first.
    approved = _moment(events, lambda e: e.subject == "migration" and e.trigger == "approved"
                       and e.detail.get("gate") == "cutover")
    observed = _moment(events, lambda e: e.trigger in ("write_freeze_observed", "write_freeze_assumed"))
    start = min((t for t in (approved, observed) if t is not None), default=None)
    answered = _moment(events, lambda e: e.trigger == "validation" and e.detail.get("what") == "reached the new cluster")
    copy_started = _moment(events, lambda e: e.subject == "migration" and e.trigger == "rehearsed")
    copy_done = _moment(events, lambda e: e.subject == "migration" and e.trigger == "validated")
    downtime = (answered - start).total_seconds() if start and answered and answered >= start else None
    copy = (copy_done - copy_started).total_seconds() if copy_started and copy_done else None
    passes = [{"at": _iso(e.at), **e.detail} for e in events if e.trigger in ("catch_up_pass", "catch_up_quiet")]
    return {"freeze_started": _iso(start), "production_name_answered": _iso(answered),
            "write_downtime_seconds": round(downtime, 3) if downtime is not None else None,
            "copy_seconds_while_writable": round(copy, 3) if copy is not None else None,
            "downtime_to_copy_ratio": round(downtime / copy, 4) if downtime is not None and copy else None,
            "left_for_window": [t for e in events if e.trigger == "left_for_window" for t in e.detail.get("tables", [])],
            "catch_up_passes": passes}


def _stray_writes(store: Store, migration: MigrationView) -> dict[str, Any]:
    """Writes the old source took after the cutover renamed it away, each check of the watch, and
    each acceptance (who, when)."""
    from migrator.strategies import stray_record

    record = stray_record.read(store, migration)
    through = record.accepted_through
    tables = [{"table": name, **summary,
               "accepted": through is not None and stray_record.parse_time(summary["last"]) <= through}
              for name, summary in sorted(record.tables.items())]
    checks = [{"checked_at": stray_record.iso(c.checked_at), "cluster": c.cluster, "since": stray_record.iso(c.since),
               "until": stray_record.iso(c.until), "ok": c.ok, "error": c.error,
               "tables_found": sorted(c.tables)} for c in record.checks]
    return {"renamed_at": _iso(record.renamed_at), "tables": tables, "checks": checks,
            "acceptances": record.acceptances}


def collect(store: Store, migration: MigrationView) -> dict[str, Any]:
    events = store.events(migration)
    window = _window(events)
    stray = _stray_writes(store, migration)
    tables = [_table(t) for t in store.list_tables(migration)]
    fingerprint = migration.config_fingerprint
    validations = [{"at": _iso(e.at), **e.detail} for e in events if e.trigger == "validation"]
    mismatched = [t for t in tables if t["checksums_match"] is False]
    return {
        "report": {"generated_at": datetime.now(timezone.utc).isoformat(), "tool": "migrator",
                   "tool_version": __version__},
        "stray_writes": stray,
        "migration": {"name": migration.name, "strategy": migration.strategy, "phase": migration.phase,
                      "started": _iso(migration.created_at),
                      # Done once the production name answers from the new cluster; decommission is cleanup.
                      "finished": _iso(migration.finished_at) or window["production_name_answered"],
                      "config_fingerprint": fingerprint, "config_hash": migration.config_hash},
        "intended_encryption": fingerprint.get("target"),
        "staging": fingerprint.get("staging"),
        "encryption_observed": _encryption(store.list_actions(migration)),
        "summary": {"tables": len(tables), "checksums_matching": sum(1 for t in tables if t["checksums_match"]),
                    "checksums_mismatched": len(mismatched),
                    "rows_source": sum(t["source_rows"] or 0 for t in tables),
                    "rows_loaded": sum(t["rows_loaded"] or 0 for t in tables),
                    "stray_write_tables": len(stray["tables"]),
                    "stray_write_tables_not_accepted": sum(1 for t in stray["tables"] if not t["accepted"])},
        "tables": tables,
        "approvals": _approvals(events),
        "phases": _phases(events, migration),
        "validations": validations,
        "recoveries": _recoveries(events),
        "cutover_window": window,
    }


# -- rendering -----------------------------------------------------------------------------------

def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _sections(doc: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Every table of the report as (title, header, rows), shared by Markdown and HTML."""
    m = doc["migration"]
    overview = [["migration", m["name"]], ["strategy", m["strategy"]], ["phase", m["phase"]],
                ["started", m["started"]], ["finished", m["finished"]], ["config hash", m["config_hash"]],
                ["tool", f"{doc['report']['tool']} {doc['report']['tool_version']}"],
                ["generated", doc["report"]["generated_at"]],
                ["intended encryption", doc["intended_encryption"]], ["staging", doc["staging"]],
                *[[k.replace("_", " "), v] for k, v in doc["summary"].items()],
                *[[k.replace("_", " "), v] for k, v in doc.get("cutover_window", {}).items()
                  if k != "catch_up_passes"]]
    enc_cols = ["at", "recorded_by", "cluster_id", "encrypted", "kms_key", "status"]
    table_cols = ["schema", "table", "state", "attempts", "source_rows", "rows_loaded", "source_checksum",
                  "target_checksum", "checksums_match", "staged_format", "staged_bytes", "staging_verified"]
    appr_cols = ["gate", "at", "user", "host", "phase", "via"]
    phase_cols = ["phase", "entered", "left", "seconds", "by"]
    rec_cols = ["at", "subject", "trigger", "reason"]
    pass_cols = ["at", "pass", "changed_tables", "new_tables", "altered_tables", "dropped_tables",
                 "written_during_check", "rows", "seconds"]
    stray = doc.get("stray_writes") or {"tables": [], "checks": [], "acceptances": []}
    stray_cols = ["table", "writes", "rows_inserted", "rows_deleted", "first", "last", "users", "hosts", "accepted"]
    check_cols = ["checked_at", "cluster", "since", "until", "ok", "tables_found", "error"]
    accept_cols = ["at", "user", "host", "via", "accepted_through", "tables", "holes"]
    client_cols = ["user", "host", "application", "first_seen", "last_seen", "sessions", "statements", "writes",
                   "moved", "still_on_old"]

    def rows(items: list[Mapping[str, Any]], cols: list[str]) -> list[list[str]]:
        return [[_cell(item.get(c)) for c in cols] for item in items]

    return [
        ("Stray writes to the old source after the cutover", stray_cols, rows(stray["tables"], stray_cols)),
        ("Overview", ["item", "value"], [[k, _cell(v)] for k, v in overview]),
        ("Stray-write watch: checks", check_cols, rows(stray["checks"], check_cols)),
        ("Stray-write watch: acceptances", accept_cols, rows(stray["acceptances"], accept_cols)),
        ("Encryption as AWS described it", enc_cols, rows(doc["encryption_observed"], enc_cols)),
        ("Tables", table_cols, rows(doc["tables"], table_cols)),
        ("Approvals", appr_cols, rows(doc["approvals"], appr_cols)),
        ("Phases", phase_cols, rows(doc["phases"], phase_cols)),
        ("Retries and faults survived", rec_cols, rows(doc["recoveries"]["events"], rec_cols)),
        ("Cutover window: catch-up passes", pass_cols,
         rows(doc.get("cutover_window", {}).get("catch_up_passes", []), pass_cols)),
        *([(f"Clients ({doc['clients'].get('window') or doc['clients'].get('note') or ''})", client_cols,
            rows(doc["clients"].get("clients") or [], client_cols))] if doc.get("clients") else []),
    ]


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Mapping[str, Any]) -> str:
    lines = [f"# Migration evidence: {_md_escape(doc['migration']['name'])}", ""]
    for title, header, rows in _sections(doc):
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["(none recorded)", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#111}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%;font-size:.85em}
th,td{border:1px solid #bbb;padding:.25em .4em;text-align:left;vertical-align:top;word-break:break-word}
th{background:#eee}.none{color:#666;font-style:italic}
@media print{body{margin:0}h2{page-break-after:avoid}tr{page-break-inside:avoid}th{background:#ddd}}
"""


def to_html(doc: Mapping[str, Any]) -> str:
    e = html.escape
    name = e(doc["migration"]["name"])
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Migration evidence: {name}</title><style>{_CSS}</style></head><body>",
             f"<h1>Migration evidence: {name}</h1>"]
    for title, header, rows in _sections(doc):
        parts.append(f"<h2>{e(title)}</h2>")
        if not rows:
            parts.append('<p class="none">none recorded</p>')
            continue
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render(doc: Mapping[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True, default=str)
    if fmt == "html":
        return to_html(doc)
    return to_markdown(doc)
