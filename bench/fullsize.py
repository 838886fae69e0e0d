"""The full-size OSUM path on this machine: a released-layout ``infer.pt`` -> ``osum convert-osum`` -> ``osum.load``
-> one answer, with each step's time and peak memory.

    .venv/bin/python bench/fullsize.py --work /tmp/fullsize [--keep] [--out bench/results/fullsize.json]

1. **write**: the OSUM state dict at its released shapes (Whisper-medium encoder, adaptor, Qwen2-7B with LoRA on
   q/k/v/o/gate/down; the released key names, aliases and unused tensors included; the adaptor's position table is
   the sinusoid OSUM computes), random values (normal, std 0.02; norm weights near 1), the LLM in bfloat16 and
   the rest in float32 as OSUM builds them, saved with ``torch.save`` as OSUM releases it (about 16 GB). The key layout is stated here, independently of the
   converter's own table, from our model's keys (``RELEASE_NAMES``).
2. **convert**: ``osum.convert.osum_pt.convert_osum`` (what ``osum convert-osum infer.pt DIR`` runs).
3. **load**: ``osum.load(DIR, device="cpu", dtype="bf16")``.
4. **answer**: ASR of one synthesized 3 s clip, greedy, at most 8 new tokens (the weights are random: the text
   means nothing; the time does), three times: the first answer (which reads the memory-mapped weights in), then
   1 and 8 tokens again; decoding speed is (8 - 1) tokens over the difference of the last two.

Every step runs in its own process, which reports its peak resident memory (``ru_maxrss``); the goal for
conversion and loading is at most 1.2x the bfloat16 weights (no second copy). The folder is deleted at the end
unless ``--keep``. Needs about 33 GB of disk and 18 GB of RAM.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

# our key -> the released infer.pt key (WeNet encoder names, OSUM's adaptor and LLM wrapper names)
RELEASE_NAMES = [
    (r"^encoder\.conv1\.", "encoder.embed.conv.0."),
    (r"^encoder\.conv2\.", "encoder.embed.conv.2."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.", r"encoder.encoders.\1.self_attn.linear_\2."),
    (r"^encoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"encoder.encoders.\1.self_attn.linear_out."),
    (r"^encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"encoder.encoders.\1.norm1."),
    (r"^encoder\.layers\.(\d+)\.final_layer_norm\.", r"encoder.encoders.\1.norm2."),
    (r"^encoder\.layers\.(\d+)\.fc1\.", r"encoder.encoders.\1.feed_forward.w_1."),
    (r"^encoder\.layers\.(\d+)\.fc2\.", r"encoder.encoders.\1.feed_forward.w_2."),
    (r"^encoder\.layer_norm\.", "encoder.after_norm."),
    (r"^adaptor\.downsample\.convs\.0\.", "down_sample_2.conv.1."),
    (r"^adaptor\.downsample\.convs\.1\.", "down_sample_2.conv.4."),
    (r"^adaptor\.downsample\.convs\.2\.", "down_sample_2.conv.7."),
    (r"^adaptor\.input_proj\.", "speech_transformer.embed.out.0."),
    (r"^adaptor\.input_norm\.", "speech_transformer.embed.out.1."),
    (
        r"^adaptor\.layers\.(\d+)\.self_attn\.(q|k|v)_proj\.",
        r"speech_transformer.encoders.\1.self_attn.linear_\2.",
    ),
    (
        r"^adaptor\.layers\.(\d+)\.self_attn\.out_proj\.",
        r"speech_transformer.encoders.\1.self_attn.linear_out.",
    ),
    (r"^adaptor\.layers\.(\d+)\.norm(1|2)\.", r"speech_transformer.encoders.\1.norm\2."),
    (r"^adaptor\.layers\.(\d+)\.ffn\.fc1\.", r"speech_transformer.encoders.\1.feed_forward.w_1."),
    (r"^adaptor\.layers\.(\d+)\.ffn\.fc2\.", r"speech_transformer.encoders.\1.feed_forward.w_2."),
    (r"^adaptor\.final_norm\.", "speech_transformer.after_norm."),
    (r"^adaptor\.proj\.", "speech_llama_proj."),
    (r"^llm\.", "llama_model."),
]
SPEECH_ROWS, SPEECH_BOS_ROW, SPEECH_EOS_ROW = 4099, 4097, 4098
ADAPTOR_POSITIONS = 5000
PREFIX = "llama_model.base_model.model."
# OSUM builds the LLM in bfloat16 and everything else in float32 (OSUM_REFERENCE 2.7), and saves them so
LLM, OTHERS = torch.bfloat16, torch.float32


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def _random(
    shape: tuple[int, ...], norm: bool, gen: torch.Generator, dtype: torch.dtype = torch.bfloat16
) -> torch.Tensor:
    t = torch.empty(shape, dtype=dtype)
    if norm:
        return t.normal_(1.0, 0.02, generator=gen)
    return t.normal_(0.0, 0.02, generator=gen)


def release_state_dict() -> dict[str, torch.Tensor]:
    """The released infer.pt's tensors at full size, random bfloat16."""
    from osum.checkpoint import model_class
    from osum.model.adaptor import interleaved_positions
    from osum.presets import preset_config

    config = preset_config("osum-7b")
    with torch.device("meta"):
        model = model_class(config)(config)
    gen = torch.Generator().manual_seed(0)
    sd: dict[str, torch.Tensor] = {}
    for key, meta in model.state_dict().items():
        if key in ("speech_bos", "speech_eos"):
            continue
        if key == "encoder.embed_positions.weight":
            sd["encoder.embed.pos_enc.pe"] = _random(tuple(meta.shape), False, gen, OTHERS)[None]
            continue
        for pattern, repl in RELEASE_NAMES:
            name, n = re.subn(pattern, repl, key)
            if n:
                break
        else:
            raise KeyError(f"no released name for {key}")
        norm = key.endswith("weight") and ("norm" in key) and meta.dim() == 1
        sd[name] = _random(tuple(meta.shape), norm, gen, LLM if key.startswith("llm.") else OTHERS)
    hidden, d_enc, d_ad = config.llm.hidden_size, config.encoder.d_model, config.adaptor.d_model
    sd["speech_token_emded.weight"] = _random((SPEECH_ROWS, hidden), False, gen, OTHERS)
    sd["speech_transformer.embed.pos_enc.pe"] = interleaved_positions(ADAPTOR_POSITIONS, d_ad)[None]
    sd["speaker_head.weight"] = _random(
        (SPEECH_BOS_ROW, hidden), False, gen, OTHERS
    )  # unused, released anyway
    sd["speaker_head.bias"] = _random((SPEECH_BOS_ROW,), False, gen, OTHERS)
    sd["ln_speech.weight"] = _random((d_enc,), True, gen, OTHERS)
    sd["ln_speech.bias"] = _random((d_enc,), False, gen, OTHERS)
    sd["embed_tokens.weight"] = sd[PREFIX + "model.embed_tokens.weight"]  # aliases: the same storage
    sd["lm_head.weight"] = sd[PREFIX + "lm_head.weight"]
    return sd


