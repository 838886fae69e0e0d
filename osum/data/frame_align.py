"""Frame-level forced alignment: a small trained head on Whisper's encoder frames, Viterbi through the transcript.

Dimension legend: T encoder frames (50/s, 20 ms each), D encoder width, C symbols (:data:`SYMBOLS`), S states.

The head (:class:`FrameHead`, three 1-D convolutions over the frozen encoder's frames) gives each 20 ms frame a
probability for each letter being spoken and for a pause. Forced alignment then finds the most probable path
through the transcript's letters, word by word, with an optional pause between words and at both ends
(:func:`viterbi_spans`): every letter holds at least one frame (a letter may be skipped at a cost, for words
spoken faster than one frame per letter), so a word's span is the frames its letters hold.

The head is trained (:func:`train_frame_aligner`, ``osum data train-aligner``) on clips with exact word times
(``osum data synth``'s SRWT clips: each word synthesized alone and measured): frames outside every word are
pauses, a word's frames are shared among its letters evenly, and then, for ``rounds`` > 1, re-shared by the
head's own Viterbi path within the word (the letters' times are not known; the words' are). Half of the clips
are added again with long pauses inserted (:func:`with_long_pauses`): the synthetic clips pause only 30-150 ms
between words, and a head that never saw a longer pause heard letters in one.

The symbols are English letters: another script's characters all map to one "other" symbol, and a language
written without spaces is one "word" per space-separated run; the shipped head has heard English only.

Long recordings are read in Whisper's 30 s windows, one after another, their frames joined (up to
:data:`MAX_SECONDS`).
"""

from __future__ import annotations

import json
import math
import os
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from osum.data.audio import SAMPLE_RATE, log_mel_spectrogram
from osum.data.levels import frame_levels, refine_words
from osum.errors import ConfigError, OsumError
from osum.tasks.base import Word

SYMBOLS = ("_",) + tuple("abcdefghijklmnopqrstuvwxyz'") + ("#",)  # "_" a pause, "#" a digit or other sign
PAUSE, OTHER = 0, len(SYMBOLS) - 1
FRAME_S = 0.02  # one encoder frame
WINDOW_S = 30.0  # Whisper's window
MAX_SECONDS = 600.0  # the Viterbi path's back-pointers take T x S bytes (~330 MB for 10 min of speech)
SKIP_LOGP = -4.0  # log-probability cost of skipping a letter
CONFIG_FILE, WEIGHTS_FILE = "aligner.json", "head.safetensors"


def letters(word: str) -> list[int]:
    """A word -> its symbol ids: letters (accents removed) and ``'``; a digit or other letter-like sign is ``#``;
    punctuation is dropped. A word with nothing left is one ``#``."""
    out = []
    for ch in unicodedata.normalize("NFKD", word.lower()):
        if ch in SYMBOLS[1:-1]:
            out.append(SYMBOLS.index(ch))
        elif ch.isalnum():
            out.append(OTHER)
    return out or [OTHER]


@dataclass(frozen=True)
class HeadConfig:
    dim: int = 384  # the encoder's width
    hidden: int = 256
    layers: int = 3
    kernel: int = 5
    dropout: float = 0.1


