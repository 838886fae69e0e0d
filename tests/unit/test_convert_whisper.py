"""Whisper import: the CTranslate2 container, the CT2 <-> HF mapping, and the packaged tiny.en model."""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path

import pytest
import soundfile as sf
import soxr
import torch
import transformers

from osum.convert.ct2 import Ct2Model, read_ct2, write_ct2
from osum.convert.whisper import (
    ct2_to_hf_whisper,
    hf_to_ct2_whisper,
    hf_to_ct2_whisper_config,
    load_whisper,
    packaged_tiny_en_dir,
    save_hf_whisper,
    whisper_encoder_state_dict,
)
from osum.errors import CheckpointError

TIED = {"decoder/projection/weight": "decoder/embeddings/weight"}


@pytest.fixture(scope="module")
def tiny_en() -> tuple[transformers.WhisperConfig, dict[str, torch.Tensor]]:
    return load_whisper(packaged_tiny_en_dir())


@pytest.fixture(scope="module")
def tiny_en_model(tiny_en) -> transformers.WhisperForConditionalGeneration:
    config, sd = tiny_en
    model = transformers.WhisperForConditionalGeneration(config)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def small_random_whisper(seed: int = 0) -> tuple[transformers.WhisperConfig, dict[str, torch.Tensor]]:
    """A tiny Whisper whose every parameter (biases and norms too) is random, so nothing maps by accident."""
    config = transformers.WhisperConfig(
        vocab_size=100,
        num_mel_bins=16,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=30,
        max_target_positions=24,
        decoder_start_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        bos_token_id=2,
        suppress_tokens=[5, 6],
        begin_suppress_tokens=[2],
    )
    torch.manual_seed(seed)
    model = transformers.WhisperForConditionalGeneration(config)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return config, model.state_dict()


