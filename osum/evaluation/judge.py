"""Optional LLM judge for STTC answers through any OpenAI-compatible chat-completions endpoint.

OSUM scores speech-to-text chat with a GPT judge on a 1-10 scale; this module does the same against whatever
endpoint the user names (OpenAI, vLLM, llama.cpp, Ollama, ...). It is never required: ``osum eval`` reports
normalised answer accuracy without it. Only the standard library is used (``urllib.request`` + ``json``).

- One request per answer: ``POST {url}/chat/completions`` with the fixed prompt below and ``temperature`` 0.
- The reply should be ``{"score": 1-10, "reason": "..."}``; it is parsed leniently (code fences, text around the
  object, or a bare ``score: 7``). An unusable reply gives ``Verdict(score=None, error=...)``, not an exception.
- A missing (``None`` or blank) answer scores 1 without a request: the judge would give it the lowest mark anyway.
- Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff; HTTP 401/403/404 raise
  :class:`ConfigError` at once, since every later request would fail the same way.
- The API key is sent only in the ``Authorization`` header. It is kept out of ``repr``, logs, errors and results,
  and scrubbed from any server text quoted in an error.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from osum.errors import ConfigError

log = logging.getLogger(__name__)

#: Bumped whenever the prompt or the parsing changes, so scores from different versions are not compared.
PROMPT_VERSION = "osum-sttc-judge-v1"

SYSTEM_PROMPT = (
    "You are a strict and impartial judge of a voice assistant. You rate how well the assistant answered a "
    "question that a user asked by speech. You always reply with a single JSON object and nothing else."
)

# Doubled braces are literal: the template goes through str.format.
USER_PROMPT = """The user asked a question by speech; its transcript is shown below, with a reference answer \
written by a person and the assistant's answer. The texts may be in any language (often Chinese) and may be \
lower-cased or lack punctuation; ignore such differences.

[Question]
{question}

[Reference answer]
{reference}

[Assistant answer]
{answer}

Rate how helpful and correct the assistant answer is as a reply to the question. Use the reference answer as a \
guide to what a good reply contains; the assistant does not need to repeat it word for word, and other correct, \
relevant replies deserve a high score too. Scale: 1 = wrong, irrelevant or empty; 5 = partly correct or only \
loosely relevant; 10 = fully correct, relevant and helpful.

Reply with only a JSON object: {{"score": <integer from 1 to 10>, "reason": "<one short sentence>"}}"""

MIN_SCORE, MAX_SCORE = 1.0, 10.0
_MAX_QUOTE = 200  # characters of server text kept in an error message
_MAX_RETRY_AFTER = 30.0  # seconds; a larger Retry-After is capped, not obeyed
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_SCORE_TEXT = re.compile(r"score\D{0,20}?(\d+(?:\.\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeConfig:
    """Where and how to ask the judge.

    ``url`` is the API base (``http://host:8000/v1``, trailing slash allowed) or the full
    ``.../chat/completions`` address. ``retries`` is the number of extra attempts after a retryable failure;
    ``backoff`` the first wait in seconds, doubled after each attempt.
    """

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never shown
    timeout: float = 60
    retries: int = 2
    backoff: float = 1.0
    role: str = "judge"  # what the endpoint is for, in error messages ("judge", "labeller")

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url.strip()) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"{self.role} url must be an http(s) address like http://host:8000/v1, got {self.url!r}"
            )
        if parts.username or parts.password:
            # the URL ends up in results; credentials belong in api_key (the URL is not quoted: it holds them)
            raise ConfigError(
                f"{self.role} url must not contain a user name or password; give the key as api_key"
            )
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"{self.role} model must be a non-empty model name")
        if not self.timeout > 0:
            raise ConfigError(f"{self.role} timeout must be > 0 seconds, got {self.timeout!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"{self.role} retries must be an integer >= 0, got {self.retries!r}")
        if not self.backoff >= 0:
            raise ConfigError(f"{self.role} backoff must be >= 0 seconds, got {self.backoff!r}")

    @property
    def endpoint(self) -> str:
        """The chat-completions address requests go to."""
        parts = urllib.parse.urlsplit(self.url.strip())
        path = parts.path.rstrip("/")
        if not path.endswith("/chat/completions"):
            path += "/chat/completions"
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))

    @property
    def public_url(self) -> str:
        """The endpoint without its query string (which may carry a token), for reports."""
        parts = urllib.parse.urlsplit(self.endpoint)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Verdict:
    """The judge's score (1-10) of one answer, or ``score=None`` and ``error`` when none could be had."""

    score: float | None
    reason: str
    error: str | None = None


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, HTTP 429/5xx); ``wait`` overrides the backoff."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class ChatError(Exception):
    """A failure of this one request that another attempt would not fix (bad reply, HTTP 400, ...), or a
    retryable one that outlasted the retries."""



