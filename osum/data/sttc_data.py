"""``osum data sttc``: speech-to-text chat training pairs from text dialogues, spoken by a pluggable TTS.

OSUM's STTC data are spoken questions with text answers (section 3.4). This turns any text dialogues into that:
each user turn is synthesized, and the reply is the dialogue's next assistant turn, or an LLM's answer from an
OpenAI-compatible chat endpoint (for dialogues without replies, or to replace them; its API key from
``OSUM_CHAT_API_KEY``, if set).

Dialogues (JSONL, one per line): ``{"question": ..., "answer": ...}`` (the answer may be missing), or
``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...]}`` (every user turn
with the assistant turn after it; OpenAI's chat format), optionally with an ``id``.

Voices (``--tts``, comma-separated, used in turn): ``espeak-ng:VOICE`` (e.g. ``espeak-ng:en-us+f3``),
``flite:VOICE`` (``slt``, ``rms``, ``awb``, ``kal16``), or ``speech:URL#MODEL@VOICE``, an OpenAI-compatible
``/audio/speech`` endpoint (the API key from ``OSUM_TTS_API_KEY``). Audio is stored as 16 kHz wav.

Writes ``OUT/sttc.jsonl`` (task ``sttc``, the question as ``text``, the reply as ``answer``, ``extra.voice``,
``extra.answer_source`` and the dialogue's id and turn) and ``OUT/wavs/``. A question that fails to synthesize,
or whose answer the endpoint does not give, is skipped and counted; a refused key or a wrong address stops the run.
"""

from __future__ import annotations

import io
import json
import os
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.manifest import Utterance, utterance_from_dict, write_manifest
from osum.data.tts import ENGINES, synthesize
from osum.errors import ConfigError, OsumError
from osum.evaluation.judge import ChatError, JudgeConfig, chat
from osum.labelling.labellers import API_KEY_ENV

TTS_API_KEY_ENV = "OSUM_TTS_API_KEY"
ANSWER_SYSTEM = (
    "You are a helpful voice assistant. Answer the user's spoken question briefly, in one or two sentences."
)


@dataclass(frozen=True)
class Turn:
    """One question with its reply (None: to be asked of the LLM), from dialogue ``dialogue`` turn ``turn``."""

    dialogue: str
    turn: int
    question: str
    answer: str | None


def read_dialogues(path: str | os.PathLike) -> list[Turn]:
    """The question/answer turns of a dialogue file (see the module doc); ConfigError naming the line otherwise."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"dialogue file {source} does not exist")
    turns: list[Turn] = []
    for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{n}"
        try:
            d = json.loads(line)
        except ValueError:
            raise ConfigError(f"{where}: not JSON") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        name = str(d.get("id", n))
        if "question" in d:
            question, answer = d["question"], d.get("answer")
            if not isinstance(question, str) or not question.strip():
                raise ConfigError(f"{where}: 'question' must be non-empty text")
            turns.append(Turn(name, 0, question.strip(), answer.strip() if isinstance(answer, str) else None))
            continue
        messages = d.get("messages")
        if not isinstance(messages, list):
            raise ConfigError(f"{where}: give 'question' (and 'answer') or 'messages'")
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") != "user" or not str(m.get("content", "")).strip():
                continue
            nxt = messages[i + 1] if i + 1 < len(messages) else None
            reply = nxt.get("content") if isinstance(nxt, dict) and nxt.get("role") == "assistant" else None
            turns.append(
                Turn(name, i, str(m["content"]).strip(), reply.strip() if isinstance(reply, str) else None)
            )
    if not turns:
        raise ConfigError(f"dialogue file {source}: no questions in it")
    return turns


@dataclass(frozen=True)
class Voice:
    """A TTS voice: ``engine`` (espeak-ng, flite or speech: an OpenAI-compatible endpoint) and its voice name."""

    engine: str
    voice: str
    url: str = ""
    model: str = ""

    @classmethod
    def parse(cls, spec: str) -> Voice:
        engine, sep, rest = spec.partition(":")
        if not sep or not rest:
            raise ConfigError(f"voice {spec!r}: write espeak-ng:VOICE, flite:VOICE or speech:URL#MODEL@VOICE")
        if engine in ENGINES:
            return cls(engine, rest)
        if engine == "speech":
            where, _, voice = rest.rpartition("@")
            url, _, model = where.rpartition("#")
            if not url.startswith(("http://", "https://")) or not model or not voice:
                raise ConfigError(
                    f"voice {spec!r}: write speech:URL#MODEL@VOICE, e.g. speech:http://host/v1#tts-1@alloy"
                )
            return cls("speech", voice, url.rstrip("/"), model)
        raise ConfigError(f"voice {spec!r}: unknown engine {engine!r}; use espeak-ng, flite or speech")

    def __str__(self) -> str:
        return f"{self.engine}:{self.model + '@' if self.model else ''}{self.voice}"

    def speak(self, text: str, path: Path) -> None:
        """Synthesize ``text`` to a 16 kHz wav at ``path`` (OsumError on failure; ConfigError for a bad key)."""
        if self.engine != "speech":
            tmp = path.with_suffix(".raw.wav")
            synthesize(text, tmp, voice=self.voice, engine=self.engine)
            wave = load_audio(str(tmp)).numpy()
            tmp.unlink()
        else:
            wave = self._endpoint(text)
        sf.write(str(path), wave, SAMPLE_RATE, subtype="PCM_16")

    def _endpoint(self, text: str) -> np.ndarray:
        body = {"model": self.model, "input": text, "voice": self.voice, "response_format": "wav"}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(TTS_API_KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            f"{self.url}/audio/speech", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                raise ConfigError(
                    f"speech endpoint {self.url}: HTTP {exc.code} (key, address or model)"
                ) from None
            raise OsumError(f"speech endpoint {self.url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise OsumError(f"cannot reach speech endpoint {self.url}: {exc}") from None
        try:
            wave, rate = sf.read(io.BytesIO(payload), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError):
            raise OsumError(f"speech endpoint {self.url} sent no readable audio") from None
        mono = wave.mean(axis=1)
        return soxr.resample(mono, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else mono


def answer_endpoint(spec: str) -> JudgeConfig:
    """``URL#MODEL`` -> the chat endpoint that answers questions (API key from ``OSUM_CHAT_API_KEY``)."""
    url, _, model = spec.rpartition("#")
    if not url or not model:
        raise ConfigError(f"answer endpoint {spec!r}: write URL#MODEL, e.g. http://localhost:8000/v1#qwen2.5")
    return JudgeConfig(url, model, api_key=os.environ.get(API_KEY_ENV), role="answer")


