"""Manual snapshots (taking time to become available, keeping the cluster's key), describing them
(filters and paging moto gets wrong), cross-region snapshot copy events, and snapshot schedules with
their association to clusters."""

from __future__ import annotations

import re
from typing import Any

from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.model import ApiError, Forward, Op, Reply, cluster_state
from migrator.sandbox.controlplane.params import as_bool, member_list, tag_list
from migrator.sandbox.controlplane.rules import ValidationRules
from migrator.sandbox.controlplane.transitions import Transitions


class SnapshotCalls(ValidationRules, Transitions):
    """Snapshot and snapshot-schedule calls."""

    def _do_CreateClusterSnapshot(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster_in(region, cid, "available",
                                   "Cluster {cid} is {status}; a manual snapshot needs an available cluster.")
        self._check_tags(params)
        if params.get("ManualSnapshotRetentionPeriod"):
            self._check_retention({"ManualSnapshotRetentionPeriod": params["ManualSnapshotRetentionPeriod"]})
        reply = forward(params)
        if reply[0] >= 400:
            return reply
        snap_id = params["SnapshotIdentifier"]
        snapshot = self._backend(region).snapshots[snap_id]
        # moto's Snapshot has no key; the serializer picks this attribute up for KmsKeyId.
        setattr(snapshot, "kms_key_id", cluster.kms_key_id)
        duration = self.durations.of("snapshot")
        self._snapshot_ops[(region, snap_id)] = Op("creating", self.clock(), duration,
                                                    apply={"cluster_id": cid})
        snapshot.status = "creating" if duration > 0 else "available"
        self._event(cid, f"Amazon Redshift has started creating manual snapshot '{snap_id}' of cluster '{cid}'.",
                    "backup")
        if duration <= 0:
            self._tick_region(region, self.clock())
        return self._render("CreateClusterSnapshot", {"Snapshot": snapshot})

    def _do_DescribeClusterSnapshots(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        # moto answers a cluster filter that matches nothing with every snapshot of every cluster.
        backend = self._backend(region)
        snap_id = params.get("SnapshotIdentifier")
        if snap_id and snap_id not in backend.snapshots:
            raise ApiError("ClusterSnapshotNotFound", f"Snapshot {snap_id} not found.")
        cid = params.get("ClusterIdentifier")
        kind = params.get("SnapshotType")
        found = [s for s in backend.snapshots.values()
                 if (not snap_id or s.snapshot_identifier == snap_id)
                 and (not cid or s.cluster_identifier == cid)
                 and (not kind or s.snapshot_type == kind)]
        offset = int(params.get("Marker") or 0)
        limit = int(params.get("MaxRecords") or 100)
        result: dict[str, Any] = {"Snapshots": found[offset:offset + limit]}
        if offset + limit < len(found):
            result["Marker"] = str(offset + limit)
        return self._render("DescribeClusterSnapshots", result)

    def _do_EnableSnapshotCopy(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        self._cluster(region, params.get("ClusterIdentifier", ""))
        reply = forward(params)
        if reply[0] < 400:
            cid = params["ClusterIdentifier"]
            self._event(cid, f"Cross-region snapshot copy to {params.get('DestinationRegion')} was enabled "
                             f"for cluster '{cid}'.", "backup")
        return reply

    def _do_DisableSnapshotCopy(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        self._cluster(region, params.get("ClusterIdentifier", ""))
        reply = forward(params)
        if reply[0] < 400:
            cid = params["ClusterIdentifier"]
            self._event(cid, f"Cross-region snapshot copy was disabled for cluster '{cid}'.", "backup")
        return reply

    def _do_CreateSnapshotSchedule(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduleIdentifier", "")
        if name in self._snapshot_schedules:
            raise ApiError("SnapshotScheduleAlreadyExists", f"Snapshot schedule {name} already exists.")
        definitions = member_list(params, "ScheduleDefinitions", "ScheduleDefinition")
        if not definitions or not all(re.fullmatch(r"(rate|cron)\(.+\)", d) for d in definitions):
            raise ApiError("InvalidSchedule", "ScheduleDefinitions must be rate(...) or cron(...) expressions.")
        self._check_tags(params)
        self._snapshot_schedules[name] = {"ScheduleIdentifier": name, "ScheduleDefinitions": definitions,
                                          "ScheduleDescription": params.get("ScheduleDescription", ""),
                                          "Tags": tag_list(params)}
        return self._render("CreateSnapshotSchedule", self._schedule_view(region, name))

    def _schedule_view(self, region: str, name: str) -> dict[str, Any]:
        clusters = [c for c in self._backend(region).clusters.values()
                    if c.__dict__.get("SnapshotScheduleIdentifier") == name and not cluster_state(c).gone]
        return {**self._snapshot_schedules[name], "AssociatedClusterCount": len(clusters),
                "AssociatedClusters": [{"ClusterIdentifier": c.cluster_identifier, "ScheduleAssociationState": "ACTIVE"}
                                       for c in clusters]}

    def _do_DescribeSnapshotSchedules(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduleIdentifier")
        cid = params.get("ClusterIdentifier")
        names = [n for n in self._snapshot_schedules if not name or n == name]
        views = [self._schedule_view(region, n) for n in names]
        if cid:
            views = [v for v in views if any(a["ClusterIdentifier"] == cid for a in v["AssociatedClusters"])]
        return self._render("DescribeSnapshotSchedules", {"SnapshotSchedules": views})

    def _do_DeleteSnapshotSchedule(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduleIdentifier", "")
        if name not in self._snapshot_schedules:
            raise ApiError("SnapshotScheduleNotFound", f"Snapshot schedule {name} not found.")
        if self._schedule_view(region, name)["AssociatedClusterCount"]:
            raise ApiError("InvalidClusterSnapshotScheduleState",
                           f"Snapshot schedule {name} is associated with a cluster.")
        del self._snapshot_schedules[name]
        return self._render("DeleteSnapshotSchedule", None)

    def _do_ModifyClusterSnapshotSchedule(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cluster = self._cluster(region, params.get("ClusterIdentifier", ""))
        if as_bool(params.get("DisassociateSchedule")) is True:
            self._associate_schedule(cluster, None)
        else:
            schedule = params.get("ScheduleIdentifier", "")
            if schedule not in self._snapshot_schedules:
                raise ApiError("SnapshotScheduleNotFound", f"Snapshot schedule {schedule} not found.")
            self._associate_schedule(cluster, schedule)
        return self._render("ModifyClusterSnapshotSchedule", None)

    def _associate_schedule(self, cluster: MotoCluster, schedule: str | None) -> None:
        attrs = cluster.__dict__
        if schedule is None:
            attrs.pop("SnapshotScheduleIdentifier", None)
            attrs.pop("SnapshotScheduleState", None)
            return
        attrs["SnapshotScheduleIdentifier"] = schedule
        attrs["SnapshotScheduleState"] = "ACTIVE"
