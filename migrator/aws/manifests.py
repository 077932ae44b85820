"""A file group's own manifest written (UNLOAD manifests are read by staging.read_manifest), for a table loaded in file
groups (warehouse/parts.py): each group's COPY reads a manifest listing only its files.

A group manifest keeps the UNLOAD manifest's entries as they are (url, meta.content_length and
meta.record_count, which a columnar COPY and verify_staging need) and marks each `mandatory`, so
a missing file fails the COPY instead of loading fewer rows ("Using a manifest to specify data
files"). It is written SSE-KMS under the staging key, like every staged object (verify_staging
refuses anything else under a prefix it checks).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrator.aws.errors import aws_error
from migrator.aws.staging import read_manifest, split_s3_url
from migrator.errors import RemoteError

__all__ = ["read_manifest", "write_group_manifest"]


def write_group_manifest(s3: Any, url: str, unload_manifest: dict[str, Any], first: int, end: int, *,
                         kms_key_id: str) -> int:
    """Entries [first, end) of ``unload_manifest`` as a manifest of their own at ``url``; returns
    how many. Writing it again gives the same object (the entries are the UNLOAD's)."""
    entries = unload_manifest["entries"][first:end]
    if len(entries) != end - first or not entries:
        raise RemoteError(f"manifest for {url} needs entries {first}..{end - 1}, the UNLOAD listed "
                          f"{len(unload_manifest['entries'])}", hint="the table will be unloaded again")
    doc: dict[str, Any] = {"entries": [{**entry, "mandatory": True} for entry in entries]}
    if "schema" in unload_manifest:
        doc["schema"] = unload_manifest["schema"]
    bucket, key = split_s3_url(url)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc).encode(), ContentType="application/json",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_id)
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, f"write manifest {url}") from None
    return len(entries)
