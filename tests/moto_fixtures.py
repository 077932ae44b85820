"""moto (in-process AWS) for the tests that need the control plane or S3 without the sandbox:
the ambient AWS profile cleared, fake credentials, one region. Import the fixture into a test
module (``from tests.moto_fixtures import aws_on_moto``: it is named ``aws``) to use it there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto import mock_aws

from migrator.aws.clients import AwsClients

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@contextmanager
def moto_session(monkeypatch: pytest.MonkeyPatch, region: str = REGION) -> Iterator[boto3.Session]:
    """A boto3 session on moto, with no profile from the environment reaching it."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        yield boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)


@pytest.fixture(name="aws")
def aws_on_moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    """The ``aws`` fixture: migrator's clients on moto, in REGION."""
    with moto_session(monkeypatch) as session:
        yield AwsClients(REGION, session=session)
