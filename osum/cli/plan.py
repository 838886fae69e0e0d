"""``osum plan``: the memory a model needs for inference and LoRA training, per GPU (osum/memory.py)."""

from __future__ import annotations

import argparse

HELP = "estimate the memory per GPU of inference and training (weights, KV cache, optimizer, activations)"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="osum-7b", help="a preset (osum-7b, mini, ...) or a checkpoint directory"
    )
    p.add_argument("--seconds", type=float, default=30.0, help="audio per clip (default 30)")
    p.add_argument("--batch", type=int, default=1, help="clips per micro-batch and GPU (default 1)")
    p.add_argument("--prompt-tokens", type=int, default=48)
    p.add_argument("--answer-tokens", type=int, default=128)
    p.add_argument(
        "--train-modules",
        default="adaptor,speech_markers,encoder,lora",
        help="what training updates (train.train_modules; default OSUM's: encoder, adaptor, LoRA)",
    )
    p.add_argument("--gpus", default="2,4,8", help="GPU counts for the ZeRO rows (default 2,4,8)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from pathlib import Path

    from osum.errors import ConfigError

    if args.seconds <= 0 or args.batch < 1 or args.prompt_tokens < 0 or args.answer_tokens < 1:
        raise ConfigError("--seconds must be > 0, --batch and --answer-tokens >= 1, --prompt-tokens >= 0")
    try:
        gpus = tuple(int(g) for g in args.gpus.split(",") if g.strip())
    except ValueError:
        raise ConfigError(f"--gpus {args.gpus!r}: give GPU counts such as 2,4,8") from None
    if not gpus or min(gpus) < 2:
        raise ConfigError(f"--gpus {args.gpus!r}: every count must be 2 or more")

    from osum.checkpoint import read_config
    from osum.memory import (
        GIB,
        Workload,
        count_parameters,
        inference_rows,
        markdown,
        measure_activations,
        training_rows,
    )
    from osum.presets import PRESETS, preset_config

    config = preset_config(args.model) if args.model in PRESETS else read_config(Path(args.model))
    if config.architecture != "osum":
        raise ConfigError(
            f"{args.model}: memory plans cover OSUM (LLM) models, not {config.architecture!r} ones"
        )
    modules = [m.strip() for m in args.train_modules.split(",") if m.strip()]
    work = Workload(args.seconds, args.batch, args.prompt_tokens, args.answer_tokens)
    counts = count_parameters(config, modules)
    acts = measure_activations(config, modules)
    infer, train = inference_rows(config, counts, work), training_rows(config, counts, acts, work, gpus)
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "workload": dataclasses.asdict(work),
                    "parameters": {**dataclasses.asdict(counts), "total": counts.total},
                    "activations": dataclasses.asdict(acts),
                    "inference": [{**dataclasses.asdict(r), "total": r.total} for r in infer],
                    "training": [{**dataclasses.asdict(r), "total": r.total} for r in train],
                },
                indent=2,
            )
        )
        return 0
    s = work.llm_tokens(config)
    print(
        f"{args.model}: {counts.total / 1e9:.2f} B parameters (encoder {counts.encoder / 1e6:.0f} M, adaptor "
        f"{counts.adaptor / 1e6:.0f} M, LLM {counts.llm / 1e6:.0f} M, LoRA {counts.lora / 1e6:.1f} M); "
        f"training updates {counts.trained / 1e6:.1f} M ({', '.join(modules)})"
    )
    print(
        f"per micro-batch: {work.batch} x {work.seconds:g} s of audio, {work.prompt_tokens} prompt + "
        f"{work.answer_tokens} answer tokens = {s} LLM tokens per clip; GiB = {GIB} bytes\n"
    )
    print("Inference (activations = KV cache + the largest transient workspace):\n")
    print(markdown(infer) + "\n")
    print(
        "LoRA training as osum train runs it (float32 weights, bf16 autocast, AdamW; activations measured):\n"
    )
    print(markdown(train))
    print(
        "\nNot counted: CUDA context and allocator slack (about 0.5-1 GB per GPU), DeepSpeed buffers. "
        "Formulas: osum/memory.py."
    )
    return 0
