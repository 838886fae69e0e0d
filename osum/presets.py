"""Named model configurations: ``osum-7b`` (the paper), ``mini`` (the embedded default) and ``tiny`` (tests)."""

from __future__ import annotations

from osum.config import (
    AdaptorConfig,
    DecoderConfig,
    EncoderConfig,
    LLMConfig,
    LoraConfig,
    ModelConfig,
    SourcesConfig,
)
from osum.errors import ConfigError

# the mini presets' classifiers: every task label, and whether the clip holds speech at all
LABEL_FIELDS_WITH_SPEECH = ["event", "emotion", "style", "gender", "age", "speech"]


def _osum_7b() -> ModelConfig:
    # Whisper-medium encoder, OSUM adaptor, Qwen2-7B(-Instruct) dims; weights only via `osum convert-osum infer.pt`.
    return ModelConfig(
        name="osum-7b", sources=SourcesConfig(tokenizer="packaged:qwen2"), prompt_language="zh"
    )


def _tiny_en_encoder() -> EncoderConfig:
    # pad_to_window: the pretrained encoder sees clips as it was trained to, padded to 30 s (what it knows of
    # real speech stays; recipes/mini/RESULTS.md section 9)
    return EncoderConfig(
        n_mels=80, d_model=384, layers=4, heads=6, ffn_dim=1536, max_positions=1500, pad_to_window=True
    )


def _mini() -> ModelConfig:
    # Whisper tiny.en (packaged, CTranslate2) + SmolLM2-135M-Instruct (packaged GGUF) run as Qwen2.
    # The adaptor keeps OSUM's shape at the encoder's width (384): 4 heads, FFN 2.5 x width.
    # LoRA as OSUM's but without dropout: its masks cost ~17% of a CPU training step (measured, recipes/mini).
    return ModelConfig(
        name="mini",
        encoder=_tiny_en_encoder(),
        adaptor=AdaptorConfig(d_model=384, layers=4, heads=4, ffn_dim=960),
        llm=LLMConfig(
            hidden_size=576,
            layers=30,
            heads=9,
            kv_heads=3,
            intermediate_size=1536,
            vocab_size=49152,
            rope_theta=100000.0,
            rms_norm_eps=1e-5,
            tie_word_embeddings=True,
            max_position_embeddings=8192,
            eos_token_id=0,
        ),
        lora=LoraConfig(dropout=0.0),
        # the transcript part of every answer is Whisper tiny.en's own (osum/inference/transcriber.py): trained on
        # 3 h of synthetic speech, the LLM transcribed recorded speech at 100%+ WER (RESULTS.md section 9)
        sources=SourcesConfig(
            encoder="packaged:whisper-tiny.en",
            llm="packaged:smollm2-135m",
            tokenizer="packaged:smollm2-135m",
            transcriber="packaged:whisper-tiny.en",
        ),
        prompt_language="en",
        label_fields=LABEL_FIELDS_WITH_SPEECH,
        # a label answer's score adds the classifiers' log-probability to the LLM's (RESULTS.md section 12), the
        # LLM's at weight 0: the classifiers decide (section 15: the best weight on a validation corpus)
        label_fusion=True,
        label_llm_weight=0.0,
        trained=False,
    )


def _tiny() -> ModelConfig:
    # Random and small enough for unit tests; real Qwen2 tokenizer so text handling is exercised for real.
    return ModelConfig(
        name="tiny",
        encoder=EncoderConfig(n_mels=80, d_model=32, layers=2, heads=2, ffn_dim=64, max_positions=1500),
        adaptor=AdaptorConfig(d_model=32, layers=2, heads=2, ffn_dim=64, dropout=0.0),
        llm=LLMConfig(
            hidden_size=32,
            layers=2,
            heads=4,
            kv_heads=2,
            intermediate_size=64,
            vocab_size=151646,
            max_position_embeddings=4096,
        ),
        sources=SourcesConfig(tokenizer="packaged:qwen2"),
        trained=False,
    )


def _mini_stage1() -> ModelConfig:
    # Stage 1 on the mini scale: Whisper tiny.en itself, transcribing with its own prompt (label_heads), and label
    # classifiers on its pooled encoder frames (untrained until the recipe trains them). The 12 task tag rows
    # (51864 pretrained rows + 12) stay for OSUM's tag-prompted stage 1 (decoder.label_heads false).
    return ModelConfig(
        name="mini-stage1",
        architecture="whisper",
        encoder=_tiny_en_encoder(),
        decoder=DecoderConfig(
            d_model=384,
            layers=4,
            heads=6,
            ffn_dim=1536,
            vocab_size=51876,
            max_positions=448,
            label_heads=True,
        ),
        sources=SourcesConfig(encoder="packaged:whisper-tiny.en", tokenizer="packaged:whisper-tiny.en"),
        label_fields=LABEL_FIELDS_WITH_SPEECH,
        label_pitch=True,  # F0 statistics beside the frames; gender reads them alone (osum/data/pitch.py)
        # standardised mean and spread of the frames, one linear layer per field; attention pooling for events
        label_head="linear+attention",
        trained=False,
    )


PRESETS = {"osum-7b": _osum_7b, "mini": _mini, "mini-stage1": _mini_stage1, "tiny": _tiny}


def preset_config(name: str) -> ModelConfig:
    """A fresh :class:`ModelConfig` for preset ``name``."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}") from None
