"""Training on the tiny preset: the loss falls, kill -9 + --resume gives identical weights, DDP ranks stay in sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from osum.config import RunConfig, from_dict
from osum.errors import ConfigError
from osum.testing.tiny import write_toy_corpus
from osum.training.state import latest_checkpoint
from osum.training.trainer import Trainer

TRAIN = {
    "init": "tiny",
    "train_modules": ["adaptor", "speech_markers", "llm"],
    "lr": 3e-3,
    "warmup_steps": 0,
    "scheduler": "constant",
    "grad_accum": 2,
    "log_every": 1,
    "max_epochs": 50,
}
DATA = {"max_frames_in_batch": 800, "max_tokens_in_batch": 4000, "num_workers": 0, "sort_buffer": 8}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("toy"), n=16)


def _config(corpus: Path, out: Path, **train) -> dict:
    return {
        "data": {**DATA, "train": [{"path": str(corpus)}]},
        "train": {**TRAIN, "out_dir": str(out), **train},
    }


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(latest_checkpoint(run_dir) / "model.safetensors"))


def test_loss_falls(corpus, tmp_path):
    cfg = _config(corpus, tmp_path / "run", max_steps=12, save_every=100)
    cfg["data"]["valid"] = [{"path": str(corpus)}]
    (tmp_path / "prompts.yaml").write_text("asr:\n  en: [Transcribe the audio.]\n")
    cfg["data"]["prompts"] = str(tmp_path / "prompts.yaml")  # replaces the English ASR prompts only
    run = from_dict(RunConfig, cfg)
    trainer = Trainer(run)
    pos = trainer.fit()
    assert pos.step == 12
    records = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    logs = [r for r in records if "loss" in r]
    valid = [r for r in records if "valid_loss" in r]
    assert [r["step"] for r in valid] == [12] and valid[0]["valid_batches"] > 0
    assert len(logs) == 12 and all(
        set(r) >= {"loss", "lr", "grad_norm", "audio_seconds_per_second", "utterances_per_second"} for r in logs
    )
    first, last = sum(r["loss"] for r in logs[:3]) / 3, sum(r["loss"] for r in logs[-3:]) / 3
    assert last < first - 0.8, (first, last)  # measured: 11.79 -> 10.45 over 12 steps
    ckpt = latest_checkpoint(tmp_path / "run")
    assert ckpt.name == "step_00000012"
    assert {"config.yaml", "model.safetensors", "tokenizer", "prompts.yaml", "trainer_state.pt"} <= {
        p.name for p in ckpt.iterdir()
    }
    # the trained checkpoint is an ordinary osum checkpoint
    import osum

    trained = osum.load(ckpt, device="cpu")
    assert trained.config.name == "tiny"
    assert trained.prompts.get("asr", "en") == ("Transcribe the audio.",)  # inference defaults to them
    assert trained.prompts.get("asr", "zh") == osum.get_task("asr").prompts["zh"]
    assert trained.prompts.get("ser", "en") == osum.get_task("ser").prompts["en"]


def test_stop_at_gives_the_longer_runs_checkpoint(corpus, tmp_path):
    """train.stop_at: a run stopped at step 2 of a 4-step cosine schedule writes the weights the 4-step run has at
    its step 2 (the rate follows max_steps), and trains no further; a stop past max_steps is refused by name."""
    schedule = {"max_steps": 4, "save_every": 2, "scheduler": "warmup_cosine", "warmup_steps": 0}
    Trainer(from_dict(RunConfig, _config(corpus, tmp_path / "long", **schedule))).fit()
    short = _config(corpus, tmp_path / "short", **schedule, stop_at=2)
    assert Trainer(from_dict(RunConfig, short)).fit().step == 2
    assert latest_checkpoint(tmp_path / "short").name == "step_00000002"
    a = load_file(str(tmp_path / "long" / "checkpoints" / "step_00000002" / "model.safetensors"))
    b = _weights(tmp_path / "short")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    bad = _config(corpus, tmp_path / "bad", max_steps=6, stop_at=7)
    with pytest.raises(ConfigError, match="train.stop_at 7"):
        Trainer(from_dict(RunConfig, bad))


def _launch(cfg_path: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "osum", "train", str(cfg_path), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_sigkill_then_resume_reaches_identical_weights(corpus, tmp_path):
    cfg = _config(corpus, tmp_path / "straight", max_steps=8, save_every=2)
    (tmp_path / "straight.yaml").write_text(yaml.safe_dump(cfg))
    straight = _launch(tmp_path / "straight.yaml")
    cfg["train"]["out_dir"] = str(tmp_path / "killed")
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(cfg))
    victim = _launch(tmp_path / "killed.yaml")
    deadline = time.time() + 240
    while (
        latest_checkpoint(tmp_path / "killed") is None
        or latest_checkpoint(tmp_path / "killed").name < "step_00000004"
    ):
        assert victim.poll() is None, victim.stdout.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert latest_checkpoint(tmp_path / "killed").name < "step_00000008"  # it really was cut short
    resumed = _launch(tmp_path / "killed.yaml", "--resume")
    for proc in (straight, resumed):
        out = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode == 0, out[-3000:]
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert latest_checkpoint(tmp_path / "killed").name == "step_00000008"
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]

    # the log holds each step once, as the uninterrupted run's does (the steps after the checkpoint ran twice)
    def steps(run: str) -> list[int]:
        lines = (tmp_path / run / "train_log.jsonl").read_text().splitlines()
        return [r["step"] for r in map(json.loads, lines) if "loss" in r]

    assert steps("killed") == steps("straight") == sorted(set(steps("straight")))


DDP_SCRIPT = """
import json, sys, torch, torch.distributed as dist
from osum.config import RunConfig, load_yaml
from osum.training.trainer import Trainer
trainer = Trainer(load_yaml(RunConfig, sys.argv[1]))
trainer.fit()
flat = torch.cat([p.detach().reshape(-1) for p in trainer.params])
sums = [torch.zeros(2) for _ in range(dist.get_world_size())]
dist.all_gather(sums, torch.stack([flat.sum(), flat.abs().sum()]))
if dist.get_rank() == 0:
    json.dump({"sums": [s.tolist() for s in sums], "world": dist.get_world_size()}, open(sys.argv[2], "w"))
