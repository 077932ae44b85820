"""Warehouse connections: no client timeout on statements, keepalive for dead peers, and a
connection lost mid-statement reported as 'outcome unknown' for writes."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from migrator.credentials import DbCredentials
from migrator.errors import OutcomeUnknown, SecurityError, TransientError
from migrator.sandbox.client import SandboxClient
from migrator.warehouse.connection import (SANDBOX_PLAINTEXT, Endpoint, Keepalive, Session, connect, end_backend,
                                           open_session)


def _target(sandbox: SandboxClient) -> tuple[Endpoint, DbCredentials]:
    info = sandbox.cluster_info(sandbox.info.source_cluster_id)
    return Endpoint(info.host, info.port, info.database), DbCredentials(info.user, info.password, "sandbox")


@pytest.fixture
def session(sandbox: SandboxClient) -> Iterator[Session]:
    endpoint, creds = _target(sandbox)
    with open_session(endpoint, creds, tls=SANDBOX_PLAINTEXT) as s:
        yield s
    sandbox.faults.clear()


def test_a_statement_may_outlast_the_connect_timeout(sandbox: SandboxClient) -> None:
    endpoint, creds = _target(sandbox)
    conn = connect(endpoint, creds, tls=SANDBOX_PLAINTEXT, connect_timeout=1, autocommit=True)
    with Session(conn) as s:
        assert s.run("select pg_sleep(1.6), 7", kind="validate")[0][1] == 7


def test_keepalive_is_on_with_explicit_probes(sandbox: SandboxClient) -> None:
    endpoint, creds = _target(sandbox)
    conn = connect(endpoint, creds, tls=SANDBOX_PLAINTEXT, keepalive=Keepalive(idle=11, interval=5, count=3))
    try:
        sock = conn._usock
        assert sock.gettimeout() is None
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 11
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
    finally:
        conn.close()


def test_connection_dropped_during_a_write_is_outcome_unknown(sandbox: SandboxClient, session: Session) -> None:
    pid = session.backend_pid
    assert isinstance(pid, int)
    sandbox.faults.add("drop_connection", match={"statement": "select", "cluster": sandbox.info.source_cluster_id})
    with pytest.raises(OutcomeUnknown) as info:
        session.run("select 1", kind="copy", what="COPY public.t")
    assert info.value.backend_pid == pid and not info.value.retryable
    assert "connection lost" in info.value.one_line() and "needs-reconcile" in info.value.one_line()


def test_connection_dropped_during_a_read_is_transient(sandbox: SandboxClient, session: Session) -> None:
    sandbox.faults.add("drop_connection", match={"statement": "select", "cluster": sandbox.info.source_cluster_id})
    with pytest.raises(TransientError) as info:
        session.run("select 1", kind="catalog")
    assert info.value.retryable


def test_end_backend_ends_the_statement_of_a_lost_client(sandbox: SandboxClient, session: Session) -> None:
    endpoint, creds = _target(sandbox)
    with open_session(endpoint, creds, tls=SANDBOX_PLAINTEXT) as other:
        assert other.backend_pid is not None and other.backend_pid != session.backend_pid
        assert end_backend(session, other.backend_pid) is True
        with pytest.raises(TransientError):
            other.run("select 1", kind="catalog")


def test_tls_is_refused_by_a_plaintext_server_as_one_error(sandbox: SandboxClient) -> None:
    """The default is TLS; the sandbox does not speak it, so a TLS connect fails clearly."""
    from migrator.warehouse.connection import Tls

    endpoint, creds = _target(sandbox)
    with pytest.raises(SecurityError, match="Server refuses SSL") as info:
        connect(endpoint, creds, tls=Tls())
    assert not info.value.retryable and info.value.exit_code == 11


@pytest.fixture
def tx_session(sandbox: SandboxClient) -> Iterator[Session]:
    endpoint, creds = _target(sandbox)
    with open_session(endpoint, creds, tls=SANDBOX_PLAINTEXT, autocommit=False) as s:
        yield s
    sandbox.faults.clear()


def test_lost_inside_a_transaction_is_transient_but_a_lost_commit_is_unknown(sandbox: SandboxClient,
                                                                             tx_session: Session) -> None:
    """Without a COMMIT reaching the server, an open transaction can only roll back: a COPY lost
    inside one is safe to redo on a new connection. A COMMIT lost in flight may have committed."""
    cluster = sandbox.info.source_cluster_id
    sandbox.faults.add("drop_connection", match={"statement": "select", "cluster": cluster})
    with pytest.raises(TransientError) as info:
        tx_session.run("select 1", kind="copy", what="COPY public.t")
    assert "connection lost" in info.value.one_line() and tx_session.lost

    endpoint, creds = _target(sandbox)
    with open_session(endpoint, creds, tls=SANDBOX_PLAINTEXT, autocommit=False) as fresh:
        fresh.run("select 1", kind="load")
        sandbox.faults.add("drop_connection", match={"statement": "commit", "cluster": cluster})
        with pytest.raises(OutcomeUnknown) as lost_commit:
            fresh.commit()
        assert lost_commit.value.backend_pid == fresh.backend_pid
    assert sandbox.faults.fired("drop_connection")


def test_a_lost_session_sends_nothing_more(sandbox: SandboxClient, session: Session) -> None:
    sandbox.faults.add("drop_connection", match={"statement": "select", "cluster": sandbox.info.source_cluster_id})
    with pytest.raises(OutcomeUnknown):
        session.run("select 1", kind="load", what="DELETE FROM public.a")
    sent, ran = list(session.statements), session.ran
    with pytest.raises(TransientError, match="DELETE FROM public.b: not sent"):
        session.run("select 2", kind="load", what="DELETE FROM public.b")
    with pytest.raises(TransientError, match="commit: not sent"):
        session.commit()
    assert list(session.statements) == sent and session.ran == ran
