"""``create_app(model, settings)``: the FastAPI app of ``osum serve``.

Routes are in :mod:`osum.serving.routes`; this module adds what wraps every request: the body-size limit (checked
while the body streams in, before anything is parsed), request metrics, OpenAI-shaped errors for every failure,
optional CORS, and the web page at ``/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from osum.api import Osum
from osum.serving.errors import APIError, error_body
from osum.serving.metrics import Metrics
from osum.serving.routes import router
from osum.serving.server import MB, Server, ServeSettings

log = logging.getLogger(__name__)
STATIC = resources.files("osum.serving") / "static"
CLIENT_CLOSED = 499  # the status a request whose client hung up is counted as


def create_app(model: Osum, settings: ServeSettings | None = None) -> FastAPI:
    """The HTTP API over ``model``; its worker thread runs while the app is served (lifespan)."""
    server = Server(model, settings or ServeSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            server.stop()

    app = FastAPI(title="osum", version=_version(), lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.server = server
    app.include_router(router)

    static = str(STATIC)
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(f"{static}/index.html", media_type="text/html")

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail), code=code),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")) or None
        message = (
            f"{param}: {first.get('msg', 'invalid request')}"
            if param
            else first.get("msg", "invalid request")
        )
        return JSONResponse(error_body(400, message, code="invalid_value", param=param), status_code=400)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # the client hung up (mid-upload, or while its answer was decoded): nobody reads a response; 499 is what
        # the metrics count it as (nginx's "client closed request"), not a server error
        log.info("client went away: %s %s", request.method, request.url.path)
        return Response(status_code=CLIENT_CLOSED)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(500, "internal server error; the server log has the details"), status_code=500
        )

    if server.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(server.settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # base64 in JSON is 4/3 of the audio; multipart adds its headers: the exact audio limit is checked later
    app.add_middleware(BodyLimit, limit=server.settings.max_upload_bytes * 4 // 3 + MB)
    app.add_middleware(Instrument, metrics=server.metrics)
    return app


class BodyLimit:
    """Refuse request bodies above ``limit`` bytes with 413: by Content-Length at once, else while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = APIError(
            413,
            f"the request body is larger than this server's {self.limit / MB:.1f} MB limit",
            code="request_too_large",
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await too_large.response()(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large  # answered by the APIError handler
            return message

        await self.app(scope, limited, send)


class Instrument:
    """Count every request by route and status, and time it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tic = time.monotonic()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # route templates only, so that random paths cannot blow up the number of series
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(name, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(name).observe(time.monotonic() - tic)


def _version() -> str:
    from osum import __version__

    return __version__
