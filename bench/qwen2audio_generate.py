"""Greedy generation at equal dimensions: osum's model against transformers' ``Qwen2AudioForConditionalGeneration``.

    .venv/bin/python bench/qwen2audio_generate.py [--tokens 32] [--rounds 3] [--out bench/results/qwen2audio_generate.json]

Both models are built with random weights (seed 0, float32) at the ``mini`` preset's sizes: a Whisper encoder of
width 384 (4 layers, 6 heads, FFN 1536, 80 mel bins) and a Qwen2 LLM of width 576 (30 layers, 9 query and 3
key/value heads, FFN 1536, vocabulary 49152). What differs is what each architecture is: osum's encoder runs on the
clip's own length (OSUM's WeNet encoder; ``pad_to_window`` off) and its adaptor (3 strided convolutions and 4
transformer layers) gives 12.5 speech tokens per second; Qwen2-Audio's encoder takes the 30 s window its
``forward`` requires, pools to 25 tokens per second and projects them with one linear layer.

The same 8 clips (espeak-ng sentences, 2-4 s; their log-mel computed beforehand, not timed) and the same prompt
length (osum's ASR prompt, 2 speech markers for Qwen2-Audio's audio tokens) go to both. Every answer is exactly
``--tokens`` long (the end token is set to an id no model can produce), greedy, with the KV cache. Batch 1 (each
clip alone) and batch 8; rounds interleave the systems and the median is kept. Reports generated tokens per
second and osum's speed ratio. 2 CPU threads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from osum.checkpoint import model_class
from osum.codec import LLMCodec
from osum.data.audio import load_audio, log_mel_spectrogram
from osum.data.collate import collate
from osum.data.tts import synthesize
from osum.inference.decoding import DecodingOptions, generate
from osum.model.assets import load_tokenizer
from osum.presets import preset_config
from osum.tasks import default_prompts, get_task
from osum.testing.sentences import PLAIN_SENTENCES

THREADS = 2
CLIPS = 8


def spoken_clips(n: int, prefix: str) -> list[torch.Tensor]:
    """The first ``n`` plain sentences read by espeak-ng (en-us) into a temporary folder, 16 kHz ``(N,)`` each."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    return [
        load_audio(synthesize(s, folder / f"{i}.wav", voice="en-us")) for i, s in enumerate(PLAIN_SENTENCES[:n])
    ]


def osum_model(unreachable: int):
    """osum's model at the ``mini`` sizes, random weights (seed 0), unpadded encoder; ``unreachable`` as its end
    token."""
    config = preset_config("mini")
    config.encoder.pad_to_window = False  # OSUM's encoder: the clip's own length
    config.sources.encoder = config.sources.llm = config.sources.transcriber = ""
    torch.manual_seed(0)
    model = model_class(config)(config).eval()
    config.llm.eos_token_id = unreachable  # read by generate (built with the real one as padding id)
    return model, config


