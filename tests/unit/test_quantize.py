"""int8 weights for CPU inference (osum/inference/quantize.py): what is replaced, LoRA merged first, what is refused."""

from __future__ import annotations

import pytest
import torch

import osum
from osum.inference.quantize import merge_lora, quantize_int8
from osum.testing.tiny import chirp


def _linears(module: torch.nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


def _quantized(module: torch.nn.Module) -> list[str]:
    return [n for n, m in module.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]


def test_merging_lora_keeps_the_llm_output():
    model = osum.load("tiny", device="cpu", seed=3).model
    lora = [p for n, p in model.llm.named_parameters() if "lora_B" in n]
    assert lora, "the tiny preset has LoRA"
    with torch.no_grad():
        for p in lora:  # trained adapters (LoRA B starts at zero, which would make merging trivially right)
            p.normal_(0, 0.05)
    ids = torch.randint(0, 100, (2, 9))
    with torch.no_grad():
        before = model.lm(input_ids=ids).logits
        merge_lora(model)
        after = model.lm(input_ids=ids).logits
    assert not any("lora" in n for n, _ in model.llm.named_parameters())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_int8_replaces_every_linear_layer_but_the_label_classifiers():
    model = osum.load("tiny", device="cpu", dtype="int8")
    assert model.int8
    left = _linears(model.model)
    assert all(n.startswith("label_tokens.") for n in left), left
    quantized = _quantized(model.model)
    assert any(n.startswith("llm.") for n in quantized) and any(n.startswith("encoder.") for n in quantized)
    assert any(n.startswith("adaptor.") for n in quantized)
    options = osum.DecodingOptions(max_new_tokens=5)
    out = model.run([chirp(2.0)], tasks=["asr", "sgc"], sample_rate=16000, options=options)
    assert set(out[0]) == {"asr", "sgc"}


def test_int8_answers_near_float32_and_refuses_what_it_cannot_do(tmp_path):
    fp32 = osum.load("tiny", device="cpu", seed=5)
    int8 = osum.load("tiny", device="cpu", seed=5)
    n = int8.quantize_int8()
    assert n == len(_quantized(int8.model)) > 0 and not _linears(int8.model)  # (the tiny preset has no label tokens)
    batch_in = torch.randn(1, 300, fp32.config.encoder.n_mels)
    lengths = torch.tensor([300])
    with torch.no_grad():
        a = fp32.model.encoder(batch_in, lengths)[0]
        b = int8.model.encoder(batch_in, lengths)[0]
    # int8 weights and activations: close to float32, not equal
    assert 0 < (a - b).abs().mean() < 0.05 * a.abs().mean()
    with pytest.raises(osum.ConfigError, match="int8 model cannot be saved"):
        int8.save(tmp_path / "out")
    with pytest.raises(osum.ConfigError, match="CPU only"):
        osum.load("tiny", device="cuda", dtype="int8")
    assert quantize_int8(torch.nn.Sequential(torch.nn.Linear(4, 4))) == 1
    with pytest.raises(osum.ConfigError, match="float32"):
        quantize_int8(torch.nn.Sequential(torch.nn.Linear(4, 4).half()))
