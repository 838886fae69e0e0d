"""Forced alignment on real speech, where no word times exist: clips joined with pauses, each word in its own clip?

    .venv/bin/python bench/align_joined.py MANIFEST [--aligner SPEC ...] [--group 3] [--pause 0.5] [--out F]

MANIFEST: transcribed recordings without word times (``osum data offgen``'s ``real.jsonl``: human speech that
Debian/PyPI packages ship, never trained on). Every ``--group`` consecutive clips are joined with ``--pause``
seconds of silence between them and the joined transcript is aligned to the joined audio by each ``--aligner``
(:func:`osum.data.align.load_aligner`; default frames and attention, each as ``osum data align`` runs it: the
attention aligner refined on pauses). The clips' own spans are known exactly,
so each word must land inside its own clip's span: we report the share of words that do (within 50 ms of the
span), and the share of joined recordings where every word does. A coarse check (a word may sit in its clip yet
be misplaced inside it), but one on real voices, which the synthetic word times cannot give. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from osum.data.align import AttentionAligner, load_aligner
from osum.data.audio import SAMPLE_RATE
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any

SLACK = 0.05


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest")
    p.add_argument("--aligner", action="append", help="repeatable (default: frames and attention)")
    p.add_argument("--group", type=int, default=3, help="clips per joined recording (default 3)")
    p.add_argument("--pause", type=float, default=0.5, help="seconds of silence between clips (default 0.5)")
    p.add_argument("--out", default="bench/results/align_joined.json")
    args = p.parse_args()
    clips = [u for u in read_any(args.manifest) if (u.text or "").split()]
    silence = torch.zeros(int(args.pause * SAMPLE_RATE))
    joined = []  # (samples, transcript, [(clip span start, end, its word count)])
    for g in range(0, len(clips) - args.group + 1, args.group):
        parts, words, spans, at = [], [], [], 0.0
        for u in clips[g : g + args.group]:
            wave = load_utterance_audio(u)
            spans.append((at, at + wave.shape[0] / SAMPLE_RATE, len(u.text.split())))
            words += u.text.split()
            parts += [wave, silence]
            at += wave.shape[0] / SAMPLE_RATE + args.pause
        joined.append((torch.cat(parts[:-1]), " ".join(words), spans))
    report: dict = {
        "manifest": str(args.manifest),
        "recordings": len(joined),
        "clips_per_recording": args.group,
        "pause_seconds": args.pause,
        "words": sum(len(t.split()) for _, t, _ in joined),
        "audio_seconds": round(sum(w.shape[0] for w, _, _ in joined) / SAMPLE_RATE, 1),
        "aligners": {},
    }
    for spec in args.aligner or ["frames", "attention"]:
        aligner = load_aligner(spec)
        refine = isinstance(aligner, AttentionAligner)  # each aligner as `osum data align` runs it by default
        inside = total = whole = 0
        t0 = time.perf_counter()
        for wave, text, spans in joined:
            words = aligner.align(wave, text, refine)
            k, ok = 0, True
            for start, end, n in spans:
                for w in words[k : k + n]:
                    good = w.start >= start - SLACK and w.end <= end + SLACK
                    inside, total, ok = inside + good, total + 1, ok and good
                k += n
            whole += ok
        report["aligners"][spec] = {
            "words_in_own_clip": round(inside / total, 4),
            "recordings_all_words_in_own_clip": round(whole / len(joined), 4),
            "seconds": round(time.perf_counter() - t0, 1),
            "refined": refine,
        }
        r = report["aligners"][spec]
        print(
            f"{spec:12s} words in their own clip {100 * r['words_in_own_clip']:.1f}%; recordings with every word "
            f"in place {100 * r['recordings_all_words_in_own_clip']:.1f}% ({r['seconds']} s)"
        )
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
