"""How a failed AWS call is reported: one classification for every caller (see failures.py)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from migrator.failures import Failure, to_error
from migrator.errors import MigratorError


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def failure_of(exc: BaseException) -> Failure:
    """The facts the rules in failures.py look at, for a botocore exception."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return Failure("aws", describe(exc), aws_code=error_code(exc),
                       http_status=int(status) if status else None, exception=exc)
    return Failure("aws", f"{type(exc).__name__}: {exc}", exception=exc)


def aws_error(exc: BaseException, what: str) -> MigratorError:
    """Missing credentials or profiles and invalid parameters are the operator's to fix (exit 2);
    throttling, 5xx and lost connections are worth retrying; anything else AWS refused is a
    remote error."""
    if isinstance(exc, MigratorError):
        return exc
    return to_error(failure_of(exc), f"{what} failed: {describe(exc)}")
