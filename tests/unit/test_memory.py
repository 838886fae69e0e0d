"""osum/memory.py and `osum plan`: parameter counts, measured activations, the plan's rows."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from osum.cli.main import main
from osum.config import AdaptorConfig, EncoderConfig, LLMConfig, ModelConfig, SourcesConfig
from osum.data.collate import collate
from osum.memory import (
    Workload,
    count_parameters,
    inference_rows,
    measure_activations,
    saved_bytes,
    training_rows,
)
from osum.model.osum import OsumModel
from osum.training.optim import set_trainable

MODULES = ["adaptor", "speech_markers", "encoder", "lora"]


def _config(**llm) -> ModelConfig:
    return ModelConfig(
        name="small",
        encoder=EncoderConfig(n_mels=80, d_model=64, layers=3, heads=4, ffn_dim=256, max_positions=1500),
        adaptor=AdaptorConfig(d_model=64, layers=2, heads=4, ffn_dim=160, dropout=0.0),
        llm=LLMConfig(
            **{
                "hidden_size": 96,
                "layers": 3,
                "heads": 6,
                "kv_heads": 2,
                "intermediate_size": 256,
                "vocab_size": 4096,
                "max_position_embeddings": 4096,
                "eos_token_id": 0,
                **llm,
            }
        ),
        sources=SourcesConfig(tokenizer="packaged:qwen2"),
        trained=False,
    )


def test_parameter_counts_are_the_built_models():
    config = _config()
    counts = count_parameters(config, MODULES)
    model = OsumModel(config)
    assert counts.total == sum(p.numel() for p in model.parameters())
    assert counts.encoder == sum(p.numel() for p in model.encoder.parameters())
    assert counts.trained == sum(p.numel() for p in set_trainable(model, MODULES))
    assert counts.lora == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) > 0
    linear = [m for n, m in model.llm.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n]
    assert counts.llm_linear == sum(m.weight.numel() for m in linear)


@pytest.mark.parametrize("batch", [1, 2])
def test_measured_activations_predict_the_whole_models(batch):
    """The one-layer measurement, scaled by layers, clip length, batch and vocabulary (4096 here, measured at 512 and
    2048), predicts the bytes a full forward pass of the multi-layer model keeps for backward."""
    config = _config()
    acts = measure_activations(config, MODULES)
    work = Workload(seconds=5.0, batch=batch, prompt_tokens=10, answer_tokens=30)
    torch.manual_seed(0)
    model = OsumModel(config)
    model.train()
    set_trainable(model, MODULES)
    feats = [torch.randn(500, 80) for _ in range(batch)]
    prompts = [torch.randint(1, 4096, (10,)).tolist() for _ in range(batch)]
    targets = [torch.randint(1, 4096, (30,)).tolist() for _ in range(batch)]
    with saved_bytes(model, {}) as totals, torch.autocast("cpu", dtype=torch.bfloat16):
        model(collate(feats, prompts, targets), full_logits=False)
    predicted = acts.total(config, work)
    assert predicted == pytest.approx(totals["outside"], rel=0.05)
    # with checkpointing far less is kept
    assert acts.total(config, work, checkpointing=True) < 0.5 * predicted


def test_frozen_float32_weights_leave_bf16_copies_per_layer():
    """Under bf16 autocast every float32 linear keeps a bf16 copy of its weight for backward: the LLM layer's
    fixed cost is its linear weights (frozen and LoRA) at 2 bytes each (most of `osum plan`'s activations for
    osum-7b)."""
    config = _config()
    acts = measure_activations(config, MODULES)
    layer = OsumModel(config).lm.model.layers[0]
    linear = sum(p.numel() for p in layer.parameters() if p.dim() == 2)
    assert acts.llm_layer.fixed == 2 * linear


def test_kv_cache_and_training_state():
    config = _config()
    counts = count_parameters(config, MODULES)
    work = Workload(seconds=10.0, batch=3, prompt_tokens=20, answer_tokens=40)
    s = work.llm_tokens(config)
    assert s == 20 + 2 + work.adaptor_frames(config) + 40 and work.adaptor_frames(config) == 125
    bf16, int8 = inference_rows(config, counts, work)
    kv = 2 * 3 * 2 * 16 * s * 3 * 2
    assert bf16.activations >= kv and int8.weights < bf16.weights
    acts = measure_activations(config, MODULES)
    rows = {r.setting: r for r in training_rows(config, counts, acts, work, gpus=(4,))}
    one, zero2, zero3 = rows["1 GPU"], rows["ZeRO-2 x 4"], rows["ZeRO-3 x 4"]
    assert one.weights == 4 * counts.total and one.optimizer == 8 * counts.trained
    assert zero2.weights == one.weights and zero2.optimizer == one.optimizer / 4
    assert zero3.weights == one.weights / 4 and zero3.gradients == one.gradients / 4
    assert rows["1 GPU, checkpointing"].activations < one.activations


def test_osum_plan_cli(capsys):
    assert main(["plan", "--model", "tiny", "--seconds", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"]["total"] > 0 and len(out["inference"]) == 2 and len(out["training"]) == 14
    assert main(["plan", "--model", "mini-stage1"]) == 2
    assert "OSUM (LLM) models" in capsys.readouterr().err
    assert main(["plan", "--model", "tiny", "--gpus", "1"]) == 2
    assert main(["plan", "--model", "nowhere"]) == 2
    assert "not an osum checkpoint" in capsys.readouterr().err
    assert dataclasses.is_dataclass(Workload)
