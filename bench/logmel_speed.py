"""Whisper log-mel features: osum against transformers' ``WhisperFeatureExtractor``, side by side in one process.

    .venv/bin/python bench/logmel_speed.py [--clips 16] [--rounds 15] [--out bench/results/logmel_speed.json]

Inputs: ``--clips`` waves of 1-30 s (evenly spread lengths; band-limited noise with a chirp, seed 0), 16 kHz
float32, already in memory (reading and resampling are not timed). Systems, each turning the whole list into
features once per round; rounds interleave the systems (rotated order) and the medians are compared:

- ``osum``: ``osum.data.audio.batch_log_mel(waves)`` -> ``(B, T_max, 80)`` and lengths (what the data loader
  and inference call);
- ``transformers (batch, 30 s)``: ``WhisperFeatureExtractor()(waves, sampling_rate=16000, return_tensors="pt")``,
  its default (every clip padded to Whisper's 30 s window, as Whisper and Qwen2-Audio's processor use it);
- ``transformers (per clip)``: the same extractor called on each clip alone with ``padding="longest"`` (no 30 s
  padding; the closest to what osum computes).

Agreement: per clip, the largest absolute difference between osum's frames and the per-clip transformers call's
(the 30 s call differs near each clip's end by design: it reflects zeros). Torch threads: all the machine's
cores (``torch.get_num_threads()``, recorded). Writes JSON and a markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from osum.data.audio import SAMPLE_RATE, batch_log_mel


def make_waves(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` float32 waves of 1-30 s: band-limited noise plus a chirp, at -20 dBFS-ish."""
    rng = np.random.default_rng(seed)
    waves = []
    for seconds in np.linspace(1.0, 30.0, n):
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        noise = np.convolve(rng.standard_normal(t.size), np.ones(8) / 8, mode="same")
        chirp = np.sin(2 * np.pi * (200 + 300 * t / max(seconds, 1e-9)) * t)
        waves.append((0.05 * noise + 0.1 * chirp).astype(np.float32))
    return waves


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", default="bench/results/logmel_speed.json")
    args = p.parse_args()

    import transformers
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor()  # Whisper's defaults: 80 mels, 16 kHz, 30 s window
    waves = make_waves(args.clips)
    tensors = [torch.from_numpy(w) for w in waves]

    def ours() -> None:
        batch_log_mel(tensors)

    def hf_batch() -> None:
        extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")

    def hf_per_clip() -> None:
        for w in waves:
            extractor(w, sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="pt")

    systems = {"osum": ours, "transformers (batch, 30 s)": hf_batch, "transformers (per clip)": hf_per_clip}
    for fn in systems.values():  # warm-up: allocators, filter banks, windows
        fn()
    times: dict[str, list[float]] = {name: [] for name in systems}
    names = list(systems)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            systems[name]()
            times[name].append(time.perf_counter() - start)

    feats, lengths = batch_log_mel(tensors)
    diffs = []
    for i, w in enumerate(waves):
        ref = extractor(w, sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="pt").input_features[
            0
        ]
        ref = ref.T[: int(lengths[i])]  # (T, 80)
        diffs.append(float((feats[i, : int(lengths[i])] - ref).abs().max()))

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    audio_seconds = sum(w.size for w in waves) / SAMPLE_RATE
    result = {
        "command": "bench/logmel_speed.py " + f"--clips {args.clips} --rounds {args.rounds}",
        "clips": args.clips,
        "audio_seconds": round(audio_seconds, 2),
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "median_seconds": {k: round(v, 5) for k, v in medians.items()},
        "speedup_over": {k: round(v / medians["osum"], 2) for k, v in medians.items() if k != "osum"},
        "max_abs_diff_vs_per_clip": round(max(diffs), 8),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        f"| system | median s ({args.clips} clips) | audio s per s | osum's speed-up |",
        "|---|--:|--:|--:|",
    ]
    for name, sec in medians.items():
        ratio = "1" if name == "osum" else f"{sec / medians['osum']:.2f}x"
        rows.append(f"| {name} | {sec:.4f} | {audio_seconds / sec:.0f} | {ratio} |")
    rows.append(f"\nmax abs difference to transformers per clip: {max(diffs):.2e}; `{result['command']}`")
    out.with_suffix(".md").write_text("\n".join(rows) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
