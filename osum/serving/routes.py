"""The endpoints. Each reads and checks its request, hands the queries to :class:`~osum.serving.server.Server`
and shapes the answer; none of them touches the model directly."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import torch
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import FormData, UploadFile

from osum.api import Query
from osum.data.audio import SAMPLE_RATE
from osum.errors import OsumError
from osum.serving import chat, formats
from osum.serving.errors import APIError
from osum.serving.server import Server
from osum.tasks import parse_task_list

router = APIRouter()
MAX_FORM_FIELDS = 32


def server_of(request: Request) -> Server:
    return request.app.state.server


def require_key(request: Request) -> None:
    """With an API key set, a request needs ``Authorization: Bearer <key>`` (401 otherwise)."""
    server_of(request).check_key(request.headers.get("authorization"))


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    server = server_of(request)
    return {
        "status": "ok",
        "model": server.model_id,
        "auth_required": server.settings.api_key is not None,
        "queue_depth": server.worker.depth,
    }


@router.get("/metrics", dependencies=[Depends(require_key)])
async def metrics(request: Request) -> Response:
    m = server_of(request).metrics
    return Response(m.render(), media_type=m.content_type)


@router.get("/v1/models", dependencies=[Depends(require_key)])
async def models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [server_of(request).model_card()]}


@router.get("/v1/models/{model_id:path}", dependencies=[Depends(require_key)])
async def model(model_id: str, request: Request) -> dict[str, Any]:
    server = server_of(request)
    server.check_model(model_id)
    return server.model_card()


@router.post("/v1/audio/transcriptions", dependencies=[Depends(require_key)])
async def transcriptions(request: Request) -> Response:
    """OpenAI's transcription endpoint: ASR for the text; SRWT too when word timestamps are asked for."""
    started = time.monotonic()
    server = server_of(request)
    form = await _form(request)
    server.check_model(_field(form, "model"))
    if (_field(form, "stream") or "false").lower() == "true":
        raise APIError(400, "streamed transcription is not supported; leave `stream` out", param="stream")
    fmt = _field(form, "response_format") or "json"
    if fmt not in formats.FORMATS:
        raise APIError(
            400,
            f"response_format {fmt!r} is not supported; use one of: {', '.join(formats.FORMATS)}",
            code="invalid_value",
            param="response_format",
        )
    granularities = form.getlist("timestamp_granularities[]") + form.getlist("timestamp_granularities")
    for g in granularities:
        if g not in ("word", "segment"):
            raise APIError(
                400,
                f"timestamp granularity {g!r} is not supported; use word or segment",
                code="invalid_value",
                param="timestamp_granularities[]",
            )
    language = server.check_language(_field(form, "language"))
    # OpenAI's `prompt` is a context or vocabulary hint for the decoder: accepted, not used (README). `instruction`
    # (ours) replaces the ASR task's instruction, for models that follow free text.
    prompt = _field(form, "instruction")
    asr = server.task("asr", "model")
    server.check_query(asr, prompt, language, "instruction")
    with_words = "word" in granularities
    wave = await _upload(server, form)
    queries = [Query(wave, asr, prompt)]
    if with_words:
        queries.append(Query(wave, server.task("srwt", "timestamp_granularities[]")))
    results = await server.answer(queries, started, language, request=request)
    text = results[0].transcript or ""
    words = results[1].words if with_words else None
    duration = wave.shape[0] / SAMPLE_RATE
    lang = language or server.model.config.prompt_language
    if fmt == "text":
        return PlainTextResponse(text + "\n")
    if fmt in ("srt", "vtt"):
        media = "text/vtt" if fmt == "vtt" else "application/x-subrip"
        body = formats.subtitles(text, words, duration, fmt, results[0].segments)
        return Response(body, media_type=f"{media}; charset=utf-8")
    if fmt == "verbose_json":
        return JSONResponse(formats.verbose_json(text, words, duration, lang, with_words, results[0]))
    body: dict[str, Any] = {"text": text}
    if with_words:
        body["words"] = [w.to_dict() for w in words or ()]
    return JSONResponse(body)


