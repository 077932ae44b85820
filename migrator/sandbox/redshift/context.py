"""What UNLOAD and COPY share: AWS clients, hooks, fault points and SQL quoting."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.exceptions import ClientError

from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import Backend, BackendError, SessionInfo
from migrator.sandbox.redshift.options import Authorization
from migrator.sandbox.redshift.sqltokens import literal as quote_literal
from migrator.sandbox.redshift.sqltokens import quote_ident

INTERNAL = "XX000"

#: Every hook of one statement logs under that statement's one query id, which the system log's
#: hooks return; they know the statement by its text as sent: on_unload's ``query_text`` (the
#: UNLOAD) and the load hooks' ``query_text=`` keyword (the COPY, when the hook takes it).
#: on_unload(session, query_text, s3_url_of_one_file, rows_in_it, bytes_in_it): one call per file written.
UnloadHook = Callable[[SessionInfo, str, str, int, int], None]
#: on_load_error(session, table, line, column, reason)
LoadErrorHook = Callable[[SessionInfo, str, int, str, str], None]
#: on_load_commit(session, table, files, rows)
LoadCommitHook = Callable[[SessionInfo, str, list[str], int], None]

_local_ids = itertools.count(100_000)


def local_query_id() -> int:
    """A query id for a COPY when no system log is attached (the data plane's own unit tests),
    where no stl_query row exists for it to name. With the system log, the COPY's id is its log's."""
    return next(_local_ids)


@dataclass
class DataContext:
    s3_client_factory: Callable[[], Any]
    kms_client_factory: Callable[[], Any] | None = None
    faults: FaultPlan | None = None
    iam_roles: set[str] | None = None
    slices: int = 4
    on_unload: UnloadHook | None = None
    on_load_error: LoadErrorHook | None = None
    on_load_commit: LoadCommitHook | None = None
    account_id: str = "123456789012"
    region: str = "us-east-1"
    extra: dict[str, Any] = field(default_factory=dict)


def split_s3_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


def s3_error(exc: ClientError) -> BackendError:
    """Redshift reports S3 failures as S3ServiceException with status, code and request id."""
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    return BackendError(
        INTERNAL,
        f"S3ServiceException:{err.get('Message', 'unknown error')},Status {meta.get('HTTPStatusCode', 500)},"
        f"Error {err.get('Code', 'Unknown')},Rid {meta.get('RequestId', '')}",
    )


def check_session(backend: Backend) -> None:
    if backend.transaction_status == "E":
        raise BackendError("25P02", "current transaction is aborted, commands ignored until end of transaction block")


def check_fault(ctx: DataContext, statement: str, target: str, session: SessionInfo) -> None:
    """An sql_error fault for this statement, matched on ``statement``, ``table`` (the target)
    and ``cluster`` (the session's), as the proxy's own faults are."""
    if ctx.faults is None:
        return
    fault = ctx.faults.take("sql_error", statement=statement, table=target, cluster=session.cluster_id)
    if fault is not None:
        params = fault.params
        raise BackendError(str(params.get("sqlstate", INTERNAL)),
                           str(params.get("message", f"injected fault: {statement} failed")),
                           params.get("detail"))


def check_role(ctx: DataContext, auth: Authorization, session: SessionInfo) -> None:
    if ctx.iam_roles is None or auth.iam_role is None:
        return
    for role in auth.role_arns():
        if role == "default" and ctx.iam_roles:
            continue
        if role not in ctx.iam_roles:
            raise BackendError(
                INTERNAL,
                f"User arn:aws:redshift:{ctx.region}:{ctx.account_id}:dbuser:{session.cluster_id}/{session.user} "
                f"is not authorized to assume IAM Role {role}",
            )


def list_keys(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every object under ``prefix`` (all pages)."""
    out: list[dict[str, Any]] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.extend(page.get("Contents", []))
    except ClientError as exc:
        raise s3_error(exc) from exc
    return out


def set_session_value(backend: Backend, name: str, value: str) -> None:
    backend.query(f"select set_config({quote_literal(name)}, {quote_literal(value)}, false)")


def takes_keyword(hook: Callable[..., Any] | None, name: str) -> bool:
    """Whether a system-log hook takes the keyword ``name`` (the system log's hooks do; a test's
    recording lambda may not)."""
    import inspect

    if hook is None:
        return False
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def notify(hook: Callable[..., Any] | None, *args: Any, **kwargs: Any) -> Any:
    """Call a system-log hook and return what it returns (the query id, for the system log's);
    a logging failure must never fail the user's statement (None then)."""
    if hook is None:
        return None
    try:
        return hook(*args, **kwargs)
    except Exception as exc:  # the log is best effort, the statement is not
        logging.getLogger("migrator.sandbox.redshift").warning("system log hook %s failed: %s",
                                                               getattr(hook, "__name__", hook), exc)
        return None
