"""Teacher-forced label accuracy: does the model prefer the right label tag, given the true transcript?

    .venv/bin/python bench/label_scoring.py CHECKPOINT_OR_MODEL TEST.jsonl [--tasks sgc,sap] [--out x.json]
                                            [--classifier-only]

For each clip of the given tasks, the ASR+X target is written once with every value of the task's label field
(``"transcript<male>"``, ``"transcript<female>"``) and scored with one teacher-forced pass each, under the
task's first prompt; the value whose target has the highest log-likelihood is the answer. Unlike ``osum eval``
it needs no generation, so it is cheap enough to run on checkpoints during training, and it reads the speaker
apart from the transcript's errors. A model with label tokens (``adaptor.label_tokens``) also gets the accuracy of
their classifiers alone (``classifier_accuracy``): what the LLM could copy; ``--classifier-only`` skips the LLM
passes and scores only those (an encoder pass per clip, e.g. for the CTC pre-stage's checkpoints). Prints and
writes {task: {"n", "accuracy", "confusion"[, "classifier_accuracy"]}} as JSON (``accuracy`` and ``confusion``
are then the classifiers').
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

import osum
from osum.data.audio import log_mel_spectrogram
from osum.data.manifest import load_utterance_audio
from osum.data.pitch import pitch_features
from osum.data.reader import read_any
from osum.inference.labels import LabelQuery, score_labels
from osum.tasks import LABEL_FIELDS, get_task


def classifier_guess(model: osum.Osum, mel: torch.Tensor, pitch: torch.Tensor | None, field: str) -> str | None:
    """The label tokens' classifier's answer for one clip's log-mel ``(T, n_mels)`` (and F0 statistics ``(4,)`` when
    the model reads them) and ``field``; None for a model without them."""
    if model.model.label_tokens is None:
        return None
    batch_pitch = None if pitch is None else pitch[None]
    logits = model.model.encode(mel[None], torch.tensor([mel.shape[0]]), pitch=batch_pitch).label_logits[field]
    return LABEL_FIELDS[field].values[int(logits[0].argmax())]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a checkpoint, export or preset that osum.load reads (an OSUM model)")
    p.add_argument("manifest")
    p.add_argument("--tasks", default="sgc,sap", help="comma-separated tasks with one label field each")
    p.add_argument("--out")
    p.add_argument("--classifier-only", action="store_true", help="score only the label tokens' classifiers")
    args = p.parse_args()
    model = osum.load(args.model, device="cpu", dtype="float32")
    if model.config.architecture == "whisper":
        raise SystemExit("label_scoring.py scores OSUM (LLM) models; this is a Whisper stage-1 model")
    if args.classifier_only and model.model.label_tokens is None:
        raise SystemExit(f"--classifier-only: {args.model} has no label tokens (adaptor.label_tokens)")
    codec = model.codec(random_prompt=False)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    result = {}
    for name in tasks:
        task = get_task(name)
        if len(task.label_fields) != 1:
            raise SystemExit(f"--tasks: {name!r} has {len(task.label_fields)} label fields, this scores one")
        field = task.label_fields[0]
        utts = [u for u in read_any(args.manifest, require_target=False) if u.task == task.name]
        right, head_right, confusion = 0, 0, Counter()
        for u in utts:
            truth = field.canonical((u.labels or {}).get(field.name))
            if truth is None:
                continue
            wave = load_utterance_audio(u)
            mel = log_mel_spectrogram(wave, model.config.encoder.n_mels)
            pitch = pitch_features(wave) if model.config.label_pitch else None
            with torch.inference_mode():
                head = classifier_guess(model, mel, pitch, field.name)
                if args.classifier_only:
                    guess = head
                else:
                    query = LabelQuery(mel, codec.prompt_ids(task), task, u.text or "", prefix=[], pitch=pitch)
                    guess = score_labels(model.model, codec, [query])[0].labels[field.name]
            head_right += head == truth
            right += guess == truth
            confusion[f"{truth}->{guess}"] += 1
        n = sum(confusion.values())
        result[task.name] = {
            "n": n,
            "accuracy": right / n if n else None,
            "confusion": dict(sorted(confusion.items())),
        }
        if model.model.label_tokens is not None and n:
            result[task.name]["classifier_accuracy"] = head_right / n
    text = json.dumps(
        {"model": args.model, "manifest": args.manifest, "tasks": result}, indent=2, ensure_ascii=False
    )
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