def logits(config, sd, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    model = transformers.WhisperForConditionalGeneration(config)
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        return model.eval()(input_features=features, decoder_input_ids=tokens).logits


def write_ct2_dir(folder: Path, config, sd, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Write ``sd`` as a CT2 folder laid out like real files (projection aliased to the embeddings)."""
    folder.mkdir(parents=True, exist_ok=True)
    variables = {
        k: v.to(dtype) if v.is_floating_point() else v
        for k, v in hf_to_ct2_whisper(config, sd).items()
        if k not in TIED
    }
    write_ct2(folder / "model.bin", variables, aliases=TIED)
    (folder / "config.json").write_text(json.dumps(hf_to_ct2_whisper_config(config)))
    return variables


def test_packaged_tiny_en_loads_strictly(tiny_en, tiny_en_model):
    config, sd = tiny_en
    assert (config.encoder_layers, config.decoder_layers, config.d_model) == (4, 4, 384)
    assert (config.encoder_attention_heads, config.vocab_size, config.num_mel_bins) == (6, 51864, 80)
    assert (config.max_source_positions, config.max_target_positions) == (1500, 448)
    # tiny.en is English-only: <|startoftranscript|> = 50257, <|endoftext|> = 50256 (from vocabulary.txt)
    assert (config.decoder_start_token_id, config.eos_token_id) == (50257, 50256)
    assert config.begin_suppress_tokens == [220, 50256] and config.tie_word_embeddings
    assert all(v.dtype == torch.float32 for v in sd.values())
    assert len(tiny_en_model.model.encoder.layers) == 4
    assert torch.equal(tiny_en_model.proj_out.weight, sd["model.decoder.embed_tokens.weight"])
    # The encoder-only view loads into HF's WhisperEncoder with no missing or unexpected keys.
    encoder = transformers.models.whisper.modeling_whisper.WhisperEncoder(config)
    encoder.load_state_dict(whisper_encoder_state_dict(sd), strict=True)
    assert "conv1.weight" in whisper_encoder_state_dict(sd)


def test_packaged_tiny_en_transcribes_espeak(tiny_en_model, tmp_path):
    wav = tmp_path / "hello.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "hello world, this is a test"], check=True)
    audio, sr = sf.read(wav, dtype="float32")
    assert sr == 22050
    audio = soxr.resample(audio, sr, 16000)
    features = transformers.WhisperFeatureExtractor(feature_size=80)(
        audio, sampling_rate=16000, return_tensors="pt"
    ).input_features
    with torch.no_grad():
        tokens = tiny_en_model.generate(features, max_new_tokens=30, num_beams=1, do_sample=False)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(packaged_tiny_en_dir() / "tokenizer.json")
    )
    text = tokenizer.decode(tokens[0], skip_special_tokens=True)
    words = re.sub(r"[^a-z ]", " ", text.lower()).split()
    assert {"hello", "world", "test"} <= set(words), text


def test_ct2_round_trip_is_exact(tmp_path):
    config, sd = small_random_whisper()
    written = write_ct2_dir(tmp_path / "ct2", config, sd)
    ct2 = read_ct2(tmp_path / "ct2" / "model.bin")
    assert (ct2.spec_name, ct2.revision, ct2.binary_version) == ("WhisperSpec", 3, 6)
    assert ct2.aliases == TIED
    assert ct2.variables.keys() == written.keys()
    assert all(
        torch.equal(ct2.variables[k], v) and ct2.variables[k].dtype == v.dtype for k, v in written.items()
    )
    assert ct2.variables["encoder/num_heads"].shape == () and int(ct2.variables["encoder/num_heads"]) == 2

    config2, sd2 = load_whisper(tmp_path / "ct2")
    assert sd2.keys() == sd.keys()
    assert all(torch.equal(sd2[k], sd[k]) for k in sd)
    for key in (
        "d_model",
        "encoder_layers",
        "decoder_ffn_dim",
        "max_source_positions",
        "max_target_positions",
    ):
        assert getattr(config2, key) == getattr(config, key)
    assert (config2.decoder_start_token_id, config2.suppress_tokens) == (1, [5, 6])
    features, tokens = torch.randn(2, 16, 60), torch.tensor([[1, 7, 9], [1, 3, 4]])
    assert torch.equal(logits(config, sd, features, tokens), logits(config2, sd2, features, tokens))


def test_nonzero_key_bias_is_dropped_without_changing_outputs(tmp_path):
    config, sd = small_random_whisper(seed=1)
    variables = hf_to_ct2_whisper(config, sd)
    d = config.d_model
    for name in ("encoder/layer_0/self_attention/linear_0/bias", "decoder/layer_1/attention/linear_1/bias"):
        start = d if "self_attention" in name else 0  # k sits after q in qkv, first in cross-attention kv
        variables[name] = variables[name].clone()
        variables[name][start : start + d] = torch.randn(d)
    ct2 = Ct2Model("WhisperSpec", 3, 6, dict(variables), {})
    config2, sd2 = ct2_to_hf_whisper(ct2, hf_to_ct2_whisper_config(config))
    features, tokens = torch.randn(1, 16, 60), torch.tensor([[1, 7, 9, 11]])
    torch.testing.assert_close(
        logits(config, sd, features, tokens), logits(config2, sd2, features, tokens), rtol=1e-5, atol=1e-5
    )


def test_ct2_fp16_and_other_dtypes_round_trip(tmp_path):
    config, sd = small_random_whisper()
    written = write_ct2_dir(tmp_path / "half", config, sd, dtype=torch.float16)
    assert read_ct2(tmp_path / "half").variables["encoder/conv1/weight"].dtype == torch.float16
    _, sd2 = load_whisper(tmp_path / "half")
    assert sd2["model.encoder.conv1.weight"].dtype == torch.float32
    assert torch.equal(sd2["model.encoder.conv1.weight"], written["encoder/conv1/weight"].float())
    assert torch.equal(sd2["proj_out.weight"], sd["proj_out.weight"].half().float())

    values = {
        "f16": torch.randn(3, 5).half(),
        "bf16": torch.randn(4).bfloat16(),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "i16": torch.tensor(-1, dtype=torch.int16),
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
        "f32_scalar": torch.tensor(0.25),
    }
    write_ct2(tmp_path / "mixed.bin", values, spec_name="TestSpec", revision=7)
    back = read_ct2(tmp_path / "mixed.bin")
    assert (back.spec_name, back.revision) == ("TestSpec", 7)
    for name, value in values.items():
        assert back.variables[name].dtype == value.dtype and torch.equal(back.variables[name], value), name


def test_int8_quantized_weights_are_dequantized():
    config, sd = small_random_whisper()
    variables = hf_to_ct2_whisper(config, sd)
    name = "encoder/layer_1/ffn/linear_0/weight"
    w = variables[name]
    scale = 127.0 / w.abs().amax(dim=1)  # CTranslate2's per-row int8 scheme
    variables[name] = torch.round(w * scale[:, None]).to(torch.int8)
    variables[name + "_scale"] = scale
    _, sd2 = ct2_to_hf_whisper(Ct2Model("WhisperSpec", 3, 6, variables, {}), hf_to_ct2_whisper_config(config))
    restored = sd2["model.encoder.layers.1.fc1.weight"]
    assert restored.dtype == torch.float32
    assert (restored - w).abs().max() <= (0.5 / scale).max() + 1e-6


def test_hf_folder_round_trip(tmp_path):
    config, sd = small_random_whisper()
    save_hf_whisper(config, sd, tmp_path / "hf")
    assert {p.name for p in (tmp_path / "hf").iterdir()} >= {"config.json", "model.safetensors"}
    config2, sd2 = load_whisper(tmp_path / "hf")
    assert config2.d_model == 64 and sd2.keys() == sd.keys()
    assert all(torch.equal(sd2[k], sd[k]) for k in sd)
    # transformers itself reads the folder too.
    model = transformers.WhisperForConditionalGeneration.from_pretrained(tmp_path / "hf")
    assert torch.equal(model.model.decoder.layers[1].fc2.weight, sd["model.decoder.layers.1.fc2.weight"])

    # A pytorch_model.bin (weights-only pickle) of a bare WhisperModel: no "model." prefix, no proj_out.
    (tmp_path / "pt").mkdir()
    config.save_pretrained(tmp_path / "pt")
    bare = {k.removeprefix("model."): v for k, v in sd.items() if k != "proj_out.weight"}
    torch.save(bare, tmp_path / "pt" / "pytorch_model.bin")
    _, sd3 = load_whisper(tmp_path / "pt")
    assert sd3.keys() == sd.keys() and torch.equal(sd3["proj_out.weight"], sd["proj_out.weight"])


def test_truncated_model_bin_names_file_and_variable(tmp_path):
    config, sd = small_random_whisper()
    write_ct2_dir(tmp_path / "ct2", config, sd)
    data = (tmp_path / "ct2" / "model.bin").read_bytes()
    bad = tmp_path / "truncated.bin"
    for cut in (3, 40, len(data) // 2, len(data) - 5):
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated.bin.*unexpected end of file"):
            read_ct2(bad)
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"variable \d+ '(en|de)coder/"):
        read_ct2(bad)
    bad.write_bytes(data + b"\0\0")
    with pytest.raises(CheckpointError, match="trailing bytes"):
        read_ct2(bad)
    bad.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_ct2(bad)


def test_folder_with_neither_format_is_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"not a Whisper checkpoint.*notes\.txt"):
        load_whisper(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_whisper(tmp_path / "missing")
    (tmp_path / "config.json").write_text('{"model_type": "whisper"}')
    with pytest.raises(CheckpointError, match="no weights"):
        load_whisper(tmp_path)


def test_unknown_or_missing_ct2_variables_are_rejected():
    config, sd = small_random_whisper()
    ct2_config = hf_to_ct2_whisper_config(config)
    variables = hf_to_ct2_whisper(config, sd)
    extra = dict(variables, **{"decoder/layernorm_embedding/gamma": torch.ones(64)})
    with pytest.raises(CheckpointError, match="no HF Whisper counterpart.*layernorm_embedding"):
        ct2_to_hf_whisper(Ct2Model("WhisperSpec", 3, 6, extra, {}), ct2_config)
    missing = {k: v for k, v in variables.items() if k != "decoder/layer_1/ffn/linear_1/weight"}
    with pytest.raises(CheckpointError, match="'decoder/layer_1/ffn/linear_1/weight' is missing"):
        ct2_to_hf_whisper(Ct2Model("WhisperSpec", 3, 6, missing, {}), ct2_config)
    relu = dict(variables, **{"decoder/activation": torch.tensor(0, dtype=torch.int8)})
    with pytest.raises(CheckpointError, match="decoder/activation = 0"):
        ct2_to_hf_whisper(Ct2Model("WhisperSpec", 3, 6, relu, {}), ct2_config)


def test_reads_legacy_binary_version_3_layout(tmp_path):
    """Before binary version 4 a variable stored its item size and element count instead of a dtype id."""

    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    body = struct.pack("<I", 3) + string("WhisperSpec") + struct.pack("<II", 2, 1)
    body += string("x") + struct.pack("<BIBI", 1, 2, 4, 2) + struct.pack("<2f", 1.5, -2.0)
    body += struct.pack("<I", 1) + string("y") + string("x")
    (tmp_path / "model.bin").write_bytes(body)
    model = read_ct2(tmp_path)
    assert (model.binary_version, model.revision, model.aliases) == (3, 2, {"y": "x"})
    assert torch.equal(model.get("y"), torch.tensor([1.5, -2.0]))
