"""How a model's speech head sorts the clips without words: VED asked of every empty-transcript clip.

    .venv/bin/python bench/vocal_check.py MODEL MANIFEST... [--out bench/results/vocal_check.json]

A clip holding a vocal event (an ``event`` label or ``extra.event``) should be answered with that event
(``<cough>``), every other clip without words (silence, noise, tones) with nothing. Prints and writes, per
manifest, how many lone events were named (and named right) and how many of the others were left empty.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import osum
from osum.data.reader import read_any


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("manifests", nargs="+")
    p.add_argument("--out", default="bench/results/vocal_check.json")
    args = p.parse_args()
    model = osum.load(args.model, device="cpu")
    report: dict = {"model": args.model, "manifests": {}}
    for manifest in args.manifests:
        utts = [u for u in read_any(manifest) if u.text is not None and not u.text.strip()]
        answers = model.run([u.audio for u in utts], tasks=["ved"]) if utts else []
        rows = [
            {"key": u.key, "event": u.labels.get("event") or u.extra.get("event"), "answer": a["ved"].raw}
            for u, a in zip(utts, answers, strict=True)
        ]
        vocal = [r for r in rows if r["event"]]
        other = [r for r in rows if not r["event"]]
        summary = {
            "vocal_clips": len(vocal),
            "vocal_named": sum(bool(r["answer"]) for r in vocal),
            "vocal_named_right": sum(r["answer"] == f"<{r['event']}>" for r in vocal),
            "other_clips": len(other),
            "other_empty": sum(not r["answer"] for r in other),
        }
        print(manifest, summary)
        report["manifests"][manifest] = {**summary, "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
