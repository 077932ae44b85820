"""Usage limits and scheduled actions (moto has neither), as botocore's Redshift model declares them.

A usage limit belongs to the cluster it was made for and follows it through a rename (it is
described under the cluster's current name) and ends with it. A scheduled action names its
cluster by identifier inside TargetAction, so after a rename it acts on whatever cluster holds
that name (API CreateScheduledAction: "TargetAction ... ClusterIdentifier").
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.core import ControlPlaneCore
from migrator.sandbox.controlplane.model import ApiError, Forward, Reply
from migrator.sandbox.controlplane.params import as_bool

#: CreateUsageLimit: FeatureType → the LimitType it takes (API CreateUsageLimit, "LimitType").
_LIMIT_TYPES = {"spectrum": "data-scanned", "concurrency-scaling": "time", "cross-region-datasharing": "data-scanned",
                "extra-compute-for-automatic-optimization": "time"}
_PERIODS = ("daily", "weekly", "monthly")
_BREACH_ACTIONS = ("log", "emit-metric", "disable")
_TARGET_ACTIONS = ("ResizeCluster", "PauseCluster", "ResumeCluster")


class UsageAndSchedules(ControlPlaneCore):
    """CreateUsageLimit / DescribeUsageLimits / DeleteUsageLimit and CreateScheduledAction /
    DescribeScheduledActions / DeleteScheduledAction."""

    def _usage_limits(self) -> list[tuple[MotoCluster, dict[str, Any]]]:
        registry: list[tuple[MotoCluster, dict[str, Any]]] = self.__dict__.setdefault("_usage_limit_registry", [])
        alive = {id(c) for c in self._all_clusters()}
        registry[:] = [(c, limit) for c, limit in registry if id(c) in alive]  # they end with the cluster
        return registry

    def _scheduled_actions(self) -> dict[str, dict[str, Any]]:
        actions: dict[str, dict[str, Any]] = self.__dict__.setdefault("_scheduled_action_registry", {})
        return actions

    def _do_CreateUsageLimit(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cluster = self._cluster(region, params.get("ClusterIdentifier", ""))
        feature, limit_type = params.get("FeatureType", ""), params.get("LimitType", "")
        if _LIMIT_TYPES.get(feature) != limit_type:
            raise ApiError("InvalidUsageLimit", f"LimitType {limit_type!r} is not valid for FeatureType {feature!r}.")
        period = params.get("Period") or "monthly"
        breach = params.get("BreachAction") or "log"
        if period not in _PERIODS or breach not in _BREACH_ACTIONS:
            raise ApiError("InvalidUsageLimit", f"Invalid Period {period!r} or BreachAction {breach!r}.")
        try:
            amount = int(params.get("Amount", ""))
        except ValueError:
            raise ApiError("InvalidUsageLimit", "Amount must be a positive whole number.") from None
        if amount <= 0:
            raise ApiError("InvalidUsageLimit", "Amount must be a positive whole number.")
        if any(c is cluster and lim["FeatureType"] == feature and lim["Period"] == period
               and lim["LimitType"] == limit_type for c, lim in self._usage_limits()):
            raise ApiError("UsageLimitAlreadyExists", f"A {period} {feature} usage limit already exists for "
                                                      f"{cluster.cluster_identifier}.")
        limit = {"UsageLimitId": f"limit-{uuid.uuid4().hex[:16]}", "FeatureType": feature, "LimitType": limit_type,
                 "Amount": amount, "Period": period, "BreachAction": breach, "Tags": []}
        self._usage_limits().append((cluster, limit))
        return self._render("CreateUsageLimit", self._limit_view(cluster, limit))

    @staticmethod
    def _limit_view(cluster: MotoCluster, limit: dict[str, Any]) -> dict[str, Any]:
        return {**limit, "ClusterIdentifier": cluster.cluster_identifier}

    def _do_DescribeUsageLimits(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid, wanted_id = params.get("ClusterIdentifier"), params.get("UsageLimitId")
        if cid:
            self._cluster(region, cid)
        found = [self._limit_view(c, lim) for c, lim in self._usage_limits()
                 if (not cid or c.cluster_identifier == cid) and (not wanted_id or lim["UsageLimitId"] == wanted_id)
                 and (not params.get("FeatureType") or lim["FeatureType"] == params["FeatureType"])]
        return self._render("DescribeUsageLimits", {"UsageLimits": found})

    def _do_DeleteUsageLimit(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        wanted = params.get("UsageLimitId", "")
        registry = self._usage_limits()
        kept = [(c, lim) for c, lim in registry if lim["UsageLimitId"] != wanted]
        if len(kept) == len(registry):
            raise ApiError("UsageLimitNotFound", f"Usage limit {wanted} not found.")
        registry[:] = kept
        return self._render("DeleteUsageLimit", None)

    def _do_CreateScheduledAction(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduledActionName", "")
        if name in self._scheduled_actions():
            raise ApiError("ScheduledActionAlreadyExists", f"Scheduled action {name} already exists.")
        for required in ("ScheduledActionName", "Schedule", "IamRole"):
            if not params.get(required):
                raise ApiError("MissingParameter", f"The request must contain the parameter {required}.")
        target: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            m = re.fullmatch(r"TargetAction\.(\w+)\.(\w+)", key)
            if m:
                target.setdefault(m.group(1), {})[m.group(2)] = value
        if len(target) != 1 or next(iter(target)) not in _TARGET_ACTIONS:
            raise ApiError("InvalidScheduledAction", "TargetAction must hold exactly one of "
                                                     f"{', '.join(_TARGET_ACTIONS)}.")
        kind, body = next(iter(target.items()))
        if not body.get("ClusterIdentifier"):
            raise ApiError("InvalidScheduledAction", f"TargetAction.{kind} needs a ClusterIdentifier.")
        for number in ("NumberOfNodes",):
            if number in body:
                body[number] = int(body[number])
        if "Classic" in body:
            body["Classic"] = as_bool(body["Classic"])
        enabled = as_bool(params.get("Enable")) is not False
        action = {"ScheduledActionName": name, "TargetAction": target, "Schedule": params["Schedule"],
                  "IamRole": params["IamRole"], "ScheduledActionDescription": params.get("ScheduledActionDescription", ""),
                  "State": "ACTIVE" if enabled else "DISABLED", "NextInvocations": []}
        self._scheduled_actions()[name] = action
        return self._render("CreateScheduledAction", action)

    def _do_DescribeScheduledActions(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduledActionName")
        if name and name not in self._scheduled_actions():
            raise ApiError("ScheduledActionNotFound", f"Scheduled action {name} not found.")
        filters: dict[str, list[str]] = {}
        for key, value in params.items():
            m = re.fullmatch(r"Filters\.\w+\.(\d+)\.Name", key)
            if m:
                prefix = key.rsplit(".", 1)[0]
                filters[value] = [v for k, v in sorted(params.items()) if k.startswith(f"{prefix}.Values.")]
        kind = params.get("TargetActionType")
        found = []
        for action in self._scheduled_actions().values():
            action_kind, body = next(iter(action["TargetAction"].items()))
            if name and action["ScheduledActionName"] != name:
                continue
            if kind and action_kind != {"resize-cluster": "ResizeCluster", "pause-cluster": "PauseCluster",
                                        "resume-cluster": "ResumeCluster"}.get(kind, kind):
                continue
            if "cluster-identifier" in filters and body.get("ClusterIdentifier") not in filters["cluster-identifier"]:
                continue
            if "iam-role" in filters and action["IamRole"] not in filters["iam-role"]:
                continue
            found.append(action)
        return self._render("DescribeScheduledActions", {"ScheduledActions": found})

    def _do_DeleteScheduledAction(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduledActionName", "")
        if self._scheduled_actions().pop(name, None) is None:
            raise ApiError("ScheduledActionNotFound", f"Scheduled action {name} not found.")
        return self._render("DeleteScheduledAction", None)
