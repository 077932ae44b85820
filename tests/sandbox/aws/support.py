"""Test doubles and helpers for the AWS sandbox tests."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Any

from migrator.sandbox.info import LEGACY_UNENCRYPTED_TAG

DURATION = 5.0  # seconds of every transition in the shared sandbox; tests move the clock past it


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = DURATION + 0.5) -> None:
        self.now += seconds


class RecordingHost:
    """A ClusterHost that records what the control plane asked and serves each cluster's "data":
    a listener that greets every connection with the identifier the cluster was created as."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_next = False
        self._servers: dict[str, socket.socket] = {}

    def provision(self, cluster_id: str, database: str, master_user: str, master_password: str) -> tuple[str, int]:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("no room for another database")
        self.calls.append(("provision", cluster_id, database, master_user, master_password))
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        self._servers[cluster_id] = server
        threading.Thread(target=_greet, args=(server, cluster_id.encode()), daemon=True).start()
        return "127.0.0.1", int(server.getsockname()[1])

    def deprovision(self, cluster_id: str) -> None:
        self.calls.append(("deprovision", cluster_id))
        server = self._servers.pop(cluster_id, None)
        if server is not None:
            server.close()

    def rename(self, old_id: str, new_id: str) -> None:
        self.calls.append(("rename", old_id, new_id))
        if old_id in self._servers:
            self._servers[new_id] = self._servers.pop(old_id)

    def set_namespace(self, cluster_id: str, namespace_id: str) -> None:
        self.calls.append(("set_namespace", cluster_id, namespace_id))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]


def _greet(server: socket.socket, banner: bytes) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        try:
            conn.sendall(banner + b"\n")
            conn.recv(1)  # hold the connection until the client (or a drop) ends it
        except OSError:
            pass
        finally:
            conn.close()


def reach(endpoint: dict[str, Any], timeout: float = 5.0) -> str | None:
    """Connect to a described Endpoint: whose data answers, or None when the connection is refused/closed."""
    try:
        with socket.create_connection((endpoint["Address"], endpoint["Port"]), timeout=timeout) as conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(256)
                if not chunk:
                    return None
                data += chunk
            return data.decode().strip()
    except OSError:
        return None


class Sleeps:
    """Latency faults go through here: recorded, and really slept (they are short)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        time.sleep(seconds)


_ids = itertools.count(1)


def new_cluster(rs: Any, clock: FakeClock, *, available: bool = True, legacy_unencrypted: bool = True,
                **extra: Any) -> str:
    """Create a cluster with a fresh id; by default wait (on the fake clock) until it is available.

    By default the cluster is an unencrypted one made before encryption became the default (what a
    migration starts from); ``legacy_unencrypted=False`` creates it as the current API does."""
    cluster_id = f"c{next(_ids):03d}"
    if legacy_unencrypted and "Encrypted" not in extra:
        extra = {**extra, "Encrypted": False,
                 "Tags": [*extra.get("Tags", []), {"Key": LEGACY_UNENCRYPTED_TAG, "Value": "true"}]}
    request = dict(ClusterIdentifier=cluster_id, NodeType="ra3.xlplus", MasterUsername="admin",
                   MasterUserPassword="Secret-Passw0rd", DBName="dev", ClusterType="single-node")
    rs.create_cluster(**{**request, **extra})
    if available:
        clock.advance()
        assert status(rs, cluster_id) == "available"
    return cluster_id


def describe(rs: Any, cluster_id: str) -> dict[str, Any]:
    cluster: dict[str, Any] = rs.describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]
    return cluster


def status(rs: Any, cluster_id: str) -> str:
    return str(describe(rs, cluster_id)["ClusterStatus"])
