"""Staged files of failed attempts and rolled-back migrations are removed: every object under the
prefix (all pages, not only the first 1000), nothing outside it. Against moto."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from migrator.aws.staging import cleanup_prefix, list_objects
from migrator.errors import ConfigError
from tests.moto_fixtures import moto_session


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with moto_session(monkeypatch) as session:
        client = session.client("s3")
        client.create_bucket(Bucket="staging")
        yield client


def test_cleanup_deletes_every_page_and_nothing_else(s3: Any) -> None:
    keys = [f"migrator/m1/public/orders/attempt-1/{i:04d}_part_00" for i in range(2345)]
    keep = ["migrator/m1/public/orders/attempt-10/0000_part_00", "migrator/m1/public/orders/attempt-1.txt",
            "migrator/m1/public/other/attempt-1/0000_part_00"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="staging", Key=k, Body=b"x"), keys + keep))
    assert cleanup_prefix(s3, "s3://staging/migrator/m1/public/orders/attempt-1/") == 2345
    assert sorted(o["Key"] for o in list_objects(s3, "staging", "migrator/")) == sorted(keep)
    assert cleanup_prefix(s3, "s3://staging/migrator/m1/public/orders/attempt-1/") == 0


@pytest.mark.parametrize("url", ["s3://staging/", "s3://staging/migrator", "s3://staging"])
def test_cleanup_refuses_a_bucket_root_or_partial_name(s3: Any, url: str) -> None:
    s3.put_object(Bucket="staging", Key="migrator/x", Body=b"x")
    with pytest.raises((ValueError, ConfigError)):
        cleanup_prefix(s3, url)
    assert [o["Key"] for o in list_objects(s3, "staging", "")] == ["migrator/x"]
