"""A local webhook receiver for the notification tests: every POSTed JSON body is kept, in order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class _Inbox(BaseHTTPRequestHandler):
    messages: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(path: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The webhook URL (on loopback, ending in ``path``) and the list its messages arrive in."""
    messages: list[dict[str, Any]] = []
    server = HTTPServer(("127.0.0.1", 0), type("Inbox", (_Inbox,), {"messages": messages}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}", messages
    finally:
        server.shutdown()
        server.server_close()
