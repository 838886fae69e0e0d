"""DeepSpeed ZeRO-2/3 under ``torchrun --nproc_per_node=2`` on CPU (gloo): ranks in sync, the same weights as
DDP, full float32 checkpoints that ``osum.load`` reads, resumed runs bit-identical to straight ones."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from osum.config import RunConfig, TrainConfig, from_dict
from osum.errors import CheckpointError, ConfigError
from osum.testing.tiny import write_toy_corpus
from osum.training.engines import deepspeed_config
from osum.training.state import checkpoint_dir, latest_checkpoint

HAVE_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
needs_deepspeed = pytest.mark.skipif(
    not HAVE_DEEPSPEED,
    reason="deepspeed is not installed (pip install --no-build-isolation deepspeed==0.19.8)",
)

TRAIN = {
    "init": "tiny",
    "train_modules": ["adaptor", "speech_markers", "llm"],
    "lr": 3e-3,
    # a schedule that changes every step and a clip that bites: both must match the DDP engine's
    "scheduler": "warmup_cosine",
    "warmup_steps": 2,
    "grad_clip": 1.0,
    "grad_accum": 2,
    "log_every": 1,
    "max_epochs": 50,
    "max_steps": 4,
    "save_every": 2,
}
DATA = {"max_frames_in_batch": 800, "max_tokens_in_batch": 4000, "num_workers": 0, "sort_buffer": 8}

# Runs under torchrun: train, then report each rank's trainable-weight sums (gathered first under ZeRO-3) and
# how much of them this rank actually held. Rank 1's micro-batch of epoch 1 arrives with every utterance
# unreadable (None), as the data loader reports it: that rank must still take part in the step.
CHECK_SCRIPT = """
import contextlib, json, os, sys, torch, torch.distributed as dist
from osum.config import RunConfig, load_yaml
from osum.training.trainer import Trainer
trainer = Trainer(load_yaml(RunConfig, sys.argv[1]), resume="--resume" in sys.argv)
loader = trainer._loader
def unreadable_once(epoch, start):
    for i, (batch, bad) in enumerate(loader(epoch, start)):
        lost = dist.get_rank() == 1 and epoch == 1 and i == 0
        yield (None, bad + batch.feats.shape[0]) if lost else (batch, bad)
trainer._loader = unreadable_once
pos = trainer.fit()
held = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in trainer.params)
full = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in trainer.params)
ctx = contextlib.nullcontext()
if trainer.run.train.engine == "deepspeed":
    import deepspeed
    ctx = deepspeed.zero.GatheredParameters(trainer.params, modifier_rank=None)
with ctx:
    flat = torch.cat([p.detach().reshape(-1) for p in trainer.params]).double()
    mine = torch.stack([flat.sum(), flat.abs().sum(), torch.tensor(float(held))])
sums = [torch.zeros(3, dtype=torch.float64) for _ in range(dist.get_world_size())]
dist.all_gather(sums, mine)
if dist.get_rank() == 0:
    report = {"ranks": [s.tolist() for s in sums], "full": full, "step": pos.step}
    with open(sys.argv[2], "w") as f:
        json.dump(report, f)
dist.destroy_process_group()
# Everything this script checks is done. In two clean-clone runs of the whole suite (2026-12-06) one rank of one of
# these torchrun tests aborted in interpreter teardown, after this point ("terminate called without an active
# exception", SIGABRT; a different test each time, never when run alone): leave without tearing down. Whether
# `osum train` under torchrun can end that way too is open (the issue note says so).
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""