@dataclass
class SttcSummary:
    manifest: str
    clips: int = 0
    answers: Counter = field(default_factory=Counter)  # where the replies came from
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "clips": self.clips,
            "answers": dict(self.answers),
            "skipped": dict(sorted(self.skipped.items())),
        }


def build_sttc(
    dialogues: str | os.PathLike,
    out: str | os.PathLike,
    voices: Sequence[Voice],
    answerer: JudgeConfig | None = None,
    replace_answers: bool = False,
    progress: bool = True,
) -> SttcSummary:
    """Write ``out/sttc.jsonl`` and ``out/wavs/`` from ``dialogues`` (see the module doc). ``answerer``: the chat
    endpoint that answers questions without a reply (all of them with ``replace_answers``)."""
    if not voices:
        raise ConfigError("no TTS voice given")
    if replace_answers and answerer is None:
        raise ConfigError("replacing the dialogue's answers needs an answer endpoint")
    turns = read_dialogues(dialogues)
    folder = Path(out)
    (folder / "wavs").mkdir(parents=True, exist_ok=True)
    summary = SttcSummary(manifest=str(folder / "sttc.jsonl"))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(turns), desc="sttc", unit="question")

    def records() -> Iterator[Utterance]:
        for t in turns:
            if bar is not None:
                bar.update(1)
            answer, source = t.answer, "dialogue"
            if answerer is not None and (replace_answers or answer is None):
                try:
                    answer = chat(
                        answerer,
                        [
                            {"role": "system", "content": ANSWER_SYSTEM},
                            {"role": "user", "content": t.question},
                        ],
                    ).strip()
                    source = f"chat:{answerer.model}"
                except ChatError:
                    answer = None
            if not answer:
                summary.skipped["no answer"] += 1
                continue
            voice = voices[summary.clips % len(voices)]
            key = f"{t.dialogue}-{t.turn}"
            path = folder / "wavs" / f"{key.replace('/', '_')}.wav"
            try:
                voice.speak(t.question, path)
            except ConfigError:
                raise
            except OsumError:
                summary.skipped["synthesis failed"] += 1
                continue
            summary.clips += 1
            summary.answers[source] += 1
            yield utterance_from_dict(
                {
                    "key": key,
                    "audio": str(path),
                    "task": "sttc",
                    "text": t.question,
                    "answer": answer,
                    "duration": round(sf.info(str(path)).duration, 4),
                    "extra": {
                        "voice": str(voice),
                        "answer_source": source,
                        "dialogue": t.dialogue,
                        "turn": t.turn,
                    },
                }
            )

    try:
        write_manifest(folder / "sttc.jsonl", records())
    finally:
        if bar is not None:
            bar.close()
    (folder / "sttc_summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary
