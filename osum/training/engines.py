"""How a micro-batch becomes an optimizer step (one process, DDP or DeepSpeed ZeRO) behind one interface.

The trainer's loop is the same for all of them::

    with engine.accumulating(boundary):   # boundary: the last micro-batch before an optimizer step
        loss = engine.forward(batch)
        engine.backward(loss)
    if boundary:
        grad_norm = engine.step()         # clip + optimizer + scheduler + zero_grad

Every engine uses our AdamW and ``LambdaLR`` (DeepSpeed gets them as client optimizer and scheduler), so the
learning-rate schedule, the gradient scaling by ``1 / grad_accum`` and the clipping are the same everywhere.
Weights stay float32; bf16 runs as autocast (DeepSpeed: its ``torch_autocast`` section), so every checkpoint
holds exact float32 weights.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from osum.config import TrainConfig
from osum.errors import CheckpointError, ConfigError, OsumError
from osum.runtime import DistInfo

SHARD_DIR = "deepspeed"  # inside a step directory: DeepSpeed's own (partitioned) checkpoint
_DS_TAG = "zero"  # DeepSpeed checkpoint tag (one per step directory, so a fixed name)
INSTALL_HINT = (
    "pip install --no-build-isolation deepspeed==0.19.8 (or install osum with the `deepspeed` extra)"
)


def import_deepspeed() -> Any:
    """The ``deepspeed`` module, or a ConfigError saying how to install it (it is an optional extra)."""
    try:
        import deepspeed
    except ImportError:
        raise ConfigError(f"train.engine=deepspeed needs DeepSpeed: {INSTALL_HINT}") from None
    return deepspeed


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """``train.precision`` -> the autocast dtype, or None for plain float32 (auto: bf16 on CUDA only)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"train.precision {precision!r}: choose auto, fp32 or bf16")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class LossModule(nn.Module):
    """Batch -> scalar loss; the unit DDP and DeepSpeed wrap (its output is a plain tensor).

    A ``None`` batch (every utterance unreadable) gives a zero loss that still reaches every trainable weight,
    so this rank joins the gradient reduction of the others. With ``replay`` (DeepSpeed) the zero loss comes
    from re-running the last batch: ZeRO reduces gradients in the order they become ready and ZeRO-3 gathers
    weights at every module call, so this rank must run the same graph as the others.
    """

    def __init__(self, model: nn.Module, replay: bool = False) -> None:
        super().__init__()
        self.model, self.replay = model, replay
        self._last: Any = None

    def forward(self, batch: Any) -> torch.Tensor:
        if batch is not None:
            self._last = batch if self.replay else None
            return self.model(batch, full_logits=False).loss
        if not self.replay:
            return sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        if self._last is None:
            raise OsumError(
                "every utterance of this rank's first batch is unreadable, and under DeepSpeed a rank cannot "
                "skip a batch before it has seen one: check the audio files named in the warnings above"
            )
        device = self._last.feats.device
        # the replay must not draw dropout masks: the run continues as if the lost batch took no randomness
        with torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []):
            return self.model(self._last, full_logits=False).loss * 0.0


class Engine:
    """A single process: plain backward, ``clip_grad_norm_``, optimizer and scheduler steps."""

    sharded = False  # optimizer state is partitioned over ranks and saved by ``save_shards``
    collective_forward = False  # a forward pass needs every rank (ZeRO-3 gathers weights)

    def __init__(
        self,
        model: nn.Module,
        params: list[nn.Parameter],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        cfg: TrainConfig,
        device: torch.device,
    ) -> None:
        self.model, self.params, self.cfg = model, params, cfg
        self.module: nn.Module = LossModule(model)  # what forward() calls; engines may wrap it
        self.optimizer, self.scheduler = optimizer, scheduler
        self.dtype = autocast_dtype(cfg.precision, device)
        self.device = device
        self.optimizer.zero_grad(set_to_none=True)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The mixed-precision context of a forward pass (also used by validation)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def forward(self, batch: Any) -> torch.Tensor:
        """Batch (or None) -> scalar loss."""
        with self.autocast():
            return self.module(batch)

    @contextlib.contextmanager
    def accumulating(self, boundary: bool) -> Iterator[None]:
        """Around one micro-batch's forward and backward; ``boundary``: an optimizer step follows."""
        yield

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.cfg.grad_accum).backward()

    def step(self) -> float:
        """Clip, update, advance the schedule, clear gradients -> the gradient norm before clipping."""
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    # ------------------------------------------------------------------------------------------ checkpoints

    def optimizer_state(self) -> tuple[dict, dict]:
        """(optimizer, scheduler) state for ``trainer_state.pt``."""
        return self.optimizer.state_dict(), self.scheduler.state_dict()

    def _check_origin(self, state: dict[str, Any], ckpt: Path) -> None:
        """Optimizer state of DeepSpeed and of torch do not convert into each other: say so clearly."""
        if (SHARD_DIR in state["optimizer"]) == self.sharded:
            return
        if self.sharded:
            raise CheckpointError(
                f"{ckpt}: written by the single/ddp engine; its optimizer state cannot seed DeepSpeed "
                "(resume with that engine, or start a new run from these weights with train.init)"
            )
        raise CheckpointError(
            f"{ckpt}: written by train.engine=deepspeed (partitioned optimizer state); resume it with "
            "train.engine=deepspeed, or start a new run from these weights with train.init"
        )

    def load_optimizer_state(self, state: dict[str, Any], ckpt: Path) -> None:
        """Restore from a checkpoint's ``trainer_state.pt`` contents (``ckpt``: its step directory)."""
        self._check_origin(state, ckpt)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def save_shards(self, folder: Path) -> None:
        """All ranks: write the partitioned state into ``folder`` (nothing to do unless ``sharded``)."""

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """All ranks: the full float32 weights on rank 0 when the live model does not hold them, else None."""
        return None


