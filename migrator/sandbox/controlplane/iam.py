"""IAM as AWS enforces it, for the sandbox's limited identities.

The gateway (sandbox/aws.py) asks :class:`IamAuthority` about every signed request. The
account owner (the sandbox's administrator keys) may do anything. Any other access key must
belong to an IAM user moto knows (made with CreateUser/CreateAccessKey, its policies put with
PutUserPolicy / AttachUserPolicy) or to a role the sandbox acts as (UNLOAD/COPY act as the
cluster's role): the request is allowed only when one of that identity's policies allows every
action it stands for, on the resource AWS checks, with the request's condition keys; otherwise it
is refused as AWS refuses it (AccessDenied, "... because no identity-based policy allows ...").

Why the sandbox's own evaluation rather than moto's IAM access control: moto authorizes most
services by action only (the resource it checks is ``*``), and it has no notion of the
permissions one call needs implicitly (CreateCluster passing roles, using a KMS key; GetObject
of an SSE-KMS object decrypting). Modelled from the IAM User Guide ("Policy evaluation logic",
"IAM JSON policy elements: Condition operators") and the Service Authorization Reference for
Amazon Redshift, Amazon S3, AWS KMS, Amazon SNS, AWS Secrets Manager (see FIDELITY.md).
"""

from __future__ import annotations

import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT = "123456789012"
#: SigV4 scope service → IAM service prefix, where they differ.
_PREFIX = {"monitoring": "cloudwatch", "email": "ses"}
#: Calls every identity may make (the IAM User Guide: GetCallerIdentity needs no permission).
_ALWAYS = frozenset({"sts:GetCallerIdentity"})


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes for a request: an action on a resource, with context keys."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    arn: str
    #: None: the account owner (no policy limits it).
    policies: tuple[dict[str, Any], ...] | None


class Denied(Exception):
    def __init__(self, identity: Identity, check: Check) -> None:
        self.identity, self.check = identity, check
        super().__init__(f"User: {identity.arn} is not authorized to perform: {check.action} on resource: "
                         f"{check.resource} because no identity-based policy allows the {check.action} action")


