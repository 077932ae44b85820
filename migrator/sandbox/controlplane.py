"""Redshift control plane over moto: what moto 5.2.5 does not model.

moto keeps the clusters; this layer owns how they look over time. Every
Redshift query-protocol request passes through :meth:`RedshiftControlPlane.handle`
which either answers it itself (reboot, resize progress, events, HSM objects),
or validates it, forwards it to moto and then finishes the job moto leaves undone
(status transitions, KMS key, endpoint, rename without silent replacement).

Time is evaluated lazily from timestamps against an injectable clock, so no
background thread exists and tests control time without sleeping.
"""

from __future__ import annotations

import functools
import json
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence
from xml.sax.saxutils import escape

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.redshift.models import Cluster as MotoCluster
from moto.redshift.models import RedshiftBackend, redshift_backends
from moto.redshift.responses import RedshiftResponse

from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.info import LEGACY_UNENCRYPTED_TAG
from migrator.sandbox.interfaces import ClusterHost

Clock = Callable[[], float]
#: (HTTP status, headers, body) as the WSGI layer sends it.
Reply = tuple[int, list[tuple[str, str]], bytes]
#: Hands (possibly rewritten) form parameters to moto and returns its reply.
Forward = Callable[[dict[str, str]], Reply]

_MUTATING = re.compile(r"^(Create|Modify|Delete|Reboot|Restore|Enable|Disable|Pause|Resume|Resize|Rotate"
                       r"|Authorize|Revoke|Copy|Purge|Reset)")
# Actions where moto answers an unknown cluster with a 500 (KeyError) instead of ClusterNotFound.
_NEEDS_EXISTING_CLUSTER = frozenset({
    "EnableSnapshotCopy", "DisableSnapshotCopy", "ModifySnapshotCopyRetentionPeriod",
    "EnableLogging", "DisableLogging", "DescribeLoggingStatus",
})
_TRANSITION_AVAILABILITY = {"creating": "Unavailable", "deleting": "Unavailable", "final-snapshot": "Unavailable",
                            "rebooting": "Modifying", "resizing": "Modifying", "renaming": "Modifying",
                            "modifying": "Modifying", "pausing": "Modifying", "resuming": "Modifying",
                            "paused": "Paused", "available": "Available"}
# Statuses in which a cluster's name reaches its data ("renaming" only through the cached old name).
_REACHABLE = frozenset({"available", "modifying", "resizing"})
_REACHABLE_CACHED = _REACHABLE | {"renaming"}
# Statuses whose start drops every open connection ("Renaming clusters": the cluster is rebooted and
# existing connections are dropped; RebootCluster: a momentary outage).
_DROPS_CONNECTIONS = frozenset({"rebooting", "pausing", "final-snapshot", "deleting"})
_MOTO_ACTIONS = frozenset(name for name in dir(RedshiftResponse) if not name.startswith("_"))



# botocore model, CreateCluster NodeType "Valid Values" (dc1/ds2 are retired and no longer listed).
_NODE_TYPES = frozenset({"dc2.large", "dc2.8xlarge", "rg.large", "rg.xlarge", "rg.4xlarge", "rg.12xlarge",
                         "ra3.large", "ra3.xlplus", "ra3.4xlarge", "ra3.16xlarge"})
_CLUSTER_ID = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")


def _check_cluster_id(cid: str) -> None:
    """ClusterIdentifier / NewClusterIdentifier rules (botocore redshift model docs)."""
    if not _CLUSTER_ID.fullmatch(cid):
        raise ApiError("InvalidParameterValue",
                       f"Invalid cluster identifier '{cid}': 1-63 lowercase letters, digits or hyphens, "
                       f"starting with a letter, no trailing or double hyphen.")
_MASTER_USER = re.compile(r"[a-z][a-z0-9_+.@-]{0,127}")
_DB_NAME = re.compile(r"[a-z0-9]{1,64}")
_MAX_TAGS = 50
_MAX_IAM_ROLES = 50
_MAINTENANCE_TRACKS = frozenset({"current", "trailing"})


