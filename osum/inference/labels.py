"""Label probabilities: every value of a task's label vocabulary scored by the LLM, given the transcript.

Dimension legend: B queries in a pass, S row length, C a query's candidate answers.

For a label task the answer is the transcript followed by one tag per label field (``hello<female>``). Given the
clip and its transcript, each possible answer (every combination of the fields' values) is teacher-forced: one row
per query holds the shared part once and every candidate's own ids after it, under a tree-shaped attention mask
(:func:`_score_group`), so one forward pass gives each answer's log-probability, its end token included.
Normalised over the candidates these are the label's probabilities; the best one is the answer. This replaces free
generation of the tags, which can wander (write more transcript between tags, or a tag outside the vocabulary), and
gives every label a confidence. With ``LabelQuery.prior`` (``ModelConfig.label_fusion``) each answer's score also
adds the model's label classifiers' log-probability of its values (the LLM's weighed by ``label_llm_weight``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from osum.codec import LLMCodec
from osum.data.collate import collate
from osum.model.adaptor import num_speech_tokens
from osum.model.osum import OsumModel
from osum.tasks.base import Task
from osum.vocabulary import LABEL_FIELDS


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
    # {field: log-probabilities (C,) over osum.vocabulary.LABEL_FIELDS[field].values}: the model's classifiers,
    # added to each answer's score (ModelConfig.label_fusion); None = the LLM's scores alone
    prior: dict[str, torch.Tensor] | None = None


@dataclass
class LabelAnswer:
    labels: dict[str, str]  # the most probable answer's labels
    probs: dict[str, dict[str, float]]  # field -> value -> probability (marginal over the other fields)
    after: list[int]  # the best answer's ids after the forced prefix (without the end token)
    avg_logprob: float  # the LLM's, per token of the best answer after the prefix, end token included


def candidates(task: Task) -> list[dict[str, str]]:
    """Every combination of the task's label values, fields in the task's order."""
    fields = task.label_fields
    return [
        dict(zip([f.name for f in fields], combo, strict=True))
        for combo in itertools.product(*(f.values for f in fields))
    ]


@dataclass
class _Plan:
    """One query's candidates: their ids after the forced prefix, and the ids all of them share."""

    labels: list[dict[str, str]]
    after: list[list[int]]  # per candidate: ids after the forced prefix, without the end token
    shared: list[int]  # forced prefix + the longest run of ids every candidate continues with


def _plan(codec: LLMCodec, q: LabelQuery, eos: int) -> _Plan:
    labels, full = [], []
    for candidate in candidates(q.task):
        ids = codec.ids(q.task.target(q.transcript, candidate))
        if ids[: len(q.prefix)] != q.prefix:  # cannot happen for prefixes made by answer_prefix
            raise ValueError(f"answer prefix {q.prefix} does not start the target {ids}")
        labels.append(candidate)
        full.append(ids + [eos])
    n = min(len(f) for f in full) - 1  # every candidate keeps at least one id of its own to score
    k = len(q.prefix)
    while k < n and all(f[k] == full[0][k] for f in full):
        k += 1
    return _Plan(labels, [f[len(q.prefix) : -1] for f in full], full[0][:k])


@torch.inference_mode()
def score_labels(
    model: OsumModel,
    codec: LLMCodec,
    queries: Sequence[LabelQuery],
    rows_per_pass: int = 32,
    llm_weight: float = 1.0,
) -> list[LabelAnswer]:
    """The label probabilities of each query, candidates scored in passes of about ``rows_per_pass`` rows.

    A query with a ``prior`` scores each candidate ``llm_weight`` x the LLM's log-probability + the classifiers'
    (``ModelConfig.label_llm_weight``); without one, by the LLM's alone.

    Every candidate of a query shares [prompt, speech, forced prefix, the ids all candidates continue with]; one
    row per query holds that shared part once and every candidate's own ids after it, under a tree-shaped attention
    mask (:func:`_score_group`). The log-probabilities equal teacher-forcing every candidate in full
    (:func:`osum.inference.decoding.score_targets`).
    """
    if model.training:
        raise RuntimeError("score_labels needs model.eval()")
    eos = model.config.llm.eos_token_id
    device = model.encoder.conv1.weight.device
    plans = [_plan(codec, q, eos) for q in queries]
    # Queries of similar row length share a pass, so little of it is padding.
    order = sorted(range(len(queries)), key=lambda i: _row_length(queries[i], plans[i]))
    scores: list[torch.Tensor] = [torch.empty(0)] * len(queries)
    for group in _groups([len(plans[i].after) for i in order], rows_per_pass):
        mine = [order[g] for g in group]
        for i, got in zip(
            mine,
            _score_group(model, [queries[i] for i in mine], [plans[i] for i in mine], device),
            strict=True,
        ):
            scores[i] = got
    answers = []
    for q, plan, own in zip(queries, plans, scores, strict=True):
        mine = own if q.prior is None else llm_weight * own + _prior(q.prior, plan.labels)
        probs_all = mine.softmax(0)
        best = int(mine.argmax())
        probs: dict[str, dict[str, float]] = {
            f.name: dict.fromkeys(f.values, 0.0) for f in q.task.label_fields
        }
        for labels, p in zip(plan.labels, probs_all.tolist(), strict=True):
            for field, value in labels.items():
                probs[field][value] += p
        after = plan.after[best]
        answers.append(
            LabelAnswer(dict(plan.labels[best]), probs, after, float(own[best]) / (len(after) + 1))
        )
    return answers


def _prior(prior: dict[str, torch.Tensor], labels: Sequence[dict[str, str]]) -> torch.Tensor:
    """Each candidate's classifier log-probability ``(C,)``: the sum over its fields that ``prior`` scores."""
    return torch.tensor(
        [
            sum(float(prior[f][LABEL_FIELDS[f].values.index(v)]) for f, v in candidate.items() if f in prior)
            for candidate in labels
        ]
    )


