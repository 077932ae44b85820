"""An encryption change as Redshift runs it, a classic resize: starting it, and DescribeResize's
progress (tables done, megabytes, estimated time) read from the clock."""

from __future__ import annotations

import math
from typing import Any, Sequence

from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.model import ApiError, Forward, Reply, ResizeJob, cluster_state
from migrator.sandbox.controlplane.transitions import Transitions


class EncryptionResize(Transitions):
    """Starts the resize an encryption change is, and reports its progress."""

    def _start_resize(self, cluster: MotoCluster, change: dict[str, Any]) -> None:
        cid = cluster.cluster_identifier
        duration = self.durations.of("modify")
        now = self.clock()
        target = "KMS" if change["encrypted"] else "NONE"
        state = cluster_state(cluster)
        state.resize = ResizeJob(target, now, duration, list(self._table_names(cid)))
        self._start(cluster, "resizing", duration, apply=change)
        what = "encryption with KMS" if change["encrypted"] else "decryption"
        self._event(cid, f"Cluster '{cid}' {what} has started; the cluster is read-only until it completes.",
                    "management")

    def _do_DescribeResize(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        resize = cluster_state(cluster).resize
        if resize is None:
            raise ApiError("ResizeNotFound", f"The cluster {cid} has no resize operation.")
        return self._render("DescribeResize", self._resize_progress(cluster, resize))

    def _resize_progress(self, cluster: MotoCluster, resize: ResizeJob) -> dict[str, Any]:
        now = self.clock()
        done = resize.finished_at is not None
        end = resize.finished_at if done else now
        elapsed = max(0.0, (end or now) - resize.started)
        fraction = 1.0 if done else (min(elapsed / resize.duration, 0.99) if resize.duration > 0 else 0.99)
        tables = resize.tables
        completed = len(tables) if done else int(len(tables) * fraction)
        in_progress = 0 if done or completed >= len(tables) else 1
        total_mb = max(1024, 256 * len(tables)) * max(1, int(cluster.number_of_nodes))
        rate = total_mb / resize.duration if resize.duration > 0 else float(total_mb)
        return {
            "TargetNodeType": cluster.node_type,
            "TargetNumberOfNodes": int(cluster.number_of_nodes),
            "TargetClusterType": "multi-node" if int(cluster.number_of_nodes) > 1 else "single-node",
            "Status": ("FAILED" if resize.failed else "SUCCEEDED") if done else "IN_PROGRESS",
            "ImportTablesCompleted": tables[:completed],
            "ImportTablesInProgress": tables[completed:completed + in_progress],
            "ImportTablesNotStarted": tables[completed + in_progress:],
            "AvgResizeRateInMegaBytesPerSecond": round(rate, 2),
            "TotalResizeDataInMegaBytes": total_mb,
            "ProgressInMegaBytes": int(total_mb * fraction),
            "ElapsedTimeInSeconds": int(elapsed),
            "EstimatedTimeToCompletionInSeconds": 0 if done else max(1, math.ceil(resize.duration - elapsed)),
            "ResizeType": "ClassicResize",
            "Message": ("Resize operation failed; the cluster is unchanged." if resize.failed
                        else "Resize operation completed successfully.") if done
            else "Resize operation is in progress.",
            "TargetEncryptionType": resize.target_encryption,
            "DataTransferProgressPercent": round(fraction * 100.0, 2),
        }

    def _table_names(self, cluster_id: str) -> Sequence[str]:
        lister = self._tables or getattr(self.host, "list_tables", None)
        if callable(lister):
            return list(lister(cluster_id))
        # No table source: a fixed synthetic set, so progress still has something to count.
        return [f"public.table_{i:02d}" for i in range(1, 9)]
