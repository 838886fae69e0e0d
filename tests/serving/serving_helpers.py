"""A real ``osum serve`` on 127.0.0.1 for tests: uvicorn in a background thread, on a free port."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import uvicorn

import osum
from osum.serving import ServeSettings, create_app


@contextlib.contextmanager
def running_server(model: osum.Osum, **settings) -> Iterator[str]:
    """Serve ``model`` with ``ServeSettings(**settings)`` -> yields the base URL ``http://127.0.0.1:PORT``."""
    app = create_app(model, ServeSettings(**settings))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wav_bytes(wave: np.ndarray, rate: int = 16000, fmt: str = "WAV") -> bytes:
    """``wave`` (N,) float as the bytes of an audio file (16-bit PCM WAV by default)."""
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt, **({"subtype": "PCM_16"} if fmt == "WAV" else {}))
    return buf.getvalue()
