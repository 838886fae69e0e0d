"""Learning curves of training runs: a markdown table and a PNG from their ``train_log.jsonl`` files.

    .venv/bin/python bench/curves.py exp/mini/stage1 exp/mini/ctc exp/mini/stage2 --every 50 --png curves.png

Per run: step, wall-clock minutes since the run's first logged step (plus that first window), the mean training
loss of the logging windows up to the step, and the validation loss logged at the step (if any).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_log(run: Path) -> tuple[list[dict], dict[int, float]]:
    """-> (training records in step order, {step: validation loss})."""
    records = [
        json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines() if line.strip()
    ]
    train = [r for r in records if "loss" in r]
    valid = {int(r["step"]): float(r["valid_loss"]) for r in records if "valid_loss" in r}
    return train, valid


def rows(run: Path, every: int) -> list[dict]:
    train, valid = read_log(run)
    if not train:
        return []
    start = train[0]["time"] - train[0]["seconds_per_step"] * train[0]["step"]  # the first window's start
    out, window = [], []
    for r in train:
        window.append(r["loss"])
        if r["step"] % every == 0 or r is train[-1]:
            out.append(
                {
                    "step": r["step"],
                    "minutes": (r["time"] - start) / 60,
                    "loss": sum(window) / len(window),
                    "valid_loss": valid.get(r["step"]),
                }
            )
            window = []
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="training output folders (train.out_dir)")
    p.add_argument("--every", type=int, default=50, help="one row per this many steps")
    p.add_argument("--png", help="also plot training and validation loss against minutes")
    args = p.parse_args()
    table = {run: rows(Path(run), args.every) for run in args.runs}
    for run, lines in table.items():
        print(f"\n{run}\n\n| step | minutes | train loss | valid loss |\n|---:|---:|---:|---:|")
        for r in lines:
            valid = "" if r["valid_loss"] is None else f"{r['valid_loss']:.3f}"
            print(f"| {r['step']} | {r['minutes']:.1f} | {r['loss']:.3f} | {valid} |")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(table), figsize=(4.5 * len(table), 3.4), squeeze=False)
        for ax, (run, lines) in zip(axes[0], table.items(), strict=True):
            ax.plot([r["minutes"] for r in lines], [r["loss"] for r in lines], label="train")
            val = [r for r in lines if r["valid_loss"] is not None]
            ax.plot(
                [r["minutes"] for r in val], [r["valid_loss"] for r in val], "o-", label="valid (test voices)"
            )
            ax.set_title(Path(run).name)
            ax.set_xlabel("minutes (2 CPU cores)")
            ax.set_ylabel("loss")
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=90, metadata={"Software": None})
        print(f"\nwrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
