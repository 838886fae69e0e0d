"""CTC-greedy WER of a CTC pre-stage checkpoint on a test manifest (how far the adaptor alone has got).

    .venv/bin/python bench/ctc_greedy.py exp/mini/ctc/checkpoints/step_00000500 data/synth/test.jsonl [--out x.json]

Reads ``ctc_head.safetensors`` (blank, logit scale, scored token ids) beside the weights; writes {"wer", "n", "frame_norm", "embedding_norm", "examples"} as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import osum
from osum.data.audio import log_mel_spectrogram
from osum.data.collate import collate
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import word_errors
from osum.evaluation.normalize import normalize_english
from osum.model.ctc import CTCObjective
from osum.training.trainer import CTC_HEAD_FILE


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("manifest")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--out")
    p.add_argument(
        "--cosine-scale",
        type=float,
        default=0.0,
        help="the run's train.ctc_cosine_scale, for heads saved before the head file recorded it",
    )
    args = p.parse_args()
    model = osum.load(args.checkpoint, device="cpu", dtype="float32")
    head = load_file(str(Path(args.checkpoint) / CTC_HEAD_FILE))
    scale = float(head["cosine_scale"]) if "cosine_scale" in head else args.cosine_scale
    # the tokens it was trained to score, scored as in training
    objective = CTCObjective(model.model, head["vocab"].tolist(), cosine_scale=scale)
    objective.blank.data.copy_(head["blank"])
    objective.log_scale.data.copy_(head.get("log_scale", torch.zeros(())))
    objective.eval()
    utts = [u for u in read_any(args.manifest, require_target=False) if u.text][: args.limit]
    refs, hyps, norms = [], [], []
    for start in range(0, len(utts), args.batch_size):
        chunk = utts[start : start + args.batch_size]
        feats = [log_mel_spectrogram(load_utterance_audio(u)) for u in chunk]
        batch = collate(feats, [[] for _ in chunk], [[] for _ in chunk])
        with torch.inference_mode():
            ids = objective.greedy(batch)
            speech, lengths = model.model.encode_speech(batch.feats, batch.feat_lengths)
            norms += [float(speech[i, : int(n)].norm(dim=-1).mean()) for i, n in enumerate(lengths)]
        hyps += [model.tokenizer.decode(x) for x in ids]
        refs += [u.text for u in chunk]
    counts = word_errors(refs, hyps, normalize_english)
    result = {
        "checkpoint": args.checkpoint,
        "manifest": args.manifest,
        "n": len(refs),
        "wer": counts.rate,
        "counts": counts.to_dict(),
        # what the LLM stage will read: the frames' mean norm against the embedding table's
        "frame_norm": sum(norms) / len(norms),
        "embedding_norm": float(objective.target_norm),
        "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps, strict=True))[:5]],
    }
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
