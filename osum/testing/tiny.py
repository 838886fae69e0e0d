"""Tiny random models, clips and batches for tests and smoke runs (shipped in the package so recipes can use them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from osum.config import SAMPLE_RATE
from osum.data.audio import batch_log_mel
from osum.model.osum import Batch

if TYPE_CHECKING:
    from osum.api import Osum


def chirp(seconds: float, f0: float = 200.0, f1: float = 2000.0, seed: int = 0) -> np.ndarray:
    """A deterministic chirp plus a little noise, ``(round(seconds * 16000),)`` float32 at 16 kHz."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / max(seconds, 1e-3) * t**2))
    x += 0.01 * np.random.default_rng(seed).standard_normal(n)
    return x.astype(np.float32)


def random_batch(
    durations: list[float], prompt_lengths: list[int], target_lengths: list[int], vocab: int, seed: int = 0
) -> Batch:
    """A padded :class:`Batch` of chirps with random prompt/target ids (padding filled with junk on purpose)."""
    g = torch.Generator().manual_seed(seed)
    feats, lengths = batch_log_mel([torch.from_numpy(chirp(d, seed=i)) for i, d in enumerate(durations)])
    p, t = max(prompt_lengths), max(target_lengths)
    return Batch(
        feats=feats,
        feat_lengths=lengths,
        prompt_ids=torch.randint(0, vocab, (len(durations), p), generator=g),
        prompt_lengths=torch.tensor(prompt_lengths),
        target_ids=torch.randint(0, vocab, (len(durations), t), generator=g),
        target_lengths=torch.tensor(target_lengths),
    )


def row(batch: Batch, i: int) -> Batch:
    """Row ``i`` of ``batch`` alone, trimmed to its own lengths (what running it by itself means)."""
    n = int(batch.feat_lengths[i])
    p, t = int(batch.prompt_lengths[i]), int(batch.target_lengths[i])
    return Batch(
        feats=batch.feats[i : i + 1, :n],
        feat_lengths=batch.feat_lengths[i : i + 1],
        prompt_ids=batch.prompt_ids[i : i + 1, :p],
        prompt_lengths=batch.prompt_lengths[i : i + 1],
        target_ids=batch.target_ids[i : i + 1, :t],
        target_lengths=batch.target_lengths[i : i + 1],
    )


def write_toy_corpus(out_dir: str | Path, n: int = 16, seed: int = 0) -> Path:
    """A small JSONL manifest of chirp clips for smoke-training: ASR on made-up words plus a gender task whose
    label is the chirp direction (rising = female). Returns the manifest path."""
    import json
    import random

    import soundfile as sf

    out = Path(out_dir)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    lines = []
    for i in range(n):
        rising = i % 2 == 0
        seconds = 0.6 + 0.4 * rng.random()
        wave = chirp(seconds, 300 if rising else 2000, 2000 if rising else 300, seed=seed * 1000 + i)
        sf.write(out / "wavs" / f"u{i}.wav", wave, SAMPLE_RATE)
        record = {
            "key": f"u{i}",
            "audio": f"wavs/u{i}.wav",
            "task": "sgc" if i % 4 < 2 else "asr",
            "text": " ".join(rng.choice(words) for _ in range(2)),
            "duration": round(len(wave) / SAMPLE_RATE, 4),
        }
        if record["task"] == "sgc":
            record["labels"] = {"gender": "female" if rising else "male"}
        lines.append(json.dumps(record))
    manifest = out / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def stage1_with_task_tags() -> Osum:
    """OSUM's stage 1 on the mini scale: the packaged Whisper tiny.en with one decoder tag token per task (untrained
    tags, no label heads, unpadded encoder), the form the ``mini-stage1`` preset had before its label heads."""
    from osum.api import Osum
    from osum.checkpoint import build_model
    from osum.presets import preset_config

    config = preset_config("mini-stage1")
    config.decoder.label_heads = False
    config.encoder.pad_to_window = False
    model, tokenizer = build_model(config)
    return Osum(model, tokenizer, source="mini-stage1 (task tags)")


def words_at_known_times(
    words: list[str], folder: str | Path, pause: float = 0.25, lead: float = 0.3
) -> tuple[Path, list]:
    """The words spoken one by one (espeak-ng), each trimmed to its sound, ``pause`` seconds apart after ``lead``
    seconds of silence -> (``folder/clip.wav``, each word with its exact start/end seconds): a clip with reference
    word times for the aligners' tests."""
    import soundfile as sf

    from osum.data.audio import load_audio
    from osum.data.tts import synthesize
    from osum.tasks.base import Word

    folder = Path(folder)
    parts, timed, at = [np.zeros(int(lead * SAMPLE_RATE), np.float32)], [], lead
    for w in words:
        wave = load_audio(str(synthesize(w, folder / f"{w}.wav"))).numpy()
        loud = np.flatnonzero(np.abs(wave) > 0.01 * np.abs(wave).max())
        wave = wave[loud[0] : loud[-1] + 1]
        timed.append(Word(w, round(at, 3), round(at + len(wave) / SAMPLE_RATE, 3)))
        parts += [wave, np.zeros(int(pause * SAMPLE_RATE), np.float32)]
        at += len(wave) / SAMPLE_RATE + pause
    path = folder / "clip.wav"
    sf.write(path, np.concatenate(parts), SAMPLE_RATE)
    return path, timed
