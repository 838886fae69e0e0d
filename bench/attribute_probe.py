"""Linear probe: how well a label (e.g. gender) can be read from the encoder's and from the adaptor's frames.

    .venv/bin/python bench/attribute_probe.py CHECKPOINT TRAIN.jsonl TEST.jsonl [--field gender]
        [--extra-key voice_gender] [--train-limit 800] [--out probe.json]

Each clip becomes the mean and standard deviation of its frames (encoder output ``(T, D)`` and adaptor output
``(T2, H)``); a logistic regression (L-BFGS, L2 1e-3, standardised features) is fitted on TRAIN and scored on
TEST. ``--extra-key`` reads the label from ``extra`` instead of ``labels`` (the synthetic corpus records each
voice's gender for every clip, not only for SGC clips). Prints and returns the accuracies as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import osum
from osum.data.audio import log_mel_spectrogram
from osum.data.collate import collate
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any


def pooled(model, manifest: str, field: str, extra_key: str | None, limit: int, classes: list[str]):
    """-> (encoder features (N, 2D), adaptor features (N, 2H), class ids (N,)) of the labelled clips."""
    utts = []
    for u in read_any(manifest, require_target=False):
        value = (u.extra or {}).get(extra_key) if extra_key else (u.labels or {}).get(field)
        if value is not None:
            utts.append((u, str(value)))
    utts = utts[:limit]
    enc_rows, ada_rows, ys = [], [], []
    for start in range(0, len(utts), 16):
        chunk = utts[start : start + 16]
        feats = [log_mel_spectrogram(load_utterance_audio(u)) for u, _ in chunk]
        batch = collate(feats, [[] for _ in chunk], [[] for _ in chunk])
        with torch.inference_mode():
            enc, enc_lengths = model.encoder(batch.feats, batch.feat_lengths)
            speech, lengths = model.adaptor(enc, enc_lengths)
        for i, (_, value) in enumerate(chunk):
            e, a = enc[i, : int(enc_lengths[i])], speech[i, : int(lengths[i])]
            enc_rows.append(torch.cat([e.mean(0), e.std(0)]))
            ada_rows.append(torch.cat([a.mean(0), a.std(0)]))
            if value not in classes:
                classes.append(value)
            ys.append(classes.index(value))
    if not ys:
        raise SystemExit(f"{manifest}: no clip has the label {extra_key or field!r}")
    return torch.stack(enc_rows).float(), torch.stack(ada_rows).float(), torch.tensor(ys)


def probe(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Test accuracy of a multinomial logistic regression fitted on the training rows."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-5
    x_train, x_test = (x_train - mu) / sd, (x_test - mu) / sd
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    w = torch.zeros(x_train.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x_train @ w + b, y_train) + 1e-3 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((x_test @ w + b).argmax(-1) == y_test).float().mean())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("train")
    p.add_argument("test")
    p.add_argument("--field", default="gender")
    p.add_argument("--extra-key", help="read the label from extra[KEY] instead of labels[FIELD]")
    p.add_argument("--train-limit", type=int, default=800)
    p.add_argument("--out")
    args = p.parse_args()
    model = osum.load(args.checkpoint, device="cpu", dtype="float32").model.eval()
    if not hasattr(model, "adaptor"):
        raise SystemExit(f"{args.checkpoint}: not an OSUM (encoder + adaptor + LLM) checkpoint")
    classes: list[str] = []
    e_tr, a_tr, y_tr = pooled(model, args.train, args.field, args.extra_key, args.train_limit, classes)
    e_te, a_te, y_te = pooled(model, args.test, args.field, args.extra_key, 10**9, classes)
    result = {
        "checkpoint": args.checkpoint,
        "label": args.extra_key or args.field,
        "classes": classes,
        "n_train": len(y_tr),
        "n_test": len(y_te),
        "majority": float(torch.bincount(y_te).max()) / len(y_te),
        "encoder_accuracy": probe(e_tr, y_tr, e_te, y_te),
        "adaptor_accuracy": probe(a_tr, y_tr, a_te, y_te),
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
