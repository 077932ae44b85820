"""pytest fixtures over the sandbox (enable with `pytest_plugins = ["migrator.sandbox.pytest_plugin"]`).

Each sandbox runs in its own process (the daemon), so its moto state never mixes
with another sandbox's or with a test's own moto.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migrator.sandbox.client import SandboxClient


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxClient]:
    """One sandbox for the whole session; tests that change a cluster make their own
    (`sandbox.create_seeded_cluster(...)`) or use `fresh_sandbox`."""
    client = SandboxClient.start(tmp_path_factory.mktemp("sandbox"), tables=6, rows=1000,
                                 durations={"metrics_interval": 1.0})
    try:
        yield client
    finally:
        client.stop()


@pytest.fixture
def fresh_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxClient]:
    """A private sandbox for one test (about three seconds to start)."""
    client = SandboxClient.start(tmp_path_factory.mktemp("fresh-sandbox"), tables=4, rows=300)
    try:
        yield client
    finally:
        client.stop()
