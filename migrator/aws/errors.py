"""How a failed AWS call is reported: one classification for every caller."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from migrator.errors import ConfigError, MigratorError, RemoteError, TransientError

_RETRYABLE_CODES = ("SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "InternalError",
                    "ServiceUnavailable")


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def aws_error(exc: BaseException, what: str) -> MigratorError:
    """Missing credentials are the operator's to fix; throttling, 5xx and lost connections are
    worth retrying; anything else AWS refused is a remote error."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(f"{what}: no usable AWS credentials ({type(exc).__name__})",
                           hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an "
                                "instance role applies")
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) or 400)
        code = error_code(exc)
        if status >= 500 or "Throttl" in code or code in _RETRYABLE_CODES:
            return TransientError(f"{what} failed: {describe(exc)}", hint="re-run to retry")
        return RemoteError(f"{what} failed: {describe(exc)}")
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{what} failed: {describe(exc)}", hint="re-run to retry")
    return RemoteError(f"{what} failed: {type(exc).__name__}")
