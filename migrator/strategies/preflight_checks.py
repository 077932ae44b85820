"""Preflight checks every strategy shares (the source, its login, the staging bucket, the new
cluster's credentials) and the statement-shape probe as a preflight hook; all problems are
reported together by fail_preflight."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection, Settings
from migrator.errors import PreflightFailed
from migrator.strategies.recorded import clients
from migrator.strategies.sessions import connect

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext
    from migrator.strategies.probe import ProbeReport


def fail_preflight(problems: list[str], hint: str = "fix these and re-run; nothing was changed") -> None:
    """All problems in one line, each listed once (one key used for two purposes is one problem)."""
    problems = list(dict.fromkeys(problems))
    if problems:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise PreflightFailed(f"preflight found {count}: " + "; ".join(problems), hint=hint)


def snapshot_copy_problem(settings: Settings, cluster: Mapping[str, Any]) -> str | None:
    """Preflight: snapshot copy on and the tool not allowed to handle it → the exact manual steps."""
    copy = aws.snapshot_copy_of(dict(cluster))
    if copy is None or settings.target.handle_snapshot_copy:
        return None
    return aws.snapshot_copy_steps(str(cluster["ClusterIdentifier"]), copy, settings.migration.region)


def source_problems(ctx: "PhaseContext", cluster_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The source as DescribeClusters shows it, and what would stop a later phase: not a provisioned
    cluster (missing, or a Serverless workgroup), paused or in an intermediate status, cross-region
    snapshot copy the tool may not handle, and (when it can be reached) a login lacking grants."""
    from migrator.aws import preflight as checks

    settings = ctx.config.settings
    client_set = clients(ctx)
    named = checks.provisioned_cluster_named(_HostPrefixFree(client_set), cluster_id)
    if named.cluster is None:
        notes = f" ({'; '.join(named.notes)})" if named.notes else ""
        return None, [f"source: {named.problem}{notes}"]
    cluster = named.cluster
    problems: list[str] = []
    condition = checks.cluster_condition(cluster, cluster_id, settings.migration.region)
    if condition.problem:
        problems.append(f"source: {condition.problem}")
    copy_problem = snapshot_copy_problem(settings, cluster)
    if copy_problem:
        problems.append(copy_problem)
    if condition.readiness == checks.Readiness.READY:
        def queue_found(detail: dict[str, Any]) -> None:
            ctx.store.add_event(ctx.migration, "migration", "wlm_queue", detail, state=ctx.migration.phase)

        def warned(text: str) -> None:
            ctx.store.add_event(ctx.migration, "migration", "access_warning", {"warning": text},
                                state=ctx.migration.phase)

        problems += login_problems(settings, client_set, cluster_id, "source", settings.source,
                                   on_queue=queue_found, on_warning=warned)
    return cluster, problems


def login_problems(settings: Settings, client_set: AwsClients, cluster_id: str, where: str,
                   section: ConnectionSection, on_queue: Callable[[dict[str, Any]], None] | None = None,
                   on_warning: Callable[[str], None] | None = None) -> list[str]:
    """What the configured login lacks to read the system views truthfully (a non-superuser), and
    whether the configured query group reaches a WLM queue (``on_queue`` hears which). What the
    login sees only in part without a remedy the tool can check (access.access_warnings) is
    logged as a warning and told to ``on_warning``, not counted as a problem."""
    from migrator.warehouse.connection import Session

    conn = connect(settings, client_set, cluster_id, where=where, conn=section)
    try:
        conn.autocommit = True
        session = Session(conn)
        lines = access_lines(session, where) + query_group_lines(session, where, section.query_group, on_queue)
        for warning in access_warning_lines(session, where):
            log.warning("%s", warning)
            if on_warning is not None:
                on_warning(warning)
        target_group = settings.target.query_group
        if where == "source" and target_group and settings.route.new_cluster:
            # The new cluster gets the source's parameter group (strategies.mirror), so the source's
            # WLM is the one the new cluster will run with.
            lines += query_group_lines(session, "target", target_group, on_queue)
        return lines
    finally:
        conn.close()


