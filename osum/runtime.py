"""The one place that reads environment variables and picks devices and dtypes."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch


def cache_dir() -> Path:
    """Where osum caches derived files (converted tokenizers, base weights). ``OSUM_CACHE_DIR`` overrides."""
    root = os.environ.get("OSUM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "osum"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def reference_fixture_dir() -> Path:
    """Folder of OSUM reference fixtures used by the parity tests (``OSUM_REFERENCE_FIXTURE``)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "osum_reference"
    return Path(os.environ.get("OSUM_REFERENCE_FIXTURE") or default)


def trained_models_dir() -> Path:
    """Where the trained mini models live: ``OSUM_MODELS_DIR`` if set, else ``models/`` of the source tree (a
    checkout or an editable install), else ``<prefix>/share/osum/models`` (where a wheel installs them)."""
    if os.environ.get("OSUM_MODELS_DIR"):
        return Path(os.environ["OSUM_MODELS_DIR"])
    source = Path(__file__).resolve().parents[1] / "models"
    return source if source.is_dir() else Path(sys.prefix) / "share" / "osum" / "models"


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def parse_dtype(name: str | torch.dtype | None, device: torch.device | None = None) -> torch.dtype:
    """Turn ``"bf16"``/``"float32"``/``None`` into a torch dtype. ``None`` means bf16 on CUDA, fp32 on CPU."""
    if isinstance(name, torch.dtype):
        return name
    if name is None or name == "auto":
        dev = device or default_device()
        return torch.bfloat16 if dev.type == "cuda" else torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        from osum.errors import ConfigError

        raise ConfigError(f"unknown dtype {name!r}; choose one of {sorted(_DTYPES)}") from None


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a distributed run (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """Read torchrun's environment; a plain ``python`` run is rank 0 of 1."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )
