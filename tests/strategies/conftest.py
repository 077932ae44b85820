"""One sandbox (its own process) for the strategy tests; each test makes its own clusters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migrator.sandbox.client import SandboxClient

FAST = {"modify_seconds": 0.5, "snapshot_seconds": 0.3, "create_seconds": 0.3, "rename_seconds": 0.2,
        "reboot_seconds": 0.2, "delete_seconds": 0.2}


@pytest.fixture(scope="session")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxClient]:
    client = SandboxClient.start(tmp_path_factory.mktemp("strategies-sandbox"), tables=0, rows=10,
                                 durations={**FAST, "metrics_interval": 0.5})
    try:
        yield client
    finally:
        client.stop()


class Durations:
    """Control-plane durations of the sandbox; setting one takes effect before the assignment returns."""

    def __init__(self, client: SandboxClient) -> None:
        object.__setattr__(self, "_client", client)

    def __setattr__(self, name: str, seconds: float) -> None:
        self._client.set_durations(**{name: seconds})


@pytest.fixture
def durations(sb: SandboxClient) -> Iterator[Durations]:
    """Changed by a test, put back after it."""
    yield Durations(sb)
    sb.set_durations(**{k.removesuffix("_seconds"): v for k, v in FAST.items()})