class ApiError(Exception):
    """An error answered in Redshift's XML error format (status taken from botocore's model)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Durations:
    """Seconds each transition takes (multiplied by ``scale``); 0 makes it instant."""

    create: float = 2.0
    modify: float = 3.0
    rename: float = 1.0
    reboot: float = 1.0
    delete: float = 1.0
    snapshot: float = 1.0
    pause: float = 1.0
    resume: float = 1.0
    #: How long an old cluster name stays cached after a rename (still reaching the renamed cluster).
    dns: float = 2.0
    scale: float = 1.0

    def of(self, kind: str) -> float:
        return max(0.0, float(getattr(self, kind)) * self.scale)


@dataclass
class _Op:
    status: str  # what describe_clusters shows while it runs
    started: float
    duration: float
    apply: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Resize:
    target_encryption: str
    started: float
    duration: float
    tables: list[str]
    finished_at: float | None = None
    failed: bool = False


@dataclass
class ClusterState:
    op: _Op | None = None
    shown: str | None = None
    endpoint: tuple[str, int] | None = None  # what Endpoint shows: the name's address
    data_endpoint: tuple[str, int] | None = None  # where the cluster's data really is (the host's proxy)
    gone: bool = False
    paused: bool = False
    hsm_certificate: str | None = None
    hsm_configuration: str | None = None
    resize: _Resize | None = None


class _SandboxCluster(MotoCluster):
    """moto's Cluster whose presented status, endpoint and HSM come from the control plane."""

    @property
    def status(self) -> str:
        state: ClusterState = self.__dict__["_sandbox"]
        return state.shown or self.__dict__.get("_base_status", "available")

    @status.setter
    def status(self, value: str) -> None:
        self.__dict__["_base_status"] = value

    @property
    def endpoint(self) -> dict[str, str | int] | None:
        state: ClusterState = self.__dict__["_sandbox"]
        if self.status == "creating":
            return None  # no endpoint until the cluster exists (DescribeClusters omits it)
        if state.endpoint is None:
            return {"Address": self.address, "Port": self.port}
        return {"Address": state.endpoint[0], "Port": state.endpoint[1]}

    @property
    def hsm_status(self) -> dict[str, str] | None:
        state: ClusterState = self.__dict__["_sandbox"]
        if not state.hsm_certificate:
            return None
        return {"HsmClientCertificateIdentifier": state.hsm_certificate,
                "HsmConfigurationIdentifier": state.hsm_configuration or "", "Status": "active"}

    @property
    def pending_modified_values(self) -> dict[str, str] | None:  # type: ignore[override]
        state: ClusterState = self.__dict__["_sandbox"]
        if state.op and "encrypted" in state.op.apply:
            return {"EncryptionType": "KMS" if state.op.apply["encrypted"] else "NONE"}
        return None

    @property
    def cluster_availability_status(self) -> str:
        return _TRANSITION_AVAILABILITY.get(self.status, "Unavailable")


# Keep moto's serializer aliasing (it may derive attribute names from the class name).
_SandboxCluster.__name__ = "Cluster"
_SandboxCluster.__qualname__ = "Cluster"


def _state(cluster: MotoCluster) -> ClusterState:
    if not isinstance(cluster, _SandboxCluster):
        base = cluster.__dict__.pop("status", "available")
        cluster.__class__ = _SandboxCluster  # type: ignore[type-abstract]  # same layout, more behaviour
        cluster.__dict__["_base_status"] = base
        cluster.__dict__["_sandbox"] = ClusterState()
    state: ClusterState = cluster.__dict__["_sandbox"]
    return state


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() == "true"


