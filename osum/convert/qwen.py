"""Import decoder-only LLM weights as ``Qwen2ForCausalLM``: HF Qwen2 or Llama folders and GGUF files.

A Llama checkpoint (e.g. SmolLM2) becomes a Qwen2 one with zero q/k/v biases: the two architectures are otherwise
the same computation (RMSNorm, RoPE, GQA, SwiGLU), so the logits are identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, Qwen2Config

from osum.errors import CheckpointError
from osum.model.llm import llm_config_from_qwen2, qwen2_config

_SUPPORTED = ("qwen2", "llama")


def _check_supported(cfg) -> None:
    """Raise CheckpointError for what a Qwen2 model cannot compute (checked before loading any weights)."""
    if cfg.model_type not in _SUPPORTED:
        raise CheckpointError(f"LLM type {cfg.model_type!r} is not supported; osum loads {list(_SUPPORTED)}")
    # Llama variants with an o_proj or MLP bias, or another activation, are a different computation from Qwen2's.
    for flag in ("mlp_bias",) + (("attention_bias",) if cfg.model_type == "llama" else ()):
        if getattr(cfg, flag, False):
            raise CheckpointError(f"{cfg.model_type} with {flag}=True has no Qwen2 equivalent")
    if getattr(cfg, "use_sliding_window", False):  # osum's Qwen2 always attends to the whole sequence
        raise CheckpointError(f"{cfg.model_type} with use_sliding_window=True is not supported")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise CheckpointError(f"hidden_act {cfg.hidden_act!r} is not supported (Qwen2 uses 'silu')")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    if head_dim * cfg.num_attention_heads != cfg.hidden_size:
        raise CheckpointError(
            f"head_dim {head_dim} x heads {cfg.num_attention_heads} != hidden {cfg.hidden_size}"
        )
    if _rope(cfg).get("rope_type", "default") != "default":
        raise CheckpointError(f"RoPE scaling {_rope(cfg).get('rope_type')!r} is not supported yet")


def _rope(cfg) -> dict:
    return getattr(cfg, "rope_parameters", None) or {"rope_theta": getattr(cfg, "rope_theta", 10000.0)}


def _qwen2_config_from(cfg, eos_token_id: int | None) -> Qwen2Config:
    """The Qwen2 equivalent of a (checked) Llama/Qwen2 config, through our one LLMConfig <-> Qwen2Config map."""
    _check_supported(cfg)
    return qwen2_config(llm_config_from_qwen2(cfg, eos_token_id))


def to_qwen2_state_dict(state_dict: dict[str, torch.Tensor], config: Qwen2Config) -> dict[str, torch.Tensor]:
    """A Llama/Qwen2 ``*ForCausalLM`` state dict as Qwen2's: adds zero q/k/v biases when absent."""
    out = {k: v for k, v in state_dict.items() if not k.endswith("rotary_emb.inv_freq")}
    for i in range(config.num_hidden_layers):
        for name in ("q_proj", "k_proj", "v_proj"):
            w = out.get(f"model.layers.{i}.self_attn.{name}.weight")
            if w is None:
                raise CheckpointError(f"LLM weights lack model.layers.{i}.self_attn.{name}.weight")
            out.setdefault(f"model.layers.{i}.self_attn.{name}.bias", torch.zeros(w.shape[0], dtype=w.dtype))
    if config.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out


def load_llm(
    path: str | os.PathLike, eos_token: str | None = None
) -> tuple[Qwen2Config, dict[str, torch.Tensor], PreTrainedTokenizerBase]:
    """Load an HF Qwen2/Llama folder or a ``.gguf`` file -> (Qwen2Config, Qwen2 state dict fp32, tokenizer).

    ``eos_token`` names the token that ends every OSUM target (default: the checkpoint's own
    ``<|endoftext|>`` when the vocabulary has one, else its eos token).
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".gguf":
        folder, kwargs = path.parent, {"gguf_file": path.name}
    elif path.is_dir() and (path / "config.json").is_file():
        folder, kwargs = path, {}
    else:
        raise CheckpointError(f"{path}: expected an HF model folder (with config.json) or a .gguf file")
    try:
        cfg = AutoConfig.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the LLM config: {exc}") from None
    _check_supported(cfg)  # before loading weights: an unsupported 7B model should fail at once
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot load the LLM: {exc}") from None
    name = eos_token or ("<|endoftext|>" if "<|endoftext|>" in tokenizer.get_vocab() else tokenizer.eos_token)
    eos_id = tokenizer.convert_tokens_to_ids(name)
    if eos_id is None or eos_id == tokenizer.unk_token_id and name != tokenizer.unk_token:
        raise CheckpointError(f"{path}: the tokenizer has no token {name!r} to end targets with")
    qcfg = _qwen2_config_from(cfg, eos_id)
    sd = to_qwen2_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()}, qcfg)
    return qcfg, sd, tokenizer
