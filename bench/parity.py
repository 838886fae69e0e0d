"""Measure parity with the original OSUM code on the reference fixtures; write the max abs diffs as JSON.

    .venv/bin/python bench/parity.py [--fixture DIR] [--out bench/results/parity.json]

Same path as tests/parity: rebuild the fixture weights, save them as an OSUM infer.pt, `convert_osum`, load, and
compare each stage, for each utterance alone and for the padded batch (each row against that utterance alone).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from osum.checkpoint import load_checkpoint
from osum.convert.osum_pt import convert_osum
from osum.data.audio import log_mel_spectrogram
from osum.model.osum import Batch
from osum.testing.reference import padded_batch, reference_llm_config, single_batch, write_reference_infer_pt

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "osum_reference"


def _diff(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.abs(a.detach().float().numpy() - b).max())


def stages(model, batch: Batch, ref: dict, row: int) -> dict[str, float]:
    with torch.no_grad():
        enc, enc_len = model.encoder(batch.feats, batch.feat_lengths)
        speech, _ = model.adaptor(enc, enc_len)
        out = model(batch, output_hidden_states=True)
    n_enc, n_sp, s = (
        int(ref["encoder_mask"][0].sum()),
        ref["speech_proj_out"].shape[1],
        ref["inputs_embeds"].shape[1],
    )
    cols = torch.from_numpy(ref["logits_cols"]).long()
    row_loss = torch.nn.functional.cross_entropy(
        out.logits[row, : s - 1], out.labels[row, 1:s], ignore_index=-100
    )
    return {
        "encoder_out": _diff(enc[row, :n_enc], ref["encoder_out"][0]),
        "adaptor_out": _diff(speech[row, :n_sp], ref["speech_proj_out"][0]),
        "inputs_embeds": _diff(out.inputs_embeds[row, :s], ref["inputs_embeds"][0]),
        "llm_final_hidden": _diff(out.hidden_states[-1][row, :s], ref["llm_final_hidden"][0]),
        "logits_sel": _diff(out.logits[row, :s][:, cols], ref["logits_sel"][0]),
        "loss": abs(row_loss.item() - float(ref["loss"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", default=os.environ.get("OSUM_REFERENCE_FIXTURE") or str(DEFAULT))
    ap.add_argument("--out", default="bench/results/parity.json")
    args = ap.parse_args()
    fixture = Path(args.fixture)
    with tempfile.TemporaryDirectory() as tmp:
        pt = write_reference_infer_pt(fixture, Path(tmp) / "infer.pt")
        model, _, _ = load_checkpoint(
            convert_osum(pt, Path(tmp) / "ckpt", llm_config=reference_llm_config(fixture))
        )
    result: dict = {"fixture": str(fixture), "torch": torch.__version__}
    singles = {}
    for name in ("single.npz", "single_short.npz"):
        ref = dict(np.load(fixture / name))
        batch = single_batch(ref)
        singles[name] = ref
        result[name] = {
            "mel": _diff(log_mel_spectrogram(torch.from_numpy(ref["wave"])), ref["mel"]),
            **stages(model, batch, ref, 0),
        }
    b = dict(np.load(fixture / "batch.npz"))
    batch = padded_batch(b)
    for row, name in enumerate(singles):
        result[f"batch_row{row}_vs_{name}"] = stages(model, batch, singles[name], row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
