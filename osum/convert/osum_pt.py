"""Convert OSUM's released ``infer.pt`` (a flat WeNet/peft state dict) into our checkpoint directory.

Sizes are read off the tensor shapes; what shapes cannot tell (attention head counts, LoRA alpha) defaults to the
released model's values (Whisper: 64-dim heads, adaptor 4 heads, Qwen2-7B: 28 heads, alpha 32) and can be given.
The key map is strict: every tensor is either mapped, checked and dropped (duplicates, fixed position tables,
modules OSUM never calls), or it is an error listing it. No pickle is executed (``weights_only=True``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from osum.config import AdaptorConfig, EncoderConfig, LLMConfig, LoraConfig, ModelConfig, SourcesConfig
from osum.errors import CheckpointError
from osum.model.adaptor import interleaved_positions

_LLM = "llama_model."
_ENC_RENAMES = [
    (r"^encoder\.embed\.conv\.0\.", "encoder.conv1."),
    (r"^encoder\.embed\.conv\.2\.", "encoder.conv2."),
    (r"^encoder\.encoders\.(\d+)\.self_attn\.linear_(q|k|v)\.", r"encoder.layers.\1.self_attn.\2_proj."),
    (r"^encoder\.encoders\.(\d+)\.self_attn\.linear_out\.", r"encoder.layers.\1.self_attn.out_proj."),
    (r"^encoder\.encoders\.(\d+)\.norm1\.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"^encoder\.encoders\.(\d+)\.norm2\.", r"encoder.layers.\1.final_layer_norm."),
    (r"^encoder\.encoders\.(\d+)\.feed_forward\.w_1\.", r"encoder.layers.\1.fc1."),
    (r"^encoder\.encoders\.(\d+)\.feed_forward\.w_2\.", r"encoder.layers.\1.fc2."),
    (r"^encoder\.after_norm\.", "encoder.layer_norm."),
    (r"^down_sample_2\.conv\.1\.", "adaptor.downsample.convs.0."),
    (r"^down_sample_2\.conv\.4\.", "adaptor.downsample.convs.1."),
    (r"^down_sample_2\.conv\.7\.", "adaptor.downsample.convs.2."),
    (r"^speech_transformer\.embed\.out\.0\.", "adaptor.input_proj."),
    (r"^speech_transformer\.embed\.out\.1\.", "adaptor.input_norm."),
    (
        r"^speech_transformer\.encoders\.(\d+)\.self_attn\.linear_(q|k|v)\.",
        r"adaptor.layers.\1.self_attn.\2_proj.",
    ),
    (
        r"^speech_transformer\.encoders\.(\d+)\.self_attn\.linear_out\.",
        r"adaptor.layers.\1.self_attn.out_proj.",
    ),
    (r"^speech_transformer\.encoders\.(\d+)\.norm(1|2)\.", r"adaptor.layers.\1.norm\2."),
    (r"^speech_transformer\.encoders\.(\d+)\.feed_forward\.w_1\.", r"adaptor.layers.\1.ffn.fc1."),
    (r"^speech_transformer\.encoders\.(\d+)\.feed_forward\.w_2\.", r"adaptor.layers.\1.ffn.fc2."),
    (r"^speech_transformer\.after_norm\.", "adaptor.final_norm."),
    (r"^speech_llama_proj\.", "adaptor.proj."),
    (r"^llama_model\.", "llm."),
]
# Tensors OSUM stores but never uses (left over from speech-token experiments) and the duplicate LLM aliases.
_UNUSED = ("speaker_head.", "ln_speech.")
_ALIASES = {
    "embed_tokens.weight": "llama_model.base_model.model.model.embed_tokens.weight",
    "lm_head.weight": "llama_model.base_model.model.lm_head.weight",
}
SPEECH_BOS_ROW, SPEECH_EOS_ROW = 4097, 4098


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True, mmap=True)`` of a flat state dict (a DeepSpeed ``{"module": ...}`` too)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    with open(path, "rb") as f:
        head = f.read(16)
    zipped = head.startswith(b"PK\x03\x04")  # torch.save's format since 1.6; older files are a bare pickle
    if not zipped and not head.startswith(b"\x80"):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (it is {_describe(head)})")
    try:  # mmap (no second copy in memory) works for the zip format only
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Weights only load failed" in reason:  # torch's refusal of pickled code
            reason = "it holds Python objects besides tensors; refused, since loading them could run code"
        raise CheckpointError(
            f"{path}: a PyTorch file that does not load as a state dict of tensors ({reason})"
        ) from None
    if isinstance(obj, dict) and set(obj) == {"module"}:
        obj = obj["module"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a flat state dict of tensors")
    return obj


def _describe(head: bytes) -> str:
    """What a file that is not a PyTorch checkpoint looks like, from its first bytes."""
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file: load its folder with osum.load, or convert it with osum convert-* instead"
    if not head:
        return "empty"
    if head.startswith(b"GGUF"):
        return "a GGUF file (llama.cpp)"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"text, starting {head.decode('ascii')!r}"
    return f"binary data starting {head[:8].hex(' ')}"


def _count(sd: dict[str, torch.Tensor], pattern: str) -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_config(
    sd: dict[str, torch.Tensor],
    encoder_heads: int | None = None,
    adaptor_heads: int = 4,
    llm_heads: int | None = None,
    lora_alpha: int = 32,
    llm_config: dict | None = None,
) -> ModelConfig:
    """A :class:`ModelConfig` matching the shapes in an OSUM state dict."""
    try:
        conv1 = sd["encoder.embed.conv.0.weight"]
        d_enc = conv1.shape[0]
        enc = EncoderConfig(
            n_mels=conv1.shape[1],
            d_model=d_enc,
            layers=_count(sd, r"encoder\.encoders\.(\d+)\."),
            heads=encoder_heads or d_enc // 64,
            ffn_dim=sd["encoder.encoders.0.feed_forward.w_1.weight"].shape[0],
            max_positions=sd["encoder.embed.pos_enc.pe"].shape[1],
        )
        d_ad = sd["down_sample_2.conv.1.weight"].shape[0]
        adaptor = AdaptorConfig(
            d_model=d_ad,
            layers=_count(sd, r"speech_transformer\.encoders\.(\d+)\."),
            heads=adaptor_heads,
            ffn_dim=sd["speech_transformer.encoders.0.feed_forward.w_1.weight"].shape[0],
            max_positions=sd["speech_transformer.embed.pos_enc.pe"].shape[1],
        )
        p = "llama_model.base_model.model.model."
        embed = sd[p + "embed_tokens.weight"]
        hidden = embed.shape[1]
        lora_a = [k for k in sd if k.startswith(p + "layers.0.") and ".lora_A." in k]
        k_proj = sd.get(
            p + "layers.0.self_attn.k_proj.base_layer.weight", sd.get(p + "layers.0.self_attn.k_proj.weight")
        )
        up = sd[p + "layers.0.mlp.up_proj.weight"]
    except KeyError as exc:
        raise CheckpointError(f"not an OSUM state dict: key {exc.args[0]!r} is missing") from None
    cfg = dict(llm_config or {})
    heads = llm_heads or cfg.get("num_attention_heads") or (28 if hidden == 3584 else None)
    if not heads:
        raise CheckpointError(
            f"cannot tell the LLM's attention heads from hidden size {hidden}: pass llm_heads"
        )
    head_dim = hidden // heads
    theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta") or 1_000_000.0
    llm = LLMConfig(
        hidden_size=hidden,
        layers=_count(sd, re.escape(p) + r"layers\.(\d+)\."),
        heads=heads,
        kv_heads=k_proj.shape[0] // head_dim,
        intermediate_size=up.shape[0],
        vocab_size=embed.shape[0],
        rope_theta=float(theta),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        tie_word_embeddings=False,
        max_position_embeddings=int(cfg.get("max_position_embeddings", 32768)),
        eos_token_id=151643,
    )
    targets = sorted({k.split(".lora_A.")[0].rsplit(".", 1)[1] for k in lora_a})
    lora = LoraConfig(
        enabled=bool(lora_a),
        r=sd[lora_a[0]].shape[0] if lora_a else 8,
        alpha=lora_alpha,
        target_modules=targets or LoraConfig().target_modules,
    )
    return ModelConfig(
        name="osum-converted",
        encoder=enc,
        adaptor=adaptor,
        llm=llm,
        lora=lora,
        sources=SourcesConfig(tokenizer="packaged:qwen2"),
        prompt_language="zh",
        trained=True,
    )


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 0.0) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), atol=atol, rtol=0))


def map_state_dict(sd: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """OSUM keys -> our keys. Unknown keys, or dropped tensors that are not what we expect, raise."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    lora_targets = set(config.lora.target_modules) if config.lora.enabled else set()
    for key, value in sd.items():
        if key.startswith(_UNUSED):
            continue
        if key in _ALIASES:
            if _ALIASES[key] in sd and not _same(value, sd[_ALIASES[key]]):
                raise CheckpointError(f"{key} should duplicate {_ALIASES[key]} but differs")
            continue
        if key == "speech_transformer.embed.pos_enc.pe":
            table = interleaved_positions(value.shape[1], value.shape[2])
            # a checkpoint saved in half precision keeps the table at that precision (bf16: 3 digits)
            if not _same(value[0], table, atol=max(1e-3, torch.finfo(value.dtype).eps)):
                raise CheckpointError(f"{key} is not the sinusoid table the adaptor computes")
            continue
        if key == "encoder.embed.pos_enc.pe":
            out["encoder.embed_positions.weight"] = value[0]
            continue
        if key == "speech_token_emded.weight":
            out["speech_bos"], out["speech_eos"] = value[SPEECH_BOS_ROW], value[SPEECH_EOS_ROW]
            continue
        for pattern, repl in _ENC_RENAMES:
            new, n = re.subn(pattern, repl, key)
            if n:
                break
        else:
            unknown.append(key)
            continue
        # peft < 0.7 named adapted base weights `q_proj.weight`; ours (and the release) use `.base_layer.`
        m = re.match(r"^(llm\..*\.(\w+))\.(weight|bias)$", new)
        if m and m.group(2) in lora_targets and ".base_layer." not in new:
            new = f"{m.group(1)}.base_layer.{m.group(3)}"
        out[new] = value
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} tensors have no place in the OSUM model: {sorted(unknown)[:20]}"
        )
    return out


def convert_osum(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    encoder_heads: int | None = None,
    adaptor_heads: int = 4,
    llm_heads: int | None = None,
    lora_alpha: int = 32,
    llm_config: dict | None = None,
) -> Path:
    """Convert ``infer.pt`` into an osum checkpoint directory (config, weights, Qwen2 tokenizer, OSUM prompts)."""
    from safetensors.torch import save_file

    from osum.checkpoint import CONFIG_FILE, PROMPTS_FILE, TOKENIZER_DIR, WEIGHTS_FILE, check_state_dict
    from osum.config import save_yaml
    from osum.model.assets import load_tokenizer
    from osum.tasks import default_prompts

    sd = read_state_dict(src)
    config = infer_config(sd, encoder_heads, adaptor_heads, llm_heads, lora_alpha, llm_config)
    mapped = map_state_dict(sd, config)
    check_state_dict(config, mapped, what=str(src))  # strict key and shape check before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(config, out / CONFIG_FILE)
    save_file({k: v.contiguous() for k, v in mapped.items()}, str(out / WEIGHTS_FILE))
    load_tokenizer(config.sources.tokenizer).save_pretrained(out / TOKENIZER_DIR)
    default_prompts().save(out / PROMPTS_FILE)
    return out