def build_messages(question: str, reference: str, answer: str) -> list[dict[str, str]]:
    """The system and user messages sent for one answer."""
    user = USER_PROMPT.format(
        question=question.strip() or "(not available)", reference=reference.strip(), answer=answer.strip()
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_reply(text: str) -> Verdict:
    """Turn the judge's reply text into a :class:`Verdict` (``score=None`` with ``error`` if unusable)."""
    obj = _find_object(text)
    raw: Any = None
    reason = ""
    if obj is not None:
        raw = obj.get("score")
        reason = obj.get("reason") if isinstance(obj.get("reason"), str) else ""
    if raw is None:
        match = _SCORE_TEXT.search(text)
        raw = match.group(1) if match else None
    if not reason:
        reason = " ".join(text.split())[:_MAX_QUOTE]
    if isinstance(raw, bool) or raw is None:
        return Verdict(None, reason, f"no score in the judge reply: {_quote(text)}")
    if isinstance(raw, str):  # "8" or "8/10"
        number = re.search(r"\d+(?:\.\d+)?", raw)
        raw = number.group(0) if number else raw
    try:
        score = float(raw)
    except (TypeError, ValueError):
        return Verdict(None, reason, f"score {raw!r:.40} in the judge reply is not a number")
    if not MIN_SCORE <= score <= MAX_SCORE:
        return Verdict(
            None, reason, f"score {score:g} in the judge reply is outside {MIN_SCORE:g}-{MAX_SCORE:g}"
        )
    return Verdict(score, reason)


def chat(config: JudgeConfig, messages: list[dict[str, str]], **params: Any) -> str:
    """The reply text of one chat completion of ``messages`` (``temperature`` 0 unless ``params`` say otherwise),
    with the judge's retries. Raises :class:`ChatError` when this request failed and ConfigError for a refused
    key or a wrong address (every later request would fail the same way)."""
    body = {"model": config.model, "messages": messages, "temperature": 0, **params}
    try:
        return _post_with_retries(config, json.dumps(body).encode("utf-8"))
    except ChatError as exc:
        raise ChatError(_scrub(str(exc), config)) from None


def judge_answer(config: JudgeConfig, question: str, reference: str, answer: str | None) -> Verdict:
    """Score one answer from 1 to 10 given the question transcript and the reference answer.

    A missing answer (``None`` or blank) scores 1 without calling the endpoint. Failures of this one request
    (after retries) come back as ``Verdict(score=None, error=...)``; a refused key or a wrong address raises
    :class:`ConfigError`.
    """
    if answer is None or not answer.strip():
        return Verdict(MIN_SCORE, "no answer")
    try:
        return parse_reply(chat(config, build_messages(question, reference, answer)))
    except ChatError as exc:
        return Verdict(None, "", str(exc))


def judge_answers(
    config: JudgeConfig,
    items: Sequence[tuple[str, str, str | None]],
    workers: int = 4,
    progress: bool = False,
) -> list[Verdict]:
    """Score ``(question, reference, answer)`` items with ``workers`` parallel requests; verdicts in input order.

    A :class:`ConfigError` from any request stops the run (pending requests are cancelled) and is raised.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"judge workers must be an integer >= 1, got {workers!r}")
    if not items:
        return []
    verdicts: list[Verdict | None] = [None] * len(items)
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="osum-judge")
    try:
        futures: dict[Future[Verdict], int] = {
            pool.submit(judge_answer, config, q, r, a): i for i, (q, r, a) in enumerate(items)
        }
        done = as_completed(futures)
        if progress:
            from tqdm import tqdm

            done = tqdm(done, total=len(futures), desc="judging", unit="answer")
        for future in done:
            verdicts[futures[future]] = future.result()
    finally:
        # on an error, drop the requests not yet started rather than waiting for all of them
        pool.shutdown(wait=True, cancel_futures=True)
    return [v for v in verdicts if v is not None]


def summarize(config: JudgeConfig, verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """The ``judge`` block of metrics.json: endpoint, model, mean score over scored answers, counts."""
    scores = [v.score for v in verdicts if v.score is not None]
    return {
        "url": config.public_url,
        "model": config.model,
        "mean_score": sum(scores) / len(scores) if scores else None,
        "scored": len(scores),
        "failed": len(verdicts) - len(scores),
        "prompt_version": PROMPT_VERSION,
    }


# ------------------------------------------------------------------------------------------------ internals


def _post_with_retries(config: JudgeConfig, data: bytes) -> str:
    """POST ``data`` and return the reply's message text, retrying retryable failures."""
    for attempt in range(config.retries + 1):
        try:
            return _post_once(config, data)
        except _Retryable as exc:
            if attempt == config.retries:
                raise ChatError(f"{exc} (gave up after {attempt + 1} attempts)") from None
            wait = exc.wait if exc.wait is not None else config.backoff * 2**attempt
            log.debug("judge request failed (%s); retrying in %.1f s", _scrub(str(exc), config), wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


def _post_once(config: JudgeConfig, data: bytes) -> str:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    request = urllib.request.Request(config.endpoint, data=data, headers=headers, method="POST")
    where = config.public_url
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        _raise_for_status(config, exc)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _Retryable(f"cannot reach {config.role} endpoint {where}: {reason}") from None
    try:
        reply = json.loads(payload.decode("utf-8"))
        content = reply["choices"][0]["message"]["content"]
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError):
        raise ChatError(
            f"{config.role} endpoint {where} sent no chat completion: {_quote(payload, config)}"
        ) from None
    if not isinstance(content, str):
        raise ChatError(f"{config.role} endpoint {where} sent a message without text content")
    return content


def _raise_for_status(config: JudgeConfig, exc: urllib.error.HTTPError) -> None:
    """Map an HTTP error to ConfigError (fatal), _Retryable or ChatError; always raises."""
    code, where = exc.code, config.public_url
    try:
        detail = _quote(exc.read(), config)
    except OSError:
        detail = ""
    finally:
        exc.close()
    if code in (401, 403):
        if config.api_key:
            raise ConfigError(f"{config.role} endpoint refused the API key (HTTP {code})") from None
        raise ConfigError(f"{config.role} endpoint requires an API key (HTTP {code}); give one") from None
    if code == 404:
        raise ConfigError(
            f"{config.role} endpoint {where} not found, or it has no model {config.model!r} (HTTP 404): {detail}"
        ) from None
    if code == 429 or code >= 500:
        raise _Retryable(
            f"{config.role} endpoint {where} answered HTTP {code}: {detail}", _retry_after(exc)
        ) from None
    raise ChatError(f"{config.role} endpoint {where} answered HTTP {code}: {detail}") from None


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER) if value is not None else None
    except ValueError:  # an HTTP date: use the normal backoff
        return None


def _find_object(text: str) -> dict[str, Any] | None:
    """The first JSON object holding a "score" in ``text`` (inside code fences or surrounded by prose)."""
    decoder = json.JSONDecoder()
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        for start in (i for i, ch in enumerate(candidate) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(candidate, start)
            except ValueError:
                continue
            if isinstance(obj, dict) and "score" in obj:
                return obj
    return None


def _quote(text: str | bytes, config: JudgeConfig | None = None) -> str:
    """Server or judge text for an error message: one line, shortened, the key masked before shortening."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if config is not None:
        text = _scrub(text, config)
    flat = " ".join(text.split())
    return repr(flat[:_MAX_QUOTE] + ("..." if len(flat) > _MAX_QUOTE else ""))


def _scrub(text: str, config: JudgeConfig) -> str:
    """``text`` with the API key masked: a server may echo request headers in its error page."""
    return text.replace(config.api_key, "***") if config.api_key else text
