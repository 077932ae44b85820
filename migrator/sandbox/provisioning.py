"""Creating a cluster and waiting for it through the (sandbox's) Redshift API, as any AWS
client would: shared by the daemon-side `Sandbox` and the `SandboxClient` of other processes
(kept here, below both, so neither imports the other)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from migrator.sandbox.info import LEGACY_UNENCRYPTED_TAG


def master_password() -> str:
    # Redshift's rules: 8-64 characters with upper case, lower case and a digit.
    return "Sb" + secrets.token_hex(10) + "9x"


def create_cluster(redshift: Any, cluster_id: str, iam_role_arn: str, *, encrypted: bool,
                   kms_key_id: str | None = None, node_type: str = "ra3.xlplus", nodes: int = 2) -> str:
    """Create a cluster through the (sandbox's) Redshift API; returns its master password."""
    password = master_password()
    params: dict[str, Any] = dict(
        ClusterIdentifier=cluster_id, NodeType=node_type, MasterUsername="awsuser", MasterUserPassword=password,
        DBName="dev", IamRoles=[iam_role_arn], Encrypted=encrypted)
    if not encrypted:
        # New clusters are always encrypted; an unencrypted one stands for a cluster made before that rule.
        params["Tags"] = [{"Key": LEGACY_UNENCRYPTED_TAG, "Value": "true"}]
    if nodes > 1:
        params.update(ClusterType="multi-node", NumberOfNodes=nodes)
    else:
        params.update(ClusterType="single-node")
    if kms_key_id:
        params["KmsKeyId"] = kms_key_id
    redshift.create_cluster(**params)
    return password


def wait_available(redshift: Any, cluster_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        cluster = redshift.describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]
        if cluster["ClusterStatus"] == "available":
            return cluster  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise TimeoutError(f"cluster {cluster_id} still {cluster['ClusterStatus']} after {timeout}s")
        time.sleep(0.05)  # polling a modelled status that changes with time, not synchronising a test
