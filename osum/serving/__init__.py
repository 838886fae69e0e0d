"""``osum serve``: an OpenAI-compatible HTTP API over one OSUM model, with request batching and a web page.

>>> app = create_app(osum.load("mini-stage1"), ServeSettings(max_batch_size=8))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                                 # doctest: +SKIP

Needs the ``serve`` extra (``pip install "osum[serve]"``): FastAPI, uvicorn, python-multipart, prometheus-client.
"""

from osum.serving.app import create_app
from osum.serving.server import ServeSettings

__all__ = ["ServeSettings", "create_app"]