def _torchrun(tmp: Path, name: str, cfg: dict, port: int, *extra: str, timeout: float = 900) -> dict:
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    (tmp / "check.py").write_text(CHECK_SCRIPT)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={port}",
            str(tmp / "check.py"),
            str(tmp / f"{name}.yaml"),
            str(tmp / f"{name}.json"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,  # the first DeepSpeed run on a machine JIT-compiles its CPU comm op (~1 min)
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads((tmp / f"{name}.json").read_text())


def _config(corpus: Path, out: Path, **train) -> dict:
    return {
        "data": {**DATA, "train": [{"path": str(corpus)}]},
        "train": {**TRAIN, "out_dir": str(out), **train},
    }


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Straight 4-step runs: DDP (the reference), ZeRO-2 and ZeRO-3 (every weight partitioned, validating)."""
    tmp = tmp_path_factory.mktemp("zero")
    corpus = write_toy_corpus(tmp / "toy", n=16)
    # the user JSON is merged over the generated config: here it makes ZeRO-3 partition even the small weights
    (tmp / "partition_all.json").write_text(
        json.dumps({"zero_optimization": {"stage3_param_persistence_threshold": 0}})
    )
    configs = {
        "ddp": _config(corpus, tmp / "ddp", engine="ddp"),
        "zero2": _config(corpus, tmp / "zero2", engine="deepspeed", deepspeed_stage=2),
        "zero3": _config(
            corpus,
            tmp / "zero3",
            engine="deepspeed",
            deepspeed_stage=3,
            deepspeed_config=str(tmp / "partition_all.json"),
        ),
    }
    configs["zero3"]["data"]["valid"] = [{"path": str(corpus)}]
    reports = {name: _torchrun(tmp, name, cfg, 29541 + i) for i, (name, cfg) in enumerate(configs.items())}
    return {"tmp": tmp, "configs": configs, "reports": reports}


@needs_deepspeed
@pytest.mark.slow
@pytest.mark.parametrize("name", ["zero2", "zero3"])
def test_zero_ranks_in_sync_and_checkpoint_is_full_float32(runs, name):
    import osum

    report, out = runs["reports"][name], runs["tmp"] / name
    assert report["step"] == 4
    (s0, a0, held0), (s1, a1, held1) = report["ranks"]
    assert (s0, a0) == (s1, a1)  # both ranks end with bit-identical (gathered) trainable weights
    if name == "zero3":  # each rank really held only its half of every trainable weight
        assert held0 + held1 < 1.01 * report["full"] and held0 < 0.51 * report["full"]
    else:
        assert held0 == held1 == report["full"]
    ckpt = latest_checkpoint(out)
    assert ckpt.name == "step_00000004" and (ckpt / "deepspeed").is_dir()
    assert not list(ckpt.parent.glob("*.shards")) and not list(ckpt.parent.glob("*.tmp"))
    start = osum.load("tiny", device="cpu").model.state_dict()
    model = osum.load(ckpt, device="cpu").model  # an ordinary osum checkpoint
    trained = model.state_dict()
    assert trained.keys() == start.keys()
    for key, value in trained.items():
        assert value.dtype == start[key].dtype and value.shape == start[key].shape, key
    assert all(t.dtype == torch.float32 for t in _weights(ckpt).values())
    assert not torch.equal(start["adaptor.proj.weight"], trained["adaptor.proj.weight"])  # it did train
    assert torch.equal(start["encoder.conv1.weight"], trained["encoder.conv1.weight"])  # frozen stays frozen
    logs = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r for r in logs if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2, 3, 4]
    assert losses[0]["skipped_utterances"] == 0  # rank 0 logs; rank 1 lost a whole batch in step 1
    if name == "zero3":  # validation runs its forward passes on every rank (ZeRO-3 gathers weights)
        valid = [r for r in logs if "valid_loss" in r]
        assert [r["step"] for r in valid] == [2, 4] and all(r["valid_batches"] > 0 for r in valid)


@needs_deepspeed
@pytest.mark.slow
def test_zero_trains_like_ddp(runs):
    """Same data, schedule, accumulation and clipping: ZeRO-2/3 end where DDP ends (up to reduction order)."""
    ref = _weights(latest_checkpoint(runs["tmp"] / "ddp"))
    ref_log = [json.loads(x) for x in (runs["tmp"] / "ddp" / "train_log.jsonl").read_text().splitlines()]
    for name in ("zero2", "zero3"):
        got = _weights(latest_checkpoint(runs["tmp"] / name))
        assert got.keys() == ref.keys()
        worst = max((got[k] - ref[k]).abs().max().item() for k in ref)
        assert worst < 1e-5, (name, worst)  # measured: ~3e-7
        log = [json.loads(x) for x in (runs["tmp"] / name / "train_log.jsonl").read_text().splitlines()]
        log = [r for r in log if "loss" in r]
        pairs = list(zip([r for r in ref_log if "loss" in r], log, strict=True))
        assert [a["lr"] for a, _ in pairs] == [
            b["lr"] for _, b in pairs
        ]  # the schedule is ours, step by step
        assert len({a["lr"] for a, _ in pairs}) > 2
        for a, b in pairs:
            assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
            assert b["grad_norm"] > TRAIN["grad_clip"]  # clipping was active
            assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


@needs_deepspeed
@pytest.mark.slow
@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3"])
def test_resume_is_exact(runs, name, tmp_path):
    """Resume from the straight run's step-2 checkpoint (as if killed after it) -> bit-identical step 4.

    Needs each rank's own RNG state back (LoRA dropout draws differ per rank) and, for ZeRO, DeepSpeed's
    partitioned Adam moments and float32 master weights.
    """
    straight = runs["tmp"] / name
    resumed = tmp_path / "resumed"
    step2 = checkpoint_dir(straight, 2)
    shutil.copytree(step2, checkpoint_dir(resumed, 2))
    cfg = json.loads(json.dumps(runs["configs"][name]))
    cfg["train"]["out_dir"] = str(resumed)
    report = _torchrun(tmp_path, "resume", cfg, 29551 + ["ddp", "zero2", "zero3"].index(name), "--resume")
    assert report["step"] == 4
    assert report["ranks"][0][:2] == report["ranks"][1][:2]
    assert sorted(p.name for p in (resumed / "checkpoints").iterdir()) == ["step_00000002", "step_00000004"]
    a, b = _weights(checkpoint_dir(straight, 4)), _weights(checkpoint_dir(resumed, 4))
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    log = [json.loads(x) for x in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [3, 4]


@needs_deepspeed
@pytest.mark.slow
def test_zero3_with_different_batch_sizes_per_rank(tmp_path):
    corpus = write_toy_corpus(tmp_path / "toy", n=16)
    (tmp_path / "partition_all.json").write_text(
        json.dumps({"zero_optimization": {"stage3_param_persistence_threshold": 0}})
    )
    cfg = _config(
        corpus,
        tmp_path / "run",
        engine="deepspeed",
        deepspeed_stage=3,
        deepspeed_config=str(tmp_path / "partition_all.json"),
        max_steps=3,
    )
    cfg["data"]["max_frames_in_batch"] = 300  # batches of 1-4 utterances: the two ranks' sizes differ
    report = _torchrun(tmp_path, "sizes", cfg, 29555, timeout=240)
    assert report["step"] == 3 and report["ranks"][0][:2] == report["ranks"][1][:2]


# ------------------------------------------------------------------------------- config (no DeepSpeed needed)


def test_deepspeed_config_follows_train_config(tmp_path):
    cfg = TrainConfig(deepspeed_stage=3, grad_accum=4, grad_clip=5.0)
    ds = deepspeed_config(cfg, torch.device("cpu"))
    assert ds["zero_optimization"] == {"stage": 3}
    assert ds["gradient_accumulation_steps"] == 4 and ds["gradient_clipping"] == 5.0
    assert ds["train_micro_batch_size_per_gpu"] == 1
    assert "torch_autocast" not in ds  # fp32 on CPU
    assert deepspeed_config(cfg, torch.device("cuda"))["torch_autocast"] == {
        "enabled": True,
        "dtype": "bfloat16",
    }
    cfg.precision = "fp32"
    assert "torch_autocast" not in deepspeed_config(cfg, torch.device("cuda"))
    user = tmp_path / "ds.json"
    user.write_text(json.dumps({"zero_optimization": {"overlap_comm": True}, "gradient_clipping": 1.0}))
    cfg.deepspeed_config = str(user)
    merged = deepspeed_config(cfg, torch.device("cpu"))
    assert merged["zero_optimization"] == {"stage": 3, "overlap_comm": True}
    assert merged["gradient_clipping"] == 1.0 and merged["gradient_accumulation_steps"] == 4


@pytest.mark.parametrize(
    "override, message",
    [
        ({"deepspeed_stage": 4}, "deepspeed_stage 4"),
        ({"deepspeed_config": "/nonexistent/ds.json"}, "/nonexistent/ds.json"),
    ],
)
def test_deepspeed_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        deepspeed_config(TrainConfig(**override), torch.device("cpu"))


def test_deepspeed_16bit_weights_are_refused(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps({"bf16": {"enabled": True}}))
    with pytest.raises(ConfigError, match="train.precision=bf16"):
        deepspeed_config(TrainConfig(deepspeed_config=str(tmp_path / "ds.json")), torch.device("cpu"))


def test_missing_deepspeed_is_a_config_error(tmp_path, monkeypatch):
    from osum.training.trainer import Trainer

    monkeypatch.setitem(
        sys.modules, "deepspeed", None
    )  # makes `import deepspeed` fail like a missing install
    run = from_dict(RunConfig, _config(tmp_path / "none.jsonl", tmp_path / "run", engine="deepspeed"))
    with pytest.raises(ConfigError, match="no-build-isolation deepspeed"):
        Trainer(run)  # before any model, data or process group is set up
    assert not torch.distributed.is_initialized()


def test_resuming_across_engine_kinds_is_refused(tmp_path):
    from osum.training.engines import SHARD_DIR, Engine

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    engine = Engine(model, list(model.parameters()), optimizer, scheduler, TrainConfig(), torch.device("cpu"))
    state = {"optimizer": {SHARD_DIR: SHARD_DIR}, "scheduler": {}}
    with pytest.raises(CheckpointError, match="resume it with train.engine=deepspeed"):
        engine.load_optimizer_state(state, tmp_path)


def test_resumed_weights_may_lack_only_frozen_parameters(tmp_path):
    """DeepSpeed's shards leave frozen weights out; any other missing or extra key is a CheckpointError."""
    from osum.training.engines import load_trained_weights

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0].requires_grad_(False)
    trained = {k: v.clone() + 1 for k, v in model.state_dict().items() if k.startswith("1.")}
    load_trained_weights(trained, model, tmp_path)
    assert torch.equal(model[1].weight, trained["1.weight"])
    with pytest.raises(CheckpointError, match=r"unexpected \['2.weight'\]"):
        load_trained_weights({**trained, "2.weight": torch.zeros(2, 2)}, model, tmp_path)
    with pytest.raises(CheckpointError, match=r"missing trained weights \['1.bias'\]"):
        load_trained_weights({"1.weight": trained["1.weight"]}, model, tmp_path)
