"""The one table of failure rules: each rule with the text Redshift, S3 or KMS sends.

Driver errors are built as redshift_connector builds them (its exception classes with the
server's ErrorResponse fields); AWS errors as botocore builds them. The last tests drive the
same texts through the sandbox's wire proxy and a real redshift_connector connection.
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest
import redshift_connector
from botocore import exceptions as boto

from migrator import failures
from migrator.aws.errors import aws_error
from migrator.failures import RULES, Verdict, rule_for
from migrator.errors import ConfigError, OutcomeUnknown, RemoteError, SecurityError, TransientError
from migrator.sandbox.client import SandboxClient
from migrator.warehouse.connection import Session
from migrator.warehouse.errors import classify, failure_of


def sql_error(sqlstate: str, message: str, detail: str | None = None) -> Exception:
    fields = {"S": "ERROR", "C": sqlstate, "M": message}
    if detail:
        fields["D"] = detail
    return redshift_connector.ProgrammingError(fields)


def client_error(code: str, message: str, status: int) -> boto.ClientError:
    return boto.ClientError({"Error": {"Code": code, "Message": message},
                             "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


# (rule name, the exception as it arrives, verdict, error class)
CASES: list[tuple[str, Any, Verdict, type]] = [
    ("aws-profile-not-found", boto.ProfileNotFound(profile="prod-mirgator"), Verdict.TERMINAL, ConfigError),
    ("aws-no-credentials", boto.NoCredentialsError(), Verdict.TERMINAL, ConfigError),
    ("aws-no-region", boto.NoRegionError(), Verdict.TERMINAL, ConfigError),
    ("aws-param-validation", boto.ParamValidationError(
        report="Invalid length for parameter ClusterIdentifier, value: 0, valid min length: 1"),
     Verdict.TERMINAL, ConfigError),
    ("db-auth-failed", sql_error("28P01", 'password authentication failed for user "awsuser"'),
     Verdict.TERMINAL, ConfigError),
    ("db-auth-failed", sql_error("28000", 'no pg_hba.conf entry for host "10.0.0.1", user "etl"'),
     Verdict.TERMINAL, ConfigError),
    ("tls-refused-or-unverified", redshift_connector.InterfaceError("Server refuses SSL"), Verdict.TERMINAL,
     SecurityError),
    ("tls-refused-or-unverified", redshift_connector.InterfaceError("communication error", ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate")),
     Verdict.TERMINAL, SecurityError),
    ("connection-lost", redshift_connector.InterfaceError("communication error", ConnectionResetError(104)),
     Verdict.TRANSIENT, TransientError),
    ("connection-lost", redshift_connector.OperationalError("connection time out"),
     Verdict.TRANSIENT, TransientError),
    ("redshift-serializable-violation",
     sql_error("XX000", "1023", "Serializable isolation violation on table - 104562, transactions forming the "
                                "cycle are: 24356, 24360 (pid:12345)"), Verdict.TRANSIENT, TransientError),
    ("sql-serialization-deadlock", sql_error("40001", "could not serialize access due to concurrent update"),
     Verdict.TRANSIENT, TransientError),
    ("sql-serialization-deadlock", sql_error("40P01", "deadlock detected"), Verdict.TRANSIENT, TransientError),
    ("aws-throttling", sql_error("XX000", "S3ServiceException:Please reduce your request rate.,Status 503,"
                                          "Error SlowDown,Rid 1A2B3C4D5E6F7G8H,ExtRid abc/def=,CanRetry 1"),
     Verdict.TRANSIENT, TransientError),
    ("aws-throttling", client_error("SlowDown", "Please reduce your request rate.", 503),
     Verdict.TRANSIENT, TransientError),
    ("aws-throttling", client_error("ThrottlingException", "Rate exceeded", 400), Verdict.TRANSIENT, TransientError),
    ("aws-internal-error", sql_error("XX000", "S3ServiceException:We encountered an internal error. Please try "
                                              "again.,Status 500,Error InternalError,Rid 5C3F9B2D1E0A4B67,"
                                              "ExtRid xyz=,CanRetry 1"), Verdict.TRANSIENT, TransientError),
    ("aws-internal-error", client_error("InternalError", "We encountered an internal error. Please try again.",
                                        500), Verdict.TRANSIENT, TransientError),
    ("aws-internal-error", client_error("ServiceUnavailable", "Service Unavailable", 503),
     Verdict.TRANSIENT, TransientError),
    ("aws-internal-error", sql_error("XX000", "S3ServiceException:KMS internal error.,Status 500,"
                                              "Error KMS.KMSInternalException"), Verdict.TRANSIENT, TransientError),
    ("aws-internal-error", client_error("KMSInternalException", "An internal exception occurred.", 500),
     Verdict.TRANSIENT, TransientError),
    ("aws-internal-error", client_error("DependencyTimeoutException",
                                        "The system timed out while trying to fulfill the request.", 500),
     Verdict.TRANSIENT, TransientError),
    ("aws-server-error", client_error("BadGateway", "Bad Gateway", 502), Verdict.TRANSIENT, TransientError),
    ("aws-network", boto.EndpointConnectionError(endpoint_url="https://redshift.us-east-1.amazonaws.com/"),
     Verdict.TRANSIENT, TransientError),
    ("aws-network", boto.ReadTimeoutError(endpoint_url="https://s3.amazonaws.com/"), Verdict.TRANSIENT,
     TransientError),
    ("redshift-s3-connection-reset", sql_error("XX000", "S3Query Exception Connection failed, retries exceeded."),
     Verdict.TRANSIENT, TransientError),
    ("redshift-s3-connection-reset", sql_error("XX000", "S3ServiceException:Connection reset by peer,Status 0,"
                                                        "Error Unknown,Rid "), Verdict.TRANSIENT, TransientError),
    ("redshift-load-error", sql_error("XX000", "Load into table 'orders' failed.  Check 'stl_load_errors' system "
                                               "table for details."), Verdict.TERMINAL, RemoteError),
    ("redshift-disk-full", sql_error("XX000", "Disk Full"), Verdict.TERMINAL, RemoteError),
    ("sql-canceled", sql_error("57014", "canceling statement due to statement timeout"), Verdict.TERMINAL,
     RemoteError),
    ("sql-resources-or-shutdown", sql_error("57P01", "terminating connection due to administrator command"),
     Verdict.TRANSIENT, TransientError),
    ("sql-resources-or-shutdown", sql_error("53200", "out of memory"), Verdict.TRANSIENT, TransientError),
    ("sql-resources-or-shutdown", sql_error("53300", "sorry, too many clients already"), Verdict.TRANSIENT,
     TransientError),
    ("sql-data-error", sql_error("22P02", 'invalid input syntax for type integer: "x"'), Verdict.TERMINAL,
     RemoteError),
    ("sql-data-error", sql_error("22003", 'value "1023" is out of range for type smallint'), Verdict.TERMINAL,
     RemoteError),
    ("sql-disk-full", sql_error("53100", 'could not extend file "base/16384/16385": No space left on device'),
     Verdict.TERMINAL, RemoteError),
    ("sql-other", sql_error("08P01", "invalid frontend message type 0"), Verdict.TERMINAL, RemoteError),
    ("sql-data-error", sql_error("23505", 'duplicate key value violates unique constraint "pk"'),
     Verdict.TERMINAL, RemoteError),
    ("sql-permission-or-definition", sql_error("42501", "permission denied for relation orders"),
     Verdict.TERMINAL, RemoteError),
    ("sql-permission-or-definition", sql_error("42P01", 'relation "public.nope" does not exist'),
     Verdict.TERMINAL, RemoteError),
    ("aws-access-denied", sql_error("XX000", "S3ServiceException:Access Denied,Status 403,Error AccessDenied,"
                                             "Rid 3F2A"), Verdict.TERMINAL, RemoteError),
    ("aws-access-denied", sql_error("XX000", "S3ServiceException:arn:aws:kms:us-east-1:123456789012:key/k is "
                                             "disabled.,Status 400,Error KMS.DisabledException"),
     Verdict.TERMINAL, RemoteError),
    ("aws-access-denied", client_error("AccessDenied", "Access Denied", 403), Verdict.TERMINAL, RemoteError),
    ("aws-other", client_error("ClusterNotFound", "Cluster nope not found.", 404), Verdict.TERMINAL, RemoteError),
    ("sql-other", sql_error("XX000", "Cannot COPY into nonexistent table mytable"), Verdict.TERMINAL, RemoteError),
]


def _convert(exc: BaseException, *, in_flight: bool = False) -> Any:
    if isinstance(exc, (boto.BotoCoreError, boto.ClientError)):
        return aws_error(exc, "call")
    return classify(exc, "statement", in_flight=in_flight)


@pytest.mark.parametrize("name,exc,verdict,cls", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule(name: str, exc: BaseException, verdict: Verdict, cls: type) -> None:
    if isinstance(exc, (boto.BotoCoreError, boto.ClientError)):
        from migrator.aws.errors import failure_of as aws_failure

        rule = rule_for(aws_failure(exc))
    else:
        rule = rule_for(failure_of(exc))
    assert (rule.name, rule.verdict) == (name, verdict)
    error = _convert(exc)
    assert type(error) is cls
    assert error.retryable == (verdict is Verdict.TRANSIENT)


def test_connection_lost_in_flight_needs_reconcile() -> None:
    exc = redshift_connector.InterfaceError("communication error", ConnectionResetError(104))
    assert rule_for(failure_of(exc, in_flight=True)).name == "connection-lost-in-flight"
    error = classify(exc, "COPY public.orders", in_flight=True, backend_pid=4242)
    assert isinstance(error, OutcomeUnknown) and error.backend_pid == 4242
    assert not error.retryable and error.exit_code == 9
    # A server-side error is an answer, not a lost connection: in flight or not, it is what it says.
    assert isinstance(classify(sql_error("22P02", "invalid input syntax"), "COPY", in_flight=True), RemoteError)


def test_every_rule_has_a_case_and_an_example() -> None:
    covered = {c[0] for c in CASES} | {"connection-lost-in-flight"}
    assert covered == {r.name for r in RULES}
    assert len({r.name for r in RULES}) == len(RULES)
    assert all(r.examples for r in RULES)


def test_rule_examples_match_their_own_rule() -> None:
    """The example texts in the table are real texts; each one, as a message, lands on its rule
    (rules keyed on exception types or connection state are checked by the cases above)."""
    for rule in RULES:
        if rule.exceptions or rule.connection_lost is not None or rule.name.endswith("-other"):
            continue
        for text in rule.examples:
            sqlstate = rule.sqlstates[0].rstrip("*").ljust(5, "0") if rule.sqlstates else "XX000"
            code, status = failures.aws_facts(text)
            origin = next(iter(rule.origins)) if len(rule.origins) == 1 else "sql"
            if rule.aws_codes and code is None:
                code, origin = sorted(rule.aws_codes)[0], "aws"
            if rule.min_status and status is None:
                status, origin = rule.min_status, "aws"
            found = rule_for(failures.Failure(origin, text, sqlstate=sqlstate if origin == "sql" else None,
                                              connection_lost=origin == "driver",
                                              aws_code=code, http_status=status))
            assert found.name == rule.name, (text, found.name)


def test_secret_free_message_for_load_error_detail() -> None:
    """DETAIL can quote raw input; it decides the rule but is not shown."""
    exc = sql_error("XX000", "Load into table 'users' failed.  Check 'stl_load_errors' system table for details.",
                    "raw_line: alice,hunter2")
    error = classify(exc, "COPY public.users")
    assert "hunter2" not in error.one_line() and "stl_load_errors" in error.one_line()


# -- through the wire: the sandbox's proxy answers with these texts -----------------------------

@pytest.fixture
def source(sandbox: SandboxClient) -> Any:
    with Session.of(sandbox.connect(sandbox.info.source_cluster_id, autocommit=True)) as s:
        yield s
    sandbox.faults.clear()


def test_throttled_unload_over_the_wire_is_transient(sandbox: SandboxClient, source: Session) -> None:
    sandbox.faults.add("sql_error", match={"statement": "select", "cluster": sandbox.info.source_cluster_id},
                       sqlstate="XX000", message="S3ServiceException:Please reduce your request rate.,Status 503,"
                                                 "Error SlowDown,Rid 1A2B3C4D,ExtRid abc=,CanRetry 1")
    with pytest.raises(TransientError, match="SlowDown"):
        source.run("select 1", kind="unload", what="UNLOAD public.t")
    assert source.run("select 1") == [(1,)]


def test_serializable_violation_over_the_wire_is_transient(sandbox: SandboxClient, source: Session) -> None:
    sandbox.faults.add("sql_error", match={"statement": "select", "cluster": sandbox.info.source_cluster_id},
                       sqlstate="XX000", message="1023",
                       detail="Serializable isolation violation on table - 104562, transactions forming the cycle "
                              "are: 24356, 24360 (pid:12345)")
    with pytest.raises(TransientError, match="1023"):
        source.run("select 1", kind="load")


def test_load_error_over_the_wire_is_terminal(sandbox: SandboxClient, source: Session) -> None:
    sandbox.faults.add("sql_error", match={"statement": "select", "cluster": sandbox.info.source_cluster_id},
                       sqlstate="XX000",
                       message="Load into table 'orders' failed.  Check 'stl_load_errors' system table for details.")
    with pytest.raises(RemoteError, match="stl_load_errors") as info:
        source.run("select 1", kind="copy")
    assert not info.value.retryable


def test_the_table_renders_as_markdown() -> None:
    text = failures.rules_markdown()
    assert all(f"| {rule.name} |" in text for rule in RULES)
    assert text.count("\n") == len(RULES) + 2
