"""Parameter values of custom cluster parameter groups (moto 5.2.5 has no
ModifyClusterParameterGroup and answers DescribeClusterParameters with the defaults), and the one
the data plane acts on: ``wlm_json_configuration``, applied to a cluster's WLM tables when the
cluster next reboots or finishes creating (Management Guide, "Amazon Redshift parameter groups":
WLM changes are static and need a reboot; botocore: ModifyClusterParameterGroup,
``Parameters.Parameter.N.ParameterName/ParameterValue``, ClusterParameterGroupNotFound,
InvalidClusterParameterGroupState)."""

from __future__ import annotations

import re
from typing import Any

from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.core import ControlPlaneCore
from migrator.sandbox.controlplane.model import ApiError, Forward, Reply
from migrator.sandbox.redshift import wlm

WLM_PARAMETER = "wlm_json_configuration"


def _parameters(params: dict[str, str]) -> dict[str, str]:
    found: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(r"Parameters\.Parameter\.(\d+)\.(ParameterName|ParameterValue)", key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = value
    out: dict[str, str] = {}
    for n in sorted(found):
        item = found[n]
        if "ParameterName" not in item or "ParameterValue" not in item:
            raise ApiError("InvalidParameterValue", "Each parameter needs a ParameterName and a ParameterValue.")
        out[item["ParameterName"]] = item["ParameterValue"]
    if not out:
        raise ApiError("MissingParameter", "The request must contain the parameter Parameters.")
    return out


class ParameterGroups(ControlPlaneCore):
    """ModifyClusterParameterGroup, and WLM from the group at reboot."""

    def _do_ModifyClusterParameterGroup(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ParameterGroupName", "")
        group = self._backend(region).parameter_groups.get(name)
        if group is None:
            raise ApiError("ClusterParameterGroupNotFound", f"Cluster parameter group {name} not found.")
        if name.startswith("default."):
            raise ApiError("InvalidClusterParameterGroupState", f"You cannot modify the default parameter group {name}.")
        values = _parameters(params)
        if WLM_PARAMETER in values:
            try:
                wlm.parse(values[WLM_PARAMETER])
            except wlm.WlmConfigError as exc:
                raise ApiError("InvalidParameterValue", f"{WLM_PARAMETER}: {exc}") from None
        stored: dict[str, str] = getattr(group, "sandbox_values", {})
        stored.update(values)
        group.sandbox_values = stored
        return self._render("ModifyClusterParameterGroup", {
            "ParameterGroupName": name, "ParameterGroupStatus": "Your parameter group has been updated. "
            "If you changed only dynamic parameters, associated clusters are being modified now. If you changed "
            "static parameters, all updates, including dynamic parameters, will be applied when you reboot the "
            "associated clusters."})

    def _apply_parameter_group(self, region: str, cluster: MotoCluster) -> None:
        """At reboot (or the end of creation): the cluster's WLM becomes its group's."""
        apply = getattr(self.host, "apply_wlm", None)
        if not callable(apply):
            return
        named = getattr(cluster, "cluster_parameter_group_name", None) or []
        # moto keeps a list at creation and ModifyCluster's plain string afterwards.
        names = [named] if isinstance(named, str) else list(named)
        group: Any = self._backend(region).parameter_groups.get(names[0]) if names else None
        text = (getattr(group, "sandbox_values", {}) or {}).get(WLM_PARAMETER, wlm.DEFAULT_WLM)
        try:
            apply(cluster.cluster_identifier, text, str(cluster.node_type))
        except KeyError:
            pass  # the data plane has no such cluster (deleted meanwhile)
