"""The whole local sandbox: AWS on moto, clusters on PostgreSQL behind Redshift
wire proxies, a seeded source cluster, and ready-to-run migration configs."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from migrator.sandbox.aws import AwsSandbox
from migrator.sandbox.cluster_host import LocalClusterHost
from migrator.sandbox.provisioning import create_cluster, master_password, wait_available
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.info import CONTROL_ACK, CONTROL_FILE, DURATION_NAMES, INFO_FILE, ClusterInfo, SandboxInfo
from migrator.sandbox.proxy import ProxyThread

log = logging.getLogger("migrator.sandbox")

SOURCE_CLUSTER = "analytics"
BUCKET = "migrator-sandbox-staging"
#: The configs `sandbox up` writes (DIR/<name>.toml); the operator's keys may do what each needs.
READY_MADE_CONFIGS = ("unload-copy", "modify", "snapshot-restore")


def _settings(data: dict[str, Any]) -> Any:
    from migrator.config import parse_config

    return parse_config(data, Path("sandbox.toml")).settings


class Sandbox:
    """``with Sandbox(directory) as sb:`` — everything up; leaves when the block ends."""

    def __init__(self, directory: Path | str, *, seed_tables: int = 6, seed_rows: int = 1000, seed: int = 0,
                 durations: dict[str, float] | None = None, metrics_interval: float = 5.0,
                 region: str = "us-east-1", hard: bool = True) -> None:
        self.directory = Path(directory).resolve()
        self.seed_tables, self.seed_rows, self.seed = seed_tables, seed_rows, seed
        #: The seed includes the hard types and names (seed.HARD_NAMES, seed.HARD_TYPES_TABLE).
        self.hard = hard
        durations = dict(durations or {})
        self.metrics_interval = float(durations.pop("metrics_interval", metrics_interval))
        self.durations = {"create_seconds": 0.5, "modify_seconds": 3.0, "rename_seconds": 0.5,
                          "reboot_seconds": 0.5, "delete_seconds": 0.5, "snapshot_seconds": 0.5,
                          "pause_seconds": 0.5, "resume_seconds": 0.5, "dns_seconds": 2.0, **durations}
        self.region = region
        self.faults = FaultPlan(self.directory)
        self.proxies: ProxyThread | None = None
        self.host: LocalClusterHost | None = None
        self.aws: AwsSandbox = None  # type: ignore[assignment]
        self.info: SandboxInfo = None  # type: ignore[assignment]
        self._boot: dict[str, str] = {}
        self._stop = threading.Event()
        self._metrics: threading.Thread | None = None
        self._control: threading.Thread | None = None
        self.passwords: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        started = time.monotonic()
        self.proxies = ProxyThread()
        self.host = LocalClusterHost(self.directory / "clusters", self.proxies, self.faults,
                                     # UNLOAD/COPY act as the cluster's role: what its policies allow.
                                     s3_client=lambda: self.aws.role_client("s3"),
                                     kms_client=lambda: self.aws.role_client("kms"),
                                     iam_roles=lambda: {self._boot["iam_role_arn"]}, region=self.region)
        try:
            self.aws = AwsSandbox(self.host, self.faults, region=self.region, log_dir=self.directory,
                                  **self.durations)
            self.aws.start()
            self._boot = self.aws.bootstrap(BUCKET)
            self._limit_the_role()
            self.create_cluster(SOURCE_CLUSTER, encrypted=False)
            self._seed()
            self._write_info()
            self._write_configs()
            self._make_operator()
            self._metrics = threading.Thread(target=self._publish_metrics, name="sandbox-metrics", daemon=True)
            self._metrics.start()
            self._control = threading.Thread(target=self._watch_control, name="sandbox-control", daemon=True)
            self._control.start()
        except BaseException:
            self.stop()
            raise
        log.info("sandbox up in %.1fs", time.monotonic() - started)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._metrics, self._control):
            if thread is not None:
                thread.join(timeout=10)
        if self.host is not None:
            self.host.close()
        if self.aws is not None:
            self.aws.stop()
        if self.proxies is not None:
            self.proxies.close()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clusters ----------------------------------------------------------------------------

    def create_cluster(self, cluster_id: str, *, encrypted: bool, kms_key_id: str | None = None,
                       node_type: str = "ra3.xlplus", nodes: int = 2, wait: bool = True) -> ClusterInfo:
        password = create_cluster(self.client("redshift"), cluster_id, self._boot["iam_role_arn"], encrypted=encrypted,
                                  kms_key_id=kms_key_id, node_type=node_type, nodes=nodes)
        self.passwords[cluster_id] = password
        if wait:
            wait_available(self.client("redshift"), cluster_id)
        return self.cluster_info(cluster_id)

    def cluster_info(self, cluster_id: str) -> ClusterInfo:
        cluster = self.client("redshift").describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]
        endpoint = cluster.get("Endpoint", {})
        password = self.passwords.get(cluster_id) or self._password_by_runtime(cluster_id)
        return ClusterInfo(cluster_id, endpoint.get("Address", "127.0.0.1"), int(endpoint.get("Port", 0)),
                           cluster.get("DBName", "dev"), cluster["MasterUsername"], password)

    def _password_by_runtime(self, cluster_id: str) -> str:
        assert self.host is not None
        runtime = self.host.runtime(cluster_id)
        return runtime.proxy.users.get(runtime.master_user, "")

    # -- access ------------------------------------------------------------------------------

    def client(self, service: str, region: str | None = None) -> Any:
        return self.aws.client(service, region)

    def connect(self, cluster_id: str, *, autocommit: bool = False) -> Any:
        import redshift_connector

        info = self.cluster_info(cluster_id)
        conn = redshift_connector.connect(host=info.host, port=info.port, database=info.database,
                                          user=info.user, password=info.password, ssl=False, timeout=60)
        conn.autocommit = autocommit
        return conn

    def admin_dsn(self, cluster_id: str) -> str:
        assert self.host is not None
        return self.host.runtime(cluster_id).admin_dsn()

    def env(self) -> dict[str, str]:
        return self.info.env()

    # -- internals ---------------------------------------------------------------------------

    def _seed(self) -> None:
        from migrator.sandbox.seed import seed_cluster

        if self.seed_tables > 0:
            seed_cluster(self.admin_dsn(SOURCE_CLUSTER), tables=self.seed_tables, rows=self.seed_rows,
                         seed=self.seed, hard=self.hard)

    def seed_more(self, tables: int, rows: int, seed: int = 1, prefix: str = "more_", hard: bool = True) -> Any:
        from migrator.sandbox.seed import seed_cluster

        return seed_cluster(self.admin_dsn(SOURCE_CLUSTER), tables=tables, rows=rows, seed=seed, prefix=prefix,
                            hard=hard)

    def _write_info(self) -> None:
        assert self.host is not None
        boot = self._boot
        self.info = SandboxInfo(
            directory=str(self.directory), pid=os.getpid(), endpoint_url=self.aws.endpoint_url, region=self.region,
            access_key=self.aws.credentials["aws_access_key_id"],
            secret_key=self.aws.credentials["aws_secret_access_key"], bucket=boot["bucket"],
            kms_key_id=boot["kms_key_id"], kms_key_arn=boot["kms_key_arn"], kms_alias=boot["kms_key_alias"],
            disabled_kms_key_id=boot["disabled_kms_key_id"], other_region=boot["other_region"],
            other_region_kms_key_arn=boot["other_region_kms_key_arn"], iam_role_arn=boot["iam_role_arn"],
            source_cluster_id=SOURCE_CLUSTER, target_password=master_password(),
            clusters={r.cluster_id: self.cluster_info(r.cluster_id) for r in self.host.runtimes()})
        self._save_info()

    def _save_info(self) -> None:
        path = self.directory / INFO_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self.info), fh, indent=2)
        tmp.replace(path)

    def _write_configs(self) -> None:
        info = self.info
        common = (f'region = "{info.region}"\nstore = "sqlite:///.migrator/{{name}}.db"\n'
                  f'aws_endpoint_url = "{info.endpoint_url}"\nsandbox_plaintext = true\n\n'
                  f'[source]\ncluster_id = "{SOURCE_CLUSTER}"\ndatabase = "dev"\nuser = "awsuser"\n'
                  'password_env = "MIGRATOR_SANDBOX_PASSWORD"\n\n')
        unload_copy = ('[migration]\nname = "sandbox-unload-copy"\nstrategy = "unload-copy"\n'
                       + common.replace("{name}", "unload-copy")
                       + f'[target]\ncluster_id = "{SOURCE_CLUSTER}-encrypted"\nencryption = "kms"\n'
                       f'kms_key_id = "{info.kms_alias}"\npassword_env = "MIGRATOR_SANDBOX_TARGET_PASSWORD"\n\n'
                       f'[staging]\ns3_uri = "s3://{info.bucket}/migrator/"\niam_role_arn = "{info.iam_role_arn}"\n'
                       f'kms_key_id = "{info.kms_alias}"\n')
        modify = ('[migration]\nname = "sandbox-modify"\nstrategy = "modify"\n'
                  + common.replace("{name}", "modify")
                  + f'[target]\nencryption = "kms"\nkms_key_id = "{info.kms_alias}"\n')
        # A restored cluster keeps the snapshot's master user and password: the source's.
        restore = ('[migration]\nname = "sandbox-snapshot-restore"\nstrategy = "snapshot-restore"\n'
                   + common.replace("{name}", "snapshot-restore")
                   + f'[target]\ncluster_id = "{SOURCE_CLUSTER}-restored"\nencryption = "kms"\n'
                   f'kms_key_id = "{info.kms_alias}"\npassword_env = "MIGRATOR_SANDBOX_PASSWORD"\n')
        (self.directory / "unload-copy.toml").write_text(unload_copy)
        (self.directory / "modify.toml").write_text(modify)
        (self.directory / "snapshot-restore.toml").write_text(restore)

    def _limit_the_role(self) -> None:
        """The cluster role gets exactly `migrator iam-policy --for cluster-role` for a migration
        staging anywhere in the sandbox's bucket (tests stage under many prefixes of it)."""
        from migrator.iam_policy import cluster_role_policy

        settings = _settings({"migration": {"name": "sandbox", "strategy": "unload-copy", "region": self.region},
                              "source": {"cluster_id": SOURCE_CLUSTER, "password_env": "P"},
                              "target": {"cluster_id": "t", "kms_key_id": self._boot["kms_key_alias"]},
                              "staging": {"s3_uri": f"s3://{self._boot['bucket']}/",
                                          "iam_role_arn": self._boot["iam_role_arn"],
                                          "kms_key_id": self._boot["kms_key_alias"]}})
        self.aws.put_role_policy(f"staging-{self._boot['bucket']}", cluster_role_policy(settings))

    def _make_operator(self) -> None:
        """The ready-made configs' credentials: an IAM user whose only permissions are
        `migrator iam-policy --for operator` of each ready-made config; the administrator's keys
        are kept apart (admin_access_key) for setting up cases as an account owner would."""
        from migrator.config import load_config
        from migrator.iam_policy import operator_policy

        policies = {}
        for name in READY_MADE_CONFIGS:
            settings = load_config(self.directory / f"{name}.toml").settings
            policies[name] = operator_policy(settings, passed_roles=[self.info.iam_role_arn])
        access, secret = self.aws.create_user("migrator-operator", policies)
        self.info.admin_access_key, self.info.admin_secret_key = self.info.access_key, self.info.secret_key
        self.info.access_key, self.info.secret_key = access, secret
        self._save_info()

    def _watch_control(self) -> None:
        """Apply control-plane durations another process asked for (DIR/control.json), then
        acknowledge them (DIR/control.ack) so the asker knows they are in force."""
        path, ack = self.directory / CONTROL_FILE, self.directory / CONTROL_ACK
        applied = -1
        while not self._stop.wait(0.05):
            try:
                request = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if int(request.get("seq", -1)) == applied:
                continue
            for name, value in request.get("durations", {}).items():
                if name in DURATION_NAMES:  # the asker validated; never invent attributes
                    setattr(self.aws.durations, name, float(value))
            applied = int(request["seq"])
            ack.write_text(str(applied))

    def _publish_metrics(self) -> None:
        """CloudWatch figures derived from what the proxies really saw, so freeze checks can fail for real."""
        assert self.proxies is not None
        last: dict[str, int] = {}
        while not self._stop.wait(self.metrics_interval):
            points = []
            for cluster_id, proxy in self.proxies.proxies().items():
                stats = proxy.stats.snapshot()
                writes = stats.get("write_statements", 0)
                delta = max(0, writes - last.get(cluster_id, 0))
                last[cluster_id] = writes
                points.append((cluster_id, delta / self.metrics_interval,
                               min(100.0, 2.0 + 10.0 * stats.get("statements", 0) % 50),
                               float(stats.get("connections_open", 0))))
            if points:
                try:
                    self.aws.publish_all_metrics(points)
                except Exception as exc:  # metrics are best effort; the sandbox must keep serving
                    log.warning("metrics not published: %s", exc)
