"""Checks on staged UNLOAD output before anything is loaded, and cleanup of a prefix.

A staged object that is not SSE-KMS under the configured key is a SecurityError (exit 11)
and the table stops: it is never loaded. Key ids are compared as ARNs, resolved through
KMS, so an alias, a bare key id and an ARN of the same key agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws.errors import aws_error
from migrator.errors import ConfigError, RemoteError, SecurityError, ValidationMismatch

_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.*)$")


def split_s3_url(url: str) -> tuple[str, str]:
    m = _S3_URL.match(url)
    if not m:
        raise ConfigError(f"not an S3 URL: {url!r}", hint="use s3://bucket/prefix/")
    return m.group(1), m.group(2)


@dataclass(frozen=True)
class StagedFile:
    url: str
    content_length: int
    record_count: int


@dataclass
class StagingReport:
    manifest_url: str
    key_arn: str
    files: list[StagedFile] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.record_count for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.content_length for f in self.files)


def resolve_key_arn(kms: Any, key_id: str, cache: dict[str, str] | None = None) -> str:
    """The key ARN for an alias, alias ARN, key id or key ARN."""
    if cache is not None and key_id in cache:
        return cache[key_id]
    try:
        arn = str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NotFoundException", "AccessDeniedException"):
            raise SecurityError(f"KMS key {key_id} cannot be resolved: {exc.response['Error']['Code']}",
                                hint="check staging.kms_key_id and the role's kms:DescribeKey permission") from None
        raise aws_error(exc, f"describe KMS key {key_id}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"describe KMS key {key_id}") from None
    if cache is not None:
        cache[key_id] = arn
    return arn


def _check_encryption(s3: Any, kms: Any, url: str, expected_arn: str, cache: dict[str, str]) -> dict[str, Any]:
    bucket, key = split_s3_url(url)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise RemoteError(f"staged object {url} is missing", hint="the table will be unloaded again") from None
        raise aws_error(exc, f"head {url}") from None
    except BotoCoreError as exc:
        raise aws_error(exc, f"head {url}") from None
    sse = head.get("ServerSideEncryption")
    if sse != "aws:kms":
        raise SecurityError(f"staged object {url} is not SSE-KMS encrypted (found {sse or 'none'})",
                            hint="it was not written by this migration's UNLOAD; the table is not loaded")
    found = head.get("SSEKMSKeyId")
    if not found or resolve_key_arn(kms, found, cache) != expected_arn:
        raise SecurityError(f"staged object {url} is encrypted with another KMS key ({found or 'unknown'})",
                            hint=f"expected {expected_arn}; the table is not loaded")
    return head  # type: ignore[no-any-return]


def read_manifest(s3: Any, url: str) -> dict[str, Any]:
    """The manifest document at ``url`` (its `entries` in the order UNLOAD listed them)."""
    bucket, key = split_s3_url(url)
    try:
        doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"read manifest {url}") from None
    except ValueError:
        raise RemoteError(f"manifest {url} is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise RemoteError(f"manifest {url} has no entries list", hint="the table will be unloaded again")
    return doc


def verify_staging(s3: Any, kms: Any, manifest_url: str, *, kms_key_id: str, expected_rows: int | None) -> StagingReport:
    """Manifest present and encrypted; every entry present, SSE-KMS under ``kms_key_id``, of the
    manifest's length; every other object under the prefix encrypted too; rows add up. With
    ``expected_rows`` None (the UNLOAD's count was not asked for), the files' rows must add up to
    the manifest's own total (MANIFEST VERBOSE writes a record_count per file and for the whole
    unload), which the report then carries as the rows unloaded."""
    cache: dict[str, str] = {}
    expected_arn = resolve_key_arn(kms, kms_key_id, cache)
    _check_encryption(s3, kms, manifest_url, expected_arn, cache)
    doc = read_manifest(s3, manifest_url)
    bucket, key = split_s3_url(manifest_url)
    report = StagingReport(manifest_url, expected_arn)
    listed = set()
    for entry in doc["entries"]:
        url, meta = str(entry["url"]), entry.get("meta") or {}
        if "content_length" not in meta or "record_count" not in meta:
            raise RemoteError(f"manifest {manifest_url} lacks content_length/record_count for {url}",
                              hint="UNLOAD must use MANIFEST VERBOSE")
        head = _check_encryption(s3, kms, url, expected_arn, cache)
        if int(head["ContentLength"]) != int(meta["content_length"]):
            raise RemoteError(f"staged object {url} has {head['ContentLength']} bytes, manifest says "
                              f"{meta['content_length']}", hint="the table will be unloaded again")
        report.files.append(StagedFile(url, int(meta["content_length"]), int(meta["record_count"])))
        listed.add(split_s3_url(url)[1])
    prefix = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    for obj in list_objects(s3, bucket, prefix):
        if obj["Key"] not in listed and obj["Key"] != key:
            _check_encryption(s3, kms, f"s3://{bucket}/{obj['Key']}", expected_arn, cache)
    if expected_rows is None:
        total = (doc.get("meta") or {}).get("record_count")
        if total is None:
            raise RemoteError(f"manifest {manifest_url} lacks its total record_count",
                              hint="UNLOAD must use MANIFEST VERBOSE")
        expected_rows, counted_by = int(total), "the manifest's total says"
    else:
        counted_by = "the source has"
    if report.rows != expected_rows:
        raise ValidationMismatch(f"staged files of {manifest_url} hold {report.rows} rows, {counted_by} "
                                 f"{expected_rows}", hint="the table will be unloaded again")
    return report


def list_objects(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj for page in pages for obj in page.get("Contents", [])]
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"list s3://{bucket}/{prefix}") from None


def cleanup_prefix(s3: Any, prefix_url: str) -> int:
    """Delete every object under the prefix (all pages, 1000 per request); returns how many."""
    bucket, prefix = split_s3_url(prefix_url)
    if not prefix.endswith("/"):
        raise ValueError(f"refusing to clean a prefix that does not end in '/': {prefix_url}")
    deleted = 0
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            batch = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not batch:
                continue
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RemoteError(f"could not delete s3://{bucket}/{first.get('Key')}: {first.get('Code')}")
            deleted += len(batch)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"clean s3://{bucket}/{prefix}") from None
    return deleted
