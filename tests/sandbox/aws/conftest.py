"""Fixtures for the AWS side of the sandbox: one moto server per session, a hand-driven clock,
and a recording stand-in for the data plane (the ClusterHost edge belongs to another part)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from migrator.sandbox.aws import AwsSandbox
from migrator.sandbox.faults import FaultPlan
from tests.sandbox.aws.support import DURATION, FakeClock, RecordingHost, Sleeps


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def host() -> RecordingHost:
    return RecordingHost()


@pytest.fixture(scope="session")
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(scope="session")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aws-sandbox")


@pytest.fixture(scope="session")
def faults(sandbox_dir: Path) -> FaultPlan:
    return FaultPlan(sandbox_dir)


@pytest.fixture(scope="session")
def sandbox(host: RecordingHost, faults: FaultPlan, clock: FakeClock, sleeps: Sleeps,
            sandbox_dir: Path) -> Iterator[AwsSandbox]:
    sb = AwsSandbox(host, faults, log_dir=sandbox_dir, clock=clock, sleep=sleeps,
                    create_seconds=DURATION, modify_seconds=DURATION, rename_seconds=DURATION,
                    reboot_seconds=DURATION, delete_seconds=DURATION, snapshot_seconds=DURATION,
                    pause_seconds=DURATION, resume_seconds=DURATION, dns_seconds=6 * DURATION)
    with sb:
        yield sb


@pytest.fixture(scope="session")
def boot(sandbox: AwsSandbox) -> dict[str, str]:
    return sandbox.bootstrap("migrator-staging")


@pytest.fixture
def rs(sandbox: AwsSandbox) -> Any:
    return sandbox.client("redshift", max_attempts=1)


@pytest.fixture(autouse=True)
def no_leftover_faults(faults: FaultPlan) -> Iterator[None]:
    yield
    faults.clear()


