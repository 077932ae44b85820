"""One in-process sandbox for the strategy tests; each test makes its own clusters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migrator.sandbox import Sandbox


@pytest.fixture(scope="session")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(tmp_path_factory.mktemp("strategies-sandbox"), seed_tables=0, seed_rows=10,
                 durations={"modify_seconds": 0.5, "snapshot_seconds": 0.3, "create_seconds": 0.3,
                            "rename_seconds": 0.2, "reboot_seconds": 0.2, "delete_seconds": 0.2},
                 metrics_interval=0.5) as sandbox:
        yield sandbox


@pytest.fixture
def durations(sb: Sandbox) -> Iterator[object]:
    """The control plane's durations, put back after the test changes them."""
    saved = dict(vars(sb.aws.durations))
    yield sb.aws.durations
    for key, value in saved.items():
        setattr(sb.aws.durations, key, value)
