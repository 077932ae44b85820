"""The cross-region staging message names the bucket's region as AWS names regions (issue 20):
GetBucketLocation answers no constraint for us-east-1 and the legacy "EU" for eu-west-1."""

from __future__ import annotations

import pytest

from migrator.aws.clusters import bucket_region


@pytest.mark.parametrize("constraint, region", [("EU", "eu-west-1"), (None, "us-east-1"), ("", "us-east-1"),
                                                ("ap-south-1", "ap-south-1"), ("eu-west-1", "eu-west-1")])
def test_the_bucket_region_is_named_as_aws_names_it(constraint: str | None, region: str) -> None:
    assert bucket_region(constraint) == region