def query_group_lines(session: Any, where: str, group: str | None,
                      on_queue: Callable[[dict[str, Any]], None] | None = None) -> list[str]:
    """The configured query group must reach a queue of its own; the queue's slots and memory are
    logged and recorded in the history (the default queue would run the migration at production's slots)."""
    from migrator.warehouse.wlm import route_of

    if not group:
        return []
    route = route_of(session, group)
    if not route.readable:
        return [f"{where}.query_group {group!r}: the login cannot read the WLM configuration "
                "(STV_WLM_* show rows to superusers only); log in as a superuser or remove query_group"]
    if route.queue is None:
        return [f"{where}.query_group {group!r} is routed to no WLM queue: add it to a queue's query groups in "
                "the cluster's parameter group (wlm_json_configuration) and reboot, or remove query_group"]
    log.info("%s: query group %s runs in %s", where, group, route.queue.describe())
    if on_queue is not None:
        q = route.queue
        on_queue({"where": where, "query_group": group, "service_class": q.service_class, "queue": q.name,
                  "slots": q.slots, "memory_mb_per_slot": q.memory_mb, "described": q.describe()})
    return []


def access_lines(session: Any, where: str) -> list[str]:
    """One preflight line per missing grant of ``session``'s user."""
    from migrator.warehouse.access import access_problems

    return [f"{where} user lacks access to {p.describe()}" for p in access_problems(session)]


def access_warning_lines(session: Any, where: str) -> list[str]:
    """One line per system view ``session``'s user sees only in part (a non-superuser)."""
    from migrator.warehouse.access import access_warnings

    return [f"{where} user is not a superuser: {w}" for w in access_warnings(session)]


def staging_problems(client_set: AwsClients, bucket: str) -> list[str]:
    """The staging bucket must be shielded from public access at the account or the bucket level."""
    from migrator.aws import preflight as checks

    problem = checks.staging_public_access(_HostPrefixFree(client_set), bucket).problem()
    return [problem] if problem else []


class _HostPrefixFree(AwsClients):
    """Clients for the preflight helpers. S3 Control puts the account id in front of the host name (`<account>.s3-control...`); an
    endpoint override (the sandbox, an endpoint given as an address) cannot take that prefix, so
    with an override the request goes to the override's own host."""

    def __init__(self, inner: AwsClients) -> None:
        super().__init__(inner.region, inner.endpoint_url, inner.session)
        self._inner = inner

    def client(self, service: str, region: str | None = None) -> Any:
        if service == "redshift-serverless":
            # Only asked to explain a missing cluster: a quick answer or none (then a note says so),
            # never minutes of retries before the preflight report.
            return self._inner.brief_client(service, timeout=5, attempts=3, region=region)
        found = self._inner.client(service, region)
        if service == "s3control" and self.endpoint_url and not getattr(found, "_migrator_no_prefix", False):
            found.meta.events.register("before-sign.s3-control", _strip_account_prefix)
            found._migrator_no_prefix = True
        return found


def _strip_account_prefix(request: Any, **_: Any) -> None:
    request.url = re.sub(r"^(https?://)\d{12}\.", r"\1", request.url)


def target_credentials_problems(ctx: "PhaseContext", section: ConnectionSection, *,
                                creates_target: bool) -> list[str]:
    """IAM-auth credentials cannot exist before the target does (and CreateCluster needs a password)."""
    from migrator.aws import preflight as checks

    problem = checks.target_credentials_problem(clients(ctx), section, needs_master_password=creates_target)
    return [problem] if problem else []


def probe_source(settings: Settings, client_set: AwsClients) -> "ProbeReport":
    """Every statement shape the migration will use, tried on the source with one sampled row per
    type group (nothing left behind); the data path only for the unload-copy route."""
    from migrator.warehouse.connection import Session, close_quietly
    from migrator.strategies.probe import DataPath, run_probe

    route = settings.migration.strategy
    stages_rows = settings.route.stages_in_s3
    path = None
    if stages_rows:
        assert settings.staging is not None  # the config requires it for this route
        path = DataPath(settings.staging.s3_uri, settings.migration.name, settings.staging.iam_role_arn,
                        settings.staging.kms_key_id, client_set.client("s3"), client_set.client("kms"))
    opened: list[Any] = []
    lock = threading.Lock()

    def open_session() -> Session:
        conn = connect(settings, client_set, settings.source.cluster_id)
        with lock:
            opened.append(conn)
        conn.autocommit = True
        return Session(conn)

    try:
        first = open_session()
        return run_probe(first, route=route, stages_rows=stages_rows, include=settings.tables.include,
                         exclude=settings.tables.exclude, data_path=path, open_session=open_session, workers=settings.tables.concurrency)
    finally:
        for conn in opened:
            close_quietly(conn)


def probe_problems(ctx: "PhaseContext") -> list[str]:
    """The probe as part of preflight: its outcome goes to the history; one preflight line per
    failed shape."""
    report = probe_source(ctx.config.settings, clients(ctx))
    ctx.store.add_event(ctx.migration, "migration", "probe", report.to_dict(), state=ctx.migration.phase)
    return [f"probe: {line}" for line in report.failure_lines()]
