"""Command-line pieces shared by the commands that load a model and decode (infer, eval)."""

from __future__ import annotations

import argparse
import sys


def add_decoding_args(p: argparse.ArgumentParser) -> None:
    """--device, --dtype, --batch-size, --beams, --max-new-tokens, --kv-cache."""
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument(
        "--dtype",
        help="LLM dtype: float32, bf16, fp16 (default: bf16 on CUDA, float32 on CPU); int8: int8 weights in every "
        "linear layer, CPU only",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--beams", type=int, default=1, help="beam size (1 = greedy)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    add_kv_cache_arg(p)


def add_kv_cache_arg(p: argparse.ArgumentParser) -> None:
    """--kv-cache (``DecodingOptions.kv_cache``)."""
    p.add_argument(
        "--kv-cache",
        choices=("dynamic", "static", "compiled"),
        default="dynamic",
        help="the LLM's key/value cache: static is allocated once per batch; compiled adds torch.compile of the "
        "decoding step (1.19x tokens/s on CPU after ~35 s of compiling); same answers every way",
    )


def add_guard_args(p: argparse.ArgumentParser) -> None:
    """The guards (on by default) and label confidence threshold."""
    p.add_argument(
        "--keep-silence",
        action="store_true",
        help="answer clips in which the voice activity detector finds no speech (default: empty answers)",
    )
    p.add_argument(
        "--allow-loops",
        action="store_true",
        help="do not stop an answer that repeats itself, nor cap its tokens by the audio's length",
    )
    p.add_argument("--max-prompt-tokens", type=int, default=1024, help="refuse longer --prompt (default 1024)")
    p.add_argument(
        "--min-label-prob",
        type=float,
        default=0.0,
        help="answer a label only when its probability reaches this (else null; default 0: always)",
    )


def decoding_options(args: argparse.Namespace):
    """``osum.DecodingOptions`` from :func:`add_decoding_args` and :func:`add_guard_args` arguments."""
    import osum

    return osum.DecodingOptions(
        max_new_tokens=args.max_new_tokens,
        num_beams=args.beams,
        do_sample=getattr(args, "sample", False),
        seed=getattr(args, "seed", None),
        batch_size=args.batch_size,
        kv_cache=args.kv_cache,
        skip_silence=not args.keep_silence,
        stop_loops=not args.allow_loops,
        max_prompt_tokens=args.max_prompt_tokens,
        min_label_prob=args.min_label_prob,
    )


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
