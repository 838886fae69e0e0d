"""Training speed: utterances and audio seconds per second of `osum train` steps with the mini recipe's configs.

    .venv/bin/python bench/train_speed.py MANIFEST [--steps 8] [--skip 2] [--out bench/results/train_speed.json]

Each configuration runs ``osum train`` in its own process for ``--steps`` optimizer steps on MANIFEST (the
synthetic corpus's train split), logging every step; the first ``--skip`` steps (warm-up, first allocations) are
left out and the medians of the rest reported, from the trainer's own log (``train_log.jsonl``: utterances per
second, audio seconds per second, seconds per step). Configurations:

- ``stage 1a``: ``recipes/mini/encoder.yaml``: Whisper tiny.en's encoder learns under its frozen decoder;
- ``stage 2``: ``recipes/mini/stage2.yaml`` from the committed ``models/mini``: adaptor, LoRA and label tokens
  learn through SmolLM2 (CTC term beside), the frozen encoder run on every batch (no encoder cache);
- ``stage 2, gradient checkpointing``: the same, activations recomputed in backward.

fp32, 2 threads (``OMP_NUM_THREADS``), batch sizes as the configs set them (by frames and tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def configs(manifest: str) -> dict[str, list[str]]:
    data = [f"data.train=[{{path: {manifest}}}]", "data.valid=[]"]
    stage2 = ["recipes/mini/stage2.yaml", *data, "train.init=models/mini", "data.encoder_cache=''"]
    return {
        "stage 1a (encoder)": ["recipes/mini/encoder.yaml", *data, "train.stop_at=0"],
        "stage 2 (adaptor + LoRA)": stage2,
        "stage 2, gradient checkpointing": [*stage2, "train.grad_checkpointing=true"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--skip", type=int, default=2)
    p.add_argument("--out", default="bench/results/train_speed.json")
    args = p.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    report: dict = {"manifest": args.manifest, "steps": args.steps, "skipped_steps": args.skip, "runs": {}}
    for name, cmd in configs(str(Path(args.manifest).resolve())).items():
        with tempfile.TemporaryDirectory(prefix="speed-") as tmp:
            overrides = [
                f"train.out_dir={tmp}",
                f"train.max_steps={args.steps}",
                "train.warmup_steps=1",
                "train.log_every=1",
                f"train.save_every={args.steps}",
                "train.valid_every=0",
            ]
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "osum", "train", *cmd, *overrides],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - t0
            logs = [json.loads(x) for x in (Path(tmp) / "train_log.jsonl").read_text().splitlines()]
            steps = [r for r in logs if "loss" in r][args.skip :]
        report["runs"][name] = {
            "command": "osum train " + " ".join(cmd),
            "utterances_per_second": statistics.median(r["utterances_per_second"] for r in steps),
            "audio_seconds_per_second": statistics.median(r["audio_seconds_per_second"] for r in steps),
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in steps),
            "wall_seconds": round(wall, 1),
        }
        r = report["runs"][name]
        print(
            f"{name:34s} {r['utterances_per_second']:.2f} utt/s, {r['audio_seconds_per_second']:.1f} audio s/s, "
            f"{r['seconds_per_step']:.2f} s/step",
            flush=True,
        )
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| configuration | utterances/s | audio s/s | s/step |", "|---|--:|--:|--:|"]
    for name, r in report["runs"].items():
        lines.append(
            f"| {name} | {r['utterances_per_second']:.2f} | {r['audio_seconds_per_second']:.1f} | "
            f"{r['seconds_per_step']:.2f} |"
        )
    lines += ["", f"median of steps {args.skip + 1}-{args.steps}, fp32, 2 threads, {args.manifest}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
