"""Contracts between the sandbox's parts: the wire proxy, the Redshift SQL
emulation and the AWS control plane. Each side codes against these, never
against the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


class BackendError(Exception):
    """An error PostgreSQL (or the emulation) raised; forwarded to the client as ErrorResponse."""

    def __init__(self, sqlstate: str, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail


@dataclass
class Column:
    name: str
    type_oid: int = 25  # text


@dataclass
class QueryResult:
    """What one statement produced: the command tag and, for row-returning ones, text values."""

    tag: str
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[str | None, ...]] = field(default_factory=list)


class Backend(Protocol):
    """The client's own PostgreSQL session, driven by the proxy on the handler's behalf.

    Everything runs in the client's session and inside its open transaction, so
    work an intercepted statement does commits or rolls back with the client's
    transaction. Methods are synchronous and called from a worker thread.
    """

    def query(self, sql: str) -> QueryResult:
        """Run one statement (simple protocol); raises BackendError on failure."""
        ...

    def copy_in(self, sql: str, data: bytes) -> str:
        """Run ``COPY ... FROM STDIN`` feeding ``data``; returns the command tag."""
        ...

    def copy_out(self, sql: str) -> bytes:
        """Run ``COPY ... TO STDOUT``; returns everything the server sent."""
        ...

    @property
    def transaction_status(self) -> str:
        """'I' idle, 'T' in a transaction, 'E' in a failed transaction."""
        ...


@dataclass
class SessionInfo:
    cluster_id: str
    database: str
    user: str
    pid: int  # the backend's pid, stable for the session
    #: The client's address as the proxy's socket saw it (STL_CONNECTION_LOG remotehost/remoteport).
    remote_host: str = ""
    remote_port: int = 0
    #: The startup packet's application_name (STL_CONNECTION_LOG application_name).
    application_name: str = ""
    #: Whether the user the session acts as is a superuser (the master user is).
    superuser: bool = True
    #: SET query_group's label for this session's queries (STL_QUERY label): now, what the open
    #: transaction keeps if it commits, and what the last committed transaction left.
    query_group: str = ""
    query_group_on_commit: str = ""
    query_group_committed: str = ""
    #: enable_case_sensitive_identifier as the session set it (Redshift's default: false):
    #: the value in effect now, the one the open transaction keeps if it commits (a SET LOCAL
    #: changes only the first), and the one the last committed transaction left.
    case_sensitive: bool = False
    case_sensitive_on_commit: bool = False
    case_sensitive_committed: bool = False

    def end_transaction(self, committed: bool) -> None:
        """A transaction (explicit or the implicit one around a statement) ended: SET takes
        effect only if it commits, SET LOCAL ends with it."""
        if committed:
            self.case_sensitive_committed = self.case_sensitive_on_commit
            self.query_group_committed = self.query_group_on_commit
        self.case_sensitive = self.case_sensitive_on_commit = self.case_sensitive_committed
        self.query_group = self.query_group_on_commit = self.query_group_committed


class Intercept(Protocol):
    """A statement the proxy must not hand to PostgreSQL as-is."""

    #: Columns the statement returns (RowDescription); empty → NoData.
    columns: Sequence[Column]

    def execute(self, backend: Backend, session: SessionInfo) -> QueryResult:
        """Do the statement's work through ``backend``; raise BackendError to fail it."""
        ...


class StatementInterceptor(Protocol):
    """Decides, per statement text, whether the proxy passes it through."""

    def classify(self, sql: str, session: SessionInfo) -> Intercept | None:
        """None → pass through unchanged. Called on Parse/Query; must be cheap and side-effect free."""
        ...

    def after_statement(self, sql: str, tag: str, session: SessionInfo) -> None:
        """Observer called after every statement completed successfully (system-log emulation)."""
        ...


class ClusterHost(Protocol):
    """What the control plane asks of the data plane when clusters come and go."""

    def provision(self, cluster_id: str, database: str, master_user: str, master_password: str) -> tuple[str, int]:
        """Create the cluster's database and start its proxy; returns (address, port)."""
        ...

    def deprovision(self, cluster_id: str) -> None:
        """Stop the cluster's proxy and drop its database."""
        ...

    def rename(self, old_id: str, new_id: str) -> None:
        """The cluster changed identifier; its data and proxy follow it."""
        ...

    # Optional capabilities, used when a host has them (looked up with getattr):
    #   provision_from_snapshot(cluster_id, database, master_user, master_password,
    #                           source_cluster_id, snapshot_id) -> (address, port)
    #       a restore carries the snapshotted cluster's data.
    #   set_namespace(cluster_id, namespace_id) -> None
    #       the cluster's namespace GUID (the tail of ClusterNamespaceArn); the database should answer
    #       it for SELECT current_namespace, so a check can prove which cluster it reached.
    #   set_node_layout(cluster_id, slices, slices_per_node) -> None
    #       the slices of a new or restored cluster (node type's default x nodes): STV_SLICES.
