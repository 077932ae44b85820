"""One sandbox for the warehouse tests: the seeded source 'analytics' and an encrypted target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.warehouse.connection import Session

TARGET = "analytics-enc"


@pytest.fixture(scope="session")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from migrator.sandbox.client import SandboxClient

    directory: Path = tmp_path_factory.mktemp("wh-sandbox")
    sandbox = SandboxClient.start(directory, tables=6, rows=200)
    try:
        sandbox.create_cluster(TARGET, encrypted=True, kms_key_id=sandbox.info.kms_key_arn)
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def src(sb: Any) -> Iterator[Session]:
    with Session.of(sb.connect(sb.info.source_cluster_id, autocommit=True)) as s:
        yield s


@pytest.fixture
def tgt(sb: Any) -> Iterator[Session]:
    with Session.of(sb.connect(TARGET, autocommit=True)) as s:
        yield s


@pytest.fixture
def tgt_tx(sb: Any) -> Iterator[Session]:
    with Session.of(sb.connect(TARGET, autocommit=False)) as s:
        yield s
