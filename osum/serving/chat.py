"""``/v1/chat/completions`` requests: OpenAI's chat format with one ``input_audio`` part -> an OSUM query.

The text parts of the last user message are the prompt. Which task parses the answer:

- an explicit ``task`` field in the request body (``extra_body={"task": "ser"}`` in the openai client), with the
  text, if any, as its instruction;
- else text that names a task (``ser``, ``<TRANSCRIBE><EMOTION>``) or is one of a task's own prompts: that task;
- else no text: ASR; any other text is a free instruction, answered in the chat (STTC) form.

Audio comes only as base64 data inside the request: there is no field through which a client could make the
server open a path or a URL.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from osum.errors import OsumError
from osum.serving.errors import APIError
from osum.tasks import Task, TaskResult, get_task

AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "opus", "aiff")  # soundfile reads them all


@dataclass(frozen=True)
class ChatRequest:
    audio: bytes
    audio_format: str
    text: str  # the text parts of the last user message, joined
    task_name: str | None  # explicit `task` field
    model: str | None
    max_tokens: int | None
    stream: bool


def parse_chat(body: object) -> ChatRequest:
    """Validate a chat completion request body -> :class:`ChatRequest` (APIError 400 naming the field)."""
    if not isinstance(body, Mapping):
        raise _bad("the request body must be a JSON object", None)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` must be a non-empty list", "messages")
    n = body.get("n", 1)
    if n != 1:
        raise _bad("only n=1 is supported", "n")
    audio: list[tuple[bytes, str]] = []
    text = ""
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise _bad(f"messages[{i}] must be an object with a `role`", f"messages[{i}]")
        parts = _parts(message.get("content"), f"messages[{i}].content")
        if message["role"] != "user":
            continue  # OSUM has no system prompt and answers one turn
        texts = []
        for j, part in enumerate(parts):
            where = f"messages[{i}].content[{j}]"
            kind = part.get("type")
            if kind == "text":
                if not isinstance(part.get("text"), str):
                    raise _bad("a text part needs a string `text`", where)
                texts.append(part["text"])
            elif kind == "input_audio":
                audio.append(_audio(part.get("input_audio"), f"{where}.input_audio"))
            else:
                raise _bad(f"unsupported content part type {kind!r}; use text or input_audio", where)
        text = " ".join(t.strip() for t in texts if t.strip())
    if len(audio) != 1:
        raise _bad(
            f"the user messages must hold exactly one input_audio part; they hold {len(audio)}", "messages"
        )
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise _bad("max_tokens must be a positive integer", "max_tokens")
    task = body.get("task")
    if task is not None and not isinstance(task, str):
        raise _bad("`task` must be a task name such as 'ser'", "task")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("`model` must be a string", "model")
    return ChatRequest(
        audio=audio[0][0],
        audio_format=audio[0][1],
        text=text,
        task_name=task,
        model=model,
        max_tokens=max_tokens,
        stream=bool(body.get("stream", False)),
    )


def resolve_task(
    text: str, task_name: str | None, tasks: Sequence[Task], free_prompts: bool
) -> tuple[Task, str | None]:
    """Which of ``tasks`` answers, and the instruction to give it (None = the task's own prompt).

    ``free_prompts`` is False for models that take only task tokens (stage-1 Whisper): they cannot follow text.
    """
    by_name = {t.name: t for t in tasks}
    if task_name is not None:
        task = _lookup(task_name, by_name, "task")
        # the field wins: a model that takes task tokens only answers the task and does not read the text
        return task, (text or None) if free_prompts else None
    if not text:
        return _lookup("asr", by_name, "messages"), None
    try:
        named = get_task(text)
    except OsumError:
        named = None
    if named is not None:
        return _lookup(named.name, by_name, "messages"), None
    for task in tasks:
        if any(text == p for prompts in task.prompts.values() for p in prompts):
            return task, text if free_prompts else None
    if not free_prompts:
        raise _bad(
            "this model takes a task, not a free instruction: send a task name "
            f"({', '.join(by_name)}) as the text, or a `task` field",
            "messages",
        )
    return _lookup("sttc", by_name, "messages"), text


def content(result: TaskResult) -> str:
    """The assistant message text: the chat answer for STTC, else the model's own output."""
    if result.task == "sttc" and result.answer is not None:
        return result.answer
    return result.raw


def completion(
    result: TaskResult, model_id: str, request_id: str, created: int, usage: Mapping[str, int]
) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` object, with the parsed OSUM result under ``osum``."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content(result)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": dict(usage),
        "osum": result.to_dict(),
    }


def stream_chunks(result: TaskResult, model_id: str, request_id: str, created: int) -> list[dict[str, Any]]:
    """The same answer as ``chat.completion.chunk`` events: role + content, then the finish reason."""
    base = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model_id}
    first = {"index": 0, "delta": {"role": "assistant", "content": content(result)}, "finish_reason": None}
    last = {"index": 0, "delta": {}, "finish_reason": "stop"}
    return [{**base, "choices": [first]}, {**base, "choices": [last], "osum": result.to_dict()}]


# ------------------------------------------------------------------------------------------------ helpers


def _bad(message: str, param: str | None) -> APIError:
    return APIError(400, message, code="invalid_request", param=param)


def _parts(value: object, where: str) -> list[Mapping[str, Any]]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, Mapping) for p in value):
        raise _bad("content must be a string or a list of parts", where)
    return value


def _audio(value: object, where: str) -> tuple[bytes, str]:
    if not isinstance(value, Mapping) or not isinstance(value.get("data"), str):
        raise _bad("input_audio needs `data` (base64-encoded audio) and `format`", where)
    fmt = value.get("format", "wav")
    if not isinstance(fmt, str) or fmt.lower() not in AUDIO_FORMATS:
        raise APIError(
            415,
            f"input_audio format {fmt!r} is not supported; use one of: {', '.join(AUDIO_FORMATS)}",
            code="unsupported_audio_format",
            param=f"{where}.format",
        )
    try:
        data = base64.b64decode(value["data"], validate=True)
    except (binascii.Error, ValueError):
        raise _bad("input_audio data is not valid base64", f"{where}.data") from None
    if not data:
        raise _bad("input_audio data is empty", f"{where}.data")
    return data, fmt.lower()


def _lookup(name: str, by_name: Mapping[str, Task], param: str) -> Task:
    try:
        task = get_task(name)
    except OsumError as exc:
        raise _bad(str(exc), param) from None
    if task.name not in by_name:
        raise APIError(
            400,
            f"this model cannot do task {task.name!r}; it does: {', '.join(by_name)}",
            code="unsupported_task",
            param=param,
        )
    return by_name[task.name]
