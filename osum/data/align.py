"""``osum data align``: word times (SRWT labels) for transcribed speech, by forced alignment of the transcript.

Dimension legend: H alignment heads, N tokens (the transcript's, then the end token), T1 encoder frames (50/s).

Two aligners (:func:`load_aligner`):

- ``frames`` (default): a small head trained to tell letters from pauses on Whisper tiny.en's frozen encoder
  frames, and Viterbi through the transcript's letters (:mod:`osum.data.frame_align`); recordings up to 10 min.
- ``attention``: Whisper's decoder, reading the known transcript (teacher forcing, no decoding), attends with its
  alignment heads to the audio of the token it writes; dynamic time warping through that attention gives each
  token's start (:mod:`osum.inference.word_times`, the procedure of the Whisper paper's word timestamps). The
  aligner is a Whisper model with alignment heads (default ``mini-stage1-base``: the packaged Whisper tiny.en).
  Clips longer than Whisper's 30 s window are skipped (and counted).

``refine`` (on by default for ``attention``) then moves each boundary onto the audio
(:func:`osum.data.levels.refine_words`): the attention places a word's end where the next word starts, pauses
included, and is coarse (20 ms frames, smoothed), so a word's start moves forward past frames that are quieter
than ``SILENCE_DB`` below the clip's loudest, and its end back to its last frame above that level, within the
span the aligner gave it. It never moves a boundary into another word's span.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from osum.data.audio import SAMPLE_RATE, log_mel_spectrogram
from osum.data.collate import collate
from osum.data.frame_align import MAX_SECONDS as FRAME_MAX_SECONDS
from osum.data.frame_align import FrameAligner
from osum.data.levels import frame_levels, refine_words
from osum.data.manifest import Utterance, transcribed_clips, write_manifest
from osum.data.reader import read_any
from osum.errors import ConfigError, OsumError
from osum.inference.word_times import FRAMES_PER_SECOND, word_times
from osum.runtime import trained_models_dir
from osum.tasks.base import Word

DEFAULT_ALIGNER = "frames"
MAX_SECONDS = 30.0  # the attention aligner's (one Whisper window)


class AttentionAligner:
    """A Whisper model with alignment heads that times the words of a known transcript (``attention``)."""

    def __init__(self, model: str = "mini-stage1-base", device: str = "cpu") -> None:
        import osum
        from osum.model.whisper_tasks import WhisperTaskModel

        self.osum = osum.load(model, device=device)
        if not isinstance(self.osum.model, WhisperTaskModel):
            raise ConfigError(
                f"aligner {model!r}: needs a Whisper model (architecture whisper), not an OSUM LLM"
            )
        if not self.osum.config.decoder.alignment_heads:
            raise ConfigError(
                f"aligner {model!r}: its config names no alignment heads (decoder.alignment_heads)"
            )
        self.prompt = self.osum.codec().prompt_ids(self.osum.task("asr"))

    @torch.inference_mode()
    def align(self, wave: torch.Tensor, text: str, refine: bool = True) -> list[Word]:
        """16 kHz samples ``(N,)`` (at most 30 s) and their transcript -> the words with start/end seconds."""
        seconds = wave.shape[0] / SAMPLE_RATE
        if seconds > MAX_SECONDS:
            raise OsumError(f"the clip is {seconds:.1f} s; the aligner reads at most {MAX_SECONDS:g} s")
        tokens = self.osum.tokenizer.encode(" " + " ".join(text.split()), add_special_tokens=False)
        if not tokens:
            raise OsumError("the transcript is empty")
        model = self.osum.model
        feats = log_mel_spectrogram(wave, self.osum.config.encoder.n_mels)
        batch = collate([feats], [self.prompt], [[]]).to(self.osum.device)
        enc, lengths = model.encode(batch)
        weights = model.alignment_weights(self.prompt, tokens, enc[:1])  # (H, N + 1, T1)
        pieces = [self.osum.tokenizer.decode([t]) for t in tokens]
        frames = min(int(lengths[0]), int(np.ceil(seconds * FRAMES_PER_SECOND)))
        words = word_times(weights, frames, pieces)
        if refine:
            words = refine_words(words, frame_levels(wave.numpy()))
        return words


def load_aligner(spec: str = DEFAULT_ALIGNER, device: str = "cpu") -> AttentionAligner | FrameAligner:
    """``"frames"``: the trained frame aligner shipped in ``models/aligner`` (:mod:`osum.data.frame_align`);
    ``"attention"`` or ``"attention:MODEL"``: a Whisper model's alignment heads (default the packaged tiny.en);
    a folder: a frame aligner written by ``osum data train-aligner``."""
    if spec == "attention" or spec.startswith("attention:"):
        return AttentionAligner(spec.partition(":")[2] or "mini-stage1-base", device)
    folder = trained_models_dir() / "aligner" if spec == "frames" else Path(spec)
    if not folder.is_dir():
        raise ConfigError(
            f"aligner {spec!r}: no such folder ({folder}); use frames, attention, attention:MODEL or a folder "
            "from `osum data train-aligner`"
        )
    return FrameAligner.load(folder, device)


@dataclass
class AlignSummary:
    manifest: str
    clips: int = 0
    words: int = 0
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "clips": self.clips,
            "words": self.words,
            "skipped": dict(sorted(self.skipped.items())),
        }


def align_manifest(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    aligner: str = DEFAULT_ALIGNER,
    refine: bool | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> AlignSummary:
    """Write ``out``: every clip of ``manifest`` with a transcript as an SRWT record with its ``words`` timed (the
    audio stays where it is) by ``aligner`` (:func:`load_aligner`). ``refine`` (default: on for the attention
    aligner only, where it helps) moves boundaries onto the audio's pauses. Clips without a transcript,
    unreadable or too long (30 s for the attention aligner, 10 min for a frame aligner) are skipped and counted;
    ``out.summary.json`` holds the counts."""
    target = Path(out)
    if target.suffix not in (".jsonl", ".gz"):
        raise ConfigError(f"{target}: the output is a manifest file (.jsonl or .jsonl.gz)")
    timer = load_aligner(aligner, device)
    attention = isinstance(timer, AttentionAligner)
    refine = attention if refine is None else refine
    utterances = list(read_any(manifest))
    summary = AlignSummary(manifest=str(target))
    limit = MAX_SECONDS if attention else FRAME_MAX_SECONDS

    def records() -> Iterator[Utterance]:
        found = transcribed_clips(utterances, summary.skipped, limit, "align" if progress else None)
        for u, wave in found:
            words = timer.align(wave, u.text or "", refine)
            summary.clips += 1
            summary.words += len(words)
            extra = {**u.extra, "aligner": aligner, "refined": refine}
            yield replace(u, task="srwt", words=tuple(words), extra=extra)

    write_manifest(target, records(), relative=False)
    target.with_name(target.name.split(".")[0] + ".summary.json").write_text(
        json.dumps(summary.to_dict(), indent=2) + "\n"
    )
    return summary