class FrameHead(nn.Module):
    """Encoder frames ``(B, T, D)`` -> symbol logits ``(B, T, C)``: ``layers`` convolutions (GELU, dropout) and a
    linear layer."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        dims = [config.dim] + [config.hidden] * config.layers
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, config.kernel, padding=config.kernel // 2)
            for a, b in zip(dims, dims[1:], strict=False)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, len(SYMBOLS))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.transpose(1, 2)
        for conv in self.convs:
            x = self.dropout(F.gelu(conv(x)))
        return self.out(x.transpose(1, 2))


def frame_targets(words: Sequence[Word], n_frames: int) -> np.ndarray:
    """Exact word times -> a symbol per frame ``(T,)``: a pause outside every word (by the frame's centre), a
    word's frames shared evenly among its letters in order."""
    target = np.full(n_frames, PAUSE, dtype=np.int64)
    for w in words:
        ids = letters(w.word)
        a = max(0, int(round(w.start / FRAME_S)))
        b = min(n_frames, max(a + 1, int(round(w.end / FRAME_S))))
        if b <= a:
            continue
        share = np.minimum((np.arange(b - a) * len(ids)) // (b - a), len(ids) - 1)
        target[a:b] = np.asarray(ids)[share]
    return target


def _states(words: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The path's states for ``words``: ``P w1 P w2 ... wN P`` (P an optional pause, w a word's letters) ->
    (symbol per state ``(S,)``, word index per state (-1 for a pause) ``(S,)``, skip cost per state ``(S,)``:
    the log-probability of entering it from two states back, -inf where that is not allowed)."""
    symbols, owner, skip = [PAUSE], [-1], [-math.inf]
    for k, word in enumerate(words):
        for i, s in enumerate(letters(word)):
            symbols.append(s)
            owner.append(k)
            # from two back: over the pause before the word (free) or over the previous letter (costly)
            skip.append((0.0 if k > 0 else -math.inf) if i == 0 else SKIP_LOGP)
        symbols.append(PAUSE)
        owner.append(-1)
        skip.append(-math.inf)
    skip[1] = -math.inf
    return np.asarray(symbols), np.asarray(owner), np.asarray(skip)


def viterbi_spans(logp: np.ndarray, words: Sequence[str]) -> list[tuple[int, int]]:
    """Frame log-probabilities ``(T, C)`` and the transcript's words -> each word's frames ``[start, end)``.

    The path starts in the first pause or the first letter, ends in the last pause or the last letter, stays in a
    state or moves one on (or two: over an optional pause, or over a letter at :data:`SKIP_LOGP`)."""
    if not words:
        return []
    symbols, owner, skip = _states(words)
    n_states, n_frames = len(symbols), logp.shape[0]
    if n_frames == 0:
        raise OsumError("the clip has no audio frames to align")
    emit = logp[:, symbols]  # (T, S)
    score = np.full(n_states, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((n_frames, n_states), dtype=np.uint8)  # 0 stay, 1 one on, 2 two on
    for t in range(1, n_frames):
        one = np.concatenate(([-np.inf], score[:-1]))
        two = np.concatenate(([-np.inf, -np.inf], score[:-2])) + skip
        choice = np.stack([score, one, two])
        back[t] = choice.argmax(0)
        score = choice.max(0) + emit[t]
    end = n_states - 1 if score[-1] >= score[-2] else n_states - 2
    if not np.isfinite(score[end]):
        raise OsumError("no alignment path: the transcript has more letters than the audio has frames")
    path = np.empty(n_frames, dtype=np.int64)
    s = end
    for t in range(n_frames - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])
    spans = [(n_frames, 0)] * len(words)
    for t, k in enumerate(owner[path]):
        if k >= 0:
            a, b = spans[k]
            spans[k] = (min(a, t), max(b, t + 1))
    return spans  # every word holds a frame: a skip passes one letter or one pause, never a whole word


def letter_path(logp: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """A word's frames' log-probabilities ``(T, C)`` and its letters -> the symbol of each frame on the best
    path through the letters in order, each at least one frame (``(T,)``; evenly shared when T < letters)."""
    n, k = logp.shape[0], len(ids)
    if n < k:
        return np.asarray(ids)[np.minimum((np.arange(n) * k) // max(n, 1), k - 1)]
    emit = logp[:, list(ids)]
    score = np.full(k, -np.inf)
    score[0] = emit[0, 0]
    back = np.zeros((n, k), dtype=np.uint8)
    for t in range(1, n):
        one = np.concatenate(([-np.inf], score[:-1]))
        back[t] = one > score
        score = np.maximum(score, one) + emit[t]
    out = np.empty(n, dtype=np.int64)
    s = k - 1
    for t in range(n - 1, -1, -1):
        out[t] = ids[s]
        s -= int(back[t, s])
    return out


class FrameAligner:
    """A trained :class:`FrameHead` over a Whisper model's frozen encoder: times the words of a known transcript."""

    def __init__(self, head: FrameHead, encoder_model: str = "mini-stage1-base", device: str = "cpu") -> None:
        import osum
        from osum.model.whisper_tasks import WhisperTaskModel

        loaded = osum.load(encoder_model, device=device)
        if not isinstance(loaded.model, WhisperTaskModel):
            raise ConfigError(f"aligner encoder {encoder_model!r}: needs a Whisper model, not an OSUM LLM")
        self.encoder = loaded.model.encoder.eval()
        self.n_mels = loaded.config.encoder.n_mels
        self.device = loaded.device
        self.encoder_model = encoder_model
        self.head = head.to(self.device).eval()
        if head.config.dim != loaded.config.encoder.d_model:
            raise ConfigError(
                f"the aligner head reads {head.config.dim}-wide frames; {encoder_model!r}'s encoder gives "
                f"{loaded.config.encoder.d_model}"
            )

    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "cpu") -> FrameAligner:
        """A folder written by :meth:`save` (``aligner.json``, ``head.safetensors``)."""
        from safetensors.torch import load_file

        path = Path(folder)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise ConfigError(f"{path}: not a frame aligner (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        meta = json.loads((path / CONFIG_FILE).read_text())
        if list(meta.get("symbols", [])) != list(SYMBOLS):
            raise ConfigError(f"{path / CONFIG_FILE}: the head was trained on other symbols")
        head = FrameHead(HeadConfig(**meta["head"]))
        head.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        return cls(head, meta["encoder"], device)

    def save(self, folder: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        from safetensors.torch import save_file

        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, path / WEIGHTS_FILE
        )
        meta = {"encoder": self.encoder_model, "head": asdict(self.head.config), "symbols": list(SYMBOLS)}
        (path / CONFIG_FILE).write_text(json.dumps({**meta, **(extra or {})}, indent=2) + "\n")

    @torch.inference_mode()
    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        """16 kHz samples ``(N,)`` -> the encoder's frames ``(T, D)``, 30 s windows one after another."""
        seconds = wave.shape[0] / SAMPLE_RATE
        if seconds > MAX_SECONDS:
            raise OsumError(f"the clip is {seconds:.0f} s; the frame aligner reads at most {MAX_SECONDS:g} s")
        step = int(WINDOW_S * SAMPLE_RATE)
        out = []
        for a in range(0, max(wave.shape[0], 1), step):
            feats = log_mel_spectrogram(wave[a : a + step], self.n_mels).to(self.device)
            enc, lengths = self.encoder(feats[None], torch.tensor([feats.shape[0]], device=self.device))
            out.append(enc[0, : int(lengths[0])].float())
        return torch.cat(out)

    @torch.inference_mode()
    def log_probs(self, frames: torch.Tensor) -> np.ndarray:
        """Encoder frames ``(T, D)`` -> symbol log-probabilities ``(T, C)``."""
        return self.head(frames[None].to(self.device)).log_softmax(-1)[0].cpu().double().numpy()

    def align(self, wave: torch.Tensor, text: str, refine: bool = False) -> list[Word]:
        """16 kHz samples ``(N,)`` and their transcript -> the transcript's words (split on spaces) with start/end
        seconds. ``refine``: move the boundaries onto the audio's pauses (:func:`osum.data.levels.refine_words`)."""
        words = text.split()
        if not words:
            raise OsumError("the transcript is empty")
        seconds = wave.shape[0] / SAMPLE_RATE
        spans = viterbi_spans(self.log_probs(self.frames(wave)), words)
        out = [
            Word(w, round(min(a * FRAME_S, seconds), 3), round(min(b * FRAME_S, seconds), 3))
            for w, (a, b) in zip(words, spans, strict=True)
        ]
        if refine:
            out = refine_words(out, frame_levels(wave.numpy()))
        return out


def timed_clips(
    manifests: Sequence[str | os.PathLike], limit: int = 0
) -> list[tuple[torch.Tensor, tuple[Word, ...]]]:
    """The clips of ``manifests`` with timed words (at most ``limit``, 0: all) -> (16 kHz samples, words)."""
    from osum.data.manifest import load_utterance_audio
    from osum.data.reader import read_any

    out = []
    for manifest in manifests:
        for u in read_any(manifest):
            if u.words and (u.text or "").strip():
                out.append((load_utterance_audio(u, max_seconds=MAX_SECONDS), u.words))
                if limit and len(out) >= limit:
                    return out
    if not out:
        raise ConfigError(f"{', '.join(map(str, manifests))}: no clip has timed words (a 'words' list)")
    return out


@dataclass
class TrainSummary:
    clips: int
    frames: int
    rounds: int
    epochs: int
    seconds: float
    loss: list[float]
    frame_accuracy: float  # share of frames whose argmax is the target, on the training clips, last round

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_frame_aligner(
    clips: Sequence[tuple[torch.Tensor, Sequence[Word]]],
    out: str | os.PathLike,
    encoder_model: str = "mini-stage1-base",
    head: HeadConfig | None = None,
    epochs: int = 12,
    rounds: int = 2,
    pause_share: float = 0.5,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
    extra: dict[str, Any] | None = None,
    progress: bool = False,
) -> TrainSummary:
    """Train a :class:`FrameHead` on ``clips`` (16 kHz samples ``(N,)`` and their exactly timed words) and save it
    with the aligner's config in ``out``. Each round trains ``epochs`` passes (AdamW, cross-entropy per frame);
    after it the letters' share of each word's frames is re-drawn from the head's own path (:func:`letter_path`).
    ``pause_share`` of the clips are added again with long pauses (:func:`with_long_pauses`). ``log`` gets a line
    per epoch; ``progress`` shows a bar while the clips are encoded (once, before training).
    """
    if not clips:
        raise ConfigError("no clips with timed words to train the aligner on")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    extra_clips = [with_long_pauses(w, words, rng) for w, words in clips if rng.random() < pause_share]
    clips = list(clips) + extra_clips
    t0 = time.perf_counter()
    aligner = FrameAligner(FrameHead(head or HeadConfig()), encoder_model, device)
    say = log or (lambda _: None)
    from tqdm import tqdm

    bar = tqdm(clips, desc="encode", unit="clip", disable=not progress)
    frames = [aligner.frames(wave).cpu().to(torch.float16) for wave, _ in bar]
    say(
        f"encoded {len(frames)} clips ({sum(f.shape[0] for f in frames)} frames) in {time.perf_counter() - t0:.0f} s"
    )
    targets = [frame_targets(words, f.shape[0]) for f, (_, words) in zip(frames, clips, strict=True)]
    model = aligner.head
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    total_steps = rounds * epochs * math.ceil(len(frames) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.1)
    losses = []
    for r in range(rounds):
        if r > 0:
            targets = [
                _redraw(aligner, f, words, t) for f, (_, words), t in zip(frames, clips, targets, strict=True)
            ]
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(len(frames))
            total, count = 0.0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                x = nn.utils.rnn.pad_sequence([frames[j].float() for j in idx], batch_first=True).to(
                    aligner.device
                )
                y = nn.utils.rnn.pad_sequence(
                    [torch.from_numpy(targets[j]) for j in idx], batch_first=True, padding_value=-100
                ).to(aligner.device)
                loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-100)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total, count = total + loss.item() * len(idx), count + len(idx)
            losses.append(round(total / count, 4))
            say(f"round {r + 1} epoch {epoch + 1}: loss {losses[-1]:.4f}")
    model.eval()
    right = n = 0
    for f, t in zip(frames, targets, strict=True):
        right += int((aligner.log_probs(f.float()).argmax(-1) == t).sum())
        n += len(t)
    summary = TrainSummary(
        len(frames), n, rounds, epochs, round(time.perf_counter() - t0, 1), losses, right / n
    )
    aligner.save(out, {"training": {**summary.to_dict(), **(extra or {})}})
    return summary


def with_long_pauses(
    wave: torch.Tensor, words: Sequence[Word], rng: np.random.Generator, max_pauses: int = 3
) -> tuple[torch.Tensor, tuple[Word, ...]]:
    """A training copy of a clip with 1..``max_pauses`` long pauses (0.2-1.5 s) put between words or at its ends,
    the later words' times moved: the synthetic clips pause 30-150 ms between words, real recordings (and
    recordings joined together) far longer, and a head that never saw a long pause heard letters in one.

    A pause is digital silence or noise at the clip's own floor (the level of its quietest 10 ms frames)."""
    hop = SAMPLE_RATE // 100
    x = wave.numpy().astype(np.float32)
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    floor = float(np.percentile(np.sqrt(np.square(frames).mean(1)), 10)) if len(frames) else 0.0
    # cut points: the clip's start, the middle of each gap between words, its end
    cuts = (
        [0.0]
        + [(a.end + b.start) / 2 for a, b in zip(words, words[1:], strict=False)]
        + [len(x) / SAMPLE_RATE]
    )
    chosen = sorted(
        rng.choice(len(cuts), size=min(len(cuts), int(rng.integers(1, max_pauses + 1))), replace=False)
    )
    pieces, shift, at = [], np.zeros(len(words)), 0
    starts = np.asarray([w.start for w in words])
    for c in chosen:
        n = int(round(cuts[c] * SAMPLE_RATE))
        length = int(rng.uniform(0.2, 1.5) * SAMPLE_RATE)
        fill = (
            np.zeros(length, np.float32)
            if rng.random() < 0.3
            else rng.normal(0, floor, length).astype(np.float32)
        )
        pieces += [x[at:n], fill]
        at = n
        shift[starts >= cuts[c]] += length / SAMPLE_RATE
    pieces.append(x[at:])
    moved = [
        Word(w.word, round(w.start + d, 4), round(w.end + d, 4)) for w, d in zip(words, shift, strict=True)
    ]
    return torch.from_numpy(np.concatenate(pieces)), tuple(moved)


def _redraw(
    aligner: FrameAligner, frames: torch.Tensor, words: Sequence[Word], target: np.ndarray
) -> np.ndarray:
    """``target`` with each word's frames re-shared among its letters by the head's path through them."""
    logp = aligner.log_probs(frames.float())
    out = target.copy()
    for w in words:
        a = max(0, int(round(w.start / FRAME_S)))
        b = min(len(out), max(a + 1, int(round(w.end / FRAME_S))))
        if b > a:
            out[a:b] = letter_path(logp[a:b], letters(w.word))
    return out
