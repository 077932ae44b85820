"""redshift_connector's exceptions, classified into the tool's own errors.

The facts (SQLSTATE, the server's message and detail, the AWS code and status Redshift quotes
inside an S3ServiceException, whether the connection died with a statement in flight) go to
the one table of rules in migrator/failures.py. The SQL text is never included: it may
name paths an operator did not ask to see, and strategies record the statement separately.
"""

from __future__ import annotations

import socket
from typing import Any

from migrator.failures import Failure, aws_facts, to_error
from migrator.errors import MigratorError

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (socket.error, EOFError, ConnectionError, TimeoutError)


def _fields(exc: BaseException) -> dict[str, Any]:
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, dict) else {}


def sqlstate(exc: BaseException) -> str | None:
    code = _fields(exc).get("C")
    return str(code) if code else None


def server_message(exc: BaseException) -> str:
    fields = _fields(exc)
    if fields:
        return str(fields.get("M", "")).strip() or type(exc).__name__
    return str(exc).strip() or type(exc).__name__


def server_detail(exc: BaseException) -> str:
    return str(_fields(exc).get("D", "") or "").strip()


def connection_lost(exc: BaseException) -> bool:
    """No answer from the server: the driver lost (or never had) its socket."""
    if sqlstate(exc) is not None:
        return False
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    import redshift_connector

    return isinstance(exc, (redshift_connector.InterfaceError, redshift_connector.OperationalError))


def failure_of(exc: BaseException, *, in_flight: bool = False) -> Failure:
    code = sqlstate(exc)
    message = server_message(exc)
    detail = server_detail(exc)
    text = f"{message} DETAIL: {detail}" if detail else message
    if code is None:
        lost = connection_lost(exc)
        return Failure("driver", text, exception=exc, connection_lost=lost, in_flight=in_flight and lost)
    aws_code, status = aws_facts(text)
    return Failure("sql", text, sqlstate=code, aws_code=aws_code, http_status=status, exception=exc)


def classify(exc: BaseException, what: str, *, in_flight: bool = False,
             backend_pid: int | None = None) -> MigratorError:
    """The MigratorError to raise for ``exc`` raised while doing ``what``.

    ``in_flight``: a statement that may commit on its own (a COMMIT, or a write or DDL in
    autocommit mode) had been sent, so a dead connection means "outcome unknown" rather than
    "safe to retry"."""
    if isinstance(exc, MigratorError):
        return exc
    failure = failure_of(exc, in_flight=in_flight)
    code = failure.sqlstate
    if failure.connection_lost:
        detail = f"{what}: connection lost ({server_message(exc)})"
    else:
        # The server's DETAIL is matched but not shown: it can quote raw input rows.
        detail = f"{what}: {server_message(exc)}" + (f" [SQLSTATE {code}]" if code else "")
    return to_error(failure, detail, backend_pid=backend_pid)


_AUTH_STATES = ("28000", "28P01")


def is_auth_failure(error: BaseException) -> bool:
    """The database refused the user or password (a driver exception, or the error classify() made of it)."""
    if sqlstate(error) in _AUTH_STATES:
        return True
    return isinstance(error, MigratorError) and any(f"[SQLSTATE {s}]" in error.message for s in _AUTH_STATES)


def is_missing_column(exc: Any) -> bool:
    """True for 'column does not exist' (used to fall back to another catalog variant)."""
    return sqlstate(exc) in ("42703", "42P01", "42883")
