"""Audio of any length: cut a recording at its pauses into pieces the encoder's window takes, then stitch the
pieces' answers into one answer in the recording's time.

Dimension legend: N samples at 16 kHz.

The cut follows the voice activity detector (:mod:`osum.inference.vad`): its speech regions are joined in order
while the piece stays within the window (as WhisperX merges VAD regions into 30 s chunks), so a piece starts and
ends in a pause and silence between pieces is never decoded. A region longer than the window (speech without a
pause) is cut at its quietest 100 ms in the window's second half. Each piece is one :class:`~osum.tasks.Segment` of
the stitched answer: its transcript (or reply), its labels; the clip-level label of a field is the one given to the
most seconds of speech, with that share.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from osum.data.audio import SAMPLE_RATE
from osum.inference.vad import SpeechMap
from osum.tasks.base import Segment, Task, TaskResult, Word

MAX_AUDIO_SECONDS = 4 * 3600.0  # longest file Osum.run, osum infer and osum eval read by default
QUIET_WINDOW = SAMPLE_RATE // 10  # 100 ms: the unit of "quietest point" when speech has no pause to cut at
MIN_WORD = 0.02  # seconds: the shortest word span an answer reports


@dataclass(frozen=True)
class Piece:
    """Samples ``[start, end)`` of a recording."""

    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


def plan_pieces(wave: torch.Tensor, speech: SpeechMap, max_samples: int, skip_silence: bool) -> list[Piece]:
    """Where to cut ``wave`` ``(N,)``: pieces of at most ``max_samples``, in order.

    A clip that fits the window is one piece (decoded whole, as it always was), or none when ``skip_silence`` and
    the detector found no speech in it. A longer one is cut along the speech regions (``skip_silence`` off and no
    region found: the whole clip counts as one region)."""
    n = int(wave.shape[0])
    if not speech.regions and skip_silence:
        return []
    if n <= max_samples:
        return [Piece(0, n)]
    regions = list(speech.regions) or [(0, n)]
    spans: list[tuple[int, int]] = []
    for start, end in regions:
        spans += _split_long(wave, start, end, max_samples)
    pieces: list[Piece] = []
    start, end = spans[0]
    for s, e in spans[1:]:
        if e - start <= max_samples:
            end = e
        else:
            pieces.append(Piece(start, end))
            start, end = s, e
    pieces.append(Piece(start, end))
    return pieces


def _split_long(wave: torch.Tensor, start: int, end: int, max_samples: int) -> list[tuple[int, int]]:
    """``[start, end)`` as spans of at most ``max_samples``, each cut at the quietest 100 ms of the window's
    second half."""
    out = []
    while end - start > max_samples:
        lo, hi = start + max_samples // 2, start + max_samples - QUIET_WINDOW
        energy = wave[lo : hi + QUIET_WINDOW].float().pow(2)
        frames = energy[: (energy.shape[0] // QUIET_WINDOW) * QUIET_WINDOW].reshape(-1, QUIET_WINDOW).sum(-1)
        if frames.numel():
            # cut in the middle of the quietest 100 ms
            cut = lo + int(frames.argmin()) * QUIET_WINDOW + QUIET_WINDOW // 2
        else:
            cut = start + max_samples
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


def tidy_words(words: Sequence[Word], duration: float) -> list[Word]:
    """Word times inside ``[0, duration]``, in order, each at least :data:`MIN_WORD` long (alignment can put the
    last words past the end, or give a word no length; a word with no room takes it from the word before)."""
    spans: list[list[float]] = []
    floor = 0.0
    for i, w in enumerate(words):
        start = min(max(w.start, floor), duration)
        limit = words[i + 1].start if i + 1 < len(words) else duration
        limit = min(max(limit, start), duration)
        end = min(max(w.end, start), duration)
        if end - start < MIN_WORD:
            end = min(start + MIN_WORD, max(limit, end))
        if end - start < MIN_WORD and spans and spans[-1][1] - spans[-1][0] >= 2 * MIN_WORD:
            start = max(spans[-1][0] + MIN_WORD, end - MIN_WORD)  # room from the word before
            spans[-1][1] = start
        spans.append([start, end])
        floor = end
    return [Word(w.word, round(a, 3), round(b, 3)) for w, (a, b) in zip(words, spans, strict=True)]


def fit_to_speech(words: Sequence[Word], regions: Sequence[tuple[float, float]]) -> list[Word]:
    """Word times moved out of the pauses the voice activity detector found (``regions``: speech ``(start, end)``
    in seconds, in order). Cross-attention alignment stretches a sentence's last word over the pause after it,
    and can start a word in the pause before it; a word is cut to the end of the speech region it starts in,
    and one that starts in a pause starts at the next region (a word wholly inside a pause is left alone)."""
    if not regions:
        return list(words)
    out = []
    for w in words:
        start, end = w.start, w.end
        inside = next((r for r in regions if r[0] <= start < r[1]), None)
        if inside is None:
            after = next((r for r in regions if r[0] > start), None)
            if after is not None and end > after[0]:
                start, inside = after[0], after
        if inside is not None:
            end = min(end, inside[1])
        out.append(Word(w.word, round(start, 3), round(max(end, start), 3)))
    return out


def compression_ratio(text: str) -> float | None:
    """Bytes of ``text`` over bytes of its zlib compression (Whisper's repetition measure; > 2.4 looks looped)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else None


def stitch(task: Task, pieces: Sequence[Piece], results: Sequence[TaskResult], empty: TaskResult) -> TaskResult:
    """One answer for the whole recording from its pieces' answers (``results[i]`` answers ``pieces[i]``), in the
    recording's time. ``empty``: the answer when no piece holds speech."""
    if not pieces:
        return empty
    segments = []
    for piece, r in zip(pieces, results, strict=True):
        text = r.answer if task.name == "sttc" and r.answer is not None else (r.transcript or "")
        segments.append(
            Segment(round(piece.start / SAMPLE_RATE, 3), round(piece.end / SAMPLE_RATE, 3), text, r.labels)
        )
    transcript = None
    if task.has_transcript:
        transcript = _join([r.transcript or "" for r in results])
    words = None
    if any(r.words is not None for r in results):
        words = tuple(
            Word(w.word, round(w.start + p.start / SAMPLE_RATE, 3), round(w.end + p.start / SAMPLE_RATE, 3))
            for p, r in zip(pieces, results, strict=True)
            for w in r.words or ()
        )
    answers = [r.answer for r in results if r.answer]
    labels: dict[str, str | None] = {}
    share: dict[str, float] = {}
    total = sum(p.seconds for p in pieces)
    for f in task.label_fields:
        seconds: dict[str, float] = {}
        for p, r in zip(pieces, results, strict=True):
            value = r.labels.get(f.name)
            if value is not None:
                seconds[value] = seconds.get(value, 0.0) + p.seconds
        best = max(seconds, key=lambda v: seconds[v]) if seconds else None
        labels[f.name] = best
        if best is not None and total > 0:
            share[f.name] = round(seconds[best] / total, 4)
    scores = [r.avg_logprob for r in results if r.avg_logprob is not None]
    raw = _join([r.raw for r in results])
    return TaskResult(
        task.name,
        raw,
        transcript,
        labels,
        words=words,
        answer=" ".join(answers) if answers else None,
        segments=tuple(segments),
        label_share=share if task.label_fields else None,
        avg_logprob=sum(scores) / len(scores) if scores else None,
        compression_ratio=compression_ratio(transcript or raw),
    )


def _join(texts: Sequence[str]) -> str:
    """Pieces' texts in order, a space between them unless both sides are CJK."""
    out = ""
    for text in (t.strip() for t in texts):
        if not text:
            continue
        if out and not (_cjk(out[-1]) and _cjk(text[0])):
            out += " "
        out += text
    return out


def _cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