@router.post("/v1/chat/completions", dependencies=[Depends(require_key)])
async def chat_completions(request: Request) -> Response:
    """OpenAI's chat format: one ``input_audio`` part and the prompt as text; ``osum`` holds the parsed result."""
    started = time.monotonic()
    server = server_of(request)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    req = chat.parse_chat(body)
    server.check_model(req.model)
    task, prompt = chat.resolve_task(req.text, req.task_name, server.tasks, server.free_prompts)
    server.check_query(task, prompt, None, "messages")
    wave = await server.read_audio(req.audio, f"input_audio ({req.audio_format})", "messages")
    max_new = min(req.max_tokens or server.settings.max_new_tokens, server.settings.max_new_tokens)
    (result,) = await server.answer(
        [Query(wave, task, prompt)], started, max_new_tokens=max_new, request=request
    )
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if req.stream:
        events = chat.stream_chunks(result, server.model_id, request_id, created)
        return StreamingResponse(_sse(events), media_type="text/event-stream")
    usage = server.usage(task, prompt, result)
    return JSONResponse(chat.completion(result, server.model_id, request_id, created, usage))


@router.post("/v1/understand", dependencies=[Depends(require_key)])
async def understand(request: Request) -> Response:
    """Ours: one upload, several tasks (``tasks=asr,ser,sgc`` or ``all``) -> every task's parsed result."""
    started = time.monotonic()
    server = server_of(request)
    form = await _form(request)
    server.check_model(_field(form, "model"))
    spec = ",".join(form.getlist("tasks")) or "asr"
    try:  # "all": every task this model does
        names = [t.name for t in (server.tasks if spec.strip().lower() == "all" else parse_task_list(spec))]
    except OsumError as exc:
        raise APIError(400, str(exc), code="unknown_task", param="tasks") from None
    tasks = [server.task(n, "tasks") for n in names]
    prompt = _field(form, "prompt")
    if prompt is not None and len(tasks) > 1:
        raise APIError(
            400,
            f"a prompt replaces one task's instruction, but {len(tasks)} tasks were asked: send one task with it",
            code="invalid_request",
            param="prompt",
        )
    language = server.check_language(_field(form, "language"))
    for task in tasks:
        server.check_query(task, prompt, language, "prompt" if prompt else "tasks")
    wave = await _upload(server, form)
    results = await server.answer(
        [Query(wave, t, prompt) for t in tasks], started, language, request=request
    )
    return JSONResponse(
        {
            "model": server.model_id,
            "duration": round(wave.shape[0] / SAMPLE_RATE, 3),
            "processing_ms": round((time.monotonic() - started) * 1000, 1),
            "results": {r.task: r.to_dict() for r in results},
        }
    )


# ------------------------------------------------------------------------------------------------ helpers


async def _form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(
            415,
            "send the audio as multipart/form-data with a `file` part",
            code="unsupported_media_type",
            param="file",
        )
    return await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise APIError(400, f"`{name}` must be a text field, not a file", code="invalid_value", param=name)
    return value.strip() or None


async def _upload(server: Server, form: FormData) -> torch.Tensor:
    """The uploaded `file` part -> 16 kHz mono waveform ``(N,)``."""
    upload = form.get("file")
    if upload is None:
        raise APIError(400, "the audio `file` part is missing", code="missing_file", param="file")
    if not isinstance(upload, UploadFile):
        # A text field named `file` (say, a path) is refused: the server reads only uploaded bytes.
        raise APIError(
            400, "`file` must be an uploaded file, not a text field", code="invalid_file", param="file"
        )
    data = await upload.read()
    return await server.read_audio(data, upload.filename or "upload", "file")


async def _sse(events: list[dict[str, Any]]) -> AsyncIterator[str]:
    for event in events:
        yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
