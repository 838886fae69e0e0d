"""How much should the LLM weigh in a fused label answer? Accuracy per label field for a sweep of weights.

    .venv/bin/python bench/label_fusion.py MODEL MANIFEST [MANIFEST ...] [--weights 0,0.25,0.5,1,2] [--limit N]
                                           [--out x.json]

An osum model with label classifiers and ``label_fusion`` (the ``mini`` preset) scores each answer of a label task
by ``w`` x the LLM's log-probability + the classifiers' (``ModelConfig.label_llm_weight`` = ``w``). The model
answers every label clip of each manifest (its own task; tasks with one label field: SER, SSR, VED, SAP, SGC) twice
through ``Osum.answer``, exactly as ``osum eval`` does: once with fusion off (the LLM's probabilities alone) and once
at weight 0 (the classifiers' alone). For one field the fused answer at weight ``w`` is then
``argmax_v w log p_llm(v) + log p_cls(v)``, so every weight is scored from those two passes. A clip answered as
silent (no labels) counts as wrong. Prints a markdown table per manifest and writes
{manifest: {"n": {field: clips}, "accuracy": {weight: {field: share}}}} as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import osum
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.inference.decoding import DecodingOptions
from osum.inference.engine import Query
from osum.tasks import get_task

Probs = dict[str, float] | None


def label_probs(model: osum.Osum, queries: list[Query], fields: list[str], **config: object) -> list[Probs]:
    """Each query's probabilities over its one label field's values, with ``config`` set on the model's config."""
    saved = model.model.config
    model.model.config = dataclasses.replace(saved, **config)
    try:
        results = model.answer(queries, DecodingOptions(batch_size=8), progress=True)
    finally:
        model.model.config = saved
    return [
        None if r.label_probs is None else dict(r.label_probs[f])
        for r, f in zip(results, fields, strict=True)
    ]


def fused(llm: Probs, cls: Probs, weight: float) -> str | None:
    """The value maximising ``weight`` x log p_llm + log p_cls (None when the clip got no label)."""
    if llm is None or cls is None:
        return None
    floor = 1e-30  # a probability of exactly 0 (underflow) stays finite
    return max(cls, key=lambda v: weight * math.log(max(llm[v], floor)) + math.log(max(cls[v], floor)))


def sweep(model: osum.Osum, manifest: str, weights: list[float], limit: int | None) -> dict:
    queries, fields, refs = [], [], []
    for u in read_any(manifest):
        task = get_task(u.task)
        if len(task.label_fields) != 1 or task.label_fields[0].name not in u.labels:
            continue
        queries.append(Query(load_utterance_audio(u), task.name))
        fields.append(task.label_fields[0].name)
        refs.append(u.labels[fields[-1]])
        if limit is not None and len(queries) >= limit:
            break
    if not queries:
        raise SystemExit(f"{manifest}: no clip of a task with one label field and its reference")
    print(f"{manifest}: {len(queries)} label clips", file=sys.stderr)
    llm = label_probs(model, queries, fields, label_fusion=False)
    cls = label_probs(model, queries, fields, label_fusion=True, label_llm_weight=0.0)
    n: dict[str, int] = defaultdict(int)
    for f in fields:
        n[f] += 1
    accuracy: dict[str, dict[str, float]] = {}
    for w in weights:
        right: dict[str, int] = defaultdict(int)
        for f, ref, a, b in zip(fields, refs, llm, cls, strict=True):
            right[f] += fused(a, b, w) == ref
        accuracy[str(w)] = {f: right[f] / n[f] for f in sorted(n)}
    right = defaultdict(int)
    for f, ref, a in zip(fields, refs, llm, strict=True):
        right[f] += a is not None and max(a, key=a.get) == ref
    accuracy["llm alone"] = {f: right[f] / n[f] for f in sorted(n)}
    return {"n": dict(sorted(n.items())), "accuracy": accuracy}


def table(name: str, result: dict) -> str:
    fields = list(result["n"])
    lines = [
        f"{name}",
        "",
        "| LLM weight | " + " | ".join(f"{f} ({result['n'][f]})" for f in fields) + " |",
        "|---|" + "--:|" * len(fields),
    ]
    for w, acc in result["accuracy"].items():
        lines.append(f"| {w} | " + " | ".join(f"{100 * acc[f]:.1f}%" for f in fields) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="an osum model with label classifiers and a transcriber (e.g. models/mini)")
    p.add_argument("manifests", nargs="+")
    p.add_argument("--weights", default="0,0.1,0.25,0.5,1,2", help="comma-separated LLM weights")
    p.add_argument("--limit", type=int, help="the first N label clips of each manifest")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    model = osum.load(args.model, device="cpu", dtype="float32")
    if model.model.config.architecture == "whisper" or model.model.label_tokens is None:
        raise SystemExit(f"{args.model}: not an osum (LLM) model with label classifiers")
    out = {"model": args.model, "weights": weights}
    for manifest in args.manifests:
        out[manifest] = sweep(model, manifest, weights, args.limit)
        print(table(manifest, out[manifest]) + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
