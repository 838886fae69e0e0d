"""Label probabilities scored by the LLM given the transcript (osum/inference/labels.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import osum
from osum.data.audio import log_mel_spectrogram
from osum.data.collate import collate
from osum.inference.decoding import score_targets
from osum.inference.labels import LabelQuery, candidates, score_labels, thresholded
from osum.inference.transcriber import answer_prefix
from osum.tasks import get_task
from osum.testing.tiny import chirp
from osum.vocabulary import LABEL_FIELDS


@pytest.fixture(scope="module")
def tiny() -> osum.Osum:
    return osum.load("tiny", device="cpu")


def _feats(seconds: float, seed: int) -> torch.Tensor:
    return log_mel_spectrogram(torch.from_numpy(chirp(seconds, seed=seed)), 80)


def test_score_targets_is_the_sum_of_the_token_log_probabilities(tiny):
    model, eos = tiny.model, tiny.config.llm.eos_token_id
    targets = [[11, 12, 13, eos], [21, 22, eos]]
    batch = collate([_feats(1.1, 0), _feats(0.6, 1)], [[5, 6, 7], [8, 9]], targets)
    got = score_targets(model, batch, [2, 3])
    out = model(batch, full_logits=True)  # (B, S, V) over every position
    for i, target in enumerate(targets):
        positions = (out.labels[i, 1:] != -100).nonzero()[:, 0]
        logp = out.logits[i, :-1][positions].float().log_softmax(-1)
        expected = logp[torch.arange(len(target)), torch.tensor(target)][-[2, 3][i] :].sum()
        assert torch.allclose(got[i], expected, atol=1e-4)


def test_every_label_gets_a_probability_and_the_best_is_the_answer(tiny):
    codec = tiny.codec(random_prompt=False)
    queries = []
    for seed, name in enumerate(["sgc", "ser", "age_gender"]):
        task = tiny.task(name)
        transcript = "hello world" if task.has_transcript else ""
        queries.append(
            LabelQuery(
                _feats(0.8 + 0.3 * seed, seed),
                codec.prompt_ids(task),
                task,
                transcript,
                answer_prefix(codec, task, transcript),
            )
        )
    together = score_labels(tiny.model, codec, queries, rows_per_pass=64)
    alone = [score_labels(tiny.model, codec, [q], rows_per_pass=1)[0] for q in queries]
    for q, a, b in zip(queries, together, alone, strict=True):
        assert set(a.probs) == {f.name for f in q.task.label_fields}
        for field in q.task.label_fields:
            assert set(a.probs[field.name]) == set(field.values)
            assert sum(a.probs[field.name].values()) == pytest.approx(1.0, abs=1e-5)
            assert a.labels[field.name] in field.values
        assert a.labels == b.labels and a.after == b.after  # padded rows score as rows alone
        for field in a.probs:
            for value in a.probs[field]:
                assert a.probs[field][value] == pytest.approx(b.probs[field][value], abs=1e-4)
        assert a.avg_logprob <= 0
    assert len(candidates(get_task("age_gender"))) == 6


def test_cached_scoring_equals_teacher_forcing_every_candidate_in_full(tiny):
    """score_labels runs the shared part once and each candidate's tags over its cache: the same numbers as
    teacher-forcing every whole candidate answer (score_targets), for transcript and label-only tasks."""
    codec = tiny.codec(random_prompt=False)
    eos = tiny.config.llm.eos_token_id
    for seed, (name, transcript) in enumerate([("ser", "the cat sat"), ("age_gender", ""), ("ved", "")]):
        task = tiny.task(name)
        feats = _feats(0.7 + 0.4 * seed, seed)
        prefix = answer_prefix(codec, task, transcript)
        q = LabelQuery(feats, codec.prompt_ids(task), task, transcript, prefix)
        got = score_labels(tiny.model, codec, [q], rows_per_pass=3)[0]
        cands = candidates(task)
        targets = [codec.ids(task.target(transcript, c)) + [eos] for c in cands]
        batch = collate([feats] * len(cands), [q.prompt] * len(cands), targets)
        full = score_targets(tiny.model, batch, [len(t) - len(prefix) for t in targets])
        probs = full.softmax(0)
        best = int(full.argmax())
        assert got.labels == cands[best]
        assert got.after == targets[best][len(prefix) : -1]
        assert got.avg_logprob == pytest.approx(float(full[best]) / (len(targets[best]) - len(prefix)), abs=1e-4)
        for field in task.label_fields:
            for value in field.values:
                expected = sum(float(p) for c, p in zip(cands, probs, strict=True) if c[field.name] == value)
                assert got.probs[field.name][value] == pytest.approx(expected, abs=1e-5)


def test_a_classifier_prior_is_added_to_each_answers_score(tiny):
    """ModelConfig.label_fusion: each candidate's score is the LLM's plus the classifiers' log-probability of its
    values; the reported avg_logprob stays the LLM's."""
    codec = tiny.codec(random_prompt=False)
    task = tiny.task("age_gender")
    q = LabelQuery(_feats(0.9, 3), codec.prompt_ids(task), task, "", answer_prefix(codec, task, ""))
    plain = score_labels(tiny.model, codec, [q])[0]
    values = {f: LABEL_FIELDS[f].values for f in ("gender", "age")}
    worst_gender = min(plain.probs["gender"], key=plain.probs["gender"].get)
    # a flat classifier (the same log-probability for every value) changes nothing
    flat = {f: torch.full((len(v),), -2.0) for f, v in values.items()}
    same = score_labels(tiny.model, codec, [dataclasses.replace(q, prior=flat)])[0]
    assert same.labels == plain.labels
    for f in values:
        for v in values[f]:
            assert same.probs[f][v] == pytest.approx(plain.probs[f][v], abs=1e-5)
    # a confident classifier for the LLM's least likely gender decides the gender
    prior = {
        "gender": torch.tensor([0.0 if v == worst_gender else -30.0 for v in values["gender"]]),
        "age": torch.zeros(len(values["age"])),
    }
    fused = score_labels(tiny.model, codec, [dataclasses.replace(q, prior=prior)])[0]
    assert fused.labels["gender"] == worst_gender and fused.probs["gender"][worst_gender] > 0.999
    best = [c for c in candidates(task) if c == fused.labels][0]
    eos = tiny.config.llm.eos_token_id
    target = codec.ids(task.target("", best)) + [eos]
    batch = collate([q.feats], [q.prompt], [target])
    alone = float(score_targets(tiny.model, batch, [len(target) - len(q.prefix)])[0])
    assert fused.avg_logprob == pytest.approx(alone / (len(target) - len(q.prefix)), abs=1e-4)


