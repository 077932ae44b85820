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
        return total_rows / rate, f"rehearsal on {rehearsal.get('table')}: {rate:,.0f} rows/s"
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
          rename_blockers: list[str]) -> PlanResult:
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
    return PlanResult(settings.migration.name, settings.migration.strategy, suggested, why,
                requests_for(settings, source, placement, old_name), side_by_side(settings, source, placement),
                listed, total_mb if route.stages_in_s3 else 0, seconds, basis,
                freeze_window(route, seconds), warnings)


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