class DDPEngine(Engine):
    """``DistributedDataParallel``; gradients are all-reduced only on the last micro-batch (``no_sync``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        device = self.device
        self.module = nn.parallel.DistributedDataParallel(
            self.module, device_ids=[device.index] if device.type == "cuda" else None
        )

    @contextlib.contextmanager
    def accumulating(self, boundary: bool) -> Iterator[None]:
        with contextlib.nullcontext() if boundary else self.module.no_sync():
            yield


def deepspeed_config(cfg: TrainConfig, device: torch.device) -> dict[str, Any]:
    """The DeepSpeed JSON config for ``cfg``, with the user's ``train.deepspeed_config`` merged over it."""
    if cfg.deepspeed_stage not in (0, 1, 2, 3):
        raise ConfigError(f"train.deepspeed_stage {cfg.deepspeed_stage}: choose 0, 1, 2 or 3 (ZeRO stage)")
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": 1,  # one dynamic batch per micro-step
        "gradient_accumulation_steps": cfg.grad_accum,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": cfg.deepspeed_stage},
        "zero_allow_untested_optimizer": True,  # our torch AdamW, so all engines optimise identically
        "steps_per_print": 2**31 - 1,  # osum logs progress itself
    }
    dtype = autocast_dtype(cfg.precision, device)
    if dtype is not None:
        config["torch_autocast"] = {"enabled": True, "dtype": "bfloat16"}
    if cfg.deepspeed_config:
        path = Path(cfg.deepspeed_config)
        try:
            user = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"train.deepspeed_config {path}: cannot read JSON: {exc}") from None
        if not isinstance(user, dict):
            raise ConfigError(f"train.deepspeed_config {path}: expected a JSON object")
        config = _merged(config, user)
    for key in ("bf16", "fp16"):
        if isinstance(config.get(key), dict) and config[key].get("enabled"):
            raise ConfigError(
                f"DeepSpeed config enables {key!r}, which keeps 16-bit weights; osum trains float32 weights "
                "under autocast so checkpoints stay exact: set train.precision=bf16 instead"
            )
    return config


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def load_trained_weights(src: dict[str, torch.Tensor], dst: nn.Module, where: Path) -> None:
    """Load a DeepSpeed checkpoint's module weights ``src`` (saved without the frozen parameters) into ``dst``.

    Raises CheckpointError naming the keys if ``src`` holds a weight ``dst`` does not have, or lacks one that
    trains in ``dst`` (a frozen parameter may be missing: it comes from the step's ``model.safetensors``).
    """
    result = dst.load_state_dict(src, strict=False)
    frozen = {name for name, p in dst.named_parameters() if not p.requires_grad}
    missing = [k for k in result.missing_keys if k not in frozen]
    if result.unexpected_keys or missing:
        raise CheckpointError(
            f"{where}: DeepSpeed checkpoint does not fit this model: "
            f"unexpected {result.unexpected_keys[:5]}, missing trained weights {missing[:5]} "
            f"({len(result.unexpected_keys)} unexpected, {len(missing)} missing); resume with the run's own config"
        )


