"""A frozen pretrained Whisper that writes the transcript part of an osum model's answers (``sources.transcriber``).

Dimension legend: B clips, T mel frames, T1 encoder frames (a whole 30 s window: 1500), D encoder width.

Not in OSUM. OSUM's LLM writes the transcript of every ASR+X answer itself; it learnt that from 50k hours of
speech. The ``mini`` recipe has 3 hours of synthetic speech, and an LLM stage trained on them transcribed recorded
human speech at 100%+ WER, where the same Whisper tiny.en whose encoder it reads is at 6.75% (RESULTS.md section 9).
So a model whose config names a transcriber answers in two steps, per clip: the pretrained Whisper decodes the
transcript once (its own prompt and rules, greedy), then the LLM reads the speech as always and its answer is
*forced* to start with that transcript; it generates only what follows (the label tags, the chat reply). Training
is unchanged (teacher forcing on the reference transcript), and ASR and SRWT answers are the transcriber's own.
The transcriber's decoder reads the osum model's own encoder (one encoder pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from osum.codec import LLMCodec
from osum.config import DecoderConfig, ModelConfig
from osum.data.audio import HOP_LENGTH, SAMPLE_RATE
from osum.data.collate import collate
from osum.errors import ConfigError
from osum.inference.guards import loop_start, token_cap
from osum.inference.word_times import word_times
from osum.model.encoder import WhisperEncoder
from osum.model.whisper_tasks import WhisperTaskModel
from osum.tasks.base import Task, Word

TRANSCRIBERS = ("packaged:whisper-tiny.en",)
MEL_FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH


@dataclass
class Transcription:
    """One clip's transcription."""

    text: str  # Whisper's text, as it writes it (case, punctuation)
    ids: list[int]  # its token ids, without the prompt and the end token
    frames: torch.Tensor  # (T1_clip, D) the encoder's output over the clip itself (the LLM's input)
    words: list[Word] | None = None  # word times, when asked for
    avg_logprob: float | None = None  # mean log-probability per token (None: cut by a guard)


class Transcriber:
    """Whisper's encoder + decoder, frozen, decoding with its own prompt ``<|startoftranscript|><|notimestamps|>``."""

    def __init__(self, model: WhisperTaskModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])

    @classmethod
    def build(cls, source: str, encoder: WhisperEncoder | None = None) -> Transcriber:
        """The pretrained Whisper decoder of ``source`` (one of :data:`TRANSCRIBERS`). ``encoder``: an osum model's
        encoder, which the decoder then reads (one encoder pass per clip, and the frames the LLM reads are the
        model's own, also for an encoder adapted under the frozen decoder, as the mini recipe's stage 1a does). The
        transcriber is built with that encoder's config, so the source's weights load into it strictly or fail."""
        from osum.checkpoint import build_model
        from osum.presets import preset_config

        if source not in TRANSCRIBERS:
            raise ConfigError(
                f"sources.transcriber {source!r}: choose one of {list(TRANSCRIBERS)} (or '' for none)"
            )
        config = ModelConfig(
            name="transcriber",
            architecture="whisper",
            encoder=encoder.config if encoder is not None else preset_config("mini-stage1").encoder,
            decoder=DecoderConfig(
                label_heads=True
            ),  # label_heads: keep Whisper's own prompt and decoding rules
            label_fields=[],
        )
        config.sources.encoder = config.sources.tokenizer = source
        if encoder is not None and not encoder.config.pad_to_window:
            raise ConfigError("a transcriber needs an encoder with pad_to_window (Whisper's 30 s window)")
        model, tokenizer = build_model(config)
        if encoder is not None:
            model.encoder = encoder
        model.to(next(encoder.parameters()).device if encoder is not None else "cpu")
        model.requires_grad_(False)
        return cls(model, tokenizer)

    @torch.inference_mode()
    def transcribe(
        self,
        feats: Sequence[torch.Tensor],
        max_new_tokens: int = 200,
        timed: Sequence[bool] | None = None,
        stop_loops: bool = True,
    ) -> list[Transcription]:
        """Log-mels ``(T, M)`` of B clips (decoded as one batch) -> one :class:`Transcription` each; ``timed[i]``
        asks for clip i's word times (cross-attention DTW, :mod:`osum.inference.word_times`). ``stop_loops``: the
        guards of :mod:`osum.inference.guards` (a repeating end is cut; tokens capped by the clip's length)."""
        device = self.model.encoder.conv1.weight.device
        batch = collate(list(feats), [self.prompt] * len(feats), [[] for _ in feats]).to(device)
        window, lengths = self.model.encode(batch)
        caps = [token_cap(f.shape[0] / MEL_FRAMES_PER_SECOND) for f in feats] if stop_loops else None
        ids, scores = self.model.decode(
            batch,
            max_new_tokens,
            encoded=(window, lengths),
            caps=caps,
            loop_start=loop_start if stop_loops else None,
        )
        out = []
        for row, row_ids in enumerate(ids):
            text = self.tokenizer.decode(row_ids, skip_special_tokens=True).strip()
            words = None
            if timed is not None and timed[row] and text:
                weights = self.model.alignment_weights(self.prompt, row_ids, window[row : row + 1])
                words = word_times(weights, int(lengths[row]), [self.tokenizer.decode([t]) for t in row_ids])
            out.append(Transcription(text, row_ids, window[row, : int(lengths[row])], words, scores[row]))
        return out


def answer_prefix(codec: LLMCodec, task: Task, transcript: str) -> list[int]:
    """The ids every valid answer of ``task`` after ``transcript`` (normalised) starts with: the transcript and the
    opening of the first tag (``<``) for label tasks, the transcript and the reply separator for chat, the
    transcript but its last token otherwise. Token by token as in the training targets (in SmolLM2's vocabulary
    ``.<`` is one token, so the transcript alone is not a prefix of its targets). The LLM writes the rest."""
    if task.label_fields:
        first, rest = task.label_fields[0], {f.name: f.values[0] for f in task.label_fields[1:]}
        answers = [task.target(transcript, {**rest, first.name: v}) for v in first.values]
    elif task.name == "sttc":
        answers = [task.target(transcript, answer=a) for a in ("yes", "no")]
    else:
        return codec.ids(transcript)[:-1]
    ids = [codec.ids(a) for a in answers]
    n = 0
    while all(len(x) > n and x[n] == ids[0][n] for x in ids):
        n += 1
    return ids[0][:n]


def answer_after(codec: LLMCodec, transcript: str, prefix: list[int], generated: list[int]) -> str:
    """What the LLM wrote after ``transcript`` (normalised), given the forced ``prefix`` ids
    (:func:`answer_prefix`) and the ids it generated: the tags or the reply. If it changed the transcript's end,
    its answer resumes at its first tag (``<``); none: nothing."""
    whole = codec.decode(prefix + generated)
    if whole.startswith(transcript):
        return whole[len(transcript) :]
    start = whole.find("<", len(codec.decode(prefix)))
    return whole[start:] if start >= 0 else ""
