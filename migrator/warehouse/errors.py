"""redshift_connector's exceptions, classified into the tool's own errors.

Connection trouble, serialization conflicts, resource limits and admin shutdowns may pass
on retry (TransientError); everything else is a RemoteError with the server's SQLSTATE and
message. The SQL text is never included: it may name paths an operator did not ask to see,
and strategies record the statement separately.
"""

from __future__ import annotations

import socket
from typing import Any

from migrator.errors import MigratorError, RemoteError, TransientError

# SQLSTATE classes/codes worth a retry: connection exceptions, serialization failure,
# deadlock, insufficient resources, operator intervention (admin shutdown, crash recovery).
_TRANSIENT_PREFIXES = ("08", "53", "57P")
_TRANSIENT_CODES = {"40001", "40P01"}


def sqlstate(exc: BaseException) -> str | None:
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, dict):
        code = arg.get("C")
        return str(code) if code else None
    return None


def server_message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else None
    if isinstance(arg, dict):
        return str(arg.get("M", "")).strip() or type(exc).__name__
    return str(exc).strip() or type(exc).__name__


def classify(exc: BaseException, what: str) -> MigratorError:
    """The MigratorError to raise for ``exc`` raised while doing ``what``."""
    if isinstance(exc, MigratorError):
        return exc
    import redshift_connector

    code = sqlstate(exc)
    message = server_message(exc)
    detail = f"{what}: {message}" + (f" [SQLSTATE {code}]" if code else "")
    if code and (code in _TRANSIENT_CODES or code.startswith(_TRANSIENT_PREFIXES)):
        return TransientError(detail, hint="safe to re-run; the step is idempotent")
    if code is None and isinstance(exc, (redshift_connector.InterfaceError, redshift_connector.OperationalError,
                                         socket.error, EOFError, ConnectionError, TimeoutError)):
        return TransientError(f"{what}: connection lost ({message})", hint="safe to re-run; the step is idempotent")
    return RemoteError(detail)


def is_missing_column(exc: Any) -> bool:
    """True for 'column does not exist' (used to fall back to another catalog variant)."""
    return sqlstate(exc) in ("42703", "42P01", "42883")