def step(name: str, work: Path) -> dict:
    t0 = time.perf_counter()
    if name == "write":
        sd = release_state_dict()
        made = time.perf_counter() - t0
        torch.save(sd, work / "infer.pt")
        unique = {t.untyped_storage().data_ptr(): t for t in sd.values()}
        weights = sum(t.numel() * t.element_size() for t in unique.values())
        return {
            "make_s": made,
            "save_s": time.perf_counter() - t0 - made,
            "tensors": len(sd),
            "weights_gib": weights / 2**30,
            "file_gib": (work / "infer.pt").stat().st_size / 2**30,
            "peak_rss_gib": _peak_gib(),
        }
    if name == "convert":
        from osum.convert.osum_pt import convert_osum

        convert_osum(work / "infer.pt", work / "osum-7b")
        size = sum(f.stat().st_size for f in (work / "osum-7b").rglob("*") if f.is_file())
        return {"seconds": time.perf_counter() - t0, "dir_gib": size / 2**30, "peak_rss_gib": _peak_gib()}
    if name == "load+answer":
        import osum
        from osum.data.tts import synthesize_array

        model = osum.load(work / "osum-7b", device="cpu", dtype="bf16")
        loaded = time.perf_counter() - t0
        load_peak = _peak_gib()
        params = sum(p.numel() for p in model.model.parameters())
        wave = synthesize_array("please call stella and ask her to bring these things", "en-us")

        def answer(tokens: int) -> tuple[float, int]:
            options = osum.DecodingOptions(max_new_tokens=tokens, stop_loops=False, skip_silence=False)
            t1 = time.perf_counter()
            result = model.run([wave], "asr", sample_rate=16000, options=options)[0]["asr"]
            return time.perf_counter() - t1, len(
                model.tokenizer(result.raw, add_special_tokens=False).input_ids
            )

        cold, tokens = answer(8)  # the first answer reads the memory-mapped weights in
        one, _ = answer(1)  # encoder, adaptor, prompt prefill and one token
        warm, warm_tokens = answer(8)
        return {
            "load_s": loaded,
            "load_peak_rss_gib": load_peak,
            "parameters": params,
            "audio_s": len(wave) / 16000,
            "first_answer_s": cold,
            "first_answer_tokens": tokens,
            "answer_1_token_s": one,
            "answer_8_tokens_s": warm,
            "answer_8_tokens_generated": warm_tokens,
            "decode_tokens_per_s": (warm_tokens - 1) / max(warm - one, 1e-9),
            "answer_peak_rss_gib": _peak_gib(),
        }
    raise ValueError(name)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="a folder with about 33 GB free")
    p.add_argument("--keep", action="store_true", help="keep infer.pt and the converted folder")
    p.add_argument("--out", default="bench/results/fullsize.json")
    p.add_argument("--step", help=argparse.SUPPRESS)  # internal: run one step in this process
    args = p.parse_args()
    work = Path(args.work)
    if args.step:
        print(json.dumps(step(args.step, work)))
        return 0
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"torch_threads": torch.get_num_threads()}
    try:
        for name in ("write", "convert", "load+answer"):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, __file__, "--work", str(work), "--step", name],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                report[name] = {"failed": proc.returncode}
                break
            report[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            report[name]["wall_s"] = time.perf_counter() - t0
            print(name, json.dumps(report[name]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    weights = report.get("write", {}).get("weights_gib")
    if weights:
        for name, key in (
            ("convert", "peak_rss_gib"),
            ("load+answer", "load_peak_rss_gib"),
            ("load+answer", "answer_peak_rss_gib"),
        ):
            if key in report.get(name, {}):
                report[name][key.replace("rss_gib", "over_weights")] = report[name][key] / weights
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
