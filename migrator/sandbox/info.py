"""What a running sandbox tells its users: written to DIR/sandbox.json (mode 0600)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

INFO_FILE = "sandbox.json"
#: Another process asks the running sandbox for new control-plane durations here ...
CONTROL_FILE = "control.json"
#: ... and the sandbox acknowledges the request it applied here.
CONTROL_ACK = "control.ack"
#: Tag key (sandbox only, stripped before storing) that lets CreateCluster make an unencrypted cluster:
#: the stand-in for a cluster made before "Encrypted defaults to true" (a migration's typical source).
LEGACY_UNENCRYPTED_TAG = "sandbox:predates-default-encryption"
#: Control-plane durations another process may set (seconds; ``dns`` is how long an old cluster name
#: stays cached after a rename; ``scale`` multiplies them all).
DURATION_NAMES = frozenset({"create", "modify", "rename", "reboot", "delete", "snapshot", "pause", "resume", "dns",
                            "scale"})


@dataclass
class ClusterInfo:
    id: str
    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)


@dataclass
class SandboxInfo:
    directory: str
    pid: int
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    bucket: str
    kms_key_id: str
    kms_key_arn: str
    kms_alias: str
    disabled_kms_key_id: str
    other_region: str
    other_region_kms_key_arn: str
    iam_role_arn: str
    source_cluster_id: str
    #: Master password the sandbox's ready-made configs give a target cluster the tool creates.
    target_password: str = ""
    #: The account owner's keys (no policy limits them), for setting up cases; ``access_key`` /
    #: ``secret_key`` belong to an IAM user limited to the ready-made configs' operator policies.
    admin_access_key: str = ""
    admin_secret_key: str = ""
    clusters: dict[str, ClusterInfo] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> "SandboxInfo":
        data = json.loads((directory / INFO_FILE).read_text())
        data["clusters"] = {k: ClusterInfo(**v) for k, v in data["clusters"].items()}
        return cls(**data)

    def admin_env(self) -> dict[str, str]:
        """As :meth:`env`, with the account owner's keys."""
        return {**self.env(), "AWS_ACCESS_KEY_ID": self.admin_access_key or self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.admin_secret_key or self.secret_key}

    def env(self) -> dict[str, str]:
        """Environment for a process that should talk to this sandbox's AWS."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_ENDPOINT_URL": self.endpoint_url,
                "MIGRATOR_SANDBOX_PASSWORD": self.clusters[self.source_cluster_id].password,
                "MIGRATOR_SANDBOX_TARGET_PASSWORD": self.target_password}
