"""Connections to the clusters a strategy works on: the endpoint of a cluster, the login for the
new one, and sessions over them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrator.aws import clusters as aws
from migrator.aws.clients import AwsClients
from migrator.config import ConnectionSection, LoadedConfig, Settings
from migrator.errors import RemoteError
from migrator.strategies.recorded import clients_for
from migrator.warehouse.connection import Session
from migrator.warehouse.inventory import TableInfo, read_inventory

if TYPE_CHECKING:
    from migrator.engine.context import PhaseContext


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int


def endpoint_of(client_set: AwsClients, cluster_id: str, conn: ConnectionSection | None = None) -> Endpoint:
    if conn is not None and conn.host and conn.cluster_id == cluster_id:
        return Endpoint(conn.host, conn.port or 5439)
    cluster = aws.require_cluster(client_set, cluster_id)
    endpoint = cluster.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise RemoteError(f"cluster {cluster_id} has no endpoint yet (status {cluster.get('ClusterStatus')})")
    return Endpoint(str(endpoint["Address"]), int(endpoint.get("Port") or 5439))


def connect(settings: Settings, client_set: AwsClients, cluster_id: str, *, where: str = "source",
            conn: ConnectionSection | None = None) -> Any:
    """A redshift_connector connection to ``cluster_id`` with the configured credentials: TLS with
    the section's sslmode (plaintext only for the local sandbox when the config says so), no
    client-side statement timeout, credentials resolved once per run. Errors are classified by
    warehouse.connection (a wrong password is not a transient failure)."""
    from migrator.warehouse.connection import connect_section

    section = conn or settings.source
    endpoint = endpoint_of(client_set, cluster_id, section)
    return connect_section(settings, section, endpoint.host, endpoint.port, where=where, aws=client_set)


def target_connection(settings: Settings, cluster_id: str) -> ConnectionSection:
    """How to log in to the new cluster under ``cluster_id``: its own credentials when configured,
    else the source's (a restored or mirrored cluster carries the same users), with that section's
    sslmode. A configured host belongs to a name: target.host to the new cluster's own name, and
    once cutover gave it the source's name, source.host (what clients use) or the name's endpoint."""
    t, s = settings.target, settings.source
    host, port = (t.host, t.port) if cluster_id == t.cluster_id else \
        (s.host, s.port) if cluster_id == s.cluster_id else (None, None)
    if t.password_env or t.secret_arn or t.iam_auth:
        return ConnectionSection(cluster_id=cluster_id, database=t.database, user=t.user, host=host, port=port,
                                 password_env=t.password_env, secret_arn=t.secret_arn, iam_auth=t.iam_auth,
                                 sslmode=t.sslmode, query_group=t.query_group)
    # The login may be the source's; the queue is the new cluster's own (target.query_group).
    return ConnectionSection(cluster_id=cluster_id, database=s.database, user=s.user, host=host, port=port,
                             password_env=s.password_env, secret_arn=s.secret_arn, iam_auth=s.iam_auth,
                             sslmode=t.sslmode if "sslmode" in t.model_fields_set else s.sslmode,
                             query_group=t.query_group)


def target_section(config: LoadedConfig) -> ConnectionSection:
    return target_connection(config.settings, config.settings.target.cluster_id)


@contextmanager
def session(ctx_or_config: "PhaseContext | LoadedConfig", which: str, *, autocommit: bool = True
            ) -> Iterator[Session]:
    config = ctx_or_config if isinstance(ctx_or_config, LoadedConfig) else ctx_or_config.config
    settings = config.settings
    clients = clients_for(settings)
    if which == "source":
        conn = connect(settings, clients, settings.source.cluster_id)
    else:
        section = target_section(config)
        conn = connect(settings, clients, section.cluster_id, where="target", conn=section)
    conn.autocommit = autocommit
    try:
        yield Session(conn)
    finally:
        conn.close()


def inventory_of(ctx: "PhaseContext", source: Session) -> dict[tuple[str, str], TableInfo]:
    """The source's tables by their identity, the (schema, table) pair (never a joined text:
    ``"a.b"."c"`` and ``"a"."b.c"`` are two tables)."""
    t = ctx.config.settings.tables

    def read() -> dict[tuple[str, str], TableInfo]:
        return {info.pair: info for info in read_inventory(source, include=t.include, exclude=t.exclude)}

    # Inside a pass over the tables, read once and shared by every worker of this process (it
    # was read again by each of them: 6 + concurrency catalog reads of every table per pass).
    return ctx.shared("source_inventory", read)  # type: ignore[no-any-return]
