"""Forced alignment against exact word times: ``osum data align``'s aligner on the synthetic corpus's SRWT clips.

    .venv/bin/python bench/align_words.py MANIFEST [--aligner SPEC ...] [--limit N] [--out F]

MANIFEST holds clips with exact word times (``osum data synth``'s SRWT clips: each word synthesized alone, its
span measured in the rendered audio). Each clip's transcript is aligned to its audio by each ``--aligner``
(:func:`osum.data.align.load_aligner`: ``frames`` the shipped frame aligner, ``attention`` Whisper tiny.en's
alignment heads, or a folder from ``osum data train-aligner``; default: frames and attention), as it comes and
with the boundaries refined on the audio's levels (:func:`osum.data.align.refine_words`), and each is scored as
``osum eval`` scores SRWT answers (:func:`osum.evaluation.metrics.word_timing`): mean boundary error (AAS) and
the share of boundaries within 50 / 100 / 200 ms. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from osum.data.align import frame_levels, load_aligner, refine_words
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import word_timing
from osum.evaluation.normalize import normalize_english


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest")
    p.add_argument("--aligner", action="append", help="repeatable (default: frames and attention)")
    p.add_argument("--limit", type=int, default=0, help="the first N timed clips (default all)")
    p.add_argument("--out", default="bench/results/align_words.json")
    args = p.parse_args()
    clips = [u for u in read_any(args.manifest) if u.words and (u.text or "").strip()]
    clips = clips[: args.limit] if args.limit else clips
    specs = args.aligner or ["frames", "attention"]
    aligners = {spec: load_aligner(spec) for spec in specs}
    refs = [u.words for u in clips]
    waves = [load_utterance_audio(u) for u in clips]
    audio_s = sum(w.shape[0] for w in waves) / 16000
    hyps: dict[str, list] = {}
    seconds: dict[str, float] = {}
    for spec, aligner in aligners.items():
        t0 = time.perf_counter()
        raw = [aligner.align(w, u.text or "", False) for w, u in zip(waves, clips, strict=True)]
        seconds[spec] = round(time.perf_counter() - t0, 1)
        hyps[spec] = raw
        hyps[spec + "+refine"] = [refine_words(h, frame_levels(w.numpy())) for h, w in zip(raw, waves, strict=True)]

    def score(hyps: list) -> dict:
        report = word_timing(refs, hyps, normalize=lambda w: normalize_english(w) or w.lower())
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in report.to_dict().items()}

    report = {
        "manifest": str(args.manifest),
        "clips": len(clips),
        "audio_seconds": round(audio_s, 1),
        "seconds": seconds,
        "scores": {name: score(h) for name, h in hyps.items()},
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for name, r in report["scores"].items():
        print(
            f"{name:20s} AAS {1000 * r['aas']:.1f} ms (start {1000 * r['mean_start_error']:.1f}, end "
            f"{1000 * r['mean_end_error']:.1f}); within 50 ms {100 * r['within_50ms']:.1f}%, 100 ms "
            f"{100 * r['within_100ms']:.1f}%; {r['matched']} of {r['reference_words']} words"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
