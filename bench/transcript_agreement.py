"""Does a model hear the same words whatever it is asked? Every task's transcript against its ASR answer.

    .venv/bin/python bench/transcript_agreement.py MODEL MANIFEST [--limit 60] [--out agreement.json]

Each clip of MANIFEST (its audio only: the references are not read) is asked all eight tasks. Each task's
transcript (SRWT's words, VED/SER/SSR/SGC/SAP's text before the tag, STTC's question) is scored against the ASR
answer for the same clip, as a word error rate after English normalisation (ASR's answer is the reference). A
model that listens gives the same words every time; one that writes from its training material changes them with
the task. Prints and writes ``{"model", "manifest", "clips", "per_task": {task: wer}, "mean_wer"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import osum
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import align_tokens
from osum.evaluation.normalize import normalize_english

TASKS = ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc")


def agreement(model: osum.Osum, waves: list, batch_size: int = 8) -> dict[str, float]:
    """``{task: WER of its transcripts against the ASR answers}`` over ``waves`` (clips with an empty ASR answer
    are left out: there are no words to agree on)."""
    results = model.run(waves, tasks=TASKS, sample_rate=16000)
    errors = dict.fromkeys(TASKS[1:], 0)
    words = 0
    for answers in results:
        ref = normalize_english(answers["asr"].transcript or "").split()
        if not ref:
            continue
        words += len(ref)
        for task in TASKS[1:]:
            hyp = normalize_english(answers[task].transcript or "").split()
            c = align_tokens(ref, hyp).counts
            errors[task] += c.substitutions + c.deletions + c.insertions
    return {task: errors[task] / max(words, 1) for task in TASKS[1:]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("manifest")
    p.add_argument("--limit", type=int, default=60, help="clips to use (the manifest's first; default 60)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    model = osum.load(args.model)
    seen, waves = set(), []
    for u in read_any(args.manifest):
        if u.audio in seen or (u.text is not None and not u.text.strip()):
            continue  # one entry per clip; clips without speech have nothing to agree on
        seen.add(u.audio)
        waves.append(load_utterance_audio(u))
        if len(waves) == args.limit:
            break
    per_task = agreement(model, waves)
    report = {
        "model": args.model,
        "manifest": str(args.manifest),
        "clips": len(waves),
        "per_task": per_task,
        "mean_wer": sum(per_task.values()) / len(per_task),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
