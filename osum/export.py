"""Small model folders holding only what training changed; the pretrained bases come from their sources at load.

A trained ``mini`` checkpoint is ~700 MB in float32, but training changed only the adaptor, the speech markers,
LoRA and perhaps the encoder (stage 1: Whisper's layers and the rows of the tokens it learnt). ``export_delta``
writes::

    OUT/config.yaml         the model config (``trained: true``), whose ``sources`` name the pretrained bases
    OUT/delta.safetensors   every tensor that differs from the base build, in float16 by default
    OUT/prompts.yaml        the prompt sets

A tensor whose value does not come from a source (random initialisation: adaptor, LoRA A, speech markers) is
always stored whole, so loading never depends on a random generator. A tensor where only some rows changed (an
embedding table with a few trained rows) is stored as ``KEY::rows`` (row indices) + ``KEY::values``. Loading builds
the base from ``config.sources`` and applies the delta strictly: an unknown key or a wrong shape is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from osum.checkpoint import (
    CONFIG_FILE,
    PROMPTS_FILE,
    build_model,
    load_checkpoint,
    usual_file_mode,
    widen_speech_field,
)
from osum.config import ModelConfig, load_yaml, save_yaml
from osum.errors import CheckpointError
from osum.tasks import PromptTable, default_prompts

DELTA_FILE = "delta.safetensors"
FORMAT = "osum-delta/1"
ROWS, VALUES = "::rows", "::values"


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    bytes: int  # size of delta.safetensors
    whole: list[str]  # tensors stored whole
    rows: dict[str, int]  # tensors stored by rows: key -> changed rows


def is_delta_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / DELTA_FILE).is_file() and (Path(path) / CONFIG_FILE).is_file()


def _random_keys(config: ModelConfig, base: dict[str, torch.Tensor]) -> set[str]:
    """Keys whose base value (``base``, built with seed 0) is random initialisation: another seed changes them."""
    other = build_model(config, seed=1)[0].state_dict()
    return {k for k in base if not torch.equal(base[k], other[k])}


def export_delta(
    checkpoint: str | os.PathLike, out_dir: str | os.PathLike, dtype: torch.dtype = torch.float16
) -> ExportSummary:
    """Write the tensors of ``checkpoint`` (an osum checkpoint directory) that differ from its base build."""
    model, _, _ = load_checkpoint(Path(checkpoint), torch.device("cpu"), torch.float32)
    config = model.config
    if not any(getattr(config.sources, name) for name in ("encoder", "llm")):
        raise CheckpointError(f"{checkpoint}: the config names no pretrained sources; a delta needs a base")
    trained = model.state_dict()
    base_config = replace(config, trained=False)
    base = build_model(base_config, seed=0)[0].state_dict()
    random_keys = _random_keys(base_config, base)
    tensors: dict[str, torch.Tensor] = {}
    whole, rows = [], {}
    for key, value in trained.items():
        if key not in base or base[key].shape != value.shape:
            raise CheckpointError(f"{checkpoint}: tensor {key!r} does not match the base build of its config")
        if key not in random_keys and torch.equal(base[key], value):
            continue
        stored = value.to(dtype) if value.is_floating_point() else value
        if key not in random_keys and value.dim() >= 2:
            changed = (base[key] != value).flatten(1).any(1).nonzero().flatten()
            if len(changed) * 2 < value.shape[0]:
                tensors[key + ROWS] = changed.to(torch.int64)
                tensors[key + VALUES] = stored[changed].contiguous()
                rows[key] = len(changed)
                continue
        tensors[key] = stored.contiguous()
        whole.append(key)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / DELTA_FILE), metadata={"format": FORMAT})
    usual_file_mode(out / DELTA_FILE)
    save_yaml(replace(config, trained=True), out / CONFIG_FILE)
    source_prompts = Path(checkpoint) / PROMPTS_FILE
    prompts = PromptTable.load(source_prompts) if source_prompts.is_file() else default_prompts()
    prompts.save(out / PROMPTS_FILE)
    return ExportSummary(out, (out / DELTA_FILE).stat().st_size, whole, rows)


def load_delta(path: str | os.PathLike, device: torch.device, llm_dtype: torch.dtype | None):
    """An exported folder -> (model, tokenizer, prompts): base from ``config.sources``, then the delta (strict)."""
    folder = Path(path)
    config = load_yaml(ModelConfig, folder / CONFIG_FILE)
    try:
        delta = load_file(str(folder / DELTA_FILE))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{folder / DELTA_FILE}: unreadable ({exc})") from None
    model, tokenizer = build_model(config, seed=0)
    state = model.state_dict()
    delta = widen_speech_field(state, delta)  # an export made before the speech field's "vocal"
    for key in sorted(delta):
        name = key.removesuffix(ROWS).removesuffix(VALUES)
        if name not in state:
            raise CheckpointError(
                f"{folder / DELTA_FILE}: {name!r} is not a tensor of a {config.name!r} model"
            )
        if key.endswith(VALUES):
            continue
        target = state[name]
        with torch.no_grad():
            if key.endswith(ROWS):
                values = delta.get(name + VALUES)
                index = delta[key]
                if values is None or values.shape[1:] != target.shape[1:] or len(index) != len(values):
                    raise CheckpointError(
                        f"{folder / DELTA_FILE}: rows of {name!r} do not fit {tuple(target.shape)}"
                    )
                if len(index) and (index.min() < 0 or index.max() >= target.shape[0]):
                    raise CheckpointError(f"{folder / DELTA_FILE}: row index out of range for {name!r}")
                target[index] = values.to(target.dtype)
            else:
                if delta[key].shape != target.shape:
                    raise CheckpointError(
                        f"{folder / DELTA_FILE}: {name!r} has shape {tuple(delta[key].shape)}, "
                        f"the model needs {tuple(target.shape)}"
                    )
                target.copy_(delta[key].to(target.dtype))
    if config.architecture == "osum":
        model.place(device, llm_dtype)
    else:
        model.to(device)
    prompts = PromptTable.load(folder / PROMPTS_FILE) if (folder / PROMPTS_FILE).is_file() else None
    return model.eval(), tokenizer, prompts
