"""Label probabilities: every value of a task's label vocabulary scored by the LLM, given the transcript.

Dimension legend: R candidate rows (clips x candidate answers).

For a label task the answer is the transcript followed by one tag per label field (``hello<female>``). Given the
clip and its transcript, each possible answer (every combination of the fields' values) is one teacher-forced row;
one forward pass over all rows gives each answer's log-probability, its end token included. Normalised over the
candidates these are the label's probabilities; the best one is the answer. This replaces free generation of the
tags, which can wander (write more transcript between tags, or a tag outside the vocabulary), and gives every label
a confidence.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from osum.codec import LLMCodec
from osum.data.collate import collate
from osum.inference.decoding import score_targets
from osum.model.osum import OsumModel
from osum.tasks.base import Task


@dataclass
class LabelQuery:
    """One clip's label question: its log-mel ``(T, M)`` (and cached encoder frames ``(T1, D)``, F0 statistics
    ``(4,)`` when the model reads them), the prompt ids, the task, the normalised transcript and the ids every
    answer is forced to start with (:func:`osum.inference.transcriber.answer_prefix`)."""

    feats: torch.Tensor
    prompt: list[int]
    task: Task
    transcript: str
    prefix: list[int]
    frames: torch.Tensor | None = None
    pitch: torch.Tensor | None = None


@dataclass
class LabelAnswer:
    labels: dict[str, str]  # the most probable answer's labels
    probs: dict[str, dict[str, float]]  # field -> value -> probability (marginal over the other fields)
    after: list[int]  # the best answer's ids after the forced prefix (without the end token)
    avg_logprob: float  # per token of the best answer after the prefix, end token included


def candidates(task: Task) -> list[dict[str, str]]:
    """Every combination of the task's label values, fields in the task's order."""
    fields = task.label_fields
    return [
        dict(zip([f.name for f in fields], combo, strict=True))
        for combo in itertools.product(*(f.values for f in fields))
    ]


@torch.inference_mode()
def score_labels(
    model: OsumModel, codec: LLMCodec, queries: Sequence[LabelQuery], rows_per_pass: int = 32
) -> list[LabelAnswer]:
    """The label probabilities of each query, candidates scored in passes of ``rows_per_pass`` rows."""
    eos = model.config.llm.eos_token_id
    device = model.encoder.conv1.weight.device
    plan: list[tuple[int, dict[str, str], list[int]]] = []  # (query, labels, ids after the prefix)
    spans: list[range] = []  # each query's rows of the plan
    for qi, q in enumerate(queries):
        start = len(plan)
        for labels in candidates(q.task):
            ids = codec.ids(q.task.target(q.transcript, labels))
            if ids[: len(q.prefix)] != q.prefix:  # cannot happen for prefixes made by answer_prefix
                raise ValueError(f"answer prefix {q.prefix} does not start the target {ids}")
            plan.append((qi, labels, ids[len(q.prefix) :]))
        spans.append(range(start, len(plan)))
    scores = torch.empty(len(plan))
    for start in range(0, len(plan), rows_per_pass):
        chunk = plan[start : start + rows_per_pass]
        qs = [queries[qi] for qi, _, _ in chunk]
        frames = [q.frames for q in qs]
        pitch = [q.pitch for q in qs]
        batch = collate(
            [q.feats for q in qs],
            [q.prompt for q in qs],
            [q.prefix + after + [eos] for q, (_, _, after) in zip(qs, chunk, strict=True)],
            encoder_frames=frames if all(f is not None for f in frames) else None,  # type: ignore[arg-type]
            pitch=pitch if all(p is not None for p in pitch) else None,  # type: ignore[arg-type]
        )
        n_scored = [len(after) + 1 for _, _, after in chunk]
        scores[start : start + len(chunk)] = score_targets(model, batch.to(device), n_scored).float().cpu()
    answers = []
    for q, mine in zip(queries, spans, strict=True):
        probs_all = scores[mine].softmax(0)
        best = mine[int(scores[mine].argmax())]
        probs: dict[str, dict[str, float]] = {
            f.name: dict.fromkeys(f.values, 0.0) for f in q.task.label_fields
        }
        for j, p in zip(mine, probs_all.tolist(), strict=True):
            for field, value in plan[j][1].items():
                probs[field][value] += p
        after = plan[best][2]
        answers.append(LabelAnswer(dict(plan[best][1]), probs, after, float(scores[best]) / (len(after) + 1)))
    return answers


def thresholded(
    labels: dict[str, str | None], probs: dict[str, dict[str, float]], minimum: float
) -> dict[str, str | None]:
    """``labels`` with each label whose probability is below ``minimum`` replaced by None."""
    return {
        f: (v if v is not None and probs.get(f, {}).get(v, 0.0) >= minimum else None)
        for f, v in labels.items()
    }
