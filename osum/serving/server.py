"""What every endpoint shares: the model, its batching worker, the limits, the metrics, and the two steps every
request takes (read the uploaded audio, then have the worker answer its queries within the time limit)."""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from osum.api import Osum, Query
from osum.data.audio import SAMPLE_RATE, load_audio
from osum.errors import AudioFormatError, AudioTooLongError, ConfigError, OsumError
from osum.inference.decoding import DecodingOptions
from osum.serving.errors import APIError
from osum.serving.metrics import Metrics
from osum.serving.worker import BatchWorker, Job, QueueFull
from osum.tasks import OSUM_TASKS, Task, TaskResult

MB = 2**20
DISCONNECT_POLL = 0.25  # seconds between checks that a waiting request's client is still there


@dataclass(frozen=True)
class ServeSettings:
    """Limits and behaviour of ``osum serve`` (each is a command-line option of the same name)."""

    model_id: str = ""  # the name clients send as `model` (default: the model's folder or preset name)
    api_key: str | None = None  # when set, /v1/* and /metrics need `Authorization: Bearer <key>`
    max_batch_size: int = 8  # queries (clip x task) decoded together
    max_wait_ms: float = 10.0  # how long the worker waits to fill a batch
    max_queue: int = 64  # requests waiting for the worker; beyond this, 429
    request_timeout: float = 120.0  # seconds from arrival to answer; beyond this, 504
    max_upload_mb: float = 25.0  # largest audio upload (OpenAI's limit too); beyond this, 413
    max_audio_seconds: float = 600.0  # longest clip (longer than the model's window is cut at pauses)
    max_prompt_tokens: int = 1024  # longest instruction; beyond this, 400 (a long prompt would hold the batch)
    max_new_tokens: int = 200  # generated tokens per answer; a chat request may ask for fewer
    kv_cache: str = "dynamic"  # the LLM's key/value cache: dynamic, static or compiled (DecodingOptions.kv_cache)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; none by default

    def __post_init__(self) -> None:
        checks = {
            "max_batch_size": self.max_batch_size >= 1,
            "max_wait_ms": self.max_wait_ms >= 0,
            "max_queue": self.max_queue >= 1,
            "request_timeout": self.request_timeout > 0,
            "max_upload_mb": self.max_upload_mb > 0,
            "max_audio_seconds": self.max_audio_seconds > 0,
            "max_prompt_tokens": self.max_prompt_tokens >= 1,
            "max_new_tokens": self.max_new_tokens >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"invalid server settings: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}"
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty; leave it out to serve without one")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)


class Server:
    """The model behind the HTTP API, with its worker thread (``start``/``stop``) and metrics."""

    def __init__(self, model: Osum, settings: ServeSettings) -> None:
        self.model = model
        self.settings = settings
        self.model_id = settings.model_id or _default_id(model)
        self.max_audio_seconds = settings.max_audio_seconds
        self.languages = ("en",) if model.config.architecture == "whisper" else ("en", "zh")
        self.tasks = supported_tasks(model)
        self.created = int(time.time())
        self.metrics = Metrics(queue_depth=lambda: self.worker.depth)
        self.worker = BatchWorker(
            model,
            DecodingOptions(
                max_new_tokens=settings.max_new_tokens,
                max_prompt_tokens=settings.max_prompt_tokens,
                kv_cache=settings.kv_cache,
            ),
            max_batch_size=settings.max_batch_size,
            max_wait=settings.max_wait_ms / 1000,
            max_queue=settings.max_queue,
            on_batch=self.metrics.observe_batch,
        )

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    @property
    def free_prompts(self) -> bool:
        """Whether the model follows free-text instructions (a stage-1 Whisper model takes task tokens only)."""
        return self.model.config.architecture != "whisper"

    def model_card(self) -> dict[str, Any]:
        """The ``/v1/models`` entry, with what a client needs to know under ``osum``."""
        return {
            "id": self.model_id,
            "object": "model",
            "created": self.created,
            "owned_by": "osum",
            "osum": {
                "tasks": [
                    {
                        "name": t.name,
                        "title": t.description,
                        "labels": {f.name: list(f.values) for f in t.label_fields},
                    }
                    for t in self.tasks
                ],
                "languages": list(self.languages),
                "free_prompts": self.free_prompts,
                "max_audio_seconds": self.max_audio_seconds,
                "max_upload_bytes": self.settings.max_upload_bytes,
            },
        }

    # --------------------------------------------------------------------------------------- request steps

    def check_key(self, authorization: str | None) -> None:
        """401 unless ``authorization`` is ``Bearer <the key>`` (when the server has a key)."""
        key = self.settings.api_key
        if key is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise APIError(
                401,
                "this server needs an API key: send `Authorization: Bearer <key>`",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(given.strip().encode(), key.encode()):
            raise APIError(
                401, "the API key is wrong", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
            )

    def task(self, name: str, param: str) -> Task:
        """The model's task ``name``; 400 naming ``param`` when this model cannot do it."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise APIError(
            400,
            f"this model cannot do task {name!r}; it does: {', '.join(t.name for t in self.tasks)}",
            code="unsupported_task",
            param=param,
        )

    def usage(self, task: Task, prompt: str | None, result: TaskResult) -> dict[str, int]:
        """Token counts for a chat answer: the instruction's and the answer's text tokens (speech not counted)."""
        codec = self.model.codec()
        prompt_tokens = len(codec.prompt_ids(task, prompt=prompt))
        completion_tokens = len(self.model.tokenizer(result.raw, add_special_tokens=False)["input_ids"]) + 1
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def check_model(self, name: str | None) -> None:
        """A request's ``model`` must be this server's (or left out)."""
        if name and name != self.model_id:
            raise APIError(
                404,
                f"model {name!r} is not served here; this server serves {self.model_id!r}",
                code="model_not_found",
                param="model",
            )

    def check_language(self, language: str | None) -> str | None:
        """``language`` (ISO 639-1, any case) -> the prompt language to use; None = the model's own."""
        if language is None or not language.strip():
            return None
        code = language.strip().lower()
        if code not in self.languages:
            raise APIError(
                400,
                f"language {language!r} is not supported by {self.model_id!r}; use one of: {', '.join(self.languages)}",
                code="unsupported_language",
                param="language",
            )
        return code if self.model.config.architecture != "whisper" else None

    def check_query(self, task: Task, prompt: str | None, language: str | None, param: str) -> None:
        """Fail now, with a 400 naming ``param``, when the model cannot take this task or prompt (or the prompt is
        longer than ``max_prompt_tokens``: it is refused before it reaches the queue)."""
        if prompt is not None:
            try:
                self.model.check_prompt(prompt, self.worker.options)
            except OsumError as exc:
                raise APIError(400, str(exc), code="prompt_too_long", param=param) from None
        try:
            self.model.codec(language).prompt_ids(task, prompt=prompt)
        except OsumError as exc:
            raise APIError(400, str(exc), code="unsupported_task", param=param) from None

    async def read_audio(self, data: bytes, name: str, param: str) -> torch.Tensor:
        """Uploaded file bytes -> 16 kHz mono ``(N,)``; 413/415/400 errors name the limit or the problem."""
        if len(data) > self.settings.max_upload_bytes:
            raise APIError(
                413,
                f"{name}: {len(data) / MB:.1f} MB is larger than the {self.settings.max_upload_mb:g} MB upload limit",
                code="file_too_large",
                param=param,
            )
        try:
            # decoding and resampling take CPU time: off the event loop
            wave = await run_in_threadpool(load_audio, data, max_seconds=self.max_audio_seconds, name=name)
        except AudioFormatError as exc:
            raise APIError(415, str(exc), code="unsupported_audio_format", param=param) from None
        except AudioTooLongError as exc:
            raise APIError(
                400,
                f"{exc}: the limit is {self.max_audio_seconds:g} s per clip",
                code="audio_too_long",
                param=param,
            ) from None
        except OsumError as exc:
            raise APIError(400, str(exc), code="invalid_audio", param=param) from None
        self.metrics.audio_seconds.inc(wave.shape[0] / SAMPLE_RATE)
        return wave

    async def answer(
        self,
        queries: Sequence[Query],
        started: float,
        language: str | None = None,
        max_new_tokens: int | None = None,
        request: Request | None = None,
    ) -> list[TaskResult]:
        """Have the worker answer ``queries`` -> results in order; 429 when the queue is full, 504 on time-out.

        ``started`` is the request's arrival (``time.monotonic()``): the time limit counts from there. With
        ``request``, a client that hangs up while it waits cancels its job (skipped if the worker has not started
        it) and the request ends as 499 (``ClientDisconnect``), not as an answer nobody reads.
        """
        job = Job(queries, language, max_new_tokens)
        try:
            future = self.worker.submit(job)
        except QueueFull as exc:
            self.metrics.rejected.labels("queue_full").inc()
            raise APIError(
                429,
                f"the server is busy: {exc}; retry later",
                code="queue_full",
                headers={"Retry-After": str(self.retry_after())},
            ) from None
        waiting = asyncio.wrap_future(future)
        deadline = started + self.settings.request_timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                done, _ = await asyncio.wait({waiting}, timeout=min(left, DISCONNECT_POLL))
                if done:
                    return waiting.result()
                if request is not None and await request.is_disconnected():
                    future.cancel()
                    self.metrics.rejected.labels("client_gone").inc()
                    raise ClientDisconnect()
        except TimeoutError:
            future.cancel()  # skipped by the worker if it has not started it yet
            self.metrics.rejected.labels("timeout").inc()
            raise APIError(
                504,
                f"the request took longer than the {self.settings.request_timeout:g} s limit",
                code="timeout",
            ) from None
        except OsumError as exc:
            raise APIError(400, str(exc), code="invalid_request") from None
        except (ClientDisconnect, APIError):
            raise
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception:
            raise APIError(
                500, "decoding failed; the server log has the details", code="decoding_failed"
            ) from None

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: queued batches x the recent batch time (at least 1)."""
        batches = math.ceil(self.worker.depth / self.settings.max_batch_size)
        return max(1, math.ceil(batches * self.worker.batch_seconds))


def supported_tasks(model: Osum) -> list[Task]:
    """The paper's tasks this model can be asked (a stage-1 Whisper model has a token for only some); the combined
    tags are left out (no shipped model is trained on them)."""
    out = []
    for name in OSUM_TASKS:
        task = model.task(name)
        try:
            model.codec().prompt_ids(task)
        except OsumError:
            continue
        out.append(task)
    return out


def _default_id(model: Osum) -> str:
    source = model.source.rstrip("/\\")
    return source.replace("\\", "/").rsplit("/", 1)[-1] or "osum"
