"""One training loop for every engine: a single process, or DDP under ``torchrun`` (gloo on CPU, nccl on GPU).

``Trainer.fit`` reads like the recipe: load the start model -> choose what trains -> optimizer and schedule ->
(resume) -> plan batches per epoch -> forward/backward with gradient accumulation and clipping -> log -> save.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn

from osum.api import Osum, load
from osum.config import RunConfig, save_yaml
from osum.data.dataset import TrainingData
from osum.data.sampler import shard_for_rank
from osum.errors import ConfigError
from osum.model.osum import Batch, OsumModel
from osum.runtime import DistInfo, dist_info
from osum.training.optim import build_optimizer, build_scheduler, set_trainable
from osum.training.state import (
    Position,
    latest_checkpoint,
    load_training_state,
    save_training_state,
    set_rng_state,
)

log = logging.getLogger(__name__)


class LossModule(nn.Module):
    """Batch -> scalar loss; the unit DDP wraps (its output is a plain tensor)."""

    def __init__(self, model: OsumModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch | None) -> torch.Tensor:
        if batch is None:  # every utterance of this batch was unreadable: a zero loss keeps DDP ranks in step
            return sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        return self.model(batch, full_logits=False).loss


class Trainer:
    def __init__(self, run: RunConfig, resume: bool = False) -> None:
        self.run, cfg = run, run.train
        self.dist: DistInfo = dist_info()
        self.out = Path(cfg.out_dir)
        self.device = self._setup_device()
        ckpt = latest_checkpoint(self.out) if resume else None
        if resume and ckpt is None:
            log.warning("--resume: no checkpoint in %s yet, starting from %s", self.out, cfg.init)
        self.osum: Osum = load(ckpt or cfg.init, device=self.device, dtype=torch.float32)
        model = self.osum.model
        params = set_trainable(model, cfg.train_modules)
        if cfg.grad_checkpointing:
            model.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.encoder.gradient_checkpointing = model.adaptor.gradient_checkpointing = True
        self.optimizer = build_optimizer(params, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg)
        self.position = Position()
        state = load_training_state(ckpt) if ckpt else None
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.position = Position(**state["position"])
        self.data = TrainingData(
            run.data.train,
            run.data,
            self.osum.tokenizer,
            self.osum.prompts,
            model.config.llm.eos_token_id,
            model.config.encoder.n_mels,
        )
        self.valid = None
        if run.data.valid:
            self.valid = TrainingData(
                run.data.valid,
                run.data,
                self.osum.tokenizer,
                self.osum.prompts,
                model.config.llm.eos_token_id,
                model.config.encoder.n_mels,
            )
        if state is not None:
            set_rng_state(state["rng"])
        else:
            torch.manual_seed(cfg.seed + self.dist.rank)
        self.loss_module: nn.Module = LossModule(model)
        if self.dist.distributed:
            self.loss_module = nn.parallel.DistributedDataParallel(
                self.loss_module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.params = params
        self._log_file = None
        self._tb = None
        self._saved_step = self.position.step

    def _setup_device(self) -> torch.device:
        cfg = self.run.train
        if cfg.engine not in ("auto", "single", "ddp"):
            raise ConfigError(f"train.engine {cfg.engine!r}: choose auto, single or ddp")
        if cfg.engine == "ddp" and not self.dist.distributed:
            raise ConfigError(
                "train.engine=ddp needs several processes: launch with torchrun --nproc_per_node N"
            )
        cuda = torch.cuda.is_available()
        device = torch.device("cuda", self.dist.local_rank) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        if self.dist.distributed and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if cuda else "gloo")
        return device

    # ------------------------------------------------------------------------------------------------ loop

    def _autocast(self) -> contextlib.AbstractContextManager:
        p = self.run.train.precision
        if p not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"train.precision {p!r}: choose auto, fp32 or bf16")
        if p == "bf16" or (p == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        batches = shard_for_rank(self.data.plan(epoch), self.dist.rank, self.dist.world_size)
        subset = self.data.batch_set(batches[start:], epoch)
        # An explicit generator keeps the DataLoader from drawing on the global RNG (dropout's), so a resumed
        # run's random stream is exactly the uninterrupted run's.
        return torch.utils.data.DataLoader(
            subset,
            batch_size=None,
            shuffle=False,
            num_workers=self.run.data.num_workers,
            generator=torch.Generator().manual_seed(epoch),
            persistent_workers=False,
        )

    def fit(self) -> Position:
        cfg, pos = self.run.train, self.position
        model = self.osum.model.train()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_yaml(self.run, self.out / "run.yaml")
        bar = self._progress(pos.step)
        micro, t0, window = 0, time.time(), {"loss": 0.0, "n": 0, "audio_s": 0.0, "skipped": 0}
        self.optimizer.zero_grad(set_to_none=True)
        while pos.step < cfg.max_steps and pos.epoch < cfg.max_epochs:
            for batch, bad in self._loader(pos.epoch, pos.batch):
                batch = batch.to(self.device) if batch is not None else None
                micro += 1
                sync = micro % cfg.grad_accum == 0
                ctx = (
                    self.loss_module.no_sync()
                    if self.dist.distributed and not sync
                    else contextlib.nullcontext()
                )
                with ctx, self._autocast():
                    loss = self.loss_module(batch)
                    (loss / cfg.grad_accum).backward()
                pos.batch += 1
                window["loss"] += loss.item()
                window["n"] += 1
                window["skipped"] += bad
                if batch is not None:
                    window["audio_s"] += float(batch.feat_lengths.sum()) / 100
                if not sync:
                    continue
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                pos.step += 1
                if pos.step % cfg.log_every == 0 or pos.step == cfg.max_steps:
                    self._log(pos, window, float(grad_norm), time.time() - t0, bar)
                    window, t0 = {"loss": 0.0, "n": 0, "audio_s": 0.0, "skipped": 0}, time.time()
                if cfg.valid_every and pos.step % cfg.valid_every == 0:
                    self.validate()
                if pos.step % cfg.save_every == 0 or pos.step == cfg.max_steps:
                    if not cfg.valid_every:
                        self.validate()
                    self.save()
                if pos.step >= cfg.max_steps:
                    break
            else:
                pos.epoch, pos.batch = pos.epoch + 1, 0
                continue
            break
        if self._saved_step != pos.step:  # stopped by max_epochs between checkpoints
            self.save()
        if bar is not None:
            bar.close()
        if self._tb:
            self._tb.close()
        model.eval()
        return pos

    # ----------------------------------------------------------------------------------------- side jobs

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss over the validation manifests (no SpecAugment), logged as ``valid_loss``; rank 0 only.

        The RNG state is saved and restored around it, so validating never changes the training run.
        """
        if self.valid is None or not self.dist.is_main:
            return None
        from osum.training.state import rng_state

        rng, model = rng_state(), self.osum.model
        model.eval()
        total, n = 0.0, 0
        for batch, _ in self.valid.batch_set(self.valid.plan(0), epoch=0, train=False):
            if batch is None:
                continue
            with self._autocast():
                total += model(batch.to(self.device), full_logits=False).loss.item()
            n += 1
        model.train()
        set_rng_state(rng)
        loss = total / max(n, 1)
        self._write({"step": self.position.step, "valid_loss": loss, "valid_batches": n, "time": time.time()})
        return loss

    def _write(self, record: dict) -> None:
        if self._log_file is None:
            self._log_file = open(self.out / "train_log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self._log_file.write(json.dumps(record) + "\n")
        self._log_file.flush()

    def save(self) -> Path | None:
        """Checkpoint on rank 0 (the other ranks hold identical weights); all ranks wait for it."""
        path = None
        self._saved_step = self.position.step
        if self.dist.is_main:
            path = save_training_state(
                self.out,
                self.position,
                self.osum.save,
                self.optimizer.state_dict(),
                self.scheduler.state_dict(),
                self.run.train.keep_last,
            )
        if self.dist.distributed:
            torch.distributed.barrier()
        return path

    def _progress(self, initial: int):
        if not self.dist.is_main:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.run.train.max_steps, initial=initial, desc="train", unit="step", dynamic_ncols=True
        )

    def _log(self, pos: Position, window: dict, grad_norm: float, seconds: float, bar) -> None:
        if not self.dist.is_main:
            return
        n = max(window["n"], 1)
        record = {
            "step": pos.step,
            "epoch": pos.epoch,
            "loss": window["loss"] / n,
            "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": grad_norm if math.isfinite(grad_norm) else None,
            "audio_seconds_per_second": window["audio_s"] * self.dist.world_size / max(seconds, 1e-9),
            "seconds_per_step": seconds / max(window["n"] / self.run.train.grad_accum, 1e-9),
            "skipped_utterances": window["skipped"],
            "time": time.time(),
        }
        self._write(record)
        self._tensorboard(record)
        if bar is not None:
            bar.n = pos.step
            bar.set_postfix(
                loss=f"{record['loss']:.3f}",
                lr=f"{record['lr']:.2e}",
                audio_x=f"{record['audio_seconds_per_second']:.1f}",
            )
            bar.refresh()

    def _tensorboard(self, record: dict) -> None:
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional: JSONL logs are always written
                self._tb = False
                log.warning("tensorboard is not installed; logging to train_log.jsonl only")
                return
            self._tb = SummaryWriter(str(self.out / "tensorboard"))
        if self._tb:
            for key in ("loss", "lr", "grad_norm", "audio_seconds_per_second"):
                if record[key] is not None:
                    self._tb.add_scalar(f"train/{key}", record[key], record["step"])
