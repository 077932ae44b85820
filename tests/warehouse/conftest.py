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
    from migrator.sandbox import Sandbox

    directory: Path = tmp_path_factory.mktemp("wh-sandbox")
    with Sandbox(directory, seed_tables=6, seed_rows=200) as sandbox:
        sandbox.create_cluster(TARGET, encrypted=True, kms_key_id=sandbox.info.kms_key_arn)
        yield sandbox


@pytest.fixture
def src(sb: Any) -> Iterator[Session]:
    with Session(sb.connect(sb.info.source_cluster_id, autocommit=True)) as s:
        yield s


@pytest.fixture
def tgt(sb: Any) -> Iterator[Session]:
    with Session(sb.connect(TARGET, autocommit=True)) as s:
        yield s


@pytest.fixture
def tgt_tx(sb: Any) -> Iterator[Session]:
    with Session(sb.connect(TARGET, autocommit=False)) as s:
        yield s
