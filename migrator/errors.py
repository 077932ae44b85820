"""One exception root for everything the tool reports to a user.

Each error carries the process exit code the CLI returns and whether retrying
the same action may succeed. The exit codes are part of the public interface
(documented in README.md); never renumber them.
"""

from __future__ import annotations

import re
from typing import ClassVar, TypeVar, cast

T = TypeVar("T")

#: A URL's userinfo (``scheme://user:password@``): masked wherever a URL may be shown.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:/+)(?P<userinfo>[^/?#@\s]*)@")
#: The longest message one error line carries (a 250,000-key config must not print 9 MB).
MAX_LINE = 2000


def mask_userinfo(text: str) -> str:
    """``text`` with the user and password of every URL in it masked: ``http://***@host``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def masked(value: T) -> T:
    """``value`` (a string, or JSON-like data) with every URL's userinfo masked: what the store
    records and the history shows."""
    if isinstance(value, str):
        return cast(T, mask_userinfo(value)) if "@" in value else value
    if isinstance(value, dict):
        return cast(T, {k: masked(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return cast(T, [masked(v) for v in value])
    return value


def shorten(text: str, limit: int = 120) -> str:
    """``text`` cut in the middle to at most ``limit`` characters (a path or key to name, not to echo)."""
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}...{text[-keep:]}"


class MigratorError(Exception):
    """Root of every error the tool raises on purpose."""

    exit_code: ClassVar[int] = 1
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """What the CLI prints: one line, URLs' userinfo masked, at most MAX_LINE characters."""
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        text = mask_userinfo(re.sub(r"\s*[\r\n]+\s*", " ", text))
        return text if len(text) <= MAX_LINE else text[:MAX_LINE - 40] + f"... ({len(text) - MAX_LINE + 40} more characters)"


class ConfigError(MigratorError):
    """The configuration file is missing, malformed or inconsistent."""

    exit_code = 2


class UsageError(MigratorError):
    """A command was called with arguments that cannot work."""

    exit_code = 2


class StoreError(MigratorError):
    """The checkpoint store cannot be opened or used."""

    exit_code = 3


class StoreNotFound(StoreError):
    exit_code = 3


class SchemaVersionError(StoreError):
    """The store's schema is newer (or older) than this version of the tool."""

    exit_code = 3


class ConcurrentUpdate(MigratorError):
    """Someone else advanced the same object first (compare-and-set lost)."""

    exit_code = 4


class LeaseHeld(MigratorError):
    """Another live process holds the run lease for this migration."""

    exit_code = 5


class ConfigChanged(MigratorError):
    """The config differs from the one finished work was done with."""

    exit_code = 6


class PreflightFailed(MigratorError):
    """A guard refused to let the migration proceed."""

    exit_code = 7


class ApprovalRequired(MigratorError):
    """The next step changes production and needs an operator's approval."""

    exit_code = 8


class TransientError(MigratorError):
    """A remote call failed in a way that retrying may fix."""

    exit_code = 9
    retryable = True


class OutcomeUnknown(MigratorError):
    """A statement or call was sent and its connection died before the answer came back.

    It may have failed, committed, or still be running on the cluster (a lost client does not
    stop a COPY until the server notices). Never retry it blindly: first make sure the first
    attempt is over (``backend_pid`` names the server process that ran it), then reconcile
    (for a load: read its marker) and only redo work whose effect is provably absent. A
    re-run of the command does that, hence the exit code shared with transient errors."""

    exit_code = 9
    retryable = False

    def __init__(self, message: str, *, hint: str | None = None, backend_pid: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.backend_pid = backend_pid


class RemoteError(MigratorError):
    """A remote call failed for good (recorded with its reason)."""

    exit_code = 10


class SecurityError(MigratorError):
    """Something would break the encryption guarantee; never proceed past it."""

    exit_code = 11


class ValidationMismatch(MigratorError):
    """Source and target disagree."""

    exit_code = 12


class EnvironmentProblem(MigratorError):
    """The local machine lacks something the command needs."""

    exit_code = 13


class DefinitionError(MigratorError):
    """A state-machine definition in states/ is invalid."""

    exit_code = 14


EXIT_CODES: list[tuple[int, str]] = [
    (0, "success (or nothing to do)"),
    (1, "unexpected internal error: a bug (the one line says so and where to report it, with the output of the "
        "same command run with --traceback); no input a user can give should end here"),
    (2, "bad configuration, environment override or command-line usage (including a destructive command "
        "without --confirm)"),
    (3, "checkpoint store missing, unreachable, damaged, read-only, not creatable at its path, or of another "
        "schema version"),
    (4, "another process advanced the same item first; nothing was written"),
    (5, "another live `migrator run` holds this migration"),
    (6, "config changed in a way that would alter finished work"),
    (7, "a preflight or guard check failed"),
    (8, "the next step needs operator approval"),
    (9, "transient remote error persisted after retries, or a connection died while a write was in flight "
        "(outcome unknown: the next run checks what committed before redoing anything); safe to re-run"),
    (10, "remote operation failed"),
    (11, "security check failed (e.g. staged data not encrypted with the configured key)"),
    (12, "validation mismatch between source and target"),
    (13, "local environment problem (missing binaries, ports, output that cannot be written: a full disk, a "
        "closed pipe)"),
    (14, "invalid state-machine definition"),
    (129, "stopped by SIGHUP at the next safe point; run lease released, state consistent: re-run the same "
          "command to continue"),
    (130, "interrupted (Ctrl-C, SIGINT): stopped at the next safe point (a second Ctrl-C stops at once, never "
          "inside a checkpoint write); run lease released, state consistent: re-run the same command to continue"),
    (143, "stopped by SIGTERM (service manager, Kubernetes, `timeout`) at the next safe point; run lease "
          "released, state consistent: re-run the same command to continue"),
]


class NotSupported(MigratorError):
    """The requested phase or feature is not implemented in this version."""

    exit_code = 15


EXIT_CODES.insert([code for code, _ in EXIT_CODES].index(129),
                  (15, "phase or feature not implemented in this version of migrator"))


class InternalError(MigratorError):
    """The tool broke its own rules (e.g. an action returned a move its state does not allow): a bug."""

    exit_code = 1


class GateNotOpen(MigratorError):
    """An approval was given while the migration does not wait at that gate; nothing was recorded."""

    exit_code = 8
