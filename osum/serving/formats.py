"""OpenAI transcription response formats from OSUM results: json, text, verbose_json, srt and vtt.

The transcript comes from the ASR task; word times, when asked for, from the SRWT task (OSUM's "ASR with word
timestamps"). Segments (verbose_json, subtitles) are cut from the words at pauses and at a maximum length; without
words the clip is one segment from 0 to its duration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from osum.tasks import TaskResult, Word

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
LANGUAGE_NAMES = {"en": "english", "zh": "chinese"}  # verbose_json names the language, as OpenAI's does

MAX_PAUSE = 0.8  # seconds of silence between two words that end a segment
MAX_SEGMENT = 8.0  # seconds; a segment is cut before it grows longer


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


def segments(
    text: str, words: Sequence[Word] | None, duration: float, pieces: Sequence[Any] | None = None
) -> list[Segment]:
    """Subtitle segments: from ``words`` when there are any, else the pieces a long clip was answered in
    (``TaskResult.segments``), else one segment ``[0, duration]`` with ``text``."""
    if not words and pieces:
        return [Segment(p.start, p.end, p.text) for p in pieces if p.text]
    if not words:
        return [Segment(0.0, duration, text)] if text else []
    out: list[Segment] = []
    group: list[Word] = [words[0]]
    for word in words[1:]:
        if word.start - group[-1].end >= MAX_PAUSE or word.end - group[0].start > MAX_SEGMENT:
            out.append(_segment(group))
            group = []
        group.append(word)
    out.append(_segment(group))
    return out


def _segment(words: list[Word]) -> Segment:
    # CJK characters are words of their own and are written without spaces.
    sep = "" if all(len(w.word) == 1 and not w.word.isascii() for w in words) else " "
    return Segment(words[0].start, words[-1].end, sep.join(w.word for w in words))


def verbose_json(
    text: str,
    words: Sequence[Word] | None,
    duration: float,
    language: str,
    with_words: bool,
    result: TaskResult | None = None,
) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: text, language, duration, segments and (when asked for) words.

    ``result`` (the ASR answer): its pieces when a long clip was cut, and its scores (``avg_logprob``,
    ``compression_ratio``, ``no_speech_prob``; for the whole clip) on every segment; a score the model did not
    measure is left out rather than made up.
    """
    scores = {}
    if result is not None:
        for name in ("avg_logprob", "compression_ratio", "no_speech_prob"):
            if getattr(result, name) is not None:
                scores[name] = round(getattr(result, name), 4)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(language, language),
        "duration": round(duration, 3),
        "text": text,
        "segments": [
            {
                "id": i,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                **scores,
            }
            for i, s in enumerate(segments(text, words, duration, result.segments if result else None))
        ],
    }
    if with_words:
        body["words"] = [w.to_dict() for w in words or ()]
    return body


def subtitles(
    text: str, words: Sequence[Word] | None, duration: float, kind: str, pieces: Sequence[Any] | None = None
) -> str:
    """SRT or WebVTT (``kind`` = "srt" | "vtt") with one cue per segment (``pieces``: see :func:`segments`)."""
    if kind not in ("srt", "vtt"):
        raise ValueError(f"subtitle kind must be srt or vtt, got {kind!r}")
    cues = segments(text, words, duration, pieces)
    sep = "," if kind == "srt" else "."
    lines = ["WEBVTT", ""] if kind == "vtt" else []
    for i, cue in enumerate(cues, start=1):
        if kind == "srt":
            lines.append(str(i))
        lines += [f"{_clock(cue.start, sep)} --> {_clock(cue.end, sep)}", cue.text, ""]
    return "\n".join(lines)


def _clock(seconds: float, sep: str) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (WebVTT)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"
