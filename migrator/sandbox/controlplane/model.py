"""The control plane's vocabulary: the request/reply types, `ApiError`, `Durations`, and the
state the sandbox keeps per cluster (`ClusterState`, running `Op`s, the encryption `ResizeJob`)
on moto's own `Cluster` objects (`SandboxCluster`, reached through `cluster_state`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from moto.redshift.models import Cluster as MotoCluster


Clock = Callable[[], float]
#: (HTTP status, headers, body) as the WSGI layer sends it.
Reply = tuple[int, list[tuple[str, str]], bytes]
#: Hands (possibly rewritten) form parameters to moto and returns its reply.
Forward = Callable[[dict[str, str]], Reply]

_TRANSITION_AVAILABILITY = {"creating": "Unavailable", "deleting": "Unavailable", "final-snapshot": "Unavailable",
                            "rebooting": "Modifying", "resizing": "Modifying", "renaming": "Modifying",
                            "modifying": "Modifying", "pausing": "Modifying", "resuming": "Modifying",
                            "paused": "Paused", "available": "Available"}
# Statuses in which a cluster's name reaches its data ("renaming" only through the cached old name).
REACHABLE = frozenset({"available", "modifying", "resizing"})
REACHABLE_CACHED = REACHABLE | {"renaming"}


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
class Op:
    status: str  # what describe_clusters shows while it runs
    started: float
    duration: float
    apply: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResizeJob:
    target_encryption: str
    started: float
    duration: float
    tables: list[str]
    finished_at: float | None = None
    failed: bool = False


@dataclass
class ClusterState:
    op: Op | None = None
    shown: str | None = None
    endpoint: tuple[str, int] | None = None  # what Endpoint shows: the name's address
    data_endpoint: tuple[str, int] | None = None  # where the cluster's data really is (the host's proxy)
    gone: bool = False
    paused: bool = False
    hsm_certificate: str | None = None
    hsm_configuration: str | None = None
    resize: ResizeJob | None = None


class SandboxCluster(MotoCluster):
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
SandboxCluster.__name__ = "Cluster"
SandboxCluster.__qualname__ = "Cluster"


def cluster_state(cluster: MotoCluster) -> ClusterState:
    if not isinstance(cluster, SandboxCluster):
        base = cluster.__dict__.pop("status", "available")
        cluster.__class__ = SandboxCluster  # type: ignore[type-abstract]  # same layout, more behaviour
        cluster.__dict__["_base_status"] = base
        cluster.__dict__["_sandbox"] = ClusterState()
    state: ClusterState = cluster.__dict__["_sandbox"]
    return state


def wall_clock() -> float:
    return time.time()
