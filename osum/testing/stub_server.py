"""A local HTTP server on a free port for tests that stand in for remote endpoints (chat, speech)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubHandler(BaseHTTPRequestHandler):
    """A quiet handler with :meth:`reply`; subclasses answer in ``do_POST``."""

    def reply(self, code: int, payload: bytes = b"", kind: str = "application/json") -> None:
        self.send_response(code)
        if payload:
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def stub_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """Serve ``handler`` on 127.0.0.1 in a thread -> (``http://127.0.0.1:PORT/v1``, the server). The server's
    ``bodies`` list is there for the handler to record what it received; the server stops on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
