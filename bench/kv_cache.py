"""Does a static KV cache or ``torch.compile`` pay for the LLM's token loop on CPU?

    .venv/bin/python bench/kv_cache.py [--tokens 32] [--rounds 3] [--out bench/results/kv_cache.json]

osum's LLM generation is transformers' ``generate`` over the prefix embeddings (speech tokens and prompt) with its
default dynamic KV cache. This bench runs the same greedy generation three ways on one model (random weights at the
``mini`` preset's sizes, float32, seed 0; 8 espeak-ng clips of 2-4 s and osum's ASR prompt, the prefix embeddings
computed once, not timed): the dynamic cache; ``cache_implementation="static"`` (preallocated to the prefix plus
``--tokens``); and the static cache with the decoding step compiled by ``torch.compile`` (transformers'
``CompileConfig``, inductor's default mode: its "reduce-overhead" mode needs CUDA graphs; transformers compiles
only on accelerators unless told, here by setting the config's ``_compile_all_devices``). The first compiled call
(tracing and code generation) is timed on its own and left out of the medians. Every answer is exactly
``--tokens`` long (the end token is an id no model can produce). Batch 1 (each clip alone) and batch 8, rounds
interleaved, medians; tokens per second, the ratio to the dynamic cache, and whether the token ids equal the
dynamic cache's. 2 CPU threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from qwen2audio_generate import osum_model, spoken_clips  # bench/ is the script's folder on sys.path

from osum.codec import LLMCodec
from osum.data.audio import log_mel_spectrogram
from osum.data.collate import collate
from osum.inference.decoding import compile_config
from osum.model.assets import load_tokenizer
from osum.presets import preset_config
from osum.tasks import default_prompts, get_task

THREADS = 2
CLIPS = 8


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=32, help="new tokens per answer (default 32)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="bench/results/kv_cache.json")
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    feats = [log_mel_spectrogram(w) for w in spoken_clips(CLIPS, "kv-")]
    unreachable = preset_config("mini").llm.vocab_size + 7
    model, _ = osum_model(unreachable)
    tokenizer = load_tokenizer("packaged:smollm2-135m")
    codec = LLMCodec(tokenizer, default_prompts(), unreachable, "en", random_prompt=False)
    prompt = codec.prompt_ids(get_task("asr"))
    prefixes = {}
    plans = {"batch 1": [[i] for i in range(CLIPS)], "batch 8": [list(range(CLIPS))]}
    with torch.inference_mode():
        for batches in plans.values():
            for idx in batches:
                batch = collate([feats[i] for i in idx], [prompt] * len(idx), [[] for _ in idx])
                prefixes[tuple(idx)] = model.prefix_embeddings(batch)
    compiled = compile_config(torch.device("cpu"))  # what DecodingOptions(kv_cache="compiled") uses

    def run(idx: list[int], mode: str) -> torch.Tensor:
        embeds, mask = prefixes[tuple(idx)]
        kwargs: dict = {}
        if mode != "dynamic":
            kwargs["cache_implementation"] = "static"
        if mode == "static+compile":
            kwargs["compile_config"] = compiled
        else:
            kwargs["disable_compile"] = True
        with torch.inference_mode():
            return model.lm.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=args.tokens,
                do_sample=False,
                eos_token_id=unreachable,
                pad_token_id=0,
                temperature=None,
                top_p=None,
                top_k=None,
                **kwargs,
            )

    modes = ["dynamic", "static", "static+compile"]
    first_call: dict[str, float] = {}
    for mode in modes:  # warm-up; for the compiled mode, tracing and code generation of both batch shapes
        t0 = time.perf_counter()
        for batches in plans.values():
            run(batches[0], mode)
        first_call[mode] = time.perf_counter() - t0
    seconds: dict[str, dict[str, list[float]]] = {b: {m: [] for m in modes} for b in plans}
    outputs: dict[str, dict[str, list[list[int]]]] = {b: {} for b in plans}
    for _ in range(args.rounds):
        for plan, batches in plans.items():
            for mode in modes:
                t0 = time.perf_counter()
                outs = [run(b, mode) for b in batches]
                seconds[plan][mode].append(time.perf_counter() - t0)
                outputs[plan][mode] = [row for o in outs for row in o.tolist()]
    new_tokens = CLIPS * args.tokens
    rate = {
        plan: {m: new_tokens / statistics.median(v) for m, v in by.items()} for plan, by in seconds.items()
    }
    report = {
        "clips": CLIPS,
        "new_tokens": args.tokens,
        "threads": THREADS,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "tokens_per_second": rate,
        "ratio_to_dynamic": {plan: {m: r[m] / r["dynamic"] for m in modes} for plan, r in rate.items()},
        "same_tokens_as_dynamic": {
            plan: {m: outputs[plan][m] == outputs[plan]["dynamic"] for m in modes} for plan in plans
        },
        "first_call_seconds": first_call,
        "seconds": seconds,
    }
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| batch | KV cache | tokens/s | ratio to dynamic | same tokens |", "|---|---|--:|--:|---|"]
    for plan in plans:
        for m in modes:
            lines.append(
                f"| {plan} | {m} | {rate[plan][m]:.1f} | {report['ratio_to_dynamic'][plan][m]:.2f}x | "
                f"{'yes' if report['same_tokens_as_dynamic'][plan][m] else 'no'} |"
            )
    lines += [
        "",
        f"{CLIPS} clips, {args.tokens} new tokens each, random weights at the mini sizes, {THREADS} threads, "
        f"median of {args.rounds} rounds; first calls (both batch shapes): "
        + ", ".join(f"{m} {s:.1f} s" for m, s in first_call.items()),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
