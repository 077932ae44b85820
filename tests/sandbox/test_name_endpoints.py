"""The per-name relay in front of each cluster (migrator/sandbox/endpoints.py)."""

from __future__ import annotations

import socket
import threading

from migrator.sandbox.endpoints import NameEndpoints


def _reply_server() -> tuple[socket.socket, threading.Event]:
    """A server that answers each request in two small writes, as PostgreSQL answers a query
    (row description and rows, then the completion)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while not stop.is_set() and conn.recv(1024):
                conn.sendall(b"rows;")
                conn.sendall(b"done\n")

    threading.Thread(target=serve, daemon=True).start()
    return server, stop


def test_the_relay_forwards_each_chunk_without_waiting_for_acks() -> None:
    server, stop = _reply_server()
    endpoints = NameEndpoints(lambda region, name: server.getsockname()[:2])
    try:
        client = socket.create_connection(endpoints.endpoint("us-east-1", "c1"), timeout=10)
        with client:
            client.sendall(b"select 1")
            reply = b""
            while not reply.endswith(b"\n"):
                reply += client.recv(1024)
            assert reply == b"rows;done\n"
            relayed = [s for group in endpoints._open.values() for s in group]
            assert len(relayed) == 2  # the accepted client side and the upstream side
            # Nagle's algorithm would hold the second small write until the client's delayed
            # ACK (about 40 ms on Linux): every statement of a run would pay it.
            assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in relayed)
    finally:
        stop.set()
        endpoints.close()
        server.close()
