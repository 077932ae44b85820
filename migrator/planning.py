"""`migrator plan`: what a migration will do, read-only.

Nothing here sends a mutating AWS call or writes the store: it describes the source, reads
the inventory through a read-only session, and lays out the route, the requests the run will
send (secrets left out), the new cluster beside the source, the tables, the staging volume,
an estimated duration with its assumption stated, the write-freeze window and the warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.config import LoadedConfig, Settings
from migrator.routes import Route, suggest
from migrator.results import PlanResult

#: Used only when no rehearsal ran: UNLOAD plus COPY through S3, per node, a conservative figure
#: from the rate the sandbox rehearsal and published RA3 loads land well above. Stated in the plan.
ASSUMED_COPY_MB_PER_SECOND_PER_NODE = 25.0
#: In-place encryption copies every block once; Redshift publishes no rate, so the plan says so.
ASSUMED_MODIFY_MB_PER_SECOND_PER_NODE = 20.0
QUIET_LOOKBACK_DAYS = 3
_SECRET_PARAMS = ("MasterUserPassword",)
_MIRRORED = ("NodeType", "NumberOfNodes", "ClusterSubnetGroupName", "AvailabilityZone",
             "PreferredMaintenanceWindow", "PubliclyAccessible", "EnhancedVpcRouting", "MultiAZ",
             "AutomatedSnapshotRetentionPeriod", "ManualSnapshotRetentionPeriod", "MaintenanceTrackName",
             "SnapshotScheduleIdentifier", "DefaultIamRoleArn", "ElasticIp")


def suggest_route(settings: Settings, source: Mapping[str, Any]) -> tuple[str, str]:
    """The route that would meet the target with the least disruption, and why (each route says
    when it is the one to suggest)."""
    found, why = suggest(settings.target.encryption, str(source.get("NodeType") or ""))
    return found.name, why


def _request(api: str, params: Mapping[str, Any], when: str) -> dict[str, Any]:
    shown = {k: ("<from the configured password source>" if k in _SECRET_PARAMS else v) for k, v in params.items()}
    return {"api": api, "when": when, "params": shown}


def _key_params(settings: Settings) -> dict[str, Any]:
    target = settings.target
    if target.encryption == "hsm":
        return {"HsmClientCertificateIdentifier": target.hsm_client_certificate,
                "HsmConfigurationIdentifier": target.hsm_configuration}
    params: dict[str, Any] = {"Encrypted": target.encryption != "none"}
    if target.encryption == "kms" and target.kms_key_id:
        params["KmsKeyId"] = target.kms_key_id
    return params


def _new_cluster(settings: Settings, source: Mapping[str, Any], placement: Mapping[str, Any]) -> dict[str, Any]:
    # Exactly what the strategy's own request builder would send (the caller passes its result).
    params: dict[str, Any] = {"ClusterIdentifier": settings.target.cluster_id, **placement}
    params.update(_key_params(settings))
    return params


def requests_for(settings: Settings, source: Mapping[str, Any], placement: Mapping[str, Any],
                 old_name: str) -> list[dict[str, Any]]:
    route = settings.route
    source_id, target_id = settings.source.cluster_id, settings.target.cluster_id
    copy_on = bool(source.get("ClusterSnapshotCopyStatus"))
    out: list[dict[str, Any]] = []
    if copy_on:
        out.append(_request("DisableSnapshotCopy", {"ClusterIdentifier": source_id},
                            "preflight (handle_snapshot_copy); re-enabled afterwards with the recorded settings"))
    if route.provisioning == "in-place":
        out.append(_request("ModifyCluster", {"ClusterIdentifier": source_id, **_key_params(settings)},
                            "after the modify gate (`run --approve-modify`)"))
    else:
        new = _new_cluster(settings, source, placement)
        if route.provisioning == "restore-snapshot":
            out.append(_request("CreateClusterSnapshot", {"ClusterIdentifier": source_id,
                                                          "SnapshotIdentifier": f"<{source_id}-migrator-…>"},
                                "once writes are frozen"))
            out.append(_request("RestoreFromClusterSnapshot", {**new, "SnapshotIdentifier": "<that snapshot>"},
                                "after the snapshot is available"))
        else:
            out.append(_request("CreateCluster", {**new, "MasterUsername": source.get("MasterUsername"),
                                                  "MasterUserPassword": "", "DBName": source.get("DBName")},
                                "provisioning, before any data moves"))
        out += [_request("ModifyCluster", {"ClusterIdentifier": source_id, "NewClusterIdentifier": old_name},
                         "cutover, after approval"),
                _request("ModifyCluster", {"ClusterIdentifier": target_id, "NewClusterIdentifier": source_id},
                         "cutover, right after the first rename"),
                _request("RebootCluster", {"ClusterIdentifier": source_id}, "cutover, so the new name answers"),
                _request("DeleteCluster", {"ClusterIdentifier": old_name,
                                           "FinalClusterSnapshotIdentifier": f"{old_name}-final"},
                         "decommission, only after `migrator decommission --confirm`")]
    if copy_on:
        out.append(_request("EnableSnapshotCopy", {"ClusterIdentifier": source_id,
                                                   "DestinationRegion": source["ClusterSnapshotCopyStatus"].get(
                                                       "DestinationRegion")}, "after the migration"))
    return out


def side_by_side(settings: Settings, source: Mapping[str, Any], placement: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not settings.route.new_cluster:
        new = {**{k: source.get(k) for k in _MIRRORED}, **_key_params(settings)}
    else:
        new = _new_cluster(settings, source, placement)
    rows = []
    for key in ("ClusterIdentifier", *_MIRRORED, "Encrypted", "KmsKeyId", "HsmConfigurationIdentifier"):
        before = source.get(key)
        after = new.get(key, source.get("ClusterIdentifier") if key == "ClusterIdentifier" else None)
        if before is None and after is None:
            continue
        rows.append({"attribute": key, "source": before, "new": after})
    return rows


def quiet_window_warning(hourly_peaks: list[float] | None, threshold: float, quiet_seconds: float) -> str | None:
    """Is there one hour in the last days at or under the freeze threshold (CloudWatch WriteIOPS maxima)?"""
    if not hourly_peaks:
        return (f"no WriteIOPS data for the source in the last {QUIET_LOOKBACK_DAYS} days: cannot tell when a quiet "
                "window comes; check CloudWatch before scheduling the write freeze")
    if any(peak <= threshold for peak in hourly_peaks):
        return None
    return (f"no hour in the last {QUIET_LOOKBACK_DAYS} days stayed at or under {threshold:g} WriteIOPS: the write "
            f"freeze ({quiet_seconds:g} s quiet) needs ETL stopped")


def estimate(settings: Settings, nodes: int, total_mb: int, rehearsal: Mapping[str, Any] | None,
             total_rows: int) -> tuple[float | None, str]:
    if not settings.route.new_cluster:
        rate = ASSUMED_MODIFY_MB_PER_SECOND_PER_NODE * max(nodes, 1)
        return total_mb / rate, (f"assumed {ASSUMED_MODIFY_MB_PER_SECOND_PER_NODE:g} MB/s per node for the "
                                 "in-place copy (AWS publishes no rate; DescribeResize gives the real one)")
    if rehearsal and rehearsal.get("rows_per_second"):
        rate = float(rehearsal["rows_per_second"])
        basis = f"rehearsal on {rehearsal.get('table')}: {rate:,.0f} rows/s"
        if rehearsal.get("sampled"):  # a big table's sample, not all of it (unload_copy.rehearse)
            basis += (f" (sampled {int(rehearsal.get('rows') or 0):,} of {int(rehearsal.get('table_rows') or 0):,} "
                      f"rows: one {rehearsal['sampled']} of {rehearsal.get('parts')}, scaled by size)")
        return total_rows / rate, basis
    rate = ASSUMED_COPY_MB_PER_SECOND_PER_NODE * max(nodes, 1)
    return total_mb / rate, (f"no rehearsal yet: assumed {ASSUMED_COPY_MB_PER_SECOND_PER_NODE:g} MB/s per node "
                             "through UNLOAD and COPY (the rehearsal phase measures the real rate)")


def freeze_window(route: Route, seconds: float | None) -> str:
    span = f"about {_human(seconds)}" if seconds is not None else "unknown"
    return route.freeze_window.format(span=span)


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def build(config: LoadedConfig, source: Mapping[str, Any], *, placement: Mapping[str, Any],
          tables: list[dict[str, Any]] | None, table_error: str | None, rehearsal: Mapping[str, Any] | None,
          hourly_write_peaks: list[float] | None, old_name: str,
          rename_blockers: list[str], hourly: Mapping[str, Mapping[Any, float]] | None = None,
          metrics_error: str | None = None, clients: list[dict[str, Any]] | None = None,
          clients_note: str | None = None, now: Any = None) -> PlanResult:
    settings = config.settings
    suggested, why = suggest_route(settings, source)
    nodes = int(source.get("NumberOfNodes") or 1)
    listed = tables or []
    total_mb = sum(int(t.get("size_mb") or 0) for t in listed) or int(source.get("TotalStorageCapacityInMegaBytes")
                                                                       or 0)
    total_rows = sum(int(t.get("rows") or 0) for t in listed)
    seconds, basis = estimate(settings, nodes, total_mb, rehearsal, total_rows)
    warnings: list[str] = []
    if suggested != settings.migration.strategy:
        warnings.append(f"the config chose {settings.migration.strategy!r}; {suggested!r} would also meet the "
                        f"target: {why}")
    if table_error:
        warnings.append(f"tables not listed: {table_error}")
    unused = [f"{t['schema']}.{t['table']}" for t in listed if t.get("unused")]
    if unused:
        warnings.append(f"{len(unused)} table(s) show no scans: consider excluding them ({', '.join(unused[:5])}"
                        + (", …" if len(unused) > 5 else "") + ")")
    route = settings.route
    if route.new_cluster:
        warnings += rename_blockers
    if route.new_cluster:
        quiet = quiet_window_warning(hourly_write_peaks, settings.freeze.max_write_iops, settings.freeze.quiet_seconds)
        if quiet:
            warnings.append(quiet)
    from datetime import UTC, datetime

    windows = suggest_windows(hourly, seconds, now or datetime.now(UTC))
    if metrics_error:
        windows["too_little_data"] = f"CloudWatch figures not read: {metrics_error}"
    if windows["too_little_data"]:
        warnings.append(windows["too_little_data"])
    return PlanResult(settings.migration.name, settings.migration.strategy, suggested, why,
                requests_for(settings, source, placement, old_name), side_by_side(settings, source, placement),
                listed, total_mb if route.stages_in_s3 else 0, seconds, basis,
                freeze_window(route, seconds), warnings, windows=windows, clients=clients, clients_note=clients_note)


def rename_blockers(source: Mapping[str, Any], datashares: list[dict[str, Any]] | None) -> list[str]:
    """What stays bound to the old cluster or namespace after the endpoint swap."""
    found = []
    if source.get("CustomDomainName"):
        found.append(f"custom domain name {source['CustomDomainName']} is bound to the source cluster: re-associate "
                     "it with the new cluster after cutover")
    if datashares:
        found.append(f"{len(datashares)} datashare(s) are bound to the source namespace "
                     f"{source.get('ClusterNamespaceArn', '')}: they do not follow a rename; recreate them")
    elif datashares is None:
        found.append("datashares could not be listed: check DescribeDataShares for the source namespace; datashares "
                     "do not follow a rename")
    return found


# -- when to migrate ---------------------------------------------------------------------------

#: How far back the suggested windows look (two weeks: each hour of the week seen twice).
WINDOW_LOOKBACK_DAYS = 14
#: Less than one full week of hours with all three figures is too little to judge an hour of the week.
MIN_WINDOW_DAYS = 7
#: The cutover window: the last catch-up pass, two renames and the reboot. Assumed, and stated.
ASSUMED_CUTOVER_SECONDS = 3600.0
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _profile(hourly: Mapping[str, Mapping[Any, float]]) -> tuple[dict[int, dict[str, float]], int]:
    """Per hour of the week (0 = Monday 00:00 UTC): mean CPU and connections, highest WriteIOPS;
    and how many hours had all three figures."""
    cpu, conns, iops = (hourly.get(k, {}) for k in ("cpu", "connections", "write_iops"))
    complete = [h for h in cpu if h in conns and h in iops]
    slots: dict[int, dict[str, list[float]]] = {}
    for hour in complete:
        slot = slots.setdefault(hour.weekday() * 24 + hour.hour, {"cpu": [], "connections": [], "write_iops": []})
        slot["cpu"].append(cpu[hour])
        slot["connections"].append(conns[hour])
        slot["write_iops"].append(iops[hour])
    profile = {s: {"cpu": sum(v["cpu"]) / len(v["cpu"]), "connections": sum(v["connections"]) / len(v["connections"]),
                   "write_iops": max(v["write_iops"])} for s, v in slots.items()}
    return profile, len(complete)


def _best_start(scores: Mapping[int, float], hours: int) -> int:
    """The hour of the week whose next ``hours`` hours add up to the least (the week wraps)."""
    return min(range(168), key=lambda s: (sum(scores[(s + i) % 168] for i in range(hours)), s))


def _window(profile: Mapping[int, Mapping[str, float]], start: int, hours: int, after: Any, basis: str) -> dict[str, Any]:
    from datetime import timedelta

    span = [profile[(start + i) % 168] for i in range(hours)]
    base = after.replace(minute=0, second=0, microsecond=0)
    offset = (start - (base.weekday() * 24 + base.hour)) % 168
    begins = base + timedelta(hours=offset)
    if begins < after:  # this hour has begun: the next week's
        begins += timedelta(hours=168)
    return {"starts": f"{_WEEKDAYS[start // 24]} {start % 24:02d}:00 UTC", "weekday": _WEEKDAYS[start // 24],
            "hour_utc": start % 24, "hours": hours,
            "next_start": begins.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "figures": {"cpu_percent_avg": round(sum(s["cpu"] for s in span) / hours, 2),
                        "connections_avg": round(sum(s["connections"] for s in span) / hours, 2),
                        "write_iops_max": round(max(s["write_iops"] for s in span), 2)},
            "basis": basis}


def suggest_windows(hourly: Mapping[str, Mapping[Any, float]] | None, copy_seconds: float | None,
                    now: Any) -> dict[str, Any]:
    """When to start the copy and when to cut over: the quietest run of hours of the week for each
    (CPU, connections and writes for the copy; connections and writes first for the cutover, whose
    clients notice it), from the last WINDOW_LOOKBACK_DAYS of hourly CloudWatch figures."""
    import math
    from datetime import timedelta

    profile, complete = _profile(hourly or {})
    counts = {k: len((hourly or {}).get(k, {})) for k in ("cpu", "connections", "write_iops")}
    data = {"lookback_days": WINDOW_LOOKBACK_DAYS, "hours_with_data": counts, "complete_hours": complete,
            "metrics": "CPUUtilization (average), DatabaseConnections (average), WriteIOPS (maximum), hourly, UTC"}
    missing = 168 - len(profile)
    if complete < MIN_WINDOW_DAYS * 24 or missing:
        return {"copy_start": None, "cutover": None, "data": data,
                "too_little_data": (f"too little data to suggest windows: {complete} hours with CPUUtilization, "
                                    f"DatabaseConnections and WriteIOPS in the last {WINDOW_LOOKBACK_DAYS} days "
                                    f"({missing} hours of the week never seen); at least {MIN_WINDOW_DAYS * 24} "
                                    "hours covering every hour of the week are needed")}
    top = {k: max(p[k] for p in profile.values()) or 1.0 for k in ("cpu", "connections", "write_iops")}
    norm = {s: {k: p[k] / top[k] for k in top} for s, p in profile.items()}
    copy_scores = {s: n["cpu"] + n["connections"] + n["write_iops"] for s, n in norm.items()}
    cut_scores = {s: n["cpu"] + 2 * n["connections"] + 2 * n["write_iops"] for s, n in norm.items()}
    copy_hours = max(1, math.ceil((copy_seconds or 0) / 3600))
    longer = copy_hours > 168
    copy_hours = min(copy_hours, 168)
    cut_hours = max(1, math.ceil(ASSUMED_CUTOVER_SECONDS / 3600))
    copy_start = _best_start(copy_scores, copy_hours)
    copy = _window(profile, copy_start, copy_hours, now,
                   f"the {copy_hours} quietest consecutive hour(s) of the week by CPU, connections and writes, for "
                   "the estimated copy duration" + ("; the copy takes longer than a week, so no window covers it"
                                                     if longer else ""))
    copy_end = datetime_of(copy["next_start"]) + timedelta(hours=copy_hours)
    cut_start = _best_start(cut_scores, cut_hours)
    cut = _window(profile, cut_start, cut_hours, copy_end,
                  f"the quietest {cut_hours} hour(s) of the week by connections and writes (weighted double) and "
                  f"CPU, after the copy ends; assumed {ASSUMED_CUTOVER_SECONDS / 60:.0f} min for the last catch-up, "
                  "the renames and the reboot")
    return {"copy_start": copy, "cutover": cut, "data": data, "too_little_data": None}


def datetime_of(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
