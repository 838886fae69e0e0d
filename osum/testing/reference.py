"""Rebuild the weights of an OSUM reference fixture folder (``shared/fixtures/osum_reference`` format).

The fixture README (section 5) defines every parameter by a closed formula over its sorted index ``k`` and shape;
the two position tables come from ``buffers.npz``. :func:`write_reference_infer_pt` writes them as an OSUM-style
flat ``infer.pt`` so the parity tests exercise the real ``convert-osum`` path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from osum.model.osum import Batch

_NORM_SUFFIXES = (
    "norm1.weight",
    "norm2.weight",
    "after_norm.weight",
    "embed.out.1.weight",
    "ln_speech.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
    "model.norm.weight",
)


def formula_tensor(k: int, shape: list[int], one_plus: bool, consts: dict) -> np.ndarray:
    """The fixture's deterministic filling for the entry with sorted index ``k`` (README section 5)."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    q = (i * (i + (consts["q_mul"] * k + consts["q_add"]))) % consts["modulus"]
    theta = (consts["a_i"] * i.astype(np.float64) + (consts["a_k"] * k + consts["s"])) + consts[
        "a_q"
    ] * q.astype(np.float64)
    amp = 1.0 / np.sqrt(n / shape[0]) if len(shape) >= 2 else 0.02
    w = amp * np.sin(theta)
    if one_plus:
        w = 1.0 + w
    return w.astype(np.float32).reshape(shape)


def reference_state_dict(fixture_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The full OSUM state dict of the fixture (aliases share storage with their originals, as in OSUM)."""
    folder = Path(fixture_dir)
    entries = json.loads((folder / "keys.json").read_text())
    cfg = json.loads((folder / "config.json").read_text())["weights"]
    consts = dict(cfg["constants"], modulus=cfg["modulus"], s=cfg["phase_offset_s"])
    buffers = np.load(folder / "buffers.npz")
    sd: dict[str, torch.Tensor] = {}
    for e in entries:
        if e["init"] in ("sine", "one_plus_sine"):
            one_plus = e["init"] == "one_plus_sine"
            if one_plus != e["name"].endswith(_NORM_SUFFIXES):
                raise ValueError(f"fixture init of {e['name']} disagrees with the norm-weight rule")
            sd[e["name"]] = torch.from_numpy(formula_tensor(e["k"], e["shape"], one_plus, consts))
        elif e["init"] == "computed_buffer":
            sd[e["name"]] = torch.from_numpy(buffers[e["name"]])
    for e in entries:
        if e["init"].startswith("alias_of:"):
            sd[e["name"]] = sd[e["init"].split(":", 1)[1]]
    return sd


def write_reference_infer_pt(fixture_dir: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Save the fixture's weights the way OSUM releases them: ``torch.save`` of the flat state dict."""
    path = Path(path)
    torch.save(reference_state_dict(fixture_dir), path)
    return path


def reference_llm_config(fixture_dir: str | os.PathLike) -> dict:
    """The fixture's Qwen2 config dict (``config.json`` -> ``llm_config``)."""
    return json.loads((Path(fixture_dir) / "config.json").read_text())["llm_config"]


def single_batch(ref: dict) -> Batch:
    """A fixture file's one utterance (``single*.npz``: mel, prompt_ids, label_ids) as a batch of one."""
    mel = torch.from_numpy(ref["mel"])[None]
    p, t = torch.from_numpy(ref["prompt_ids"])[None], torch.from_numpy(ref["label_ids"])[None]
    return Batch(
        mel, torch.tensor([mel.shape[1]]), p, torch.tensor([p.shape[1]]), t, torch.tensor([t.shape[1]])
    )


def padded_batch(b: dict) -> Batch:
    """``batch.npz`` as OSUM's collate padded it (prompt pad -1 and target pad -100 become 0: masked anyway)."""
    return Batch(
        torch.from_numpy(b["batch_feats"]),
        torch.from_numpy(b["batch_feats_lengths"]).long(),
        torch.from_numpy(b["batch_prompt"]).clamp(min=0),
        torch.from_numpy(b["batch_prompt_lengths"]).long(),
        torch.from_numpy(b["batch_target"]).clamp(min=0),
        torch.from_numpy(b["batch_target_lengths"]).long(),
    )
