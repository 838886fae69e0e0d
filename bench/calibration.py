"""Are the label probabilities honest? Expected calibration error of the committed models' labels.

    .venv/bin/python bench/calibration.py --offgen OFFGEN --synth DATA [--models mini-stage1,mini] [--limit 0]
                                          [--out bench/results/calibration.json]

Each clip is answered as a user would (``model.run``, greedy, guards on); the answer's confidence is the probability
the model gives the label it answered (``TaskResult.label_probs``). Sets: OFFGEN/heldout_gender.jsonl (held-out
plain voices reading a held-out text source), OFFGEN/real_gender.jsonl (a recorded speaker whose gender the package
documents) and every label clip of DATA/test.jsonl (the synthetic test split: unseen voices, augmented). ECE: the
answers are put in 10 equal-width confidence bins; the mean |accuracy - confidence| of the bins, weighted by their
share of the answers (0 = the confidences are the accuracies). Writes
``{model: {set: {task: {"n", "accuracy", "mean_confidence", "ece"}}}}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import osum
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import calibration_error
from osum.tasks import get_task

LABEL_TASKS = ("sgc", "sap", "ser", "ssr", "ved")


def measure(model: osum.Osum, utts: list, task_of) -> dict[str, dict]:
    """{task: {"n", "accuracy", "mean_confidence", "ece"}} over ``utts`` (``task_of(u)``: the task to ask)."""
    by_task: dict[str, list] = {}
    for u in utts:
        by_task.setdefault(task_of(u), []).append(u)
    out = {}
    options = osum.DecodingOptions(max_new_tokens=120)
    for name, group in sorted(by_task.items()):
        field = get_task(name).label_fields[0].name
        waves = [load_utterance_audio(u) for u in group]
        results = model.run(waves, tasks=[name], options=options, sample_rate=16000)
        pairs = []
        for u, r in zip(group, results, strict=True):
            ref = (u.labels or {}).get(field) or u.extra.get(f"voice_{field}")
            got = r[name].labels.get(field)
            if ref is None:
                continue
            probs = (r[name].label_probs or {}).get(field, {})
            pairs.append((probs.get(got, 0.0) if got is not None else 0.0, got == ref))
        if pairs:
            out[name] = {
                "n": len(pairs),
                "accuracy": round(100 * sum(ok for _, ok in pairs) / len(pairs), 1),
                "mean_confidence": round(100 * sum(c for c, _ in pairs) / len(pairs), 1),
                "ece": round(100 * calibration_error(pairs), 1),
            }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--offgen", required=True, help="folder made by `osum data offgen`")
    p.add_argument("--synth", required=True, help="folder made by `osum data synth` (its test.jsonl)")
    p.add_argument("--models", default="mini-stage1,mini")
    p.add_argument("--limit", type=int, default=0, help="at most this many clips per set (0: all)")
    p.add_argument("--out", default="bench/results/calibration.json")
    args = p.parse_args()
    limit = args.limit or None
    sets = {
        "heldout_gender": (list(read_any(Path(args.offgen) / "heldout_gender.jsonl"))[:limit], lambda u: "sgc"),
        "real_gender": (list(read_any(Path(args.offgen) / "real_gender.jsonl"))[:limit], lambda u: "sgc"),
        "synthetic_test": (
            [u for u in read_any(Path(args.synth) / "test.jsonl") if u.task in LABEL_TASKS and u.labels][:limit],
            lambda u: u.task,
        ),
    }
    result = {}
    for name in args.models.split(","):
        model = osum.load(name, device="cpu")
        result[name] = {s: measure(model, utts, task_of) for s, (utts, task_of) in sets.items()}
        print(name, json.dumps(result[name]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
