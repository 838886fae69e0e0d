"""``osum export CHECKPOINT OUT``: a small folder with only the tensors training changed (osum/export.py)."""

from __future__ import annotations

import argparse

HELP = "write only the trained tensors of a checkpoint (the bases load from their packaged sources)"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="an osum checkpoint directory (e.g. OUT/checkpoints/step_00001000)")
    p.add_argument("out", help="output folder (config.yaml, delta.safetensors, prompts.yaml)")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--max-mb", type=float, help="fail if the delta is larger than this many MB")


def run(args: argparse.Namespace) -> int:
    import torch

    from osum.errors import CheckpointError
    from osum.export import export_delta

    summary = export_delta(args.checkpoint, args.out, dtype=getattr(torch, args.dtype))
    mb = summary.bytes / 1e6
    print(f"{summary.out_dir}: {mb:.1f} MB, {len(summary.whole)} tensors whole, {len(summary.rows)} by rows")
    for key, n in summary.rows.items():
        print(f"  {key}: {n} rows")
    if args.max_mb is not None and mb > args.max_mb:
        raise CheckpointError(f"the delta is {mb:.1f} MB, above --max-mb {args.max_mb:g}")
    return 0