def _tags(params: dict[str, str]) -> list[dict[str, str]]:
    found: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        m = re.fullmatch(r"Tags\.Tag\.(\d+)\.(Key|Value)", key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return [found[i] for i in sorted(found)]


def _members(params: dict[str, str], name: str, member: str) -> list[str]:
    """A query-protocol list parameter (``Name.Member.N``) in order."""
    found: dict[int, str] = {}
    for key, value in params.items():
        m = re.fullmatch(rf"{name}\.{member}\.(\d+)", key)
        if m:
            found[int(m.group(1))] = value
    return [found[i] for i in sorted(found)]


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class RedshiftControlPlane:
    """The part of Redshift's API moto lacks; thread-safe (one lock around every call)."""

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
        self._snapshot_ops: dict[tuple[str, str], _Op] = {}
        # (region, old name) → (renamed cluster, renamed at): "could remain cached for a few minutes";
        # the time it stays cached is durations.dns, read when asked, so a test can shorten it.
        self._snapshot_schedules: dict[str, dict[str, Any]] = {}
        self._cached_names: dict[tuple[str, str], tuple[MotoCluster, float]] = {}
        #: Listeners per cluster name (set by AwsSandbox); None reports the data plane's own address.
        self.names: Any = None

    # ------------------------------------------------------------------ public

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
                    return self._reachable(cluster, _REACHABLE_CACHED)
                del self._cached_names[(region, name)]
            holder = self._backend(region).clusters.get(name)
            return self._reachable(holder, _REACHABLE) if holder is not None else None

    @staticmethod
    def _reachable(cluster: MotoCluster, statuses: frozenset[str]) -> tuple[str, int] | None:
        state = _state(cluster)
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
                    error = _error_code(reply[2])
            except ApiError as exc:
                error = exc.code
                reply = self._render_error(action, exc)
            if _MUTATING.match(action):
                self._log_call(action, params, error)
            if error is None and self.faults is not None and _MUTATING.match(action) and self.faults.take(
                    "reply_lost", operation=action, cluster_id=params.get("ClusterIdentifier")) is not None:
                # The request took effect; only its answer is lost (a 500 on the way back, as after a
                # timeout behind the endpoint). botocore retries it as it retries any 5xx.
                reply = self._render_error(action, ApiError(
                    "InternalFailure", "The request processing has failed because of an unknown error.", 500))
            return reply

    # ----------------------------------------------------------------- dispatch

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

    def _backend(self, region: str) -> RedshiftBackend:
        backend: RedshiftBackend = redshift_backends[self.account_id][region]
        return backend

    def _cluster(self, region: str, cluster_id: str) -> MotoCluster:
        cluster = self._backend(region).clusters.get(cluster_id)
        if cluster is None:
            raise ApiError("ClusterNotFound", f"Cluster {cluster_id} not found.")
        _state(cluster)
        return cluster

    # ------------------------------------------------------------ cluster calls

    def _do_CreateCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        params = dict(params)
        legacy = self._take_legacy_tag(params)
        if "Encrypted" not in params:
            params["Encrypted"] = "true"  # CreateCluster: "Default: true"
        elif _bool(params["Encrypted"]) is False and not legacy:
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
        tags = _tags(params)
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

    def _check_new_cluster(self, region: str, params: dict[str, str], *, creating: bool) -> None:
        """CreateCluster / RestoreFromClusterSnapshot parameter rules from the botocore model's docs."""
        cid = params.get("ClusterIdentifier", "")
        _check_cluster_id(cid)
        if cid in self._backend(region).clusters:
            raise ApiError("ClusterAlreadyExists", f"Cluster {cid} already exists.")
        node_type = params.get("NodeType")
        if node_type is not None and node_type not in _NODE_TYPES:
            raise ApiError("InvalidParameterValue",
                           f"Invalid node type '{node_type}'; valid node types: {', '.join(sorted(_NODE_TYPES))}.")
        self._check_nodes(params, creating=creating)
        if params.get("Port"):
            self._check_port(int(params["Port"]), node_type or "")
        if creating:
            self._check_credentials(params)
        self._check_references(region, params)
        self._check_tags(params)
        self._check_retention(params)
        track = params.get("MaintenanceTrackName")
        if track and track not in _MAINTENANCE_TRACKS:
            raise ApiError("InvalidClusterTrack", f"Maintenance track '{track}' does not exist.")

    @staticmethod
    def _check_nodes(params: dict[str, str], *, creating: bool) -> None:
        # CreateCluster ClusterType "Default: multi-node" (then NumberOfNodes is required).
        kind = params.get("ClusterType") or ("multi-node" if creating else None)
        nodes = int(params["NumberOfNodes"]) if params.get("NumberOfNodes") else None
        if nodes is not None and not 1 <= nodes <= 100:
            raise ApiError("InvalidParameterValue", f"NumberOfNodes must be 1 to 100, not {nodes}.")
        if kind is not None and kind not in ("single-node", "multi-node"):
            raise ApiError("InvalidParameterValue", f"ClusterType must be single-node or multi-node, not '{kind}'.")
        if kind == "multi-node" and (nodes is None or nodes < 2):
            raise ApiError("InvalidParameterCombination", "A multi-node cluster needs NumberOfNodes of 2 or more.")
        if kind == "single-node" and nodes not in (None, 1):
            raise ApiError("InvalidParameterCombination", "A single-node cluster cannot have NumberOfNodes > 1.")

    @staticmethod
    def _check_port(port: int, node_type: str) -> None:
        if node_type.startswith(("ra3.", "rg.")) or not node_type:
            if not (5431 <= port <= 5455 or 8191 <= port <= 8215):
                raise ApiError("InvalidParameterValue",
                               f"Port {port} is not allowed for {node_type or 'RA3'} nodes: choose 5431-5455 "
                               f"or 8191-8215.")
        elif not 1150 <= port <= 65535:
            raise ApiError("InvalidParameterValue", f"Port {port} is not allowed: choose 1150-65535.")

    @staticmethod
    def _check_credentials(params: dict[str, str]) -> None:
        user = params.get("MasterUsername", "")
        if not _MASTER_USER.fullmatch(user) or user == "public":
            raise ApiError("InvalidParameterValue",
                           f"Invalid master user name '{user}': 1-128 lowercase letters, digits or _+.@-, "
                           f"starting with a letter, not PUBLIC.")
        db_name = params.get("DBName")
        if db_name is not None and not _DB_NAME.fullmatch(db_name):
            raise ApiError("InvalidParameterValue",
                           f"Invalid database name '{db_name}': 1-64 lowercase letters or digits.")
        managed = _bool(params.get("ManageMasterPassword")) is True
        password = params.get("MasterUserPassword")
        if managed and password:
            raise ApiError("InvalidParameterCombination",
                           "MasterUserPassword cannot be given when ManageMasterPassword is true.")
        if managed:
            return
        if not password:
            raise ApiError("MissingParameter", "The request must contain the parameter MasterUserPassword.")
        if not (8 <= len(password) <= 64 and re.search(r"[A-Z]", password) and re.search(r"[a-z]", password)
                and re.search(r"[0-9]", password)
                and all(33 <= ord(ch) <= 126 and ch not in "'\"\\/@" for ch in password)):
            # Never echo the password itself.
            raise ApiError("InvalidParameterValue",
                           "The master user password must be 8-64 printable ASCII characters with an upper case "
                           "letter, a lower case letter and a digit, and no ' \" \\ / @ or space.")

    def _check_references(self, region: str, params: dict[str, str]) -> None:
        backend = self._backend(region)
        group = params.get("ClusterParameterGroupName")
        if group and group not in backend.parameter_groups:
            raise ApiError("ClusterParameterGroupNotFound", f"Cluster parameter group {group} not found.")
        subnet = params.get("ClusterSubnetGroupName")
        if subnet and subnet not in backend.subnet_groups:
            raise ApiError("ClusterSubnetGroupNotFoundFault", f"Cluster subnet group {subnet} not found.")
        for name in _members(params, "ClusterSecurityGroups", "ClusterSecurityGroupName"):
            if name not in backend.security_groups:
                raise ApiError("ClusterSecurityGroupNotFound", f"Cluster security group {name} not found.")
        ec2 = ec2_backends[self.account_id][region]
        for group_id in _members(params, "VpcSecurityGroupIds", "VpcSecurityGroupId"):
            if ec2.get_security_group_from_id(group_id) is None:
                raise ApiError("InvalidParameterValue", f"VPC security group {group_id} does not exist.")
        roles = _members(params, "IamRoles", "IamRoleArn")
        if len(roles) > _MAX_IAM_ROLES:
            raise ApiError("LimitExceededFault", f"At most {_MAX_IAM_ROLES} IAM roles can be associated.")
        default_role = params.get("DefaultIamRoleArn")
        if default_role and default_role not in roles:
            raise ApiError("InvalidParameterValue", "DefaultIamRoleArn must be one of the IamRoles given.")
        iam = iam_backends[self.account_id]["global"]
        for arn in roles:
            try:
                iam.get_role_by_arn(arn)
            except Exception as exc:  # moto raises IAMNotFoundException
                raise ApiError("InvalidParameterValue", f"IAM role {arn} does not exist.") from exc
        elastic_ip = params.get("ElasticIp")
        if elastic_ip:
            if _bool(params.get("PubliclyAccessible")) is not True:
                raise ApiError("InvalidParameterCombination", "ElasticIp requires PubliclyAccessible=true.")
            try:
                ec2.address_by_ip([elastic_ip])
            except Exception as exc:
                raise ApiError("InvalidElasticIpFault", f"Elastic IP {elastic_ip} is not allocated.") from exc
        schedule = params.get("SnapshotScheduleIdentifier")
        if schedule and schedule not in self._snapshot_schedules:
            raise ApiError("SnapshotScheduleNotFound", f"Snapshot schedule {schedule} not found.")

    @staticmethod
    def _check_tags(params: dict[str, str]) -> None:
        tags = _tags(params)
        if len(tags) > _MAX_TAGS:
            raise ApiError("TagLimitExceededFault", f"At most {_MAX_TAGS} tags per resource; {len(tags)} given.")
        for tag in tags:
            if tag.get("Key", "").lower().startswith("aws:"):
                raise ApiError("InvalidTagFault", f"Tag key '{tag['Key']}' uses the reserved prefix aws:.")

    @staticmethod
    def _check_retention(params: dict[str, str]) -> None:
        automated = params.get("AutomatedSnapshotRetentionPeriod")
        node_type = params.get("NodeType", "")
        if automated is not None:
            days = int(automated)
            if not 0 <= days <= 35:
                raise ApiError("InvalidRetentionPeriodFault", "AutomatedSnapshotRetentionPeriod must be 0 to 35.")
            if days == 0 and node_type.startswith(("ra3.", "rg.")):
                raise ApiError("InvalidParameterValue",
                               "Automated snapshots cannot be disabled for RA3 node types (1 to 35 days).")
        manual = params.get("ManualSnapshotRetentionPeriod")
        if manual is not None and not (int(manual) == -1 or 1 <= int(manual) <= 3653):
            raise ApiError("InvalidRetentionPeriodFault", "ManualSnapshotRetentionPeriod must be -1 or 1 to 3653.")

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
                attrs[attr] = _bool(params[flag])  # moto keeps ModifyCluster's raw string
        if params.get("ManualSnapshotRetentionPeriod"):
            attrs["ManualSnapshotRetentionPeriod"] = int(params["ManualSnapshotRetentionPeriod"])
        if params.get("AutomatedSnapshotRetentionPeriod"):
            cluster.automated_snapshot_retention_period = int(params["AutomatedSnapshotRetentionPeriod"])
        if params.get("MaintenanceTrackName"):
            attrs["MaintenanceTrackName"] = params["MaintenanceTrackName"]
        if params.get("MultiAZ") is not None:
            attrs["MultiAZ"] = "Enabled" if _bool(params["MultiAZ"]) else "Disabled"
        if params.get("DefaultIamRoleArn"):
            attrs["DefaultIamRoleArn"] = params["DefaultIamRoleArn"]
        if params.get("ElasticIp"):
            attrs["ElasticIpStatus"] = {"ElasticIp": params["ElasticIp"], "Status": "active"}
        schedule = params.get("SnapshotScheduleIdentifier")
        if schedule:
            self._associate_schedule(cluster, schedule)

    def _associate_schedule(self, cluster: MotoCluster, schedule: str | None) -> None:
        attrs = cluster.__dict__
        if schedule is None:
            attrs.pop("SnapshotScheduleIdentifier", None)
            attrs.pop("SnapshotScheduleState", None)
            return
        attrs["SnapshotScheduleIdentifier"] = schedule
        attrs["SnapshotScheduleState"] = "ACTIVE"

    def _restore_encryption(self, region: str, snapshot: Any, params: dict[str, str], node_type: str,
                            hsm: bool) -> tuple[bool, str | None]:
        """(encrypted, key ARN) of the restored cluster, per RestoreFromClusterSnapshot's Encrypted/KmsKeyId."""
        wanted = _bool(params.get("Encrypted"))
        key_ref = params.get("KmsKeyId")
        own_key: str | None = getattr(snapshot, "kms_key_id", None)
        if hsm:
            if key_ref:
                raise ApiError("InvalidParameterCombination", "A cluster uses either a KMS key or an HSM, not both.")
            return True, None
        if snapshot.encrypted:
            if wanted is False:
                raise ApiError("InvalidParameterCombination",
                               "An encrypted snapshot cannot be restored to an unencrypted cluster.")
            # A new key for an encrypted snapshot of this account re-encrypts the restored cluster with it.
            return True, self._resolve_kms_key(region, key_ref) if key_ref else own_key
        if wanted is not True:
            if key_ref:
                raise ApiError("InvalidParameterCombination",
                               "Restoring an unencrypted snapshot with a KmsKeyId requires Encrypted=true.")
            return False, None
        if not key_ref:
            raise ApiError("InvalidParameterCombination",
                           "Restoring an unencrypted snapshot to an encrypted cluster requires a customer managed "
                           "KmsKeyId.")
        if not node_type.startswith("ra3."):
            raise ApiError("InvalidRestore",
                           f"An unencrypted snapshot can be restored to a KMS-encrypted cluster only on RA3 node "
                           f"types, not {node_type}.")
        return True, self._resolve_kms_key(region, key_ref)

    def _begin_new_cluster(self, region: str, cluster: MotoCluster, cert: str | None, conf: str | None,
                           source_snapshot: Any) -> None:
        state = _state(cluster)
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
        state = _state(cluster)
        if cluster.status != "available":
            raise ApiError("InvalidClusterState",
                           f"There is an operation running on the Cluster {cid}. Please try to modify it later.")
        new_id = params.get("NewClusterIdentifier")
        if new_id is not None:
            _check_cluster_id(new_id)
        if new_id and new_id in self._backend(region).clusters:
            raise ApiError("ClusterAlreadyExists", "Cluster already exists")
        if params.get("HsmClientCertificateIdentifier") or params.get("HsmConfigurationIdentifier"):
            raise ApiError("UnsupportedOperation",
                           "Changing a cluster to HSM encryption requires a new cluster (unload and copy).")
        self._check_tags(params)
        self._check_retention({**params, "NodeType": params.get("NodeType") or cluster.node_type})
        track = params.get("MaintenanceTrackName")
        if track and track not in _MAINTENANCE_TRACKS:
            raise ApiError("InvalidClusterTrack", f"Maintenance track '{track}' does not exist.")
        if params.get("ElasticIp") and _bool(params.get("PubliclyAccessible", str(cluster.publicly_accessible))) \
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

    def _encryption_change(self, region: str, cluster: MotoCluster, params: dict[str, str]) -> dict[str, Any] | None:
        """What an encryption-related modify asks for, or None when it changes nothing."""
        wanted = _bool(params.get("Encrypted"))
        key_ref = params.get("KmsKeyId")
        encrypted = bool(cluster.encrypted)
        if wanted is False:
            if key_ref:
                raise ApiError("InvalidParameterCombination", "KmsKeyId cannot be given with Encrypted=false.")
            return {"encrypted": False, "kms_key_id": None} if encrypted else None
        if wanted is None and not key_ref:
            return None
        if wanted is None and not encrypted:
            raise ApiError("InvalidParameterCombination",
                           "KmsKeyId requires Encrypted=true for a cluster that is not encrypted.")
        key_arn = self._resolve_kms_key(region, key_ref) if key_ref else None
        if encrypted and key_arn == cluster.kms_key_id and not _state(cluster).hsm_certificate:
            return None
        return {"encrypted": True, "kms_key_id": key_arn}

    def _start_resize(self, cluster: MotoCluster, change: dict[str, Any]) -> None:
        cid = cluster.cluster_identifier
        duration = self.durations.of("modify")
        now = self.clock()
        target = "KMS" if change["encrypted"] else "NONE"
        state = _state(cluster)
        state.resize = _Resize(target, now, duration, list(self._table_names(cid)))
        self._start(cluster, "resizing", duration, apply=change)
        what = "encryption with KMS" if change["encrypted"] else "decryption"
        self._event(cid, f"Cluster '{cid}' {what} has started; the cluster is read-only until it completes.",
                    "management")

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
        state = _state(cluster)
        if state.data_endpoint is not None:
            state.endpoint = self._name_endpoint(region, new) or state.endpoint
        # The old name is deleted but stays cached: it keeps reaching this cluster for a while.
        self._cached_names[(region, old)] = (cluster, self.clock())
        self._start(cluster, "renaming", self.durations.of("rename"), apply={"renamed_from": old})
        self._event(new, f"Cluster '{old}' is being renamed to '{new}'.", "management")

    def _do_RebootCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status != "available":
            raise ApiError("InvalidClusterState", f"Cluster {cid} is in state {cluster.status}; cannot reboot.")
        self._start(cluster, "rebooting", self.durations.of("reboot"))
        self._event(cid, f"Cluster '{cid}' is being rebooted.", "management")
        return self._render("RebootCluster", {"Cluster": cluster})

    def _do_DeleteCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status in ("deleting", "final-snapshot"):
            raise ApiError("InvalidClusterState", f"Cluster {cid} is already being deleted.")
        skip = _bool(params.get("SkipFinalClusterSnapshot")) is True
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
        state = _state(cluster)
        state.op = None
        state.paused = False
        # moto forgot it at once; it stays visible until its time is up.
        self._backend(region).clusters[cid] = cluster
        if final_id is not None:
            snapshot = self._backend(region).snapshots[final_id]
            setattr(snapshot, "kms_key_id", cluster.kms_key_id)
            duration = self.durations.of("snapshot")
            snapshot.status = "creating"
            self._snapshot_ops[(region, final_id)] = _Op("creating", self.clock(), duration,
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

    def _do_CreateSnapshotSchedule(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("ScheduleIdentifier", "")
        if name in self._snapshot_schedules:
            raise ApiError("SnapshotScheduleAlreadyExists", f"Snapshot schedule {name} already exists.")
        definitions = _members(params, "ScheduleDefinitions", "ScheduleDefinition")
        if not definitions or not all(re.fullmatch(r"(rate|cron)\(.+\)", d) for d in definitions):
            raise ApiError("InvalidSchedule", "ScheduleDefinitions must be rate(...) or cron(...) expressions.")
        self._check_tags(params)
        self._snapshot_schedules[name] = {"ScheduleIdentifier": name, "ScheduleDefinitions": definitions,
                                          "ScheduleDescription": params.get("ScheduleDescription", ""),
                                          "Tags": _tags(params)}
        return self._render("CreateSnapshotSchedule", self._schedule_view(region, name))

    def _schedule_view(self, region: str, name: str) -> dict[str, Any]:
        clusters = [c for c in self._backend(region).clusters.values()
                    if c.__dict__.get("SnapshotScheduleIdentifier") == name and not _state(c).gone]
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
        if _bool(params.get("DisassociateSchedule")) is True:
            self._associate_schedule(cluster, None)
        else:
            schedule = params.get("ScheduleIdentifier", "")
            if schedule not in self._snapshot_schedules:
                raise ApiError("SnapshotScheduleNotFound", f"Snapshot schedule {schedule} not found.")
            self._associate_schedule(cluster, schedule)
        return self._render("ModifyClusterSnapshotSchedule", None)

    def _do_ModifyClusterIamRoles(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status != "available":
            raise ApiError("InvalidClusterState", f"Cluster {cid} is {cluster.status}; roles change only when "
                                                  f"it is available.")
        add = _members(params, "AddIamRoles", "IamRoleArn")
        remove = set(_members(params, "RemoveIamRoles", "IamRoleArn"))
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
        cluster = self._cluster(region, cid)
        if cluster.status != "available":
            raise ApiError("InvalidClusterState", f"Cluster {cid} is {cluster.status}; only an available cluster "
                                                  f"can be paused.")
        self._start(cluster, "pausing", self.durations.of("pause"))
        self._event(cid, f"Cluster '{cid}' is being paused.", "management")
        return self._render("PauseCluster", {"Cluster": cluster})

    def _do_ResumeCluster(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status != "paused":
            raise ApiError("InvalidClusterState", f"Cluster {cid} is {cluster.status}; only a paused cluster "
                                                  f"can be resumed.")
        _state(cluster).paused = False
        self._start(cluster, "resuming", self.durations.of("resume"))
        self._event(cid, f"Cluster '{cid}' is being resumed.", "management")
        return self._render("ResumeCluster", {"Cluster": cluster})

    def _do_DescribeResize(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        resize = _state(cluster).resize
        if resize is None:
            raise ApiError("ResizeNotFound", f"The cluster {cid} has no resize operation.")
        return self._render("DescribeResize", self._resize_progress(cluster, resize))

    def _resize_progress(self, cluster: MotoCluster, resize: _Resize) -> dict[str, Any]:
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

    # --------------------------------------------------------------- snapshots

    def _do_CreateClusterSnapshot(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        cid = params.get("ClusterIdentifier", "")
        cluster = self._cluster(region, cid)
        if cluster.status != "available":
            raise ApiError("InvalidClusterState", f"Cluster {cid} is {cluster.status}; a manual snapshot needs "
                                                  f"an available cluster.")
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
        self._snapshot_ops[(region, snap_id)] = _Op("creating", self.clock(), duration,
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

    # --------------------------------------------------------------------- HSM

    def _check_hsm(self, params: dict[str, str]) -> tuple[str | None, str | None]:
        cert = params.get("HsmClientCertificateIdentifier") or None
        conf = params.get("HsmConfigurationIdentifier") or None
        if cert and cert not in self._hsm_certificates:
            raise ApiError("HsmClientCertificateNotFoundFault", f"HSM client certificate {cert} not found.")
        if conf and conf not in self._hsm_configurations:
            raise ApiError("HsmConfigurationNotFoundFault", f"HSM configuration {conf} not found.")
        if bool(cert) != bool(conf):
            raise ApiError("InvalidParameterCombination",
                           "HsmClientCertificateIdentifier and HsmConfigurationIdentifier must be given together.")
        if cert and _bool(params.get("Encrypted")) is not True:
            raise ApiError("InvalidParameterCombination", "An HSM-encrypted cluster requires Encrypted=true.")
        return cert, conf

    def _do_CreateHsmClientCertificate(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmClientCertificateIdentifier", "")
        if name in self._hsm_certificates:
            raise ApiError("HsmClientCertificateAlreadyExistsFault",
                           f"HSM client certificate {name} already exists.")
        body = "\n".join(secrets.token_urlsafe(48)[:64] for _ in range(4))
        cert = {"HsmClientCertificateIdentifier": name,
                "HsmClientCertificatePublicKey": f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n",
                "Tags": _tags(params)}
        self._hsm_certificates[name] = cert
        return self._render("CreateHsmClientCertificate", {"HsmClientCertificate": cert})

    def _do_DescribeHsmClientCertificates(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmClientCertificateIdentifier")
        if name and name not in self._hsm_certificates:
            raise ApiError("HsmClientCertificateNotFoundFault", f"HSM client certificate {name} not found.")
        found = [self._hsm_certificates[name]] if name else list(self._hsm_certificates.values())
        return self._render("DescribeHsmClientCertificates", {"HsmClientCertificates": found})

    def _do_DeleteHsmClientCertificate(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmClientCertificateIdentifier", "")
        if name not in self._hsm_certificates:
            raise ApiError("HsmClientCertificateNotFoundFault", f"HSM client certificate {name} not found.")
        if any(_state(c).hsm_certificate == name for c in self._all_clusters()):
            raise ApiError("InvalidHsmClientCertificateStateFault",
                           f"HSM client certificate {name} is in use by a cluster.")
        del self._hsm_certificates[name]
        return self._render("DeleteHsmClientCertificate", None)

    def _do_CreateHsmConfiguration(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmConfigurationIdentifier", "")
        if name in self._hsm_configurations:
            raise ApiError("HsmConfigurationAlreadyExistsFault", f"HSM configuration {name} already exists.")
        for required in ("Description", "HsmIpAddress", "HsmPartitionName", "HsmPartitionPassword",
                         "HsmServerPublicCertificate"):
            if not params.get(required):
                raise ApiError("MissingParameter", f"The request must contain the parameter {required}.")
        conf = {"HsmConfigurationIdentifier": name, "Description": params["Description"],
                "HsmIpAddress": params["HsmIpAddress"], "HsmPartitionName": params["HsmPartitionName"],
                "Tags": _tags(params)}
        self._hsm_configurations[name] = conf
        return self._render("CreateHsmConfiguration", {"HsmConfiguration": conf})

    def _do_DescribeHsmConfigurations(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmConfigurationIdentifier")
        if name and name not in self._hsm_configurations:
            raise ApiError("HsmConfigurationNotFoundFault", f"HSM configuration {name} not found.")
        found = [self._hsm_configurations[name]] if name else list(self._hsm_configurations.values())
        return self._render("DescribeHsmConfigurations", {"HsmConfigurations": found})

    def _do_DeleteHsmConfiguration(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        name = params.get("HsmConfigurationIdentifier", "")
        if name not in self._hsm_configurations:
            raise ApiError("HsmConfigurationNotFoundFault", f"HSM configuration {name} not found.")
        if any(_state(c).hsm_configuration == name for c in self._all_clusters()):
            raise ApiError("InvalidHsmConfigurationStateFault", f"HSM configuration {name} is in use by a cluster.")
        del self._hsm_configurations[name]
        return self._render("DeleteHsmConfiguration", None)

    # ------------------------------------------------------------------ events

    def _do_DescribeEvents(self, region: str, params: dict[str, str], forward: Forward) -> Reply:
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        start = _parse_time(params["StartTime"]) if params.get("StartTime") else None
        end = _parse_time(params["EndTime"]) if params.get("EndTime") else now
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

    def _event(self, cluster_id: str, message: str, category: str, at: float | None = None) -> None:
        self._events.append({
            "SourceIdentifier": cluster_id, "SourceType": "cluster", "Message": message,
            "EventCategories": [category], "Severity": "INFO",
            "Date": datetime.fromtimestamp(self.clock() if at is None else at, tz=timezone.utc),
            "EventId": f"REDSHIFT-EVENT-{len(self._events) + 1:04d}",
            "_region": self._current_region,
        })
        self._events.sort(key=lambda e: e["Date"])

    # ------------------------------------------------------------- transitions

    _current_region = "us-east-1"

    def _start(self, cluster: MotoCluster, status: str, duration: float, apply: dict[str, Any] | None = None,
               at: float | None = None) -> None:
        state = _state(cluster)
        state.op = _Op(status, self.clock() if at is None else at, duration, dict(apply or {}))
        state.shown = status
        if status in _DROPS_CONNECTIONS and self.names is not None and state.data_endpoint is not None:
            self.names.drop(state.data_endpoint)

    def _all_clusters(self) -> list[MotoCluster]:
        return [c for r in self._regions for c in self._backend(r).clusters.values()]

    def _tick_region(self, region: str, now: float) -> None:
        self._current_region = region
        backend = self._backend(region)
        for cid, cluster in list(backend.clusters.items()):
            state = _state(cluster)
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

    def _finish(self, region: str, cluster: MotoCluster, op: _Op, done_at: float) -> None:
        """Apply what ``op`` promised; its events carry the time it completed."""
        cid = cluster.cluster_identifier
        now = done_at
        state = _state(cluster)
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

    # --------------------------------------------------------------------- KMS

    def _check_kms_for_new_cluster(self, region: str, params: dict[str, str], hsm: str | None) -> str | None:
        key_ref = params.get("KmsKeyId")
        if not key_ref:
            return None
        if hsm:
            raise ApiError("InvalidParameterCombination", "A cluster uses either a KMS key or an HSM, not both.")
        if _bool(params.get("Encrypted")) is False:
            raise ApiError("InvalidParameterCombination", "KmsKeyId requires Encrypted=true.")
        return self._resolve_kms_key(region, key_ref)

    def _resolve_kms_key(self, region: str, key_ref: str) -> str:
        """The key's ARN if Redshift could use it in ``region``; the error Redshift gives otherwise."""
        key_region = key_ref.split(":")[3] if key_ref.startswith("arn:") and key_ref.count(":") >= 5 else region
        if key_region != region:
            raise ApiError("InvalidParameterValue",
                           f"The KMS key {key_ref} is in region {key_region}; it must be in the cluster's "
                           f"region {region}.")
        backend = kms_backends[self.account_id][region]
        try:
            key = backend.keys[backend.any_id_to_key_id(key_ref)]
        except Exception as exc:  # moto raises KeyError/AttributeError for unknown ids and aliases
            raise ApiError("InvalidParameterValue",
                           f"The KMS key '{key_ref}' does not exist or Amazon Redshift is not allowed to use it."
                           ) from exc
        if key.key_state != "Enabled":
            raise ApiError("InvalidParameterValue",
                           f"The KMS key {key.arn} is not enabled (state {key.key_state}); "
                           f"Amazon Redshift cannot use it.")
        arn: str = key.arn
        return arn

    # --------------------------------------------------------------- rendering

    def _render(self, action: str, result: Any) -> Reply:
        return self._serialize(action, result)

    def _render_error(self, action: str, error: ApiError) -> Reply:
        status = error.status or _error_statuses().get(error.code, 400)
        kind = "Sender" if status < 500 else "Receiver"
        body = (f'<ErrorResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><Error><Type>{kind}</Type>'
                f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
        return status, [("Content-Type", "text/xml")], body.encode()

    def _serialize(self, action: str, result: Any) -> Reply:
        model = get_service_model("redshift")
        try:
            operation = model.operation_model(action)
        except Exception:
            operation = model.operation_model("DescribeClusters")  # only errors take this path
        serializer = get_serializer_class("redshift", "query")(
            operation_model=operation, value_picker=XFormedAttributePicker())
        out = serializer.serialize(result)
        headers = [(k, str(v)) for k, v in out["headers"].items()]
        body = out["body"]
        return int(out["status_code"]), headers, body.encode() if isinstance(body, str) else body

    # --------------------------------------------------------------- call log

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


@functools.lru_cache(maxsize=1)
def _error_statuses() -> dict[str, int]:
    """Error code → HTTP status, as Redshift's service model declares them."""
    model = get_service_model("redshift")
    out: dict[str, int] = {}
    for name in model.shape_names:
        error = model.shape_for(name).metadata.get("error")
        if error:
            out[str(error.get("code", name))] = int(error.get("httpStatusCode", 400))
    return out


def _error_code(body: bytes) -> str:
    m = re.search(rb"<Code>([^<]+)</Code>", body)
    return m.group(1).decode() if m else "InternalFailure"


def wall_clock() -> float:
    return time.time()