def _row_length(q: LabelQuery, plan: _Plan) -> int:
    """Ids in the query's row of :func:`_score_group` (speech tokens counted from the mel frames)."""
    speech = int(num_speech_tokens(torch.tensor([q.feats.shape[0]]))[0])
    own = sum(len(a) - (len(plan.shared) - len(q.prefix)) for a in plan.after)  # inputs: own ids but the last
    return len(q.prompt) + speech + len(plan.shared) + own


def _groups(sizes: Sequence[int], limit: int) -> list[range]:
    """Consecutive runs of items whose sizes add up to at most ``limit`` (an item larger than that alone)."""
    groups, start, total = [], 0, 0
    for i, n in enumerate(sizes):
        if i > start and total + n > limit:
            groups.append(range(start, i))
            start, total = i, 0
        total += n
    if start < len(sizes):
        groups.append(range(start, len(sizes)))
    return groups


def _score_group(
    model: OsumModel, queries: Sequence[LabelQuery], plans: Sequence[_Plan], device: torch.device
) -> list[torch.Tensor]:
    """Each query's candidate scores ``(C_q,)``: log-probability of the ids after its forced prefix, end token
    included, in one LLM pass.

    A query's row is [prompt, BOS, speech, EOS, shared ids, candidate 1's own ids but its last, candidate 2's, ...].
    The attention mask is a tree: a candidate's ids see the shared part and their own earlier ids only, and their
    positions continue the shared part's, so each candidate is scored as if it followed the shared part alone.
    The shared part's last position predicts every candidate's first own id.
    """
    own = [
        [
            p.after[c][len(p.shared) - len(q.prefix) :] + [model.config.llm.eos_token_id]
            for c in range(len(p.after))
        ]
        for q, p in zip(queries, plans, strict=True)
    ]  # per query, per candidate
    frames = [q.frames for q in queries]
    pitch = [q.pitch for q in queries]
    batch = collate(
        [q.feats for q in queries],
        [q.prompt for q in queries],
        [[] for _ in queries],
        encoder_frames=frames if all(f is not None for f in frames) else None,  # type: ignore[arg-type]
        pitch=pitch if all(p is not None for p in pitch) else None,  # type: ignore[arg-type]
    ).to(device)
    appended = [p.shared + [t for ids in mine for t in ids[:-1]] for p, mine in zip(plans, own, strict=True)]
    embeds, valid = model.prefix_embeddings(batch, appended)  # (B, S, H), (B, S); left-padded
    b, s = valid.shape
    seg = torch.zeros(b, s, dtype=torch.long)  # 0: shared part or padding; c + 1: candidate c's own ids
    depth = torch.zeros(b, s, dtype=torch.long)  # index of an id within its candidate
    gather_r: list[int] = []
    gather_c: list[int] = []  # (row, position) of every hidden state that predicts a scored id
    terms: list[tuple[int, int, int]] = []  # (candidate, gathered index, id it predicts)
    first_candidate = 0
    for i, (q, p, mine) in enumerate(zip(queries, plans, own, strict=True)):
        tail = p.shared[len(q.prefix) :]
        end = s - sum(len(ids) - 1 for ids in mine) - 1  # the shared part's last position
        base = len(gather_r)
        gather_r += [i] * (len(tail) + 1)
        gather_c += list(range(end - len(tail), end + 1))
        at = end + 1
        for c, ids in enumerate(mine):
            g, n = first_candidate + c, len(ids) - 1
            terms += [(g, base + j, tail[j]) for j in range(len(tail))]
            terms.append((g, base + len(tail), ids[0]))
            seg[i, at : at + n] = c + 1
            depth[i, at : at + n] = torch.arange(n)
            terms += [(g, len(gather_r) + k, ids[k + 1]) for k in range(n)]
            gather_r += [i] * n
            gather_c += list(range(at, at + n))
            at += n
        first_candidate += len(mine)
    seg, depth, is_valid = seg.to(device), depth.to(device), valid.bool()
    shared_len = (is_valid & (seg == 0)).sum(-1, keepdim=True)
    positions = torch.where(seg == 0, (valid.cumsum(-1) - 1).clamp(min=0), shared_len + depth)
    allowed = torch.ones(s, s, dtype=torch.bool, device=device).tril()[None] & is_valid[:, None, :]
    allowed &= (seg[:, None, :] == 0) | (seg[:, None, :] == seg[:, :, None])
    allowed |= torch.eye(s, dtype=torch.bool, device=device)  # a padding position sees itself: no empty row
    bias = torch.zeros(b, 1, s, s, dtype=embeds.dtype, device=device)
    bias.masked_fill_(~allowed[:, None], torch.finfo(embeds.dtype).min)
    lm = model.lm
    hidden = lm.model(
        inputs_embeds=embeds, attention_mask=bias, position_ids=positions, use_cache=False
    ).last_hidden_state  # (B, S, H)
    logp = lm.lm_head(hidden[gather_r, gather_c]).float().log_softmax(-1)  # (N, V)
    owner, index, target = (torch.tensor(x, device=device) for x in zip(*terms, strict=True))
    scores = torch.zeros(first_candidate, device=device).index_add_(0, owner, logp[index, target]).cpu()
    return list(scores.split([len(mine) for mine in own]))


def thresholded(
    labels: dict[str, str | None], probs: dict[str, dict[str, float]], minimum: float
) -> dict[str, str | None]:
    """``labels`` with each label whose probability is below ``minimum`` replaced by None."""
    return {
        f: (v if v is not None and probs.get(f, {}).get(v, 0.0) >= minimum else None)
        for f, v in labels.items()
    }
