"""What a failure means: one ordered table of rules for AWS API errors and Redshift SQL errors.

Redshift reports almost everything that goes wrong inside UNLOAD and COPY with SQLSTATE XX000,
including S3 throttling and S3/KMS internal errors, in a message such as
``S3ServiceException:Please reduce your request rate.,Status 503,Error SlowDown,Rid ...``.
A SQLSTATE alone therefore cannot tell a throttled UNLOAD (try again in a minute) from a load
error (an operator must look). The rules below look at what the failure says: the AWS error
code and HTTP status (from botocore, or parsed out of such a message), the SQLSTATE, the text,
and whether a connection died while a statement was in flight.

Verdicts:
- ``transient``: the same call may pass later; retry with backoff (TransientError, exit 9).
- ``terminal``: retrying the same call cannot help; an operator must act (RemoteError, exit 10,
  or ConfigError, exit 2, when the fix is in the config or the environment).
- ``needs-reconcile``: the call was sent and its outcome is unknown; look before redoing it
  (OutcomeUnknown, see migrator.errors).

The first matching rule wins; the last rules are catch-alls. Every rule has a test with the
text Redshift, S3 or KMS actually sends (tests/aws/test_failures.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from botocore import exceptions as boto

from migrator.errors import ConfigError, MigratorError, OutcomeUnknown, RemoteError, SecurityError, TransientError


class Verdict(StrEnum):
    TRANSIENT = "transient"
    TERMINAL = "terminal"
    RECONCILE = "needs-reconcile"


@dataclass(frozen=True)
class Failure:
    """The facts of one failure, whatever raised it."""

    origin: str  # "aws" (a boto3 call), "sql" (the server answered with an error), "driver" (no answer)
    message: str = ""
    sqlstate: str | None = None
    aws_code: str | None = None
    http_status: int | None = None
    exception: BaseException | None = None
    #: The connection died (no answer from the server, or the driver lost its socket).
    connection_lost: bool = False
    #: A statement that may have committed was in flight when that happened: a COMMIT, or a write
    #: or DDL in autocommit mode. (Inside an open transaction nothing commits without a COMMIT.)
    in_flight: bool = False


@dataclass(frozen=True)
class Rule:
    """Matches when every criterion it sets holds (criteria left empty match anything)."""

    name: str
    verdict: Verdict
    reason: str
    origins: frozenset[str] = frozenset()
    sqlstates: tuple[str, ...] = ()  # exact codes, or class prefixes ending in '*'
    aws_codes: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    min_status: int | None = None
    exceptions: tuple[type[BaseException], ...] = ()
    connection_lost: bool | None = None
    in_flight: bool | None = None
    #: The error class to raise; by default TransientError / RemoteError / OutcomeUnknown by verdict.
    error: type[MigratorError] | None = None
    hint: str | None = None
    examples: tuple[str, ...] = field(default=(), compare=False)

    def matches(self, f: Failure) -> bool:
        if self.origins and f.origin not in self.origins:
            return False
        if self.sqlstates and not any(_state_matches(s, f.sqlstate) for s in self.sqlstates):
            return False
        if self.aws_codes and _bare_code(f.aws_code) not in self.aws_codes:
            return False
        if self.pattern is not None and not self.pattern.search(f.message):
            return False
        if self.min_status is not None and (f.http_status is None or f.http_status < self.min_status):
            return False
        if self.exceptions and not isinstance(f.exception, self.exceptions):
            return False
        if self.connection_lost is not None and f.connection_lost != self.connection_lost:
            return False
        if self.in_flight is not None and f.in_flight != self.in_flight:
            return False
        return True

    def error_class(self) -> type[MigratorError]:
        if self.error is not None:
            return self.error
        return {Verdict.TRANSIENT: TransientError, Verdict.TERMINAL: RemoteError,
                Verdict.RECONCILE: OutcomeUnknown}[self.verdict]


def _state_matches(rule_state: str, found: str | None) -> bool:
    if found is None:
        return False
    return found.startswith(rule_state[:-1]) if rule_state.endswith("*") else found == rule_state


def _bare_code(code: str | None) -> str | None:
    """Redshift prefixes KMS codes with the service ('KMS.KMSInternalException')."""
    return code.rsplit(".", 1)[-1] if code else None


_I = re.IGNORECASE
THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "ThrottledException",
                              "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled",
                              "RequestThrottledException", "ProvisionedThroughputExceededException",
                              "PriorRequestNotComplete", "EC2ThrottledException"})
INTERNAL_CODES = frozenset({"InternalError", "InternalFailure", "InternalServerError", "InternalServiceError",
                            "ServiceUnavailable", "ServiceUnavailableException", "ServiceFailure",
                            "KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException",
                            "RequestTimeout", "RequestTimeoutException",
                            "IDPCommunicationError"})
_RETRY_HINT = "retried with backoff; re-run if it persists"

#: The table. Order matters: specific rules first, catch-alls last.
RULES: tuple[Rule, ...] = (
    # -- the operator's environment or config: never retried --------------------------------
    Rule("aws-profile-not-found", Verdict.TERMINAL, "the AWS profile named does not exist",
         exceptions=(boto.ProfileNotFound,), error=ConfigError,
         hint="check AWS_PROFILE (or --profile) against `aws configure list-profiles`",
         examples=("The config profile (prod-mirgator) could not be found",)),
    Rule("aws-no-credentials", Verdict.TERMINAL, "no usable AWS credentials",
         exceptions=(boto.NoCredentialsError, boto.PartialCredentialsError), error=ConfigError,
         hint="set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where an instance "
              "role applies", examples=("Unable to locate credentials",)),
    Rule("aws-no-region", Verdict.TERMINAL, "no AWS region", exceptions=(boto.NoRegionError,), error=ConfigError,
         hint="set [migration] region", examples=("You must specify a region.",)),
    Rule("aws-param-validation", Verdict.TERMINAL,
         "a value does not fit the AWS API (botocore refused it before sending anything)",
         exceptions=(boto.ParamValidationError,), error=ConfigError,
         hint="the parameter named comes from the config or a recorded value; fix it and re-run",
         examples=("Parameter validation failed:\nInvalid length for parameter ClusterIdentifier, value: 0, "
                   "valid min length: 1",)),
    Rule("db-auth-failed", Verdict.TERMINAL, "the database refused the user name or password",
         origins=frozenset({"sql"}), sqlstates=("28000", "28P01"), error=ConfigError,
         hint="check the connection section's user and its password source (password_env, secret_arn, iam_auth)",
         examples=('password authentication failed for user "awsuser"',)),
    Rule("tls-refused-or-unverified", Verdict.TERMINAL,
         "TLS could not be set up: the server refused it or its certificate did not verify",
         origins=frozenset({"driver"}), error=SecurityError,
         pattern=re.compile(r"refuses SSL|CERTIFICATE_VERIFY_FAILED|certificate verify failed|"
                            r"hostname .* doesn't match|IP address mismatch", _I),
         hint="check the endpoint and the connection section's sslmode (verify-ca when `host` is not a name "
              "on the certificate); plaintext is for the local sandbox only",
         examples=("Server refuses SSL", "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get "
                                         "local issuer certificate (_ssl.c:1006)")),
    # -- a connection that died ----------------------------------------------------------------
    Rule("connection-lost-in-flight", Verdict.RECONCILE,
         "the connection died while a COMMIT or an autocommitted write was running; it may have committed, "
         "failed, or still be running", connection_lost=True, in_flight=True,
         hint="re-run: the resumed run checks what committed (load marker) before redoing anything",
         examples=("communication error: [Errno 104] Connection reset by peer",)),
    Rule("connection-lost", Verdict.TRANSIENT,
         "the connection failed or died with nothing in flight that could commit (the server rolls back an "
         "open transaction whose client is gone)",
         connection_lost=True, hint=_RETRY_HINT, examples=("connection time out",)),
    # -- Redshift: concurrency -----------------------------------------------------------------
    Rule("redshift-serializable-violation", Verdict.TRANSIENT,
         "serializable isolation conflict (Redshift error 1023): the transaction was cancelled and can be retried",
         origins=frozenset({"sql"}),
         pattern=re.compile(r"^\s*(ERROR:\s*)?1023\b|serializable isolation violation", _I),
         hint=_RETRY_HINT,
         examples=("1023 DETAIL: Serializable isolation violation on table - 104562, transactions forming "
                   "the cycle are: 24356, 24360 (pid:12345)",)),
    Rule("sql-serialization-deadlock", Verdict.TRANSIENT, "serialization failure or deadlock",
         origins=frozenset({"sql"}), sqlstates=("40001", "40P01"), hint=_RETRY_HINT,
         examples=("could not serialize access due to concurrent update", "deadlock detected")),
    # -- AWS throttling and internal errors, from boto3 or inside a Redshift message ----------
    Rule("aws-throttling", Verdict.TRANSIENT, "AWS throttled the request", aws_codes=THROTTLING_CODES,
         hint=_RETRY_HINT,
         examples=("S3ServiceException:Please reduce your request rate.,Status 503,Error SlowDown,"
                   "Rid 1A2B3C4D5E6F7G8H,ExtRid abc/def=,CanRetry 1", "Rate exceeded")),
    Rule("aws-internal-error", Verdict.TRANSIENT, "an AWS service failed internally or was unavailable",
         aws_codes=INTERNAL_CODES, hint=_RETRY_HINT,
         examples=("S3ServiceException:We encountered an internal error. Please try again.,Status 500,"
                   "Error InternalError,Rid 5C3F9B2D1E0A4B67,ExtRid xyz=,CanRetry 1",
                   "S3ServiceException:Service Unavailable,Status 503,Error ServiceUnavailable,Rid 7D6C",
                   "S3ServiceException:KMS internal error.,Status 500,Error KMS.KMSInternalException",
                   "S3ServiceException:The system timed out while trying to fulfill the request.,Status 500,"
                   "Error KMS.DependencyTimeoutException")),
    Rule("aws-server-error", Verdict.TRANSIENT, "AWS answered with a 5xx status", min_status=500,
         hint=_RETRY_HINT, examples=("S3ServiceException:Bad Gateway,Status 502,Error BadGateway,Rid 9F",)),
    Rule("aws-network", Verdict.TRANSIENT, "the network between this machine and AWS failed",
         exceptions=(boto.EndpointConnectionError, boto.ConnectionClosedError, boto.ReadTimeoutError,
                     boto.ConnectTimeoutError), hint=_RETRY_HINT,
         examples=('Could not connect to the endpoint URL: "https://redshift.us-east-1.amazonaws.com/"',)),
    Rule("redshift-s3-connection-reset", Verdict.TRANSIENT,
         "Redshift lost its connection to S3 (reset, timed out, retries exhausted)",
         origins=frozenset({"sql"}), sqlstates=("XX000",),
         pattern=re.compile(r"connection (reset|timed out|failed|closed)|broken pipe|"
                            r"retries exceeded|curl(code)? error|Resource temporarily unavailable", _I),
         hint=_RETRY_HINT,
         examples=("S3Query Exception Connection failed, retries exceeded.",
                   "S3ServiceException:Connection reset by peer,Status 0,Error Unknown,Rid ")),
    # -- data, permissions and definitions: never retried -------------------------------------
    Rule("redshift-load-error", Verdict.TERMINAL, "COPY rejected the data (see stl_load_errors)",
         origins=frozenset({"sql"}), pattern=re.compile(r"stl_load_errors", _I),
         hint="the rows and reason are in stl_load_errors for this query",
         examples=("Load into table 'orders' failed.  Check 'stl_load_errors' system table for details.",)),
    Rule("redshift-disk-full", Verdict.TERMINAL, "the cluster ran out of disk space",
         origins=frozenset({"sql"}), pattern=re.compile(r"disk full", _I), hint="free space or resize the cluster",
         examples=("Disk Full",)),
    Rule("sql-disk-full", Verdict.TERMINAL, "the server ran out of disk space", origins=frozenset({"sql"}),
         sqlstates=("53100",), hint="free space or resize the cluster",
         examples=('could not extend file "base/16384/16385": No space left on device',)),
    Rule("sql-canceled", Verdict.TERMINAL,
         "the statement was cancelled (statement_timeout, a WLM rule or an operator); the same statement "
         "would be cancelled again", origins=frozenset({"sql"}), sqlstates=("57014",),
         hint="raise statement_timeout / the WLM timeout for the migration user",
         examples=("canceling statement due to statement timeout",
                   "Query (12345) cancelled by WLM abort action of Query Monitoring Rule \"long\".")),
    Rule("sql-resources-or-shutdown", Verdict.TRANSIENT,
         "the server is short of resources, shutting down or recovering", origins=frozenset({"sql"}),
         sqlstates=("53*", "57P*", "08000", "08001", "08003", "08004", "08006"), hint=_RETRY_HINT,
         examples=("terminating connection due to administrator command", "out of memory",
                   "sorry, too many clients already")),
    Rule("sql-data-error", Verdict.TERMINAL, "the data or a value is invalid", origins=frozenset({"sql"}),
         sqlstates=("22*", "23*"), examples=('invalid input syntax for type integer: "x"',
                                             'duplicate key value violates unique constraint "pk"')),
    Rule("sql-permission-or-definition", Verdict.TERMINAL, "permission denied, or an object or name is wrong",
         origins=frozenset({"sql"}), sqlstates=("42*",),
         examples=("permission denied for relation orders", 'relation "public.nope" does not exist')),
    Rule("aws-access-denied", Verdict.TERMINAL, "AWS refused the request (permissions, missing or disabled "
         "resource, invalid request)", aws_codes=frozenset({"AccessDenied", "AccessDeniedException",
                                                             "NoSuchBucket", "NoSuchKey", "NotFoundException",
                                                             "DisabledException", "KMSInvalidStateException",
                                                             "InvalidCiphertextException", "IncorrectKeyException"}),
         examples=("S3ServiceException:Access Denied,Status 403,Error AccessDenied,Rid 3F",
                   "S3ServiceException:arn:aws:kms:us-east-1:123456789012:key/k is disabled.,Status 400,"
                   "Error KMS.DisabledException")),
    # -- catch-alls ----------------------------------------------------------------------------
    Rule("aws-other", Verdict.TERMINAL, "AWS refused the request", origins=frozenset({"aws"}),
         examples=("ClusterNotFound: Cluster nope not found.",)),
    Rule("sql-other", Verdict.TERMINAL, "the server reported an error retrying will not fix",
         examples=("Cannot COPY into nonexistent table mytable",)),
)

_S3_STATUS = re.compile(r",\s*Status\s+(\d{3})\b")
_S3_CODE = re.compile(r",\s*Error\s+([A-Za-z][\w.]*)")


def aws_facts(message: str) -> tuple[str | None, int | None]:
    """The AWS error code and HTTP status Redshift quotes in an S3ServiceException message."""
    code = _S3_CODE.search(message)
    status = _S3_STATUS.search(message)
    return (code.group(1) if code else None), (int(status.group(1)) if status else None)


def rules_markdown() -> str:
    """The table as Markdown (for the README and the issue's closing note)."""
    lines = ["| # | rule | matches | verdict | reason |", "|---|---|---|---|---|"]
    for number, rule in enumerate(RULES, 1):
        parts = []
        if rule.origins:
            parts.append("/".join(sorted(rule.origins)))
        if rule.sqlstates:
            parts.append("SQLSTATE " + ", ".join(rule.sqlstates))
        if rule.aws_codes:
            parts.append("AWS code " + ", ".join(sorted(rule.aws_codes)))
        if rule.min_status:
            parts.append(f"HTTP >= {rule.min_status}")
        if rule.pattern is not None:
            parts.append(f"text ~ `{rule.pattern.pattern}`".replace("|", "\\|"))
        if rule.exceptions:
            parts.append(", ".join(e.__name__ for e in rule.exceptions))
        if rule.connection_lost:
            parts.append("connection lost" + (" with a possible commit in flight" if rule.in_flight else ""))
        verdict = rule.verdict.value + (f" ({rule.error.__name__})" if rule.error else "")
        lines.append(f"| {number} | {rule.name} | {'; '.join(parts) or 'anything else'} | {verdict} | {rule.reason} |")
    return "\n".join(lines) + "\n"


def rule_for(failure: Failure) -> Rule:
    for rule in RULES:
        if rule.matches(failure):
            return rule
    raise AssertionError("the catch-all rule matches everything")  # pragma: no cover


def to_error(failure: Failure, detail: str, *, backend_pid: int | None = None) -> MigratorError:
    """The MigratorError for ``failure``; ``detail`` is the one-line description (never a secret)."""
    rule = rule_for(failure)
    cls = rule.error_class()
    message = f"{detail} [{rule.verdict}: {rule.reason}]"
    if issubclass(cls, OutcomeUnknown):
        return cls(message, hint=rule.hint, backend_pid=backend_pid)
    return cls(message, hint=rule.hint)