trainer.close()  # as `osum train` ends: nothing holds the group, and every rank leaves it together
import gc
assert not [o for o in gc.get_objects() if isinstance(o, torch.nn.parallel.DistributedDataParallel)]
dist.barrier()
dist.destroy_process_group()
"""


def test_two_process_ddp_trains_in_sync(corpus, tmp_path):
    cfg = _config(corpus, tmp_path / "ddp", max_steps=3, save_every=3, engine="ddp")
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "check.py").write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29533",
            str(tmp_path / "check.py"),
            str(tmp_path / "ddp.yaml"),
            str(tmp_path / "sums.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "sums.json").read_text())
    assert result["world"] == 2
    assert result["sums"][0] == result["sums"][1]  # both ranks hold bit-identical trainable weights
    assert latest_checkpoint(tmp_path / "ddp").name == "step_00000003"
    import osum

    start = osum.load("tiny", device="cpu").model.state_dict()
    trained = _weights(tmp_path / "ddp")
    assert not torch.equal(start["adaptor.proj.weight"], trained["adaptor.proj.weight"])  # it did train
    assert torch.equal(start["encoder.conv1.weight"], trained["encoder.conv1.weight"])  # frozen stays frozen


@pytest.mark.slow
def test_the_example_config_runs_as_is_on_synthetic_corpora(tmp_path):
    """recipes/examples/asr_x.yaml with the two `osum data synth` corpora its comments name (a new user's first run)."""
    example = Path(__file__).resolve().parents[2] / "recipes" / "examples" / "asr_x.yaml"
    osum_cli = [sys.executable, "-m", "osum"]
    for out, seed in (("data/synth", "0"), ("data/synth-fast", "1")):
        made = subprocess.run(
            [*osum_cli, "data", "synth", out, "--hours", "0.005", "--seed", seed, "--quiet"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert made.returncode == 0, made.stderr[-2000:]
    overrides = ["train.max_steps=1", "train.grad_accum=1", "train.warmup_steps=1", "train.save_every=1"]
    run = subprocess.run(
        [*osum_cli, "train", str(example), *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert latest_checkpoint(tmp_path / "exp" / "asr_x").name == "step_00000001"
