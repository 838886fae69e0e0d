"""The CTC pre-stage objective: scored sub-vocabulary, the norm penalty, greedy decoding to real token ids, and the
label classifiers on the mean frame."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import osum
from osum.data.collate import collate
from osum.model.ctc import ATTRIBUTE_SCALE, CTCObjective
from osum.tasks import LABEL_FIELDS, attribute_classes


@pytest.fixture(scope="module")
def tiny():
    return osum.load("tiny", device="cpu")


def _batch(targets):
    torch.manual_seed(0)
    feats = [torch.randn(200, 80), torch.randn(160, 80)]
    return collate(feats, [[], []], targets)


def test_loss_is_ctc_over_the_scored_tokens_plus_the_norm_penalty(tiny):
    vocab = [5, 17, 300, 9000]
    objective = CTCObjective(tiny.model, vocab).eval()
    batch = _batch([[17, 300], [9000]])
    out = objective(batch)
    assert out.log_probs.shape[-1] == len(vocab) + 1  # + blank
    s, lengths = tiny.model.encode_speech(batch.feats, batch.feat_lengths)
    targets = torch.tensor([[1, 2], [3, 0]])  # positions in the sorted vocabulary
    ctc = F.ctc_loss(
        out.log_probs.transpose(0, 1), targets, lengths, batch.target_lengths, blank=4, zero_infinity=True
    )
    table = tiny.model.lm.get_input_embeddings().weight
    norms = torch.cat([s[i, : int(n)].norm(dim=-1) for i, n in enumerate(lengths)])
    penalty = ((norms / table.norm(dim=-1).mean() - 1) ** 2).mean()
    assert torch.allclose(out.loss, ctc + penalty, atol=1e-5)
    with pytest.raises(ValueError, match="outside the CTC vocabulary"):
        objective(_batch([[17, 18], [5]]))


def test_greedy_gives_token_ids_of_the_vocabulary(tiny):
    vocab = [5, 17, 300, 9000]
    objective = CTCObjective(tiny.model, vocab).eval()
    batch = _batch([[17], [5]])
    with torch.no_grad():  # point the blank away from the first frame, so a real token wins there
        first = tiny.model.encode_speech(batch.feats, batch.feat_lengths)[0][0, 0]
        objective.blank.copy_(-100 * first)
    ids = objective.greedy(batch)
    assert len(ids) == 2 and all(t in vocab for row in ids for t in row) and any(ids)


def test_ctc_scores_directions_so_only_the_penalty_sees_the_frame_norm():
    model = osum.load("tiny", device="cpu").model
    objective = CTCObjective(model, [5, 17, 300, 9000]).eval()
    batch = _batch([[17, 300], [9000]])
    before = objective(batch)
    with torch.no_grad():  # frames 3x longer, same directions
        model.adaptor.proj.weight.mul_(3)
        model.adaptor.proj.bias.mul_(3)
    after = objective(batch)
    assert torch.allclose(before.log_probs, after.log_probs, atol=1e-5)
    assert after.loss > before.loss  # the norm penalty grew, and only it


def test_cosine_scoring_is_the_fixed_scale_times_the_cosine():
    model = osum.load("tiny", device="cpu").model
    vocab = [5, 17, 300, 9000]
    objective = CTCObjective(model, vocab, cosine_scale=20.0).eval()
    batch = _batch([[17, 300], [9000]])
    out = objective(batch)
    s, lengths = model.encode_speech(batch.feats, batch.feat_lengths)
    table = model.lm.get_input_embeddings().weight[vocab]
    cos = F.normalize(s, dim=-1) @ F.normalize(table, dim=-1).T  # (B, T, K)
    blank = F.normalize(s, dim=-1) @ F.normalize(objective.blank, dim=0)
    expected = (torch.cat([cos, blank[..., None]], dim=-1) * 20.0).log_softmax(-1)
    assert torch.allclose(out.log_probs, expected, atol=1e-5)


def test_attribute_classes_follow_the_label_fields():
    names = list(LABEL_FIELDS)
    assert {"gender", "age", "emotion", "style", "event", "speech"} == set(names) and names[-1] == "speech"
    row = attribute_classes({"gender": "MALE", "age": "no such age"})
    assert row[names.index("gender")] == LABEL_FIELDS["gender"].values.index("male")
    assert row[names.index("age")] == -1  # unknown value: no target
    assert attribute_classes(None) == [-1] * len(names)


def test_attribute_loss_is_the_cross_entropy_of_the_labelled_fields_on_the_mean_frame(tiny):
    vocab = [5, 17, 300, 9000]
    plain = CTCObjective(tiny.model, vocab).eval()
    objective = CTCObjective(tiny.model, vocab, attribute_weight=0.5).eval()
    objective.blank.data.copy_(plain.blank)
    gender = list(LABEL_FIELDS).index("gender")
    rows = [[-1] * len(LABEL_FIELDS) for _ in range(2)]
    rows[0][gender] = 1  # only the first clip says who speaks
    torch.manual_seed(0)
    feats = [torch.randn(200, 80), torch.randn(160, 80)]
    batch = collate(feats, [[], []], [[17, 300], [9000]], attributes=rows)
    assert batch.attributes.shape == (2, len(LABEL_FIELDS))
    out = objective(batch)
    s, lengths = tiny.model.encode_speech(batch.feats, batch.feat_lengths)
    mean = s[0, : int(lengths[0])].mean(0)
    head = objective.attribute_heads["gender"]
    logits = ATTRIBUTE_SCALE * mean @ F.normalize(head.weight, dim=-1).T + head.bias
    expected = F.cross_entropy(logits[None], torch.tensor([1]))
    assert torch.allclose(out.attribute_loss, expected, atol=1e-5)
    assert torch.allclose(out.loss, plain(batch).loss + 0.5 * expected, atol=1e-5)
    # without labels (or without the option) the loss is CTC + penalty alone
    unlabelled = collate(feats, [[], []], [[17, 300], [9000]], attributes=[[-1] * len(LABEL_FIELDS)] * 2)
    assert objective(unlabelled).attribute_loss.item() == 0.0
    assert plain(batch).attribute_loss is None and len(plain.attribute_heads) == 0


def test_attribute_loss_reaches_the_adaptor(tiny):
    model = osum.load("tiny", device="cpu").model
    objective = CTCObjective(model, [5, 17, 300, 9000], attribute_weight=1.0)
    rows = [[-1] * len(LABEL_FIELDS) for _ in range(2)]
    rows[0][list(LABEL_FIELDS).index("age")] = 2
    torch.manual_seed(0)
    batch = collate([torch.randn(200, 80), torch.randn(160, 80)], [[], []], [[17], [5]], attributes=rows)
    objective(batch).attribute_loss.backward()
    assert model.adaptor.proj.weight.grad.abs().sum() > 0
    assert objective.attribute_heads["age"].weight.grad.abs().sum() > 0
    assert (
        objective.attribute_heads["gender"].weight.grad is None
        or not objective.attribute_heads["gender"].weight.grad.any()
    )