def qwen2audio_model(config, audio_token: int):
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, Qwen2Config
    from transformers.models.qwen2_audio import Qwen2AudioEncoderConfig

    enc, llm = config.encoder, config.llm
    audio = Qwen2AudioEncoderConfig(
        num_mel_bins=enc.n_mels,
        d_model=enc.d_model,
        encoder_layers=enc.layers,
        encoder_attention_heads=enc.heads,
        encoder_ffn_dim=enc.ffn_dim,
        max_source_positions=enc.max_positions,
    )
    text = Qwen2Config(
        hidden_size=llm.hidden_size,
        num_hidden_layers=llm.layers,
        num_attention_heads=llm.heads,
        num_key_value_heads=llm.kv_heads,
        intermediate_size=llm.intermediate_size,
        vocab_size=llm.vocab_size,
        rope_theta=llm.rope_theta,
        rms_norm_eps=llm.rms_norm_eps,
        tie_word_embeddings=llm.tie_word_embeddings,
        max_position_embeddings=llm.max_position_embeddings,
    )
    torch.manual_seed(0)
    cfg = Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=audio_token)
    return Qwen2AudioForConditionalGeneration(cfg).eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=32, help="new tokens per answer (default 32)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default="bench/results/qwen2audio_generate.json")
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    waves = spoken_clips(CLIPS, "q2a-")
    feats = [log_mel_spectrogram(w) for w in waves]  # (T, 80) each
    audio_s = [len(w) / 16000 for w in waves]
    unreachable = preset_config("mini").llm.vocab_size + 7  # an end token no model can produce
    ours, config = osum_model(unreachable)
    tokenizer = load_tokenizer("packaged:smollm2-135m")
    codec = LLMCodec(tokenizer, default_prompts(), unreachable, "en", random_prompt=False)
    prompt = codec.prompt_ids(get_task("asr"))
    audio_token = config.llm.vocab_size - 1
    theirs = qwen2audio_model(config, audio_token)
    options = DecodingOptions(max_new_tokens=args.tokens, stop_loops=False)

    def run_osum(idx: list[int]) -> int:
        batch = collate([feats[i] for i in idx], [prompt] * len(idx), [[] for _ in idx])
        ids, _ = generate(ours, batch, options)
        return sum(len(r) for r in ids)

    def run_qwen2audio(idx: list[int]) -> int:
        window = 3000
        x = torch.zeros(len(idx), feats[0].shape[1], window)
        mask = torch.zeros(len(idx), window, dtype=torch.long)
        rows = []
        for j, i in enumerate(idx):
            n = min(feats[i].shape[0], window)
            x[j, :, :n] = feats[i][:n].T
            mask[j, :n] = 1
            tokens = ((n - 1) // 2 + 1 - 2) // 2 + 1  # its encoder's output length for n frames
            rows.append(prompt + [1] + [audio_token] * tokens + [2])
        width = max(len(r) for r in rows)
        input_ids = torch.zeros(len(rows), width, dtype=torch.long)
        attention = torch.zeros(len(rows), width, dtype=torch.long)
        for j, r in enumerate(rows):  # left padding, as for generation
            input_ids[j, width - len(r) :] = torch.tensor(r)
            attention[j, width - len(r) :] = 1
        with torch.inference_mode():
            out = theirs.generate(
                input_ids=input_ids,
                attention_mask=attention,
                input_features=x,
                feature_attention_mask=mask,
                max_new_tokens=args.tokens,
                do_sample=False,
                eos_token_id=unreachable,
                pad_token_id=0,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        return int((out.shape[1] - width) * len(rows))

    systems = {"osum": run_osum, "transformers Qwen2-Audio": run_qwen2audio}
    plans = {"batch 1": [[i] for i in range(CLIPS)], "batch 8": [list(range(CLIPS))]}
    for run in systems.values():  # warm-up
        run([0])
    seconds: dict[str, dict[str, list[float]]] = {b: {s: [] for s in systems} for b in plans}
    tokens: dict[str, dict[str, int]] = {b: {} for b in plans}
    for _ in range(args.rounds):
        for plan, batches in plans.items():
            for name, run in systems.items():
                t0 = time.perf_counter()
                tokens[plan][name] = sum(run(b) for b in batches)
                seconds[plan][name].append(time.perf_counter() - t0)
    rows = {
        plan: {name: tokens[plan][name] / statistics.median(v) for name, v in by_name.items()}
        for plan, by_name in seconds.items()
    }
    report = {
        "clips": CLIPS,
        "audio_seconds": audio_s,
        "prompt_tokens": len(prompt),
        "new_tokens": args.tokens,
        "threads": THREADS,
        "rounds": args.rounds,
        "tokens_per_second": rows,
        "seconds": seconds,
        "osum_ratio": {plan: r["osum"] / r["transformers Qwen2-Audio"] for plan, r in rows.items()},
    }
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| batch | osum tokens/s | transformers Qwen2-Audio tokens/s | osum's ratio |",
        "|---|--:|--:|--:|",
    ]
    for plan, r in rows.items():
        lines.append(
            f"| {plan} | {r['osum']:.1f} | {r['transformers Qwen2-Audio']:.1f} | "
            f"{report['osum_ratio'][plan]:.2f}x |"
        )
    lines += [
        "",
        f"{CLIPS} clips of {min(audio_s):.1f}-{max(audio_s):.1f} s, {args.tokens} new tokens each, "
        f"random weights at the mini sizes, {THREADS} threads, median of {args.rounds} rounds",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
