"""The paper's two stages on toy sizes: stage 1 fine-tunes a Whisper model on the ASR+X tasks (task tags as
decoder prompts), and its encoder then starts stage 2 (``train.init_encoder``)."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

import osum
from osum.api import Osum
from osum.checkpoint import build_model
from osum.config import ModelConfig, RunConfig, from_dict, to_dict
from osum.presets import preset_config
from osum.testing.tiny import write_toy_corpus
from osum.training.state import latest_checkpoint
from osum.training.trainer import Trainer

DATA = {"max_frames_in_batch": 800, "max_tokens_in_batch": 4000, "num_workers": 0, "sort_buffer": 8}
TRAIN = {
    "lr": 3e-3,
    "warmup_steps": 0,
    "scheduler": "constant",
    "grad_accum": 1,
    "log_every": 1,
    "max_epochs": 50,
}


def _tiny_whisper(tmp_path) -> str:
    """A random, small Whisper-architecture model with the real tiny.en tokenizer + task tags, saved to disk."""
    base = to_dict(preset_config("mini-stage1"))
    base["sources"]["encoder"] = ""  # random weights: a toy, not tiny.en
    config = from_dict(
        ModelConfig,
        base,
        [
            "name=tiny-stage1",
            "encoder.d_model=32",
            "encoder.heads=2",
            "encoder.ffn_dim=64",
            "encoder.layers=2",
            "decoder.d_model=32",
            "decoder.heads=2",
            "decoder.ffn_dim=64",
            "decoder.layers=2",
        ],
    )
    model, tokenizer = build_model(config)
    return str(Osum(model, tokenizer).save(tmp_path / "tiny_stage1_init"))


def test_stage1_trains_and_its_encoder_starts_stage2(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy", n=12)
    stage1 = from_dict(
        RunConfig,
        {
            "data": {**DATA, "train": [{"path": str(corpus)}]},
            "train": {
                **TRAIN,
                "init": _tiny_whisper(tmp_path),
                "train_modules": ["encoder", "decoder"],
                "out_dir": str(tmp_path / "s1"),
                "max_steps": 15,
                "save_every": 15,
            },
        },
    )
    Trainer(stage1).fit()
    logs = [json.loads(x) for x in (tmp_path / "s1" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 1.0, losses
    s1_ckpt = latest_checkpoint(tmp_path / "s1")
    s1_encoder = {
        k: v for k, v in load_file(str(s1_ckpt / "model.safetensors")).items() if k.startswith("encoder.")
    }
    assert osum.load(s1_ckpt, device="cpu").config.architecture == "whisper"

    # stage 2 on an OSUM model whose encoder has stage 1's width: the encoder weights must come from stage 1
    tiny = to_dict(preset_config("tiny"))
    tiny["encoder"] = to_dict(osum.load(s1_ckpt, device="cpu").config)["encoder"]
    init2 = Osum(*build_model(from_dict(ModelConfig, tiny))).save(tmp_path / "tiny_osum_init")
    stage2 = from_dict(
        RunConfig,
        {
            "data": {**DATA, "train": [{"path": str(corpus)}]},
            "train": {
                **TRAIN,
                "init": str(init2),
                "init_encoder": str(s1_ckpt),
                "out_dir": str(tmp_path / "s2"),
                "train_modules": ["adaptor", "speech_markers", "lora"],
                "max_steps": 2,
                "save_every": 2,
            },
        },
    )
    Trainer(stage2).fit()
    s2 = load_file(str(latest_checkpoint(tmp_path / "s2") / "model.safetensors"))
    for key, value in s1_encoder.items():  # frozen in stage 2, so still exactly stage 1's
        assert torch.equal(s2[key], value), key
