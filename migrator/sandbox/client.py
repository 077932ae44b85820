"""A sandbox running in another process, seen from this one: what tests, the demo
and the CLI use. Each sandbox process owns its own moto state, so two never mix."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from migrator.sandbox import daemon
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.info import CONTROL_ACK, CONTROL_FILE, DURATION_NAMES, ClusterInfo, SandboxInfo
from migrator.sandbox.provisioning import create_cluster, wait_available


class SandboxClient:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).resolve()
        self.info = SandboxInfo.load(self.directory)
        self.faults = FaultPlan(self.directory)
        self._clients: dict[tuple[str, str], Any] = {}

    @classmethod
    def start(cls, directory: Path | str, *, tables: int = 6, rows: int = 1000, seed: int = 0,
              durations: dict[str, float] | None = None, owned: bool = True) -> "SandboxClient":
        """Start a sandbox daemon. ``owned``: it stops by itself when this process ends without
        calling stop() (a killed test run), instead of running on for nobody."""
        daemon.up(Path(directory), tables=tables, rows=rows, seed=seed, durations=durations,
                  owner_pid=os.getpid() if owned else None)
        return cls(directory)

    def stop(self) -> None:
        daemon.down(self.directory)

    def __enter__(self) -> "SandboxClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- AWS ---------------------------------------------------------------------------------

    def client(self, service: str, region: str | None = None, max_attempts: int = 3) -> Any:
        key = (service, region or self.info.region)
        if key not in self._clients:
            self._clients[key] = boto3.session.Session().client(
                service, region_name=key[1], endpoint_url=self.info.endpoint_url,
                # the account owner's keys: tests set up cases as an account owner would
                aws_access_key_id=self.info.admin_access_key or self.info.access_key,
                aws_secret_access_key=self.info.admin_secret_key or self.info.secret_key,
                config=Config(retries={"max_attempts": max_attempts, "mode": "standard"},
                              # The sandbox provisions a cluster's server inside CreateCluster; on a
                              # loaded machine that outlasts botocore's 60 s read timeout, and the
                              # retry then meets ClusterAlreadyExists.
                              read_timeout=600))
        return self._clients[key]

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """The control plane's log of mutating Redshift calls (proof of "exactly one modify")."""
        path = self.directory / "aws-calls.log"
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [e for e in entries if action is None or e.get("action") == action]

    def env(self) -> dict[str, str]:
        """The environment a migration of the ready-made configs runs with (the limited keys)."""
        return self.info.env()

    def admin_env(self) -> dict[str, str]:
        """As :meth:`env`, with the account owner's keys (for setting up cases)."""
        return self.info.admin_env()

    def operator_policy(self, config: Path) -> dict[str, Any]:
        """`migrator iam-policy --for operator` of ``config``, with the roles the new cluster would
        receive read from the source (its IamRoles and DefaultIamRoleArn) as an account owner would."""
        from migrator.config import load_config
        from migrator.iam_policy import operator_policy

        settings = load_config(config).settings
        roles: list[str] = []
        try:
            source = self.client("redshift").describe_clusters(
                ClusterIdentifier=settings.source.cluster_id)["Clusters"][0]
            roles = [r["IamRoleArn"] for r in source.get("IamRoles") or []]
            roles += [source["DefaultIamRoleArn"]] if source.get("DefaultIamRoleArn") else []
        except Exception:  # noqa: BLE001 - no source: the run itself says so
            pass
        return operator_policy(settings, passed_roles=roles)

    def operator_env(self, config: Path, *, name: str, policy: dict[str, Any] | None = None) -> dict[str, str]:
        """AWS keys of a new IAM user whose only permissions are ``policy`` (default:
        :meth:`operator_policy` of ``config``)."""
        import uuid

        document = policy if policy is not None else self.operator_policy(config)
        user = f"operator-{name}-{uuid.uuid4().hex[:8]}"[:64]
        iam = self.client("iam")
        iam.create_user(UserName=user)
        arn = iam.create_policy(PolicyName=user, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def set_durations(self, timeout: float = 10.0, **seconds: float) -> None:
        """Change how long control-plane transitions take (create, modify, rename, reboot, delete,
        snapshot, pause, resume, dns: how long an old name stays cached after a rename); in force when
        this returns."""
        unknown = sorted(set(seconds) - DURATION_NAMES)
        if unknown:
            raise ValueError(f"unknown sandbox duration(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(DURATION_NAMES))}")
        seq = str(time.time_ns())
        path = self.directory / CONTROL_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": int(seq), "durations": seconds}))
        tmp.replace(path)
        ack = self.directory / CONTROL_ACK
        deadline = time.monotonic() + timeout
        while not (ack.exists() and ack.read_text() == seq):
            if time.monotonic() > deadline:
                raise TimeoutError("the sandbox did not acknowledge the new durations")
            time.sleep(0.02)  # waiting for the daemon's acknowledgement: that is the synchronisation

    # -- clusters ----------------------------------------------------------------------------

    def _registry(self) -> dict[str, dict[str, Any]]:
        return dict(json.loads((self.directory / "clusters.json").read_text()))

    def cluster_ids(self) -> list[str]:
        return sorted(self._registry())

    def cluster_info(self, cluster_id: str) -> ClusterInfo:
        entry = self._registry()[cluster_id]
        return ClusterInfo(cluster_id, entry["host"], int(entry["port"]), entry["database"], entry["user"],
                           entry["password"])

    def admin_dsn(self, cluster_id: str) -> str:
        """Straight to the cluster's PostgreSQL, bypassing the proxy: for independent checks."""
        return str(self._registry()[cluster_id]["admin_dsn"])

    def connect(self, cluster_id: str, *, autocommit: bool = False) -> Any:
        import redshift_connector

        info = self.cluster_info(cluster_id)
        conn = redshift_connector.connect(host=info.host, port=info.port, database=info.database, user=info.user,
                                          password=info.password, ssl=False, timeout=60)
        conn.autocommit = autocommit
        return conn

    def set_isolation(self, cluster_id: str, level: str) -> None:
        """SERIALIZABLE or SNAPSHOT for the cluster's database, for sessions opened afterwards
        (as LocalClusterHost.set_isolation; works for a database named dev, which Redshift's
        ALTER DATABASE ... ISOLATION LEVEL refuses)."""
        import psycopg
        from psycopg import sql

        pg_level = {"SERIALIZABLE": "serializable", "SNAPSHOT": "repeatable read"}.get(level.upper())
        if pg_level is None:
            raise ValueError(f"isolation level {level!r}: SERIALIZABLE or SNAPSHOT")
        database = self.cluster_info(cluster_id).database
        with psycopg.connect(self.admin_dsn(cluster_id), autocommit=True) as conn:
            conn.execute(sql.SQL("alter database {} set default_transaction_isolation = {}").format(
                sql.Identifier(database), sql.Literal(pg_level)))

    def set_slices(self, cluster_id: str, slices: int) -> None:
        """Override the slice count the node type gave a cluster (STV_SLICES, UNLOAD's files per
        slice): only for a test that needs a count no node type and count give; FIDELITY.md
        lists where it is used."""
        import psycopg

        from migrator.sandbox.redshift import catalog

        with psycopg.connect(self.admin_dsn(cluster_id), autocommit=True) as conn:
            row = conn.execute("select slices_per_node from pg_sandbox.cluster_info").fetchone()
            catalog.set_layout(conn, slices=slices, slices_per_node=int(row[0]) if row else 2)

    def create_cluster(self, cluster_id: str, *, encrypted: bool = False, kms_key_id: str | None = None,
                       node_type: str = "ra3.xlplus", nodes: int = 2, wait: bool = True) -> ClusterInfo:
        create_cluster(self.client("redshift"), cluster_id, self.info.iam_role_arn, encrypted=encrypted,
                       kms_key_id=kms_key_id, node_type=node_type, nodes=nodes)
        if wait:
            wait_available(self.client("redshift"), cluster_id)
        return self.cluster_info(cluster_id)

    def wait_available(self, cluster_id: str, timeout: float = 60.0) -> dict[str, Any]:
        return wait_available(self.client("redshift"), cluster_id, timeout)

    def seed(self, cluster_id: str, *, tables: int, rows: int, seed: int = 0, prefix: str = "",
             hard: bool = True) -> Any:
        """Seed a cluster through its Redshift endpoint, as any client would; ``hard`` (the
        default) adds the tables of hard types and names (seed.HARD_NAMES, seed.HARD_TYPES_TABLE)."""
        from migrator.sandbox.seed import seed_cluster

        conn = self.connect(cluster_id, autocommit=True)
        cursor = conn.cursor()
        # Its names are mixed case ("Ops Data", "Seed Reader"): made as a user would make them,
        # in a session that keeps the case of quoted identifiers.
        cursor.execute("set enable_case_sensitive_identifier to true")

        def execute(sql: str) -> Any:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else None

        try:
            return seed_cluster(execute, tables=tables, rows=rows, seed=seed, prefix=prefix, hard=hard)
        finally:
            conn.close()

    def create_seeded_cluster(self, cluster_id: str, *, tables: int = 4, rows: int = 500, seed: int = 0,
                              encrypted: bool = False, node_type: str = "ra3.xlplus", hard: bool = False
                              ) -> ClusterInfo:
        """A private source for a test that changes its cluster (so it cannot disturb others);
        ``hard`` adds the tables of hard types and names."""
        info = self.create_cluster(cluster_id, encrypted=encrypted, node_type=node_type)
        self.seed(cluster_id, tables=tables, rows=rows, seed=seed, hard=hard)
        return info
