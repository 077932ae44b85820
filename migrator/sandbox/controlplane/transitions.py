"""Status transitions over time: starting an operation (dropping connections where Redshift does),
and, evaluated lazily against the clock, finishing whatever is due (create, modify, resize, pause,
resume, rename -> reboot, final snapshot -> delete, snapshots) with its events."""

from __future__ import annotations

from typing import Any

from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.core import ControlPlaneCore
from migrator.sandbox.controlplane.model import Op, cluster_state


# Statuses whose start drops every open connection ("Renaming clusters": the cluster is rebooted and
# existing connections are dropped; RebootCluster: a momentary outage).
_DROPS_CONNECTIONS = frozenset({"rebooting", "pausing", "final-snapshot", "deleting"})


class Transitions(ControlPlaneCore):
    """Starts operations and finishes those whose time has come."""

    def _start(self, cluster: MotoCluster, status: str, duration: float, apply: dict[str, Any] | None = None,
               at: float | None = None) -> None:
        state = cluster_state(cluster)
        state.op = Op(status, self.clock() if at is None else at, duration, dict(apply or {}))
        state.shown = status
        if status in _DROPS_CONNECTIONS and self.names is not None and state.data_endpoint is not None:
            self.names.drop(state.data_endpoint)

    def _tick_region(self, region: str, now: float) -> None:
        self._current_region = region
        backend = self._backend(region)
        for cid, cluster in list(backend.clusters.items()):
            state = cluster_state(cluster)
            stuck = self.faults.take("cluster_stuck", cluster_id=cid) if self.faults else None
            if stuck is not None:
                state.shown = str(stuck.params.get("status", "modifying"))
                continue
            op = state.op
            # A finished step may start the next one (renaming → rebooting, final-snapshot → deleting).
            while op is not None and now >= op.started + op.duration:
                state.op = None
                self._finish(region, cluster, op, op.started + op.duration)
                op = state.op
            if state.op is None and not state.paused and not state.gone and self.faults is not None \
                    and self.faults.take("scheduled_pause", cluster_id=cid) is not None:
                # A pause schedule (or the operator) pauses the cluster under a running migration.
                self._start(cluster, "pausing", self.durations.of("pause"), at=now)
                self._event(cid, f"Cluster '{cid}' is being paused by its schedule.", "management", at=now)
            state.shown = state.op.status if state.op else ("paused" if state.paused else None)
        for (snap_region, snap_id), op in list(self._snapshot_ops.items()):
            if snap_region != region or now < op.started + op.duration:
                continue
            del self._snapshot_ops[(snap_region, snap_id)]
            snapshot = backend.snapshots.get(snap_id)
            if snapshot is not None:
                snapshot.status = "available"
                self._event(op.apply["cluster_id"], f"Amazon Redshift has finished creating manual snapshot "
                                                    f"'{snap_id}' of cluster '{op.apply['cluster_id']}'.", "backup",
                            at=op.started + op.duration)

    def _finish(self, region: str, cluster: MotoCluster, op: Op, done_at: float) -> None:
        """Apply what ``op`` promised; its events carry the time it completed."""
        cid = cluster.cluster_identifier
        now = done_at
        state = cluster_state(cluster)
        if op.status in ("creating", "rebooting"):
            # The parameter group's static parameters (WLM) take effect when the cluster (re)starts.
            apply_group = getattr(self, "_apply_parameter_group", None)
            if callable(apply_group):
                apply_group(region, cluster)
        if op.status == "creating":
            self._event(cid, f"Amazon Redshift cluster '{cid}' has been created and is ready for use.",
                        "management", at=done_at)
        elif op.status == "resizing":
            failed = self.faults.take("resize_fails", cluster_id=cid) if self.faults else None
            if state.resize is not None:
                state.resize.finished_at = now
                state.resize.failed = failed is not None
            if failed is not None:
                # The cluster stays as it was (same encryption, same key).
                self._event(cid, f"Cluster '{cid}' encryption change failed; the cluster is unchanged.",
                            "management", at=done_at)
                return
            cluster.encrypted = op.apply["encrypted"]
            cluster.kms_key_id = op.apply["kms_key_id"]
            state.hsm_certificate = state.hsm_configuration = None
            what = "encrypted with KMS" if op.apply["encrypted"] else "decrypted"
            self._event(cid, f"Cluster '{cid}' has been {what}; the resize is complete.", "management", at=done_at)
        elif op.status == "pausing":
            state.paused = True
            self._event(cid, f"Cluster '{cid}' has been paused.", "management", at=done_at)
        elif op.status == "resuming":
            self._event(cid, f"Cluster '{cid}' has been resumed.", "management", at=done_at)
        elif op.status == "renaming":
            self._event(cid, f"Cluster '{op.apply['renamed_from']}' has been renamed to '{cid}'.",
                        "management", at=done_at)
            # "Renaming clusters": the cluster is rebooted to take its new name.
            self._start(cluster, "rebooting", self.durations.of("reboot"), at=done_at)
            self._event(cid, f"Cluster '{cid}' is being rebooted.", "management", at=done_at)
        elif op.status == "final-snapshot":
            self._event(cid, f"Amazon Redshift has taken the final snapshot '{op.apply['snapshot']}' of cluster "
                             f"'{cid}'.", "backup", at=done_at)
            self._start(cluster, "deleting", self.durations.of("delete"), at=done_at)
        elif op.status == "rebooting":
            self._event(cid, f"Cluster '{cid}' has been rebooted.", "management", at=done_at)
        elif op.status == "modifying":
            self._event(cid, f"Cluster '{cid}' modification is complete.", "management", at=done_at)
        elif op.status == "deleting":
            backend = self._backend(region)
            if backend.clusters.get(cid) is cluster:
                del backend.clusters[cid]
            state.gone = True
            if self.host is not None:
                self.host.deprovision(cid)
            self._event(cid, f"Amazon Redshift cluster '{cid}' has been deleted.", "management", at=done_at)
