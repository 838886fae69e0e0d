"""``osum convert-osum infer.pt OUT_DIR``: OSUM's released checkpoint -> our checkpoint directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from osum.errors import ConfigError

HELP = "convert OSUM's released infer.pt into an osum checkpoint directory"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("infer_pt", help="OSUM checkpoint (flat state dict, e.g. infer.pt from HF ASLP-lab/OSUM)")
    p.add_argument(
        "out_dir", help="directory to write (config.yaml, model.safetensors, tokenizer/, prompts.yaml)"
    )
    p.add_argument("--llm-config", help="Qwen2 config.json for LLM sizes shapes cannot tell (heads, rope)")
    p.add_argument("--llm-heads", type=int, help="LLM attention heads (default: 28 for Qwen2-7B widths)")
    p.add_argument("--encoder-heads", type=int, help="encoder attention heads (default: width / 64)")
    p.add_argument("--adaptor-heads", type=int, default=4)
    p.add_argument("--lora-alpha", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    from osum.convert.osum_pt import convert_osum

    llm_config = None
    if args.llm_config:
        path = Path(args.llm_config)
        try:
            llm_config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the LLM config: {exc}") from None
    out = convert_osum(
        args.infer_pt,
        args.out_dir,
        encoder_heads=args.encoder_heads,
        adaptor_heads=args.adaptor_heads,
        llm_heads=args.llm_heads,
        lora_alpha=args.lora_alpha,
        llm_config=llm_config,
    )
    print(f"wrote {out} (load it with `osum infer --model {out}` or osum.load({str(out)!r}))")
    return 0
