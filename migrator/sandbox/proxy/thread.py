"""`ProxyThread`: an event loop in a background thread hosting the proxies by cluster name (add, remove, rename, drop sessions), driven from synchronous code."""

from __future__ import annotations

import asyncio
import threading
from typing import Awaitable, TypeVar

from migrator.sandbox.proxy.server import RedshiftProxy


_T = TypeVar("_T")


class ProxyThread:
    """An event loop in a background thread hosting any number of proxies, driven from sync code."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._proxies: dict[str, RedshiftProxy] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop.run_forever, name="redshift-proxies", daemon=True)
        self._thread.start()

    def __enter__(self) -> "ProxyThread":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def call(self, coro: Awaitable[_T], timeout: float | None = 60.0) -> _T:
        """Run a coroutine on the proxies' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def add(self, proxy: RedshiftProxy) -> int:
        with self._lock:
            if proxy.cluster_id in self._proxies:
                raise ValueError(f"a proxy for cluster {proxy.cluster_id!r} is already running")
            self._proxies[proxy.cluster_id] = proxy
        try:
            return self.call(proxy.start())
        except BaseException:
            with self._lock:
                self._proxies.pop(proxy.cluster_id, None)
            raise

    def get(self, cluster_id: str) -> RedshiftProxy:
        with self._lock:
            return self._proxies[cluster_id]

    def proxies(self) -> dict[str, RedshiftProxy]:
        with self._lock:
            return dict(self._proxies)

    def remove(self, cluster_id: str) -> None:
        with self._lock:
            proxy = self._proxies.pop(cluster_id, None)
        if proxy is not None:
            self.call(proxy.stop())

    def drop_sessions(self, cluster_id: str) -> None:
        self.call(self.get(cluster_id).drop_sessions())

    def rename(self, old_id: str, new_id: str) -> None:
        """The cluster changed identifier; its proxy (and port) follow it."""
        with self._lock:
            if new_id in self._proxies:
                raise ValueError(f"a proxy for cluster {new_id!r} is already running")
            proxy = self._proxies.pop(old_id)
            proxy.cluster_id = new_id
            self._proxies[new_id] = proxy

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        for cluster_id in list(self.proxies()):
            self.remove(cluster_id)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()
