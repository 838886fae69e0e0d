"""Real-time factor of a model per task (float32 and int8 weights), on recorded speech.

    .venv/bin/python bench/task_rtf.py [MANIFEST] [--model mini] [--limit 30] [--rounds 2] [--kv-cache dynamic,compiled]
                                       [--out bench/results/task_rtf.json]

MANIFEST (default: the recorded clips of ``osum data offgen``, built in a temporary folder) gives the clips; their
waves are read into memory first. For each task of the paper, ``model.run(waves, task)`` (batch 8, greedy, the
default guards) is timed once per round with float32 weights and once with ``dtype="int8"``, the rounds
interleaving the two; the median is kept. ``--kv-cache`` (comma-separated: dynamic, static, compiled;
:attr:`osum.DecodingOptions.kv_cache`) times each with each KV cache and reports whether the answers equal the
first one's. The real-time factor is seconds of compute per second of audio; the ASR
row also gives the WER of each (lower-cased, punctuation removed, as ``osum eval``). Writes JSON and a markdown
table beside it. 2 CPU threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import osum
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import word_errors
from osum.evaluation.normalize import normalize_english
from osum.tasks import OSUM_TASKS

THREADS = 2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest", nargs="?", help="clips (default: osum data offgen's recorded set)")
    p.add_argument("--model", default="mini")
    p.add_argument("--limit", type=int, default=30, help="the first N clips with a transcript (default 30)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument(
        "--kv-cache", default="dynamic", help="comma-separated KV caches to time (default dynamic)"
    )
    p.add_argument("--out", default="bench/results/task_rtf.json")
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    manifest = args.manifest
    if manifest is None:
        from osum.data.offgen import build_offgen

        manifest = str(build_offgen(Path(tempfile.mkdtemp(prefix="offgen-"))).manifests["real"])
    utts = [u for u in read_any(manifest) if u.text][: args.limit]
    waves = [load_utterance_audio(u).numpy() for u in utts]
    audio_s = sum(len(w) for w in waves) / 16000
    loaded = {
        "float32": osum.load(args.model, device="cpu"),
        "int8": osum.load(args.model, device="cpu", dtype="int8"),
    }
    caches = args.kv_cache.split(",")
    models = {}  # name -> (model, options)
    for dtype, model in loaded.items():
        for i, cache in enumerate(caches):
            models[dtype if i == 0 else f"{dtype} {cache}"] = (
                model,
                osum.DecodingOptions(batch_size=8, kv_cache=cache),
            )
    for m, options in models.values():  # warm-up
        m.run(waves[:2], list(OSUM_TASKS), options=options, sample_rate=16000)
    seconds: dict[str, dict[str, list[float]]] = {t: {k: [] for k in models} for t in OSUM_TASKS}
    wer: dict[str, float] = {}
    answers: dict[str, dict[str, list]] = {t: {} for t in OSUM_TASKS}
    for _ in range(args.rounds):
        for task in OSUM_TASKS:
            for kind, (model, options) in models.items():
                t0 = time.perf_counter()
                results = model.run(waves, task, options=options, sample_rate=16000)
                seconds[task][kind].append(time.perf_counter() - t0)
                answers[task][kind] = [r[task].raw for r in results]
                if task == "asr":
                    hyps = [r["asr"].transcript or "" for r in results]
                    wer[kind] = word_errors([u.text or "" for u in utts], hyps, normalize_english).rate
    rows = {
        task: {kind: statistics.median(v) / audio_s for kind, v in by_kind.items()}
        for task, by_kind in seconds.items()
    }
    report = {
        "model": str(loaded["float32"].source),
        "manifest": manifest,
        "clips": len(waves),
        "audio_seconds": audio_s,
        "threads": THREADS,
        "rounds": args.rounds,
        "kv_cache": args.kv_cache,
        "rtf": rows,
        "answers_equal_first_cache": {
            task: {f"{d} {c}": by[f"{d} {c}"] == by[d] for d in loaded for c in caches[1:]}
            for task, by in answers.items()
        }
        if len(caches) > 1
        else None,
        "seconds": seconds,
        "asr_wer": wer,
    }
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=2) + "\n")
    names = list(models)
    lines = [
        "| task | " + " | ".join(f"real-time factor, {n}" for n in names) + " | int8 speed-up |",
        "|---|" + "--:|" * (len(names) + 1),
    ]
    for task, r in rows.items():
        cells = " | ".join(f"{r[n]:.3f}" for n in names)
        lines.append(f"| {task} | {cells} | {r['float32'] / r['int8']:.2f}x |")
    lines += [
        "",
        f"{args.model}, {len(waves)} recorded clips ({audio_s:.0f} s), batch 8, {THREADS} threads, median of "
        f"{args.rounds} rounds, KV cache {args.kv_cache}; ASR WER "
        + ", ".join(f"{n} {100 * w:.2f}%" for n, w in wer.items()),
    ]
    if report["answers_equal_first_cache"] is not None:
        same = all(v for by in report["answers_equal_first_cache"].values() for v in by.values())
        lines.append(f"answers equal the {caches[0]} cache's for every task: {'yes' if same else 'no'}")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