# -- policy evaluation ------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@lru_cache(maxsize=4096)
def _wildcard(pattern: str, case: bool) -> re.Pattern[str]:
    """IAM wildcards: `*` any run of characters, `?` one character; nothing else is special."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.S if case else re.S | re.I)


def _like(value: str, pattern: str, *, case: bool = True) -> bool:
    return bool(_wildcard(pattern, case).match(value))


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, tuple[str, ...]]) -> bool:
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    values = context.get(key) if key in context else context.get(key.lower())
    wanted_values = [str(w) for w in _as_list(wanted)]
    if values is None:
        # A missing key: negated operators and ...IfExists hold, everything else does not.
        return if_exists or op.startswith(("StringNot", "ArnNot")) or op == "Null" and str(wanted).lower() == "true"
    if op == "Null":
        return str(wanted).lower() == "false"
    tests: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": lambda v, w: v == w, "StringNotEquals": lambda v, w: v == w,
        "StringEqualsIgnoreCase": lambda v, w: v.lower() == w.lower(),
        "StringLike": lambda v, w: _like(v, w), "StringNotLike": lambda v, w: _like(v, w),
        "ArnEquals": lambda v, w: _like(v, w), "ArnLike": lambda v, w: _like(v, w),
        "ArnNotEquals": lambda v, w: _like(v, w), "ArnNotLike": lambda v, w: _like(v, w),
        "Bool": lambda v, w: v.lower() == w.lower(),
    }
    test = tests.get(op)
    if test is None:  # an operator the sandbox does not model: stricter is to refuse
        return False
    negated = op.startswith(("StringNot", "ArnNot"))

    def one(value: str) -> bool:
        hit = any(test(value, w) for w in wanted_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    # ForAnyValue, and a single-valued key (any of its values)
    return any(one(v) for v in values)


def _statement_applies(statement: Mapping[str, Any], check: Check) -> bool:
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement:
        if any(_like(check.action, a, case=False) for a in _as_list(statement["NotAction"])):
            return False
    elif not any(_like(check.action, a, case=False) for a in actions):
        return False
    if "NotResource" in statement:
        if any(_like(check.resource, r) for r in _as_list(statement["NotResource"])):
            return False
    elif not any(_like(check.resource, r) for r in _as_list(statement.get("Resource"))):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in keys.items():
            if not _condition_holds(operator, key, wanted, check.context):
                return False
    return True


def allows(policies: Iterable[Mapping[str, Any]], check: Check) -> bool:
    """An explicit Deny wins; otherwise some Allow must apply (implicit deny)."""
    allowed = False
    for policy in policies:
        for statement in _as_list(policy.get("Statement")):
            if not _statement_applies(statement, check):
                continue
            if statement.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


# -- who is asking ----------------------------------------------------------------------------

class IamAuthority:
    """Identities by access key: the administrator's, moto's IAM users, the roles the sandbox acts as."""

    def __init__(self, admin_access_key: str, *, enforce: bool = True) -> None:
        self.admin_access_key = admin_access_key
        self.enforce = enforce
        self._roles: dict[str, str] = {}  # access key -> role name
        self._lock = threading.Lock()

    def act_as_role(self, access_key: str, role_name: str) -> None:
        with self._lock:
            self._roles[access_key] = role_name

    def identity(self, access_key: str) -> Identity | None:
        """None: not a key of this account (AWS answers InvalidClientTokenId)."""
        if access_key == self.admin_access_key:
            return Identity(f"arn:aws:iam::{ACCOUNT}:root", None)
        backend = _iam_backend()
        with self._lock:
            role_name = self._roles.get(access_key)
        if role_name is not None:
            role = next((r for r in backend.roles.values() if r.name == role_name), None)
            if role is None:
                return Identity(f"arn:aws:iam::{ACCOUNT}:role/{role_name}", ())
            docs = [_document(p) for p in role.policies.values()]
            docs += [_document(p.document) for p in _attached(role)]
            return Identity(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/RedshiftSession", tuple(docs))
        for user in list(backend.users.values()):
            if any(k.access_key_id == access_key and k.status == "Active" for k in user.access_keys):
                docs = [_document(p) for p in user.policies.values()]
                docs += [_document(p.document) for p in _attached(user)]
                return Identity(user.arn, tuple(docs))
        return None

    def authorize(self, identity: Identity, checks: Iterable[Check]) -> None:
        if identity.policies is None or not self.enforce:
            return
        for check in checks:
            if check.action in _ALWAYS:
                continue
            if not allows(identity.policies, check):
                raise Denied(identity, check)


def _iam_backend() -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[ACCOUNT]["global"]


def _attached(principal: Any) -> list[Any]:
    managed = getattr(principal, "managed_policies", {}) or {}
    out = []
    for policy in managed.values():
        version = next((v for v in getattr(policy, "versions", []) if getattr(v, "is_default", False)), None)
        if version is not None:
            out.append(type("Doc", (), {"document": version.document})())
    return out


def _document(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    from urllib.parse import unquote

    text = str(raw)
    try:
        return dict(json.loads(text))
    except ValueError:
        return dict(json.loads(unquote(text)))


# -- what a request stands for ----------------------------------------------------------------

def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


def _members(params: Mapping[str, str], name: str) -> list[str]:
    """A query-protocol list (`Name.<member name>.N`: Redshift's IamRoles are `IamRoles.IamRoleArn.N`)."""
    found = [(k, v) for k, v in params.items() if re.fullmatch(rf"{re.escape(name)}\.\w+\.\d+", k)]
    return [v for _, v in sorted(found, key=lambda kv: int(kv[0].rsplit(".", 1)[1]))]


KeyResolver = Callable[[str, str], tuple[str, tuple[str, ...]] | None]
SnapshotResolver = Callable[[str, str], str | None]


def kms_key(region: str, ref: str) -> tuple[str, tuple[str, ...]] | None:
    """(key ARN, its aliases) behind an id, ARN, alias name or alias ARN, from moto's KMS."""
    from moto.kms.models import kms_backends

    if ref.startswith("arn:") and ":key/" not in ref and ":alias/" not in ref:
        return None
    if ref.startswith("arn:"):
        region = ref.split(":")[3]
    backend = kms_backends[ACCOUNT][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(ref)]
    except Exception:  # noqa: BLE001 - an unknown key: the call itself answers NotFound
        return None
    return key.arn, tuple(sorted(getattr(key, "aliases", {}) or {}))


def _kms_checks(region: str, actions: Iterable[str], ref: str, extra: Mapping[str, tuple[str, ...]] | None = None
                ) -> list[Check]:
    found = kms_key(region, ref)
    if found is None:
        # No such key: KMS answers NotFoundException (there is no key policy to evaluate).
        return []
    resource, aliases = found
    context = {"kms:ResourceAliases": aliases, **(extra or {})}
    return [Check(a, resource, context) for a in actions]


def redshift_checks(region: str, params: Mapping[str, str], snapshot_cluster: SnapshotResolver) -> list[Check]:
    action = params.get("Action", "")
    name = f"redshift:{action}"
    cluster = params.get("ClusterIdentifier")
    checks: list[Check] = []
    if action == "GetClusterCredentials" or action == "GetClusterCredentialsWithIAM":
        checks.append(Check(name, _arn("redshift", region, f"dbuser:{cluster}/{params.get('DbUser', '')}")))
        if params.get("DbName"):
            checks.append(Check(name, _arn("redshift", region, f"dbname:{cluster}/{params['DbName']}")))
        return checks
    if action == "CreateSnapshotCopyGrant":
        checks.append(Check(name, _arn("redshift", region, f"snapshotcopygrant:{params.get('SnapshotCopyGrantName')}")))
        # Redshift creates a KMS grant on the key as the caller.
        checks += _kms_checks(region, ["kms:CreateGrant", "kms:DescribeKey"],
                              params.get("KmsKeyId") or "alias/aws/redshift")
        return checks
    if action == "CreateClusterSnapshot":
        return [Check(name, _arn("redshift", region, f"snapshot:{cluster}/{params.get('SnapshotIdentifier')}"))]
    if action == "CreateTags" and params.get("ResourceName"):
        return [Check(name, params["ResourceName"])]
    if action == "RestoreFromClusterSnapshot":
        snapshot = params.get("SnapshotArn") or None
        if snapshot is None:
            owner = params.get("SnapshotClusterIdentifier") or snapshot_cluster(region, params.get("SnapshotIdentifier", ""))
            snapshot = _arn("redshift", region, f"snapshot:{owner or '*'}/{params.get('SnapshotIdentifier')}")
        checks.append(Check(name, snapshot))
    if cluster and action not in ("DescribeClusters", "DescribeLoggingStatus", "DescribeResize",
                                  "DescribeClusterSnapshots", "DescribeEvents"):
        checks.append(Check(name, _arn("redshift", region, f"cluster:{cluster}")))
        if params.get("NewClusterIdentifier"):
            checks.append(Check(name, _arn("redshift", region, f"cluster:{params['NewClusterIdentifier']}")))
    if not checks:
        checks.append(Check(name, "*"))
    if action in ("CreateCluster", "RestoreFromClusterSnapshot", "ModifyClusterIamRoles"):
        roles = _members(params, "IamRoles") + _members(params, "AddIamRoles")
        if params.get("DefaultIamRoleArn"):
            roles.append(params["DefaultIamRoleArn"])
        passed = {"iam:PassedToService": ("redshift.amazonaws.com",)}
        checks += [Check("iam:PassRole", role, passed) for role in dict.fromkeys(roles)]
    if action in ("CreateCluster", "RestoreFromClusterSnapshot", "ModifyCluster") and params.get("KmsKeyId"):
        # The cluster's key: Redshift makes a grant and wraps the cluster key as the caller.
        checks += _kms_checks(region, ["kms:CreateGrant", "kms:DescribeKey"], params["KmsKeyId"])
    return checks


def _s3_object(bucket: str, key: str) -> Any:
    from moto.s3.models import s3_backends

    try:
        return s3_backends[ACCOUNT]["aws"].get_object(bucket, key)
    except Exception:  # noqa: BLE001 - missing: the call itself answers
        return None


def s3_checks(region: str, operation: str, bucket: str | None, key: str | None, query: Mapping[str, str],
              body: bytes, headers: Mapping[str, str]) -> list[Check]:
    bucket_arn = f"arn:aws:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    if operation in ("ListObjectsV2", "ListObjects", "HeadBucket"):
        return [Check("s3:ListBucket", bucket_arn, {"s3:prefix": (query.get("prefix", ""),)})]
    if operation == "GetBucketLocation":
        return [Check("s3:GetBucketLocation", bucket_arn)]
    if operation == "GetPublicAccessBlock":
        return [Check("s3:GetBucketPublicAccessBlock", bucket_arn)]
    if operation in ("GetObject", "HeadObject"):
        checks = [Check("s3:GetObject", object_arn)]
        found = _s3_object(str(bucket), str(key)) if operation == "GetObject" else None
        if found is not None and getattr(found, "encryption", None) == "aws:kms" and getattr(found, "kms_key_id", None):
            # Reading an SSE-KMS object decrypts its data key as the caller (S3 User Guide, SSE-KMS).
            checks += _kms_checks(region, ["kms:Decrypt"], str(found.kms_key_id))
        return checks
    if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "CopyObject"):
        checks = [Check("s3:PutObject", object_arn)]
        if headers.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION") == "aws:kms":
            ref = headers.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_AWS_KMS_KEY_ID") or "alias/aws/s3"
            checks += _kms_checks(region, ["kms:GenerateDataKey"], ref)
        return checks
    if operation == "DeleteObject":
        return [Check("s3:DeleteObject", object_arn)]
    if operation == "DeleteObjects":
        try:
            keys = [el.text or "" for el in ET.fromstring(body).iter() if el.tag.endswith("Key")]
        except ET.ParseError:
            keys = []
        return [Check("s3:DeleteObject", f"{bucket_arn}/{k}") for k in keys] or [Check("s3:DeleteObject", bucket_arn + "/")]
    return [Check(f"s3:{operation}", object_arn if key else bucket_arn)]


def json_checks(service: str, region: str, operation: str, payload: Mapping[str, Any]) -> list[Check]:
    prefix = _PREFIX.get(service, service)
    name = f"{prefix}:{operation}"
    if service == "kms":
        ref = payload.get("KeyId") or payload.get("TargetKeyId")
        if ref and operation not in ("CreateAlias",):
            return _kms_checks(region, [name], str(ref))
        return [Check(name, "*")]
    if service == "secretsmanager" and payload.get("SecretId"):
        secret = str(payload["SecretId"])
        return [Check(name, secret if secret.startswith("arn:") else _arn("secretsmanager", region, f"secret:{secret}"))]
    return [Check(name, "*")]


def query_checks(service: str, region: str, params: Mapping[str, str]) -> list[Check]:
    prefix = _PREFIX.get(service, service)
    action = params.get("Action", "")
    if service == "sns" and params.get("TopicArn"):
        return [Check(f"sns:{action}", params["TopicArn"])]
    return [Check(f"{prefix}:{action}", "*")]


def form_params(environ: Mapping[str, Any], body: bytes) -> dict[str, str]:
    params = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params