def test_the_llm_weight_scales_its_share_of_a_fused_score(tiny):
    """ModelConfig.label_llm_weight: a fused score is weight x the LLM's log-probability + the classifiers'; at 0
    the classifiers alone decide, even against the LLM's most likely answer."""
    codec = tiny.codec(random_prompt=False)
    task = tiny.task("sgc")
    q = LabelQuery(_feats(0.9, 3), codec.prompt_ids(task), task, "", answer_prefix(codec, task, ""))
    llm = score_labels(tiny.model, codec, [q])[0].probs["gender"]
    values = LABEL_FIELDS["gender"].values
    worst = min(llm, key=llm.get)
    # the classifiers lean (60/40) towards the LLM's less likely value
    lean = torch.tensor([0.6 if v == worst else 0.4 for v in values]).log()
    prior = {"gender": lean}
    for weight in (0.0, 0.5, 1.0):
        got = score_labels(tiny.model, codec, [dataclasses.replace(q, prior=prior)], llm_weight=weight)[0]
        logits = {v: weight * torch.tensor(llm[v]).log() + lean[values.index(v)] for v in values}
        expected = torch.stack(list(logits.values())).softmax(0)
        for v, p in zip(logits, expected.tolist(), strict=True):
            assert got.probs["gender"][v] == pytest.approx(p, abs=1e-4)
        if weight == 0.0:
            assert got.labels["gender"] == worst and got.probs["gender"][worst] == pytest.approx(0.6, abs=1e-5)
    with pytest.raises(osum.ConfigError, match="label_llm_weight"):
        dataclasses.replace(tiny.config, label_llm_weight=-1.0)


def test_a_low_probability_label_becomes_none():
    probs = {"gender": {"female": 0.55, "male": 0.45}, "age": {"adult": 0.9, "child": 0.05, "old": 0.05}}
    got = thresholded({"gender": "female", "age": "adult"}, probs, 0.6)
    assert got == {"gender": None, "age": "adult"}
