"""The LLM: ``transformers.Qwen2ForCausalLM`` wrapped with a ``peft`` LoRA (OSUM: r 8, alpha 32, no up_proj)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import Qwen2Config, Qwen2ForCausalLM

from osum.config import LLMConfig, LoraConfig


def qwen2_config(config: LLMConfig) -> Qwen2Config:
    """Our :class:`LLMConfig` as a ``transformers.Qwen2Config``."""
    return Qwen2Config(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.kv_heads,
        intermediate_size=config.intermediate_size,
        vocab_size=config.vocab_size,
        rope_theta=config.rope_theta,
        rms_norm_eps=config.rms_norm_eps,
        tie_word_embeddings=config.tie_word_embeddings,
        max_position_embeddings=config.max_position_embeddings,
        bos_token_id=config.eos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.eos_token_id,
        use_sliding_window=False,
        hidden_act="silu",
        attention_dropout=0.0,
        attn_implementation=config.attn_implementation,
    )


def llm_config_from_qwen2(cfg: Qwen2Config, eos_token_id: int | None = None) -> LLMConfig:
    """The inverse of :func:`qwen2_config` (used when importing HF/GGUF/OSUM weights)."""
    rope = getattr(cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 1_000_000.0))
    return LLMConfig(
        hidden_size=cfg.hidden_size,
        layers=cfg.num_hidden_layers,
        heads=cfg.num_attention_heads,
        kv_heads=cfg.num_key_value_heads,
        intermediate_size=cfg.intermediate_size,
        vocab_size=cfg.vocab_size,
        rope_theta=float(theta),
        rms_norm_eps=cfg.rms_norm_eps,
        tie_word_embeddings=bool(cfg.tie_word_embeddings),
        max_position_embeddings=cfg.max_position_embeddings,
        eos_token_id=int(eos_token_id if eos_token_id is not None else cfg.eos_token_id),
    )


def build_llm(config: LLMConfig, lora: LoraConfig, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A randomly initialised Qwen2 causal LM, wrapped in a peft LoRA model when ``lora.enabled``.

    The returned module's state-dict keys are peft's (``base_model.model.model.layers.0.self_attn.q_proj.
    base_layer.weight``, ``...lora_A.default.weight``), the same as OSUM's ``llama_model.*`` keys minus the prefix.
    """
    model = Qwen2ForCausalLM(qwen2_config(config)).to(dtype)
    if not lora.enabled:
        return model
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_config = PeftLoraConfig(
        task_type="CAUSAL_LM",
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
    )
    return get_peft_model(model, peft_config)


def causal_lm(llm: nn.Module) -> Qwen2ForCausalLM:
    """The underlying ``Qwen2ForCausalLM`` (LoRA layers stay active inside it: peft injects them in place)."""
    if isinstance(llm, Qwen2ForCausalLM):
        return llm
    inner = llm.get_base_model()  # type: ignore[operator]
    if not isinstance(inner, Qwen2ForCausalLM):
        raise TypeError(f"expected a Qwen2ForCausalLM inside the LoRA wrapper, got {type(inner).__name__}")
    return inner
