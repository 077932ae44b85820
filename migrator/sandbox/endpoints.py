"""Cluster names as a client meets them: one TCP listener per cluster name.

A real cluster's endpoint is a DNS name derived from its identifier. After a rename the
old name "could remain cached for a few minutes" (Redshift Management Guide, "Renaming
clusters"), and while a cluster reboots, pauses or is deleted its connections drop. The
sandbox reports one listener per name as the cluster's Endpoint; on every connection the
listener asks the control plane which cluster (data-plane address) the name reaches *now*
and relays bytes to it, or closes the connection when the name reaches nothing.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Callable

log = logging.getLogger("migrator.sandbox.endpoints")

Address = tuple[str, int]
#: (region, cluster name) → the data-plane address the name reaches now, or None.
Resolver = Callable[[str, str], Address | None]


class NameEndpoints:
    """Listeners per (region, name); connections relayed to whatever the name resolves to."""

    def __init__(self, resolve: Resolver, host: str = "127.0.0.1") -> None:
        self._resolve = resolve
        self._host = host
        self._lock = threading.Lock()
        self._listeners: dict[tuple[str, str], socket.socket] = {}
        self._open: dict[Address, set[socket.socket]] = {}
        self._closed = False

    def endpoint(self, region: str, name: str) -> Address:
        """The stable address of ``name`` (made on first use, kept while the sandbox runs)."""
        with self._lock:
            listener = self._listeners.get((region, name))
            if listener is None:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self._host, 0))
                listener.listen(64)
                self._listeners[(region, name)] = listener
                threading.Thread(target=self._accept, args=(listener, region, name),
                                 name=f"sandbox-name-{name}", daemon=True).start()
            address, port = listener.getsockname()[:2]
            return str(address), int(port)

    def drop(self, target: Address) -> None:
        """Close every relayed connection to ``target`` (a reboot, pause or delete drops them)."""
        with self._lock:
            sockets = self._open.pop(target, set())
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listeners = list(self._listeners.values())
            self._listeners.clear()
            opened = [s for group in self._open.values() for s in group]
            self._open.clear()
        for sock in listeners + opened:
            _close(sock)

    # ---------------------------------------------------------------- relay

    def _accept(self, listener: socket.socket, region: str, name: str) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed
            threading.Thread(target=self._relay, args=(client, region, name), daemon=True).start()

    def _relay(self, client: socket.socket, region: str, name: str) -> None:
        try:
            target = self._resolve(region, name)
        except Exception as exc:  # the control plane is gone or failed: the name reaches nothing
            log.debug("resolving %s failed: %s", name, exc)
            target = None
        if target is None:
            _close(client)
            return
        try:
            upstream = socket.create_connection(target, timeout=10)
            upstream.settimeout(None)
            _no_delay(client, upstream)
        except OSError:
            _close(client)
            return
        with self._lock:
            if self._closed:
                _close(client)
                _close(upstream)
                return
            self._open.setdefault(target, set()).update({client, upstream})
        done = threading.Event()
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(src, dst, done), daemon=True).start()
        done.wait()
        with self._lock:
            group = self._open.get(target)
            if group is not None:
                group.discard(client)
                group.discard(upstream)
        _close(client)
        _close(upstream)


def _pump(src: socket.socket, dst: socket.socket, done: threading.Event) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        done.set()


def _no_delay(*sockets: socket.socket) -> None:
    """Forward each chunk at once. With Nagle's algorithm on, a relayed reply that arrives in
    pieces (row description, rows, completion) waits for the client's delayed ACK, about 40 ms
    per statement; the proxy behind (asyncio) already sends without delay."""
    for sock in sockets:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
