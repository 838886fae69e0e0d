"""Which clip features read the synthetic corpus's labels (age, emotion, style, event) on voices never trained on?

    .venv/bin/python bench/label_probe.py --synth DATA [--out probe.json] [--fields age,emotion,style,event]

Per clip: the Whisper tiny.en encoder's output (padded 30 s window, as the models run it; mean and standard
deviation over the clip's own frames), the four pitch numbers the label heads read now (osum/data/pitch.py), and
prosody statistics that do not depend on who speaks as much (:func:`prosody`: F0 spread and slope in semitones,
loudness level and spread, voiced-run rate, pause share, harmonicity, spectral tilt). A multinomial logistic
regression per feature set is fitted on DATA/train.jsonl's labelled clips and scored on DATA/test.jsonl's (unseen
voices, augmented). Writes ``{"clips": {...}, "accuracy": {field: {feature_set: {split: %}}}}``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import parselmouth
import torch
import torch.nn.functional as F

import osum
from osum.data.audio import SAMPLE_RATE, log_mel_spectrogram
from osum.data.manifest import load_utterance_audio
from osum.data.pitch import pitch_features
from osum.data.reader import read_any
from osum.vocabulary import LABEL_FIELDS


def prosody(wave: torch.Tensor) -> torch.Tensor:
    """16 kHz samples -> 10 numbers: F0 std and 10-90% range (semitones), F0 slope (semitones/s), intensity mean,
    std and 10-90% range (dB), voiced runs per second, pause share (intensity 25 dB under the 95th percentile),
    mean harmonicity (dB), spectral tilt (energy above 1 kHz against below, dB)."""
    samples = wave.detach().to(torch.float64).cpu().numpy()
    sound = parselmouth.Sound(samples, SAMPLE_RATE)
    f0 = sound.to_pitch(time_step=0.01, pitch_floor=60.0, pitch_ceiling=500.0).selected_array["frequency"]
    voiced = f0 > 0
    out = np.zeros(10)
    if voiced.sum() > 3:
        st = 12 * np.log2(f0[voiced] / 100.0)
        t = np.nonzero(voiced)[0] * 0.01
        out[0], out[1] = st.std(), np.percentile(st, 90) - np.percentile(st, 10)
        out[2] = np.polyfit(t, st, 1)[0] if np.ptp(t) > 0 else 0.0
        runs = np.sum(np.diff(voiced.astype(int)) == 1) + int(voiced[0])
        out[6] = runs / max(len(f0) * 0.01, 1e-3)
    db = sound.to_intensity(minimum_pitch=60.0, time_step=0.01).values[0]
    if db.size:
        top = np.percentile(db, 95)
        out[3], out[4], out[5] = db.mean(), db.std(), np.percentile(db, 90) - np.percentile(db, 10)
        out[7] = float(np.mean(db < top - 25))
    hnr = sound.to_harmonicity(time_step=0.01).values[0]
    hnr = hnr[hnr > -100]
    out[8] = hnr.mean() if hnr.size else 0.0
    spec = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    out[9] = 10 * math.log10((spec[freqs >= 1000].sum() + 1e-9) / (spec[freqs < 1000].sum() + 1e-9))
    return torch.tensor(out, dtype=torch.float32)


@torch.inference_mode()
def clip_features(encoder: torch.nn.Module, wave: torch.Tensor) -> dict[str, torch.Tensor]:
    mel = log_mel_spectrogram(wave)
    frames, n = encoder(mel[None], torch.tensor([mel.shape[0]]))
    frames = frames[0, : int(n[0])]
    return {
        "encoder": torch.cat([frames.mean(0), frames.std(0)]),
        "pitch": pitch_features(wave),
        "prosody": prosody(wave),
    }


def read_split(encoder: torch.nn.Module, manifest: Path, fields: list[str]) -> dict[str, list]:
    rows: dict[str, list] = {f: [] for f in fields}
    for u in read_any(manifest):
        labels = u.labels or {}
        wanted = [f for f in fields if labels.get(f) in LABEL_FIELDS[f].values]
        if not wanted:
            continue
        feats = clip_features(encoder, load_utterance_audio(u))
        for f in wanted:
            rows[f].append((feats, LABEL_FIELDS[f].values.index(labels[f])))
    return rows


def fit_and_score(
    train: list, tests: dict[str, list], keys: list[str], classes: int, l2: float = 1e-2
) -> dict[str, float]:
    def design(rows: list) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.stack([torch.cat([f[k] for k in keys]) for f, _ in rows]), torch.tensor([y for _, y in rows])

    x, y = design(train)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(((x - mu) / sd) @ w + b, y) + l2 * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    scores = {}
    for name, rows in {"train": train, **tests}.items():
        xs, ys = design(rows)
        pred = (((xs - mu) / sd) @ w + b).argmax(-1)
        scores[name] = round(float((pred == ys).float().mean()) * 100, 1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synth", type=Path, required=True, help="an `osum data synth` folder")
    parser.add_argument("--fields", default="age,emotion,style,event")
    parser.add_argument("--out", type=Path, default=Path("label_probe.json"))
    args = parser.parse_args()
    fields = args.fields.split(",")
    encoder = osum.load("mini-stage1-base", device="cpu").model.encoder
    train = read_split(encoder, args.synth / "train.jsonl", fields)
    test = read_split(encoder, args.synth / "test.jsonl", fields)
    sets = {
        "encoder": ["encoder"],
        "pitch": ["pitch"],
        "prosody": ["prosody"],
        "pitch+prosody": ["pitch", "prosody"],
        "encoder+pitch": ["encoder", "pitch"],
        "encoder+pitch+prosody": ["encoder", "pitch", "prosody"],
    }
    accuracy = {
        f: {
            name: fit_and_score(train[f], {"test": test[f]}, keys, len(LABEL_FIELDS[f].values))
            for name, keys in sets.items()
        }
        for f in fields
    }
    for f, table in accuracy.items():
        for name, scores in table.items():
            print(f"{f:8s} {name:24s} " + "  ".join(f"{k} {v:5.1f}%" for k, v in scores.items()))
    clips = {f: {"train": len(train[f]), "test": len(test[f])} for f in fields}
    args.out.write_text(json.dumps({"clips": clips, "accuracy": accuracy}, indent=2) + "\n")


if __name__ == "__main__":
    main()
