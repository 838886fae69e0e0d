"""Does an LLM-stage checkpoint read the audio? Teacher-forced loss with each clip's own audio vs another clip's.

    .venv/bin/python bench/audio_reliance.py CHECKPOINT data/synth/valid.jsonl [--batches 3] [--config recipes/mini/stage2.yaml]

Batches are built as in training (the config's batching and prompts, no SpecAugment). The audio is then rolled by
one clip within each batch. Equal losses mean the LLM ignores the speech; prints and returns both as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from osum.config import RunConfig, load_yaml
from osum.training.trainer import Trainer


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("manifest")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--config", default="recipes/mini/stage2.yaml")
    p.add_argument(
        "--out-dir", default="/tmp/osum-audio-reliance", help="scratch train.out_dir (nothing is saved)"
    )
    args = p.parse_args()
    overrides = [
        f"train.init={args.checkpoint}",
        f"data.train=[{{path: {args.manifest}}}]",
        f"train.out_dir={args.out_dir}",
        "data.num_workers=0",
        "data.spec_augment=false",
    ]
    trainer = Trainer(load_yaml(RunConfig, args.config, overrides))
    model = trainer.objective.eval()
    own = other = 0.0
    batches = iter(trainer._loader(0, 0))
    with torch.no_grad():
        for _ in range(args.batches):
            batch, _ = next(batches)
            own += float(model(batch, full_logits=False).loss)
            batch.feats, batch.feat_lengths = batch.feats.roll(1, 0), batch.feat_lengths.roll(1, 0)
            batch.speech_tokens = None
            other += float(model(batch, full_logits=False).loss)
    result = {
        "checkpoint": args.checkpoint,
        "loss_own_audio": own / args.batches,
        "loss_other_audio": other / args.batches,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
