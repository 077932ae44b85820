"""The control plane's front: `RedshiftControlPlane.handle` takes every Redshift query-protocol request,
ticks time, answers it from a ``_do_<Action>`` method of the parts (or forwards it to moto when
the sandbox adds nothing), logs mutating calls (aws-calls.log), injects lost replies, and answers
where a cluster name reaches now (`resolve`, DNS caching included)."""

from __future__ import annotations

import json
import re
from typing import Any

from moto.redshift.models import Cluster as MotoCluster
from moto.redshift.responses import RedshiftResponse

from migrator.sandbox.controlplane.lifecycle import ClusterLifecycle
from migrator.sandbox.controlplane.parameter_groups import ParameterGroups
from migrator.sandbox.controlplane.model import REACHABLE, REACHABLE_CACHED, ApiError, Forward, Reply, cluster_state
from migrator.sandbox.controlplane.rendering import error_code, render_error


_MUTATING = re.compile(r"^(Create|Modify|Delete|Reboot|Restore|Enable|Disable|Pause|Resume|Resize|Rotate"
                       r"|Authorize|Revoke|Copy|Purge|Reset)")
# Actions where moto answers an unknown cluster with a 500 (KeyError) instead of ClusterNotFound.
_NEEDS_EXISTING_CLUSTER = frozenset({
    "EnableSnapshotCopy", "DisableSnapshotCopy", "ModifySnapshotCopyRetentionPeriod",
    "EnableLogging", "DisableLogging", "DescribeLoggingStatus",
})
_MOTO_ACTIONS = frozenset(name for name in dir(RedshiftResponse) if not name.startswith("_"))


class RedshiftControlPlane(ClusterLifecycle, ParameterGroups):
    """The part of Redshift's API moto lacks; thread-safe (one lock around every call)."""

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """The mutating calls made so far (same content as aws-calls.log)."""
        with self._lock:
            return [dict(c) for c in self._calls if action is None or c["action"] == action]

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._events]

    def tick(self) -> None:
        """Finish every transition whose time has come (also runs before each request)."""
        with self._lock:
            now = self.clock()
            for region in list(self._regions):
                self._tick_region(region, now)

    def resolve(self, region: str, name: str) -> tuple[str, int] | None:
        """Where a connection to cluster name ``name`` lands now (None: refused), DNS caching included."""
        with self._lock:
            now = self.clock()
            self._tick_region(region, now)
            cached = self._cached_names.get((region, name))
            if cached is not None:
                cluster, renamed_at = cached
                if now < renamed_at + self.durations.of("dns"):
                    return self._reachable(cluster, REACHABLE_CACHED)
                del self._cached_names[(region, name)]
            holder = self._backend(region).clusters.get(name)
            return self._reachable(holder, REACHABLE) if holder is not None else None

    @staticmethod
    def _reachable(cluster: MotoCluster, statuses: frozenset[str]) -> tuple[str, int] | None:
        state = cluster_state(cluster)
        if state.gone or cluster.status not in statuses:
            return None
        return state.data_endpoint

    def handle(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        action = params.get("Action", "")
        with self._lock:
            self._regions.add(region)
            self._tick_region(region, self.clock())
            error: str | None = None
            try:
                reply = self._dispatch(action, region, params, forward)
                if reply[0] >= 400:
                    error = error_code(reply[2])
            except ApiError as exc:
                error = exc.code
                reply = render_error(action, exc)
            if _MUTATING.match(action):
                self._log_call(action, params, error)
            if error is None and self.faults is not None and _MUTATING.match(action) and self.faults.take(
                    "reply_lost", operation=action, cluster_id=params.get("ClusterIdentifier")) is not None:
                # The request took effect; only its answer is lost (a 500 on the way back, as after a
                # timeout behind the endpoint). botocore retries it as it retries any 5xx.
                reply = render_error(action, ApiError(
                    "InternalFailure", "The request processing has failed because of an unknown error.", 500))
            return reply

    def _dispatch(self, action: str, region: str, params: dict[str, str], forward: Forward) -> Reply:
        own = getattr(self, f"_do_{action}", None)
        if own is not None:
            result: Reply = own(region, params, forward)
            return result
        if action in _NEEDS_EXISTING_CLUSTER:
            self._cluster(region, params.get("ClusterIdentifier", ""))
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
        if snake not in _MOTO_ACTIONS:
            raise ApiError("UnsupportedOperation",
                           f"The sandbox does not model the Redshift action {action or '(none)'}.")
        return forward(params)

    def _log_call(self, action: str, params: dict[str, str], error: str | None) -> None:
        entry = {
            "time": self.clock(), "action": action, "cluster_id": params.get("ClusterIdentifier"),
            "params": {k: v for k, v in params.items()
                       if k not in {"Action", "Version"} and "password" not in k.lower()},
            "error": error,
        }
        self._calls.append(entry)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")
