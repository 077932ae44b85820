"""A cluster's life: create and restore (validated, provisioned on the host, given a namespace),
modify (attributes, encryption change, rename with its cached old name), reboot, pause, resume, IAM
roles, and delete (with its final snapshot)."""

from __future__ import annotations

import uuid
from typing import Any

from moto.redshift.models import Cluster as MotoCluster

from migrator.sandbox.controlplane.encryption import EncryptionRules
from migrator.sandbox.controlplane.hsm import HsmObjects
from migrator.sandbox.controlplane.model import ApiError, Forward, Op, Reply, cluster_state
from migrator.sandbox.controlplane.node_types import cluster_slices, slices_per_node
from migrator.sandbox.controlplane.params import as_bool, member_list, tag_list
from migrator.sandbox.controlplane.resize import EncryptionResize
from migrator.sandbox.controlplane.rules import MAINTENANCE_TRACKS, check_cluster_id
from migrator.sandbox.controlplane.snapshots import SnapshotCalls
from migrator.sandbox.controlplane.usage import UsageAndSchedules
from migrator.sandbox.info import LEGACY_UNENCRYPTED_TAG


class ClusterLifecycle(SnapshotCalls, EncryptionResize, EncryptionRules, HsmObjects, UsageAndSchedules):
    """The cluster calls that create, change and end clusters."""

    def _do_CreateCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        params = dict(params)
        legacy = self._take_legacy_tag(params)
        if "Encrypted" not in params:
            params["Encrypted"] = "true"  # CreateCluster: "Default: true"
        elif as_bool(params["Encrypted"]) is False and not legacy:
            raise ApiError("InvalidParameterValue",
                           "Encrypted=false is not allowed: new clusters are always encrypted at rest "
                           "(CreateCluster: setting it to false fails the request).")
        self._check_new_cluster(region, params, creating=True)
        cert, conf = self._check_hsm(params)
        key_arn = self._check_kms_for_new_cluster(region, params, cert)
        reply = forward(params)
        if reply[0] >= 400:
            return reply
        cid = params["ClusterIdentifier"]
        cluster = self._cluster(region, cid)
        if key_arn:
            cluster.kms_key_id = key_arn
        self._keep_attributes(region, cluster, params, new=True)
        self._begin_new_cluster(region, cluster, cert, conf, source_snapshot=None)
        return self._render("CreateCluster", {"Cluster": cluster})

    def _do_RestoreFromClusterSnapshot(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        backend = self._backend(region)
        snap_id = params.get("SnapshotIdentifier", "")
        snapshot = backend.snapshots.get(snap_id)
        if snapshot is None:
            raise ApiError("ClusterSnapshotNotFound", f"Snapshot {snap_id} not found.")
        if snapshot.status != "available":
            raise ApiError("InvalidClusterSnapshotState",
                           f"Snapshot {snap_id} is in state {snapshot.status}; it must be available to restore.")
        node_type = params.get("NodeType") or str(snapshot.node_type)
        self._check_new_cluster(region, {**params, "NodeType": node_type}, creating=False)
        cert, conf = self._check_hsm(params)
        encrypted, key_arn = self._restore_encryption(region, snapshot, params, node_type, hsm=bool(cert))
        reply = forward({k: v for k, v in params.items() if k not in ("Encrypted", "KmsKeyId")})
        if reply[0] >= 400:
            return reply
        cluster = self._cluster(region, params["ClusterIdentifier"])
        cluster.kms_key_id = key_arn  # the key actually used (moto drops it)
        cluster.encrypted = encrypted
        self._keep_attributes(region, cluster, params, new=True)
        self._begin_new_cluster(region, cluster, cert, conf, source_snapshot=snapshot)
        return self._render("RestoreFromClusterSnapshot", {"Cluster": cluster})

    @staticmethod
    def _take_legacy_tag(params: dict[str, str]) -> bool:
        """Remove the sandbox-only legacy tag (renumbering the rest); True when it was there."""
        tags = tag_list(params)
        kept = [t for t in tags if t.get("Key") != LEGACY_UNENCRYPTED_TAG]
        if len(kept) == len(tags):
            return False
        for key in [k for k in params if k.startswith("Tags.Tag.")]:
            del params[key]
        for i, tag in enumerate(kept, start=1):
            params[f"Tags.Tag.{i}.Key"] = tag.get("Key", "")
            if "Value" in tag:
                params[f"Tags.Tag.{i}.Value"] = tag["Value"]
        return True

    def _keep_attributes(self, region: str, cluster: MotoCluster, params: dict[str, str], *, new: bool) -> None:
        """Store what moto drops or mistypes, under the Cluster shape's own member names (its serializer
        picks an attribute named like the member first)."""
        attrs = cluster.__dict__
        if new:
            attrs.setdefault("ManualSnapshotRetentionPeriod", -1)
            attrs.setdefault("MaintenanceTrackName", "current")
            attrs.setdefault("MultiAZ", "Disabled")
        for flag, attr in (("PubliclyAccessible", "publicly_accessible"),
                           ("EnhancedVpcRouting", "enhanced_vpc_routing")):
            if params.get(flag) is not None:
                attrs[attr] = as_bool(params[flag])  # moto keeps ModifyCluster's raw string
        if params.get("ManualSnapshotRetentionPeriod"):
            attrs["ManualSnapshotRetentionPeriod"] = int(params["ManualSnapshotRetentionPeriod"])
        if params.get("AutomatedSnapshotRetentionPeriod"):
            cluster.automated_snapshot_retention_period = int(params["AutomatedSnapshotRetentionPeriod"])
        if params.get("MaintenanceTrackName"):
            attrs["MaintenanceTrackName"] = params["MaintenanceTrackName"]
        if params.get("MultiAZ") is not None:
            attrs["MultiAZ"] = "Enabled" if as_bool(params["MultiAZ"]) else "Disabled"
        if params.get("DefaultIamRoleArn"):
            attrs["DefaultIamRoleArn"] = params["DefaultIamRoleArn"]
        # CreateCluster / RestoreFromClusterSnapshot / ModifyCluster members the Cluster shape
        # describes back (botocore's model; defaults as its documentation gives them).
        if new:
            attrs.setdefault("AllowVersionUpgrade", True)
            attrs.setdefault("IpAddressType", "ipv4")
            attrs.setdefault("AvailabilityZoneRelocationStatus", "disabled")
        if params.get("AllowVersionUpgrade") is not None:
            attrs["AllowVersionUpgrade"] = as_bool(params["AllowVersionUpgrade"])
            cluster.allow_version_upgrade = attrs["AllowVersionUpgrade"]
        if params.get("IpAddressType"):
            attrs["IpAddressType"] = params["IpAddressType"]
        if params.get("ExtraComputeForAutomaticOptimization") is not None:
            # The Cluster shape describes it as a string ("true"/"false").
            attrs["ExtraComputeForAutomaticOptimization"] = str(
                as_bool(params["ExtraComputeForAutomaticOptimization"])).lower()
        if params.get("AvailabilityZoneRelocation") is not None:
            attrs["AvailabilityZoneRelocationStatus"] = (
                "enabled" if as_bool(params["AvailabilityZoneRelocation"]) else "disabled")
        if as_bool(params.get("ManageMasterPassword")) is True:
            suffix = uuid.uuid4().hex[:6]
            attrs["MasterPasswordSecretArn"] = (f"arn:aws:secretsmanager:{region}:{self.account_id}:secret:"
                                                f"redshift!{cluster.cluster_identifier}-admin-{suffix}")
            attrs["MasterPasswordSecretKmsKeyId"] = params.get("MasterPasswordSecretKmsKeyId") or "aws/secretsmanager"
        if params.get("ElasticIp"):
            attrs["ElasticIpStatus"] = {"ElasticIp": params["ElasticIp"], "Status": "active"}
        schedule = params.get("SnapshotScheduleIdentifier")
        if schedule:
            self._associate_schedule(cluster, schedule)

    def _begin_new_cluster(self, region: str, cluster: MotoCluster, cert: str | None, conf: str | None,
                           source_snapshot: Any) -> None:
        state = cluster_state(cluster)
        cid = cluster.cluster_identifier
        state.hsm_certificate, state.hsm_configuration = cert, conf
        # Every new cluster (a restore too) is a new namespace; a rename keeps it. A check after cutover
        # can compare it with what the database it reached reports (SELECT current_namespace).
        namespace = str(uuid.uuid4())
        cluster.__dict__["ClusterNamespaceArn"] = f"arn:aws:redshift:{region}:{self.account_id}:namespace:{namespace}"
        if self.host is not None:
            try:
                state.data_endpoint = self._provision(cluster, source_snapshot)
                state.endpoint = self._name_endpoint(region, cid) or state.data_endpoint
                set_namespace = getattr(self.host, "set_namespace", None)
                if callable(set_namespace):  # optional host capability: the database answers it
                    set_namespace(cid, namespace)
                set_layout = getattr(self.host, "set_node_layout", None)
                if callable(set_layout):  # optional: STV_SLICES from the node type and count
                    node_type, nodes = str(cluster.node_type), int(cluster.number_of_nodes or 1)
                    set_layout(cid, cluster_slices(node_type, nodes), slices_per_node(node_type))
            except Exception as exc:
                # A cluster whose database could not be made must not linger as "creating".
                self._backend(region).delete_cluster(cluster_identifier=cid, skip_final_snapshot=True,
                                                     final_cluster_snapshot_identifier=None)
                raise ApiError("InternalFailure", f"The sandbox could not provision cluster {cid}: {exc}",
                               500) from exc
        self._start(cluster, "creating", self.durations.of("create"))
        how = (f"restored from snapshot '{source_snapshot.snapshot_identifier}'" if source_snapshot
               else "created")
        self._event(cid, f"Amazon Redshift cluster '{cid}' is being {how}.", "management")

    def _name_endpoint(self, region: str, name: str) -> tuple[str, int] | None:
        if self.names is None:
            return None
        address: tuple[str, int] = self.names.endpoint(region, name)
        return address

    def _provision(self, cluster: MotoCluster, source_snapshot: Any) -> tuple[str, int]:
        assert self.host is not None
        args = (cluster.cluster_identifier, cluster.db_name, cluster.master_username,
                cluster.master_user_password)
        from_snapshot = getattr(self.host, "provision_from_snapshot", None)
        if source_snapshot is not None and callable(from_snapshot):
            # Optional host capability: a restore carries the snapshotted cluster's data.
            address, port = from_snapshot(*args, source_snapshot.cluster_identifier,
                                          source_snapshot.snapshot_identifier)
        else:
            address, port = self.host.provision(*args)
        return str(address), int(port)

    def _do_ModifyCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status != "available":
            raise ApiError("InvalidClusterState",
                           f"There is an operation running on the Cluster {cid}. Please try to modify it later.")
        new_id = params.get("NewClusterIdentifier")
        if new_id is not None:
            check_cluster_id(new_id)
        if new_id and new_id in self._backend(region).clusters:
            raise ApiError("ClusterAlreadyExists", "Cluster already exists")
        if params.get("HsmClientCertificateIdentifier") or params.get("HsmConfigurationIdentifier"):
            raise ApiError("UnsupportedOperation",
                           "Changing a cluster to HSM encryption requires a new cluster (unload and copy).")
        self._check_tags(params)
        self._check_retention({**params, "NodeType": params.get("NodeType") or cluster.node_type})
        track = params.get("MaintenanceTrackName")
        if track and track not in MAINTENANCE_TRACKS:
            raise ApiError("InvalidClusterTrack", f"Maintenance track '{track}' does not exist.")
        if params.get("ElasticIp") and as_bool(params.get("PubliclyAccessible", str(cluster.publicly_accessible))) \
                is not True:
            raise ApiError("InvalidParameterCombination", "ElasticIp requires a publicly accessible cluster.")
        encryption = self._encryption_change(region, cluster, params)
        if encryption is not None and cluster.cluster_snapshot_copy_status:
            # "Changing cluster encryption": disable cross-Region snapshot copy first.
            raise ApiError("InvalidClusterState",
                           f"Cluster {cid} has cross-Region snapshot copy enabled; disable it before changing "
                           f"encryption.")
        if new_id and encryption is not None:
            raise ApiError("InvalidParameterCombination",
                           "A cluster cannot be renamed and have its encryption changed in one request.")
        moto_params = {k: v for k, v in params.items()
                       if k not in {"Encrypted", "KmsKeyId", "NewClusterIdentifier", "PubliclyAccessible",
                                    "EnhancedVpcRouting"}}
        other_changes = [k for k in moto_params if k not in {"Action", "Version", "ClusterIdentifier"}]
        reply = forward(moto_params)
        if reply[0] >= 400:
            return reply
        self._keep_attributes(region, cluster, params, new=False)
        if new_id:
            self._rename(region, cluster, cid, new_id)
        elif encryption is not None:
            self._start_resize(cluster, encryption)
        elif other_changes:
            self._start(cluster, "modifying", self.durations.of("modify"))
            self._event(cid, f"Cluster '{cid}' modification started: {', '.join(sorted(other_changes))}.",
                        "management")
        return self._render("ModifyCluster", {"Cluster": cluster})

    def _rename(self, region: str, cluster: MotoCluster, old: str, new: str) -> None:
        if self.host is not None:
            try:
                self.host.rename(old, new)
            except Exception as exc:
                raise ApiError("InternalFailure", f"The sandbox could not rename {old} to {new}: {exc}", 500) from exc
        backend = self._backend(region)
        # Rebinding by hand: moto's own rename deletes and silently replaces.
        backend.clusters.pop(old)
        cluster.cluster_identifier = new
        backend.clusters[new] = cluster
        state = cluster_state(cluster)
        if state.data_endpoint is not None:
            state.endpoint = self._name_endpoint(region, new) or state.endpoint
        # The old name is deleted but stays cached: it keeps reaching this cluster for a while.
        self._cached_names[(region, old)] = (cluster, self.clock())
        self._start(cluster, "renaming", self.durations.of("rename"), apply={"renamed_from": old})
        self._event(new, f"Cluster '{old}' is being renamed to '{new}'.", "management")

    def _do_RebootCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster_in(region, cid, "available", "Cluster {cid} is in state {status}; cannot reboot.")
        self._start(cluster, "rebooting", self.durations.of("reboot"))
        self._event(cid, f"Cluster '{cid}' is being rebooted.", "management")
        return self._render("RebootCluster", {"Cluster": cluster})

    def _do_DeleteCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status in ("deleting", "final-snapshot"):
            raise ApiError("InvalidClusterState", f"Cluster {cid} is already being deleted.")
        skip = as_bool(params.get("SkipFinalClusterSnapshot")) is True
        final_id = params.get("FinalClusterSnapshotIdentifier") or None
        # DeleteCluster: SkipFinalClusterSnapshot defaults to false, and then the identifier is required.
        if not skip and final_id is None:
            raise ApiError("InvalidParameterCombination",
                           "FinalClusterSnapshotIdentifier is required unless SkipFinalClusterSnapshot is specified.")
        if skip and final_id is not None:
            raise ApiError("InvalidParameterCombination",
                           "FinalClusterSnapshotIdentifier must not be given when SkipFinalClusterSnapshot is true.")
        if final_id is not None and final_id in self._backend(region).snapshots:
            raise ApiError("ClusterSnapshotAlreadyExists", f"Snapshot {final_id} already exists.")
        reply = forward({"SkipFinalClusterSnapshot": "true" if skip else "false", **params})
        if reply[0] >= 400:
            return reply
        state = cluster_state(cluster)
        state.op = None
        state.paused = False
        # moto forgot it at once; it stays visible until its time is up.
        self._backend(region).clusters[cid] = cluster
        if final_id is not None:
            snapshot = self._backend(region).snapshots[final_id]
            setattr(snapshot, "kms_key_id", cluster.kms_key_id)
            duration = self.durations.of("snapshot")
            snapshot.status = "creating"
            self._snapshot_ops[(region, final_id)] = Op("creating", self.clock(), duration,
                                                         apply={"cluster_id": cid})
            self._start(cluster, "final-snapshot", duration, apply={"snapshot": final_id})
            self._event(cid, f"Amazon Redshift cluster '{cid}' is being deleted; taking final snapshot "
                             f"'{final_id}' first.", "management")
        else:
            self._start(cluster, "deleting", self.durations.of("delete"))
            self._event(cid, f"Amazon Redshift cluster '{cid}' is being deleted.", "management")
        rendered = self._render("DeleteCluster", {"Cluster": cluster})
        self._tick_region(region, self.clock())
        return rendered

    def _do_ModifyClusterIamRoles(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster_in(region, cid, "available",
                                   "Cluster {cid} is {status}; roles change only when it is available.")
        add = member_list(params, "AddIamRoles", "IamRoleArn")
        remove = set(member_list(params, "RemoveIamRoles", "IamRoleArn"))
        roles = [r for r in cluster.iam_roles_arn if r not in remove] + [r for r in add if r not in cluster.iam_roles_arn]
        check = {f"IamRoles.IamRoleArn.{i}": r for i, r in enumerate(roles, start=1)}
        if params.get("DefaultIamRoleArn"):
            check["DefaultIamRoleArn"] = params["DefaultIamRoleArn"]
        self._check_references(region, check)
        cluster.iam_roles_arn = roles
        default = cluster.__dict__.get("DefaultIamRoleArn")
        if params.get("DefaultIamRoleArn"):
            cluster.__dict__["DefaultIamRoleArn"] = params["DefaultIamRoleArn"]
        elif default in remove:
            cluster.__dict__.pop("DefaultIamRoleArn", None)
        self._event(cid, f"Cluster '{cid}' IAM roles were changed.", "management")
        return self._render("ModifyClusterIamRoles", {"Cluster": cluster})

    def _do_PauseCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster_in(region, cid, "available",
                                   "Cluster {cid} is {status}; only an available cluster can be paused.")
        self._start(cluster, "pausing", self.durations.of("pause"))
        self._event(cid, f"Cluster '{cid}' is being paused.", "management")
        return self._render("PauseCluster", {"Cluster": cluster})

    def _do_ResumeCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster_in(region, cid, "paused",
                                   "Cluster {cid} is {status}; only a paused cluster can be resumed.")
        cluster_state(cluster).paused = False
        self._start(cluster, "resuming", self.durations.of("resume"))
        self._event(cid, f"Cluster '{cid}' is being resumed.", "management")
        return self._render("ResumeCluster", {"Cluster": cluster})
