"""Warm starts: a new run takes parts of another model (stage 1's encoder, stage 1's label classifiers).

Here rather than in :mod:`osum.checkpoint` because the source may be anything :func:`osum.load` reads (a
checkpoint, an exported release, a preset), and ``osum.api`` itself builds on ``osum.checkpoint``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from osum.api import load
from osum.checkpoint import WEIGHTS_FILE, load_strict, read_config
from osum.errors import CheckpointError, ConfigError
from osum.model.label_tokens import LabelTokens
from osum.model.osum import OsumModel
from osum.model.whisper_tasks import WhisperTaskModel


def load_encoder_from(model: torch.nn.Module, source: str | os.PathLike) -> None:
    """Replace ``model.encoder``'s weights with another model's encoder (stage 1 -> stage 2), strictly.

    ``source`` is a checkpoint directory, or anything :func:`osum.load` reads (an exported release such as
    ``models/mini-stage1``, or a preset name).
    """
    path = Path(source) / WEIGHTS_FILE
    if not path.is_file():
        other = load(source, device="cpu", dtype=torch.float32).model
        load_strict(model.encoder, other.encoder.state_dict(), f"encoder of {source}")
        return
    read_config(source)  # a clear error when it is not a checkpoint
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights: {str(exc).strip()}") from None
    encoder = {k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")}
    load_strict(model.encoder, encoder, f"encoder of {source}")


def load_label_heads_from(model: OsumModel | WhisperTaskModel, source: str | os.PathLike) -> None:
    """Give ``model`` the label classifiers of another model (e.g. stage 1's ``models/mini-stage1``): the trunk and
    heads of its label tokens, whether they read pitch (``label_pitch``) and how (``label_head``). The class vectors the LLM reads
    (osum models' soft label tokens) stay ``model``'s own. Both must read the same encoder and label fields."""
    mine = model.label_tokens
    if mine is None:
        raise ConfigError("train.init_label_heads: this model has no label tokens (set train.label_tokens)")
    other = load(source, device="cpu", dtype=torch.float32)
    theirs = other.model.label_tokens
    if theirs is None:
        raise ConfigError(f"train.init_label_heads: {source} has no label heads")
    if theirs.fields != mine.fields:
        raise ConfigError(
            f"train.init_label_heads: {source} classifies {list(theirs.fields)}, this model {list(mine.fields)}"
        )
    if other.config.encoder != model.config.encoder:
        raise ConfigError(f"train.init_label_heads: {source} reads another encoder than this model")
    hidden = next(iter(mine.values.values())).shape[1] if len(mine.values) else 0
    new = LabelTokens(model.config.encoder.d_model, hidden, list(mine.fields), theirs.pitch, theirs.head)
    state = {k: v for k, v in theirs.state_dict().items() if not k.startswith("values.")}
    state.update({k: v for k, v in mine.state_dict().items() if k.startswith("values.")})
    new.load_state_dict(state, strict=True)
    model.label_tokens = new.to(next(mine.parameters()).device)
    model.config.label_pitch = theirs.pitch
    model.config.label_head = theirs.head
