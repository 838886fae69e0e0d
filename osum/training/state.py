"""Training checkpoints: ``OUT/checkpoints/step_NNNNNNNN/`` = an osum checkpoint + ``trainer_state.pt``.

``trainer_state.pt`` holds what exact resumption needs: optimizer and scheduler state, the step, the data position
(epoch, micro-batches consumed) and the RNG states. It contains only tensors and plain containers, so it loads with
``torch.load(weights_only=True)``. Each checkpoint is written into a temporary folder and renamed when complete, so
a run killed while saving never leaves a half checkpoint that ``--resume`` would pick up.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from osum.errors import CheckpointError

STATE_FILE = "trainer_state.pt"


@dataclass
class Position:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch: int = 0  # micro-batches of `epoch` already consumed by this rank


def checkpoint_dir(out_dir: Path, step: int) -> Path:
    return out_dir / "checkpoints" / f"step_{step:08d}"


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    out_dir: Path,
    position: Position,
    write_model: Any,
    optimizer_state: dict,
    scheduler_state: dict,
    keep_last: int,
) -> Path:
    """Write a complete checkpoint for ``position.step`` atomically; ``write_model(dir)`` saves the model."""
    final = checkpoint_dir(out_dir, position.step)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write_model(tmp)
    torch.save(
        {
            "position": vars(position).copy(),
            "optimizer": optimizer_state,
            "scheduler": scheduler_state,
            "rng": rng_state(),
        },
        tmp / STATE_FILE,
    )
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in sorted(final.parent.glob("step_????????"))[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out_dir: Path) -> Path | None:
    """Newest complete checkpoint of a run (temporary folders of an interrupted save are ignored)."""
    found = [p for p in sorted((out_dir / "checkpoints").glob("step_????????")) if (p / STATE_FILE).is_file()]
    return found[-1] if found else None


def load_training_state(ckpt: Path) -> dict[str, Any]:
    try:
        return torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the checkpoint cannot be resumed
        raise CheckpointError(f"{ckpt / STATE_FILE}: cannot read trainer state: {exc}") from None
