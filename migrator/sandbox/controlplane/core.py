"""What every part of the control plane shares: its collaborators (host, faults, durations, clock),
the one lock, the regions seen, the call and event logs, the HSM/snapshot/schedule registries, looking
up moto's backend and clusters, rendering a result, and recording and describing events."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.redshift.models import Cluster as MotoCluster
from moto.redshift.models import RedshiftBackend, redshift_backends

from migrator.sandbox.controlplane.model import ApiError, Clock, Durations, Forward, Op, Reply, cluster_state
from migrator.sandbox.controlplane.params import parse_time
from migrator.sandbox.controlplane.rendering import render
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import ClusterHost


class ControlPlaneCore:
    """State and lookups the other parts build on (see the module docstring)."""

    _current_region = "us-east-1"

    def __init__(self, *, host: ClusterHost | None, faults: FaultPlan | None, durations: Durations,
                 clock: Clock, log_dir: Path | None,
                 tables: Callable[[str], Sequence[str]] | None = None,
                 account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self.host = host
        self.faults = faults
        self.durations = durations
        self.clock = clock
        self.log_file = log_dir / "aws-calls.log" if log_dir else None
        self.account_id = account_id
        self._tables = tables
        self._lock = threading.RLock()
        self._regions: set[str] = set()
        self._calls: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._hsm_certificates: dict[str, dict[str, Any]] = {}
        self._hsm_configurations: dict[str, dict[str, Any]] = {}
        self._snapshot_ops: dict[tuple[str, str], Op] = {}
        # (region, old name) → (renamed cluster, renamed at): "could remain cached for a few minutes";
        # the time it stays cached is durations.dns, read when asked, so a test can shorten it.
        self._snapshot_schedules: dict[str, dict[str, Any]] = {}
        self._cached_names: dict[tuple[str, str], tuple[MotoCluster, float]] = {}
        #: Listeners per cluster name (set by AwsSandbox); None reports the data plane's own address.
        self.names: Any = None

    def _backend(self, region: str) -> RedshiftBackend:
        backend: RedshiftBackend = redshift_backends[self.account_id][region]
        return backend

    def _cluster(self, region: str, cluster_id: str) -> MotoCluster:
        cluster = self._backend(region).clusters.get(cluster_id)
        if cluster is None:
            raise ApiError("ClusterNotFound", f"Cluster {cluster_id} not found.")
        cluster_state(cluster)
        return cluster

    def _cluster_in(self, region: str, cluster_id: str, status: str, refusal: str) -> MotoCluster:
        """The cluster, when its status is ``status``; else InvalidClusterState with ``refusal``
        (a template of ``{cid}`` and ``{status}``, the status it has)."""
        cluster = self._cluster(region, cluster_id)
        if cluster.status != status:
            raise ApiError("InvalidClusterState", refusal.format(cid=cluster_id, status=cluster.status))
        return cluster

    def _all_clusters(self) -> list[MotoCluster]:
        return [c for r in self._regions for c in self._backend(r).clusters.values()]

    def _render(self, action: str, result: Any) -> Reply:
        return render(action, result)

    def _event(self, cluster_id: str, message: str, category: str, at: float | None = None) -> None:
        self._events.append({
            "SourceIdentifier": cluster_id, "SourceType": "cluster", "Message": message,
            "EventCategories": [category], "Severity": "INFO",
            "Date": datetime.fromtimestamp(self.clock() if at is None else at, tz=timezone.utc),
            "EventId": f"REDSHIFT-EVENT-{len(self._events) + 1:04d}",
            "_region": self._current_region,
        })
        self._events.sort(key=lambda e: e["Date"])

    def _do_DescribeEvents(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        start = parse_time(params["StartTime"]) if params.get("StartTime") else None
        end = parse_time(params["EndTime"]) if params.get("EndTime") else now
        if start is None:
            start = end - timedelta(minutes=int(params.get("Duration") or 60))
        source_id = params.get("SourceIdentifier")
        source_type = params.get("SourceType")
        if source_id and not source_type:
            raise ApiError("InvalidParameterValue", "SourceType must be given when SourceIdentifier is.")
        matching = [e for e in self._events
                    if e["_region"] == region and start <= e["Date"] <= end
                    and (not source_id or e["SourceIdentifier"] == source_id)
                    and (not source_type or e["SourceType"] == source_type)]
        offset = int(params.get("Marker") or 0)
        limit = int(params.get("MaxRecords") or 100)
        page = matching[offset:offset + limit]
        result: dict[str, Any] = {"Events": [{k: v for k, v in e.items() if not k.startswith("_")} for e in page]}
        if offset + limit < len(matching):
            result["Marker"] = str(offset + limit)
        return self._render("DescribeEvents", result)
