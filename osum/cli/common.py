"""Command-line pieces shared by the commands that load a model and decode (infer, eval)."""

from __future__ import annotations

import argparse
import sys


def add_decoding_args(p: argparse.ArgumentParser) -> None:
    """--device, --dtype, --batch-size, --beams, --max-new-tokens."""
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", help="LLM dtype: float32, bf16, fp16 (default: bf16 on CUDA, float32 on CPU)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--beams", type=int, default=1, help="beam size (1 = greedy)")
    p.add_argument("--max-new-tokens", type=int, default=200)


def load_model(args: argparse.Namespace):
    """``osum.load(args.model, ...)``, saying on stderr when the model's adaptor is untrained."""
    import osum

    model = osum.load(args.model, device=args.device, dtype=args.dtype)
    if not model.config.trained:
        print(
            f"osum: note: model {model.source!r} has a randomly initialised (untrained) adaptor: its answers "
            "are not meaningful yet (see README, 'Models').",
            file=sys.stderr,
        )
    return model
