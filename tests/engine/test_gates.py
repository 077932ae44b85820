"""Approval gates: accepted only while the migration waits at that gate, recorded with who and
when, and consumed by the move they approve. Driven through the real runner and store with the
scripted data plane (no AWS), and approvals given the way the CLI gives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator import commands
from migrator.config import load_config
from migrator.engine.context import RunOptions
from migrator.engine.runner import Runner
from migrator.errors import ApprovalRequired, GateNotOpen
from migrator.store import Store, db
from tests.harness import write_config
from tests.engine.scripted import scripted_registry

GATES = {"awaiting_cutover": "cutover", "awaiting_decommission": "decommission"}
#: Phases a gate's approval started: the command that passed the gate, interrupted there, is run
#: again to continue; it records nothing (issue 25: `cutover` again in `cutting_over`).
CONTINUED = {"freezing": "cutover", "catching_up": "cutover", "cutting_over": "cutover",
             "decommissioning": "decommission"}


@pytest.fixture
def config_path(tmp_path: Path, store_url: str) -> Path:
    db.upgrade(store_url)
    return write_config(tmp_path / "migrator.toml", migration={"store": store_url})


def _runner(config_path: Path, store: Store, **options: bool | int) -> Runner:
    return Runner(load_config(config_path), store, scripted_registry(), RunOptions(**options))  # type: ignore[arg-type]


def _approval_events(store: Store) -> list[str]:
    m = store.require_migration("m1")
    return [f"{e.trigger}@{e.from_state}" for e in store.events(m) if e.trigger.startswith("approve:")]


def test_approvals_are_refused_in_every_phase_but_their_gate(config_path: Path, store_url: str) -> None:
    with Store.open(store_url) as store:
        _runner(config_path, store, max_steps=0).run()
        seen: list[str] = []
        while True:
            phase = store.require_migration("m1").phase
            seen.append(phase)
            before = _approval_events(store)
            for gate in ("cutover", "decommission", "modify"):
                if GATES.get(phase) == gate:
                    continue
                if CONTINUED.get(phase) == gate:
                    commands.approve(config_path, gate, "test")  # continues; nothing to approve
                    continue
                with pytest.raises(GateNotOpen) as refused:
                    commands.approve(config_path, gate, "test")
                assert refused.value.exit_code == 8
                assert "nothing was recorded" in refused.value.message and phase in refused.value.message
                if gate == "modify":
                    assert "has no modify gate" in (refused.value.hint or "")
            assert store.require_migration("m1").approvals == {} and _approval_events(store) == before, phase
            if phase == "completed":
                break
            gate = GATES.get(phase)
            if gate is not None:
                commands.approve(config_path, gate, "test")
                commands.approve(config_path, gate, "test")  # a second approval at the same gate is a no-op
                given = store.require_migration("m1").approvals[gate]
                assert given["phase"] == phase and given["user"] and given["host"] and given["at"]
                assert _approval_events(store) == before + [f"approve:{gate}@{phase}"]
            _runner(config_path, store, max_steps=1).run()
            # Every move consumed (cleared) whatever approval was given in the phase it left.
            assert store.require_migration("m1").approvals == {}
        assert "awaiting_cutover" in seen and "awaiting_decommission" in seen
        assert set(CONTINUED) <= set(seen)
        m = store.require_migration("m1")
        moves = {e.from_state: e.detail for e in store.events(m, subject="migration") if e.trigger == "approved"}
        assert moves["awaiting_cutover"]["approval"]["via"] == "test"
        assert moves["awaiting_decommission"]["approval"]["phase"] == "awaiting_decommission"


def test_an_early_approval_does_not_carry_a_later_gate(config_path: Path, store_url: str) -> None:
    """The old defect: decommission approved in `created` later went through cutover straight
    into deleting the old source. A stale record (written behind the CLI's back) is cleared by
    the first move, so the run stops at the decommission gate."""
    with Store.open(store_url) as store:
        _runner(config_path, store, max_steps=0).run()
        store.record_approval(store.require_migration("m1"), "decommission", {"via": "stale"})
        with pytest.raises(ApprovalRequired, match="decommission"):
            _runner(config_path, store, approve_cutover=True).run()
        m = store.require_migration("m1")
        assert m.phase == "awaiting_decommission" and m.approvals == {}


def test_run_approve_cutover_records_the_approval_at_the_gate(config_path: Path, store_url: str) -> None:
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired, match="decommission"):
            _runner(config_path, store, approve_cutover=True).run()
        assert _approval_events(store) == ["approve:cutover@awaiting_cutover"]
        m = store.require_migration("m1")
        approval = [e for e in store.events(m) if e.trigger == "approve:cutover"][0].detail
        assert approval["via"] == "run --approve-cutover" and approval["user"]
        # It passed this gate only: the next one still waits, and a re-run with the flag does not pass it.
        with pytest.raises(ApprovalRequired, match="decommission"):
            _runner(config_path, store, approve_cutover=True).run()
        assert store.require_migration("m1").phase == "awaiting_decommission"


def test_status_shows_who_approved_and_how_to_pass_the_gate(config_path: Path, store_url: str) -> None:
    with Store.open(store_url) as store:
        with pytest.raises(ApprovalRequired):
            _runner(config_path, store).run()
    waiting = commands.status(config_path)
    assert "--approve-cutover" in waiting.next_step and waiting.approvals == []
    commands.approve(config_path, "cutover", "migrator cutover")
    approved = commands.status(config_path)
    assert len(approved.approvals) == 1 and approved.approvals[0].startswith("cutover by ")
