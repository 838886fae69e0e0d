"""Which features read a voice's gender so that it carries over to voices and recordings never trained on?

    .venv/bin/python bench/gender_probe.py --synth DATA --offgen OFFGEN [--train 500] [--out probe.json]

Per clip: the Whisper tiny.en encoder's output after each of its layers (padded 30 s window, as the models run it;
mean and standard deviation over the clip's own frames) and the pitch statistics of osum/data/pitch.py. A logistic
regression per feature set is fitted on ``--train`` clips of DATA/train.jsonl (voice gender from the synthesizer)
and scored on DATA/test.jsonl (unseen synthetic voices, augmented), OFFGEN/heldout_gender.jsonl (held-out plain
voices) and OFFGEN/real_gender.jsonl (a recorded speaker whose gender the package documents). Writes
``{"clips": {...}, "accuracy": {feature_set: {split: %}}}``. The measurement behind ``ModelConfig.label_pitch``
(recipes/mini/RESULTS.md section 10).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
import torch.nn.functional as F

import osum
from osum.data.audio import log_mel_spectrogram
from osum.data.manifest import load_utterance_audio
from osum.data.pitch import pitch_features
from osum.data.reader import read_any
from osum.model.encoder import pad_with_silence

GENDERS = ("female", "male")


@torch.inference_mode()
def clip_features(encoder: torch.nn.Module, wave: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"layer0".."layerN": (2D,) mean and std of that layer's frames, "pitch": (4,)}`` for one clip."""
    mel = log_mel_spectrogram(wave)[None]
    x = pad_with_silence(mel, torch.tensor([mel.shape[1]]), encoder.max_mel_frames)
    h = F.gelu(encoder.conv1(x.transpose(1, 2)))
    h = F.gelu(encoder.conv2(h)).transpose(1, 2) + encoder.embed_positions.weight
    t1 = (mel.shape[1] + 1) // 2
    out = {}
    for i, layer in enumerate(encoder.layers):
        h = layer(h, None)
        frames = (encoder.layer_norm(h) if i == len(encoder.layers) - 1 else h)[0, :t1]
        out[f"layer{i}"] = torch.cat([frames.mean(0), frames.std(0)])
    out["pitch"] = pitch_features(wave)
    return out


def read_split(encoder: torch.nn.Module, manifest: Path, limit: int, seed: int = 0) -> list[tuple[dict, int]]:
    utts = list(read_any(manifest))
    random.Random(seed).shuffle(utts)
    rows = []
    for u in utts:
        gender = (u.labels or {}).get("gender") or u.extra.get("voice_gender")
        if gender not in GENDERS:
            continue
        rows.append((clip_features(encoder, load_utterance_audio(u)), GENDERS.index(gender)))
        if len(rows) >= limit:
            break
    return rows


def fit_and_score(splits: dict[str, list], keys: list[str], l2: float = 1e-2) -> dict[str, float]:
    def design(rows: list) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([torch.cat([feats[k] for k in keys]) for feats, _ in rows])
        return x, torch.tensor([y for _, y in rows], dtype=torch.float32)

    x, y = design(splits["train"])
    mu, sd = x.mean(0), x.std(0) + 1e-6
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = (x - mu) / sd
        loss = F.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    scores = {}
    for name, rows in splits.items():
        xs, ys = design(rows)
        pred = (((xs - mu) / sd) @ w + b > 0).float()
        scores[name] = round(float((pred == ys).float().mean()) * 100, 1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synth", type=Path, required=True, help="an `osum data synth` folder")
    parser.add_argument("--offgen", type=Path, required=True, help="an `osum data offgen` folder")
    parser.add_argument("--train", type=int, default=500, help="training clips (default 500)")
    parser.add_argument("--test", type=int, default=300, help="synthetic test clips (default 300)")
    parser.add_argument("--out", type=Path, default=Path("gender_probe.json"))
    args = parser.parse_args()
    encoder = osum.load("mini-stage1-base", device="cpu").model.encoder
    splits = {
        "train": read_split(encoder, args.synth / "train.jsonl", args.train),
        "test": read_split(encoder, args.synth / "test.jsonl", args.test),
        "heldout": read_split(encoder, args.offgen / "heldout_gender.jsonl", 10**9),
        "real": read_split(encoder, args.offgen / "real_gender.jsonl", 10**9),
    }
    layers = [k for k in splits["train"][0][0] if k.startswith("layer")]
    sets = {k: [k] for k in layers} | {"pitch": ["pitch"], f"{layers[-1]}+pitch": [layers[-1], "pitch"]}
    accuracy = {name: fit_and_score(splits, keys) for name, keys in sets.items()}
    result = {"clips": {k: len(v) for k, v in splits.items()}, "accuracy": accuracy}
    for name, scores in accuracy.items():
        print(f"{name:16s} " + "  ".join(f"{k} {v:5.1f}%" for k, v in scores.items()))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