class DeepSpeedEngine(Engine):
    """DeepSpeed ZeRO (stage from ``train.deepspeed_stage``) around our model, optimizer and schedule."""

    sharded = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        deepspeed = import_deepspeed()
        self.config = deepspeed_config(self.cfg, self.device)
        self.stage = int(self.config["zero_optimization"].get("stage", 0))
        self.collective_forward = self.stage == 3
        self.module.replay = True
        deepspeed.init_distributed(dist_backend=torch.distributed.get_backend(), dist_init_required=False)
        self.ds, _, _, _ = deepspeed.initialize(
            model=self.module,
            optimizer=self.optimizer,
            lr_scheduler=self.scheduler,
            config=self.config,
            dist_init_required=False,
        )
        self.module = self.ds  # self.model stays the plain model (under ZeRO-3 with partitioned weights)

    def forward(self, batch: Any) -> torch.Tensor:
        # DeepSpeed applies its own torch_autocast section (and disables an outer autocast it was not
        # configured for); ``autocast()`` remains for direct calls of the model, as in validation.
        return self.ds(batch)

    @contextlib.contextmanager
    def accumulating(self, boundary: bool) -> Iterator[None]:
        # Our loop owns the accumulation boundary; DeepSpeed then steps only when told (its documented
        # alternative to calling step() after every micro-batch).
        self.ds.set_gradient_accumulation_boundary(boundary)
        yield

    def backward(self, loss: torch.Tensor) -> None:
        self.ds.backward(loss)  # scales by 1 / gradient_accumulation_steps (= train.grad_accum)

    def step(self) -> float:
        self.ds.step()  # clip (gradient_clipping) + optimizer + our scheduler + zero_grad
        norm = self.ds.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def optimizer_state(self) -> tuple[dict, dict]:
        # the optimizer state itself lives in SHARD_DIR (one file per rank); this only points there
        return {SHARD_DIR: SHARD_DIR, "zero_stage": self.stage}, self.scheduler.state_dict()

    def load_optimizer_state(self, state: dict[str, Any], ckpt: Path) -> None:
        self._check_origin(state, ckpt)
        folder = ckpt / state["optimizer"][SHARD_DIR]
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: DeepSpeed checkpoint missing")
        # Frozen weights were not saved (exclude_frozen_parameters); they come from our model.safetensors, so
        # only they may be missing (checked by load_trained_weights, not by a blanket strict=False).
        path, _ = self.ds.load_checkpoint(
            str(folder), tag=_DS_TAG, custom_load_fn=lambda src, dst: load_trained_weights(src, dst, folder)
        )
        if path is None:
            raise CheckpointError(f"{folder}: DeepSpeed could not load its checkpoint")

    def save_shards(self, folder: Path) -> None:
        self.ds.save_checkpoint(str(folder), tag=_DS_TAG, save_latest=False, exclude_frozen_parameters=True)

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """CPU copies of the weights on rank 0, gathered module by module (ZeRO-3 partitions them).

        Copies even below ZeRO-3, where every rank holds full weights: DeepSpeed makes them views into one
        flat buffer, which safetensors refuses to save as they are.
        """
        import deepspeed

        main = torch.distributed.get_rank() == 0
        full: dict[int, torch.Tensor | None] = {}  # id(param) -> CPU copy (rank 0); tied weights once
        for module in self.model.modules():
            own = [p for p in module.parameters(recurse=False) if id(p) not in full]
            if not own:
                continue
            # collective under ZeRO-3 (every rank gathers, nobody writes back); a no-op for full weights
            with deepspeed.zero.GatheredParameters(own, modifier_rank=None):
                for p in own:
                    full[id(p)] = p.detach().to("cpu", torch.float32, copy=True) if main else None
        if not main:
            return None
        return {
            name: full[id(t)] if isinstance(t, nn.Parameter) else t.detach().cpu()
            for name, t in self.model.state_dict(keep_vars=True).items()
        }


def build_engine(
    model: nn.Module,
    params: list[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    device: torch.device,
    dist: DistInfo,
) -> Engine:
    """``train.engine`` -> an engine training ``model`` (auto: DDP with several processes, else single)."""
    name = cfg.engine
    if name == "auto":
        name = "ddp" if dist.distributed else "single"
    kinds = {"single": Engine, "ddp": DDPEngine, "deepspeed": DeepSpeedEngine}
    if name not in kinds:
        raise ConfigError(f"train.engine {cfg.engine!r}: choose auto, single, ddp or deepspeed")
    if name == "single" and dist.distributed:
        raise ConfigError("train.engine=single under torchrun with several processes: use ddp or deepspeed")
    return kinds[name](model, params, optimizer, scheduler, cfg, device)
