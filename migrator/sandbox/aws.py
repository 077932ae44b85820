"""The sandbox's AWS side: one moto server on 127.0.0.1 behind a small WSGI gateway.

The gateway sits between the HTTP server and moto's app. It injects the AWS
faults of a :class:`FaultPlan` (S3 SlowDown/500, KMS AccessDenied, latency) in
each protocol's own error format, and hands every Redshift request to the
:class:`RedshiftControlPlane`, which models what moto does not.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence
from urllib.parse import parse_qsl, unquote, urlencode

import boto3
import boto3.session
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from migrator.sandbox.controlplane import Clock, Durations, RedshiftControlPlane, Reply, wall_clock
from migrator.sandbox.controlplane import iam as iam_model
from migrator.sandbox.endpoints import NameEndpoints
from migrator.sandbox.faults import FaultPlan
from migrator.sandbox.interfaces import ClusterHost

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: The account owner's keys (no policy limits them): what tests and the sandbox use to set up cases.
ACCESS_KEY_ID = "AKIASANDBOXTESTING01"
SECRET_ACCESS_KEY = "sandbox-secret-access-key-not-real"
#: The keys the sandbox acts with for UNLOAD/COPY: the cluster's role (its policies decide).
ROLE_ACCESS_KEY_ID = "ASIASANDBOXCLUSTERROLE"
ROLE_SECRET_ACCESS_KEY = "sandbox-role-secret-not-real"
_ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
SANDBOX_KEY_ALIAS = "alias/migrator-sandbox"
UNLOAD_ROLE_NAME = "RedshiftUnloadCopy"

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


#: PutMetricData takes at most 1,000 metric values per call (botocore model: MetricData max 1000).
_METRIC_VALUES_PER_CALL = 999

class AwsSandbox:
    """moto in server mode plus the Redshift control plane, fault injection and metrics.

    ``start()`` (or ``with``) brings the server up on a free port of 127.0.0.1.
    moto keeps its state per process: two sandboxes in one process share it.
    """

    def __init__(self, host: ClusterHost | None = None, faults: FaultPlan | None = None, *,
                 region: str = "us-east-1", log_dir: Path | str | None = None,
                 create_seconds: float = 2.0, modify_seconds: float = 3.0, rename_seconds: float = 1.0,
                 reboot_seconds: float = 1.0, delete_seconds: float = 1.0, snapshot_seconds: float = 1.0,
                 pause_seconds: float = 1.0, resume_seconds: float = 1.0, dns_seconds: float = 2.0,
                 name_endpoints: bool = True, time_scale: float = 1.0, clock: Clock | None = None,
                 tables: Callable[[str], Sequence[str]] | None = None,
                 sleep: Callable[[float], None] = time.sleep, enforce_iam: bool = True) -> None:
        self.region = region
        #: Who may do what: the administrator anything, moto's IAM users and the cluster's role
        #: what their policies allow (controlplane/iam.py).
        self.iam = iam_model.IamAuthority(ACCESS_KEY_ID, enforce=enforce_iam)
        self.iam.act_as_role(ROLE_ACCESS_KEY_ID, UNLOAD_ROLE_NAME)
        self.faults = faults
        self.log_dir = Path(log_dir) if log_dir else (faults.directory if faults else None)
        self.durations = Durations(create=create_seconds, modify=modify_seconds, rename=rename_seconds,
                                   reboot=reboot_seconds, delete=delete_seconds, snapshot=snapshot_seconds,
                                   pause=pause_seconds, resume=resume_seconds, dns=dns_seconds, scale=time_scale)
        self.control_plane = RedshiftControlPlane(host=host, faults=faults, durations=self.durations,
                                                  clock=clock or wall_clock, log_dir=self.log_dir,
                                                  tables=tables)
        self._sleep = sleep
        # Endpoints are per-name listeners, so a cached old name can reach a renamed cluster.
        self.names = NameEndpoints(self.control_plane.resolve) if name_endpoints else None
        self.control_plane.names = self.names
        # A private session: boto3's default one is not safe to share between threads.
        self._session = boto3.session.Session(region_name=region, **self.credentials)
        self._session_lock = threading.Lock()
        self._metrics_client: Any = None
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "AwsSandbox":
        if self._server is not None:
            return self
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        wsgi = server._server  # the werkzeug server moto made; its app is looked up per request
        assert wsgi is not None
        wsgi.app = _Gateway(wsgi.app, self.control_plane, self.faults, self._sleep, self.iam)
        wsgi.RequestHandlerClass = _quiet(wsgi.RequestHandlerClass)
        self._server = server
        self._port = server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self.names is not None:
            self.names.close()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "AwsSandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ access

    @property
    def endpoint_url(self) -> str:
        if self._port is None:
            raise RuntimeError("AwsSandbox is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def credentials(self) -> dict[str, str]:
        return {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY}

    def client(self, service: str, region: str | None = None, *, max_attempts: int | None = None) -> Any:
        """A boto3 client for ``service`` pointed at the sandbox, as the account owner;
        ``max_attempts`` counts the first try."""
        config = (Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
                  if max_attempts else None)
        with self._session_lock:
            return self._session.client(service, endpoint_url=self.endpoint_url,
                                        region_name=region or self.region, config=config)

    def role_client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client acting as the clusters' UNLOAD/COPY role (what its policies allow)."""
        with self._session_lock:
            return self._session.client(service, endpoint_url=self.endpoint_url, region_name=region or self.region,
                                        aws_access_key_id=ROLE_ACCESS_KEY_ID,
                                        aws_secret_access_key=ROLE_SECRET_ACCESS_KEY)

    def create_user(self, name: str, policies: dict[str, dict[str, Any]]) -> tuple[str, str]:
        """An IAM user whose only permissions are ``policies`` (name → document), each a customer
        managed policy attached to it, as an account owner would make one (an inline user policy
        holds at most 2,048 characters, a managed one 6,144): its (access key, secret key)."""
        iam = self.client("iam")
        try:
            iam.create_user(UserName=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "EntityAlreadyExists":
                raise
        for policy_name, document in policies.items():
            made = iam.create_policy(PolicyName=f"{name}-{policy_name}"[:128], PolicyDocument=json.dumps(document))
            iam.attach_user_policy(UserName=name, PolicyArn=made["Policy"]["Arn"])
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def put_role_policy(self, name: str, policy: dict[str, Any]) -> None:
        """Add ``policy`` to the clusters' UNLOAD/COPY role under ``name``."""
        self.client("iam").put_role_policy(RoleName=UNLOAD_ROLE_NAME, PolicyName=name,
                                           PolicyDocument=json.dumps(policy))

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Mutating Redshift calls made so far (what ``aws-calls.log`` holds)."""
        return self.control_plane.calls(action)

    def tick(self) -> None:
        """Apply every cluster transition whose time has passed (requests do this too)."""
        self.control_plane.tick()

    # ----------------------------------------------------------------- metrics

    def publish_metrics(self, cluster_id: str, write_iops: float, cpu: float, connections: float,
                        timestamp: datetime | float | None = None) -> None:
        """Put one data point of each AWS/Redshift metric a write-freeze check reads."""
        self.publish_all_metrics([(cluster_id, write_iops, cpu, connections)], timestamp)

    def publish_all_metrics(self, points: list[tuple[str, float, float, float]],
                            timestamp: datetime | float | None = None) -> None:
        """Data points for many clusters in as few PutMetricData calls as the API allows
        (1,000 values per call): one call per cluster per interval costs the daemon most of a
        core once a test session has made a few dozen clusters."""
        when = (datetime.fromtimestamp(timestamp, tz=timezone.utc) if isinstance(timestamp, (int, float))
                else timestamp or datetime.now(timezone.utc))
        data: list[dict[str, Any]] = []
        for cluster_id, write_iops, cpu, connections in points:
            dims = [{"Name": "ClusterIdentifier", "Value": cluster_id}]
            data += [{"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": float(value), "Unit": unit}
                     for name, value, unit in (("WriteIOPS", write_iops, "Count/Second"),
                                               ("CPUUtilization", cpu, "Percent"),
                                               ("DatabaseConnections", connections, "Count"))]
        if self._metrics_client is None:
            self._metrics_client = self.client("cloudwatch")  # kept: called periodically, from any thread
        for start in range(0, len(data), _METRIC_VALUES_PER_CALL):
            self._metrics_client.put_metric_data(Namespace="AWS/Redshift",
                                                 MetricData=data[start:start + _METRIC_VALUES_PER_CALL])

    # --------------------------------------------------------------- bootstrap

    def bootstrap(self, bucket: str) -> dict[str, str]:
        """Create what a migration needs: staging bucket, KMS keys, the UNLOAD/COPY role.

        Idempotent: objects left by an earlier call in this process are reused.
        """
        s3 = self.client("s3")
        try:
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})

        other_region = "us-west-2" if self.region != "us-west-2" else "us-east-2"
        key = self._key(self.region, SANDBOX_KEY_ALIAS, "migrator sandbox cluster key")
        disabled = self._key(self.region, SANDBOX_KEY_ALIAS + "-disabled", "migrator sandbox disabled key")
        self.client("kms").disable_key(KeyId=disabled["KeyId"])
        foreign = self._key(other_region, SANDBOX_KEY_ALIAS + "-other-region",
                            "migrator sandbox key in another region")
        role = self._unload_role(bucket, key["Arn"])
        return {
            "bucket": bucket,
            "kms_key_id": key["KeyId"], "kms_key_arn": key["Arn"], "kms_key_alias": SANDBOX_KEY_ALIAS,
            "disabled_kms_key_id": disabled["KeyId"], "disabled_kms_key_arn": disabled["Arn"],
            "other_region": other_region,
            "other_region_kms_key_id": foreign["KeyId"], "other_region_kms_key_arn": foreign["Arn"],
            "iam_role_name": UNLOAD_ROLE_NAME, "iam_role_arn": role["Arn"],
        }

    def _key(self, region: str, alias: str, description: str) -> dict[str, Any]:
        kms = self.client("kms", region)
        try:
            found: dict[str, Any] = kms.describe_key(KeyId=alias)["KeyMetadata"]
            return found
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise
        made: dict[str, Any] = kms.create_key(Description=description)["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=made["KeyId"])
        return made

    def _unload_role(self, bucket: str, key_arn: str) -> dict[str, Any]:
        iam = self.client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "redshift.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        try:
            role: dict[str, Any] = iam.create_role(
                RoleName=UNLOAD_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust),
                Description="Lets Redshift UNLOAD to and COPY from the staging bucket")["Role"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "EntityAlreadyExists":
                raise
            role = iam.get_role(RoleName=UNLOAD_ROLE_NAME)["Role"]
        access = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"],
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
             "Resource": [key_arn]}]}
        iam.put_role_policy(RoleName=UNLOAD_ROLE_NAME, PolicyName=f"staging-{bucket}",
                            PolicyDocument=json.dumps(access))
        return role


class _Gateway:
    """WSGI middleware in front of moto: faults first, then Redshift to the control plane."""

    def __init__(self, app: WsgiApp, control_plane: RedshiftControlPlane, faults: FaultPlan | None,
                 sleep: Callable[[float], None], iam: iam_model.IamAuthority | None = None) -> None:
        self.app = app
        self.control_plane = control_plane
        self.faults = faults
        self.sleep = sleep
        self.iam = iam

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        region, service = _scope(environ)
        if self.faults is not None and service:
            latency = self.faults.take("latency", service=service, operation=_operation(service, environ))
            if latency is not None:
                self.sleep(float(latency.params.get("seconds", 1.0)))
        reply: Reply | None = self._authorize(environ, region, service) if self.iam is not None and service else None
        if reply is not None:
            return _send(reply, start_response)
        if service == "s3":
            reply = self._s3_fault(environ)
        elif service == "kms":
            reply = self._kms_fault(environ)
        elif service == "redshift":
            reply = self._redshift(environ, region)
        elif service == "redshift-serverless":
            reply = _serverless(environ)
        if reply is None:
            return self.app(environ, start_response)
        return _send(reply, start_response)

    # ------------------------------------------------------------------- IAM

    def _authorize(self, environ: dict[str, Any], region: str, service: str) -> Reply | None:
        """None when the caller may make this request; else AWS's refusal in the service's format."""
        assert self.iam is not None
        auth = str(environ.get("HTTP_AUTHORIZATION", ""))
        found = _ACCESS_KEY.search(auth)
        access_key = found.group(1) if found else dict(parse_qsl(environ.get("QUERY_STRING", ""))).get(
            "X-Amz-Credential", "").split("/")[0]
        identity = self.iam.identity(access_key)
        if identity is None:
            _read_body(environ)
            return _refusal(service, environ, "InvalidClientTokenId" if service != "s3" else "InvalidAccessKeyId",
                            "The security token included in the request is invalid." if service != "s3" else
                            "The AWS Access Key Id you provided does not exist in our records.")
        if identity.policies is None or not self.iam.enforce:
            return None
        try:
            self.iam.authorize(identity, self._checks(environ, region, service))
        except iam_model.Denied as denied:
            return _refusal(service, environ, "AccessDenied", str(denied))
        return None

    def _checks(self, environ: dict[str, Any], region: str, service: str) -> list[iam_model.Check]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if service == "s3":
            if str(environ.get("PATH_INFO", "")).startswith("/v20180820/"):  # S3 Control (account level)
                return [iam_model.Check("s3:GetAccountPublicAccessBlock", "*")]
            bucket, key = _s3_target(environ)
            query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            operation = _s3_operation(environ, bucket, key)
            # Only a multi-object delete names its objects in the body (an upload's body stays unread).
            body = _read_body(environ) if operation == "DeleteObjects" else b""
            return iam_model.s3_checks(region, operation, bucket, key, query, body, environ)
        body = _read_body(environ)
        if target:
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {}
            return iam_model.json_checks(service, region, target.rsplit(".", 1)[-1], payload)
        params = iam_model.form_params(environ, body)
        if service == "redshift":
            return iam_model.redshift_checks(region, params, self._snapshot_cluster)
        return iam_model.query_checks(service, region, params)

    def _snapshot_cluster(self, region: str, snapshot_id: str) -> str | None:
        try:
            snapshot = self.control_plane._backend(region).snapshots.get(snapshot_id)
        except Exception:  # noqa: BLE001 - unknown: the call itself answers
            return None
        if snapshot is None:
            return None
        return getattr(snapshot, "cluster_identifier", None) or getattr(snapshot.cluster, "cluster_identifier", None)

    # ---------------------------------------------------------------- faults

    def _s3_fault(self, environ: dict[str, Any]) -> Reply | None:
        if self.faults is None:
            return None
        bucket, key = _s3_target(environ)
        attrs = {"operation": _s3_operation(environ, bucket, key), "bucket": bucket, "key": key}
        for kind, status, code, message in (
                ("s3_slowdown", 503, "SlowDown", "Please reduce your request rate."),
                ("s3_error", 500, "InternalError", "We encountered an internal error. Please try again.")):
            fault = self.faults.take(kind, **attrs)
            if fault is None:
                continue
            _read_body(environ)  # drain, so a kept-alive connection stays in step
            text = str(fault.params.get("message", message))
            request_id = f"SANDBOX{int(time.time() * 1000) % 10**10:010d}"
            body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{_xml(text)}</Message>"
                f"<Resource>/{_xml(bucket or '')}{'/' + _xml(key) if key else ''}</Resource>"
                f"<RequestId>{request_id}</RequestId><HostId>sandbox</HostId></Error>").encode()
            return status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body
        return None

    def _kms_fault(self, environ: dict[str, Any]) -> Reply | None:
        if self.faults is None:
            return None
        operation = _operation("kms", environ)
        body = _read_body(environ)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        key_id = payload.get("KeyId") or payload.get("TargetKeyId") or payload.get("DestinationKeyId")
        fault = self.faults.take("kms_access_denied", operation=operation, key_id=key_id)
        if fault is None:
            return None
        message = str(fault.params.get("message") or (
            f"User: arn:aws:sts::123456789012:assumed-role/{UNLOAD_ROLE_NAME}/sandbox is not authorized to "
            f"perform: kms:{operation} on resource: {key_id or '*'} because no identity-based policy allows "
            f"the kms:{operation} action"))
        out = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
        return 400, [("Content-Type", "application/x-amz-json-1.1")], out

    # --------------------------------------------------------------- redshift

    def _redshift(self, environ: dict[str, Any], region: str) -> Reply:
        body = _read_body(environ)
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))

        def forward(to_moto: dict[str, str]) -> Reply:
            encoded = urlencode(to_moto).encode()
            inner = dict(environ)
            inner.update({"REQUEST_METHOD": "POST", "QUERY_STRING": "", "wsgi.input": io.BytesIO(encoded),
                          "CONTENT_LENGTH": str(len(encoded)),
                          "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"})
            return _call(self.app, inner)

        return self.control_plane.handle(region, params, forward)


# ------------------------------------------------------------------ helpers

def _refusal(service: str, environ: dict[str, Any], code: str, message: str) -> Reply:
    """An authorization failure as each protocol answers it (S3 REST XML, JSON, query XML)."""
    request_id = f"SANDBOX{int(time.time() * 1000) % 10**10:010d}"
    if service == "s3":
        body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId>"
            "<HostId>sandbox</HostId></Error>").encode()
        return 403, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body
    if environ.get("HTTP_X_AMZ_TARGET"):
        kind = {"AccessDenied": "AccessDeniedException", "InvalidClientTokenId": "UnrecognizedClientException"}[code]
        return 400, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(
            {"__type": kind, "message": message}).encode()
    if service == "sns" and code == "AccessDenied":
        code = "AuthorizationError"  # SNS's own name for it (its service model)
    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
    return 403, [("Content-Type", "text/xml")], body


def _serverless(environ: dict[str, Any]) -> Reply:
    """The sandbox has no Redshift Serverless (moto does not model it): GetWorkgroup finds no
    workgroup (ResourceNotFoundException, as the botocore model declares for it); any other call
    is refused as not modelled. Either way the body is read, so a kept-alive connection stays in
    step (left unread, it would be parsed as the next request and the client would hang)."""
    body = _read_body(environ)
    operation = _operation("redshift-serverless", environ)
    if operation == "GetWorkgroup":
        try:
            name = str(json.loads(body or b"{}").get("workgroupName", ""))
        except ValueError:
            name = ""
        error = {"__type": "ResourceNotFoundException", "message": f"Workgroup {name} not found."}
    else:
        error = {"__type": "ValidationException",
                 "message": f"The sandbox does not model the Redshift Serverless action {operation or '(none)'}."}
    return 400, [("Content-Type", "application/x-amz-json-1.1")], json.dumps(error).encode()


def _scope(environ: dict[str, Any]) -> tuple[str, str]:
    """(region, service) from the SigV4 credential scope; ('', '') when unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _SCOPE.search(auth)
    if m:
        return m.group(1), m.group(2)
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    cred = query.get("X-Amz-Credential", "")
    parts = cred.split("/")
    if len(parts) == 5:
        return parts[2], parts[3]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return ("us-east-1", "kms") if target.startswith("TrentService.") else ("", "")


def _operation(service: str, environ: dict[str, Any]) -> str:
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rsplit(".", 1)[-1]
    if service == "s3":
        bucket, key = _s3_target(environ)
        return _s3_operation(environ, bucket, key)
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    if "Action" not in query and str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        query.update(parse_qsl(_read_body(environ).decode("utf-8", "replace")))
    return str(query.get("Action", ""))


def _s3_target(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    host = environ.get("HTTP_HOST", "").split(":")[0]
    path = unquote(environ.get("PATH_INFO", "/"))
    if host and not re.fullmatch(r"[\d.]+|localhost", host) and ".s3" in host:
        # virtual-hosted style: bucket.s3.amazonaws.com / bucket.s3.localhost...
        return host.split(".s3", 1)[0], path.lstrip("/") or None
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0] or None
    key = parts[1] if len(parts) > 1 and parts[1] else None
    return bucket, key


_BUCKET_SUBRESOURCES = {
    "publicAccessBlock": "PublicAccessBlock", "encryption": "BucketEncryption", "policy": "BucketPolicy",
    "tagging": "BucketTagging", "versioning": "BucketVersioning", "lifecycle": "BucketLifecycleConfiguration",
    "acl": "BucketAcl", "cors": "BucketCors", "notification": "BucketNotificationConfiguration",
    "location": "BucketLocation", "ownershipControls": "BucketOwnershipControls",
}


def _s3_operation(environ: dict[str, Any], bucket: str | None, key: str | None) -> str:
    """The S3 API operation name a REST request stands for (the common ones)."""
    method = environ.get("REQUEST_METHOD", "GET")
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head"}.get(method, "Post")
    if bucket is None:
        return "ListBuckets"
    if key is None:
        if method == "POST" and "delete" in query:
            return "DeleteObjects"
        for sub, name in _BUCKET_SUBRESOURCES.items():
            if sub in query:
                return "GetBucketLocation" if sub == "location" else f"{verb}{name}"
        if method == "GET":
            if "uploads" in query:
                return "ListMultipartUploads"
            if "versions" in query:
                return "ListObjectVersions"
            return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket"}.get(method, "PostBucket")
    if "uploads" in query:
        return "CreateMultipartUpload"
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if "HTTP_X_AMZ_COPY_SOURCE" in environ else "UploadPart"
        return {"POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload"}.get(method, "ListParts")
    if "tagging" in query:
        return f"{verb}ObjectTagging"
    if "acl" in query:
        return f"{verb}ObjectAcl"
    if method == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" in environ:
        return "CopyObject"
    return f"{verb}Object"


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and leave a re-readable copy for moto."""
    cached = environ.get("sandbox.body")
    if isinstance(cached, bytes):
        return cached
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    if stream is None:
        body = b""
    elif length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["sandbox.body"] = body
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _call(app: WsgiApp, environ: dict[str, Any]) -> Reply:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda _data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return int(str(captured["status"]).split(" ", 1)[0]), list(captured["headers"]), body


def _send(reply: Reply, start_response: Callable[..., Any]) -> list[bytes]:
    status, headers, body = reply
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    kept.append(("Content-Length", str(len(body))))
    start_response(f"{status} {HTTPStatus(status).phrase}", kept)
    return [body]


def _quiet(handler: Any) -> Any:
    """The server's request handler without its per-request access log on stderr."""

    class QuietHandler(handler):  # type: ignore[misc]
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return QuietHandler


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
