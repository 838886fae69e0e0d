"""Label tokens (adaptor.label_tokens) on the tiny preset: where they sit in the LLM input, what they are, their
loss, padding invariance, and a model built without them getting them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from osum.inference.decoding import DecodingOptions, generate_ids
from osum.model.adaptor import num_speech_tokens
from osum.model.label_tokens import AttentionPool, LabelTokens
from osum.model.osum import IGNORE_INDEX, OsumModel
from osum.presets import preset_config
from osum.tasks import LABEL_FIELDS, TASK_LABEL_FIELDS
from osum.testing.tiny import random_batch, row

VOCAB = 151646
N_FIELDS = len(TASK_LABEL_FIELDS)  # the tiny preset keeps the default label_fields: the task fields
BATCH = dict(durations=[1.37, 0.91, 2.05], prompt_lengths=[7, 3, 11], target_lengths=[4, 9, 2])


def tiny_config(label_tokens: bool):
    cfg = preset_config("tiny")
    return dataclasses.replace(cfg, adaptor=dataclasses.replace(cfg.adaptor, label_tokens=label_tokens))


@pytest.fixture(scope="module")
def model() -> OsumModel:
    torch.manual_seed(0)
    m = OsumModel(tiny_config(True))
    with torch.no_grad():  # random class vectors far apart, so a wrong token shows in the embeddings
        for values in m.label_tokens.values.values():
            values.normal_(0, 1.0)
    return m.eval()


def test_label_tokens_sit_between_the_speech_and_its_end_marker(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        out = model(batch)
        enc, enc_lengths = model.encoder(batch.feats, batch.feat_lengths)
        logits, tokens = model.label_tokens(enc, enc_lengths)
    speech = num_speech_tokens(batch.feat_lengths)
    assert tokens.shape == (3, N_FIELDS, model.config.llm.hidden_size)
    for i in range(3):
        p, s, t = int(batch.prompt_lengths[i]), int(speech[i]), int(batch.target_lengths[i])
        start = p + 1 + s  # after prompt, speech BOS and speech
        torch.testing.assert_close(out.inputs_embeds[i, start : start + N_FIELDS], tokens[i])
        torch.testing.assert_close(out.inputs_embeds[i, start + N_FIELDS], model.speech_eos)
        labels = out.labels[i].tolist()
        prefix = start + N_FIELDS + 1
        assert labels[:prefix] == [IGNORE_INDEX] * prefix
        assert labels[prefix : prefix + t] == batch.target_ids[i, :t].tolist()
        # each token is the class probabilities times that field's class vectors
        for f, name in enumerate(model.label_tokens.fields):
            expected = logits[name][i].softmax(-1) @ model.label_tokens.values[name]
            torch.testing.assert_close(tokens[i, f], expected)


def test_padding_does_not_change_a_clips_label_tokens(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        enc, enc_lengths = model.encoder(batch.feats, batch.feat_lengths)
        _, tokens = model.label_tokens(enc, enc_lengths)
        for i in range(3):
            one = row(batch, i)
            e, n = model.encoder(one.feats, one.feat_lengths)
            torch.testing.assert_close(model.label_tokens(e, n)[1][0], tokens[i], atol=1e-5, rtol=1e-5)


def test_the_loss_adds_the_classifiers_cross_entropy_on_labelled_fields_only(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    plain = model(batch).loss
    assert model(batch).label_loss is None  # no attributes: the LM loss alone
    gender = list(LABEL_FIELDS).index("gender")
    age = list(LABEL_FIELDS).index("age")
    attributes = torch.full((3, len(LABEL_FIELDS)), -1)
    attributes[0, gender], attributes[2, gender], attributes[1, age] = 1, 0, 2
    out = model(dataclasses.replace(batch, attributes=attributes))
    enc, enc_lengths = model.encoder(batch.feats, batch.feat_lengths)
    logits, _ = model.label_tokens(enc, enc_lengths)
    expected = (
        F.cross_entropy(logits["gender"][[0, 2]], torch.tensor([1, 0]))
        + F.cross_entropy(logits["age"][[1]], torch.tensor([2]))
    ) / 2
    torch.testing.assert_close(out.label_loss, expected)
    torch.testing.assert_close(out.lm_loss, plain)
    torch.testing.assert_close(out.loss, plain + expected)
    assert LabelTokens.loss(logits, torch.full((3, len(LABEL_FIELDS)), -1)) is None


def test_generation_reads_the_same_prefix(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        embeds, mask = model.prefix_embeddings(batch)
        teacher = model(batch)
    for i in range(3):
        n = int(mask[i].sum())
        p = int(batch.prompt_lengths[i])
        prefix = p + 1 + int(num_speech_tokens(batch.feat_lengths[i])) + N_FIELDS + 1
        assert n == prefix
        torch.testing.assert_close(embeds[i, -n:], teacher.inputs_embeds[i, :n])
    ids = generate_ids(model, batch, DecodingOptions(max_new_tokens=3))
    assert len(ids) == 3


def test_a_model_without_them_gets_them_and_its_config_says_so():
    torch.manual_seed(0)
    m = OsumModel(tiny_config(False))
    assert m.label_tokens is None and "label_tokens" not in {n.split(".")[0] for n, _ in m.named_parameters()}
    tokens = m.add_label_tokens()
    assert m.config.adaptor.label_tokens and m.label_tokens is tokens
    assert m.add_label_tokens() is tokens  # only once
    table = m.lm.get_input_embeddings().weight
    ids = {n: [[v + 1, v + 2] for v in range(len(LABEL_FIELDS[n].values))] for n in tokens.fields}
    tokens.init_values(table, ids)
    torch.testing.assert_close(tokens.values["gender"][1], table[[2, 3]].mean(0))
    with pytest.raises(ValueError, match="'age' needs token ids for its 3 classes"):
        tokens.init_values(table, {"age": [[1], [2]]})
    # a model built from the saved config has the same parameters (a strict load works)
    rebuilt = OsumModel(m.config)
    assert set(rebuilt.state_dict()) == set(m.state_dict())


def test_linear_heads_standardise_the_pooled_frames_and_ignore_padding():
    """label_head "linear": the clip's frame mean and spread, standardised by the training batches' statistics,
    one linear layer per field; a padded row gives the logits of the clip alone, and the statistics export."""
    torch.manual_seed(0)
    heads = LabelTokens(8, fields=["gender", "emotion"], pitch=True, head="linear")
    assert [n for n, _ in heads.named_buffers()] == ["norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    frames = torch.randn(3, 20, 8) * torch.tensor([100.0] * 4 + [0.01] * 4)  # channels of very different scale
    lengths, pitch = torch.tensor([20, 13, 7]), torch.randn(3, 4)
    heads.train()
    for _ in range(200):  # the running statistics converge to the batches'
        heads(frames, lengths, pitch)
    heads.eval()
    logits, tokens = heads(frames, lengths, pitch)
    assert tokens is None and logits["emotion"].shape == (3, len(LABEL_FIELDS["emotion"].values))
    mean = heads.norm.running_mean[:8]
    assert mean[:4].abs().max() > 1 and mean[4:].abs().max() < 0.1  # per channel: the scales are learnt apart
    alone, _ = heads(frames[1:2, :13], lengths[1:2], pitch[1:2])
    torch.testing.assert_close(alone["emotion"], logits["emotion"][1:2], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="label_head 'deep'"):
        LabelTokens(8, head="deep")


def test_attention_heads_pick_out_a_short_sound_and_ignore_padding():
    """label_head "linear+attention": the event field reads attention-pooled frames, the others stay linear; a padded
    row gives the clip's own logits, and a batch of one clip trains (running statistics instead of the batch's)."""
    torch.manual_seed(0)
    heads = LabelTokens(8, fields=["gender", "emotion", "event"], pitch=True, head="linear+attention")
    assert isinstance(heads.heads["event"], AttentionPool) and isinstance(heads.heads["emotion"], torch.nn.Linear)
    # the class is a burst in 2 of 30 frames at a random place: mean and spread barely show it, attention can
    events = len(LABEL_FIELDS["event"].values)
    opt = torch.optim.Adam(heads.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)

    def clips(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.randn(n, 30, 8, generator=gen)
        y = torch.randint(0, 3, (n,), generator=gen)
        at = torch.randint(0, 28, (n,), generator=gen)
        for i in range(n):
            frames[i, at[i] : at[i] + 2, y[i]] += 6.0
        return frames, y

    heads.train()
    for _ in range(150):
        frames, y = clips(32)
        logits, _ = heads(frames, torch.full((32,), 30), torch.randn(32, 4))
        loss = F.cross_entropy(logits["event"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    heads(frames[:1], torch.tensor([30]), torch.randn(1, 4))  # a batch of one clip: no error
    heads.eval()
    frames, y = clips(64)
    logits, _ = heads(frames, torch.full((64,), 30), torch.zeros(64, 4))
    assert logits["event"].shape == (64, events)
    assert (logits["event"].argmax(-1) == y).float().mean() > 0.9
    padded = torch.cat([frames[:1], torch.randn(1, 10, 8) * 50], dim=1)  # loud padding after the clip
    alone, _ = heads(frames[:1], torch.tensor([30]), torch.zeros(1, 4))
    with_pad, _ = heads(padded, torch.tensor([30]), torch.zeros(1, 4))
    torch.testing.assert_close(alone["event"], with_pad["event"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone["emotion"], with_pad["emotion"], atol=1e-5, rtol=1e-5)


def test_frozen_classifiers_keep_their_standardisation_in_train_mode():
    """A stage that trains only the class vectors (or nothing of the label tokens) leaves the BatchNorm statistics
    of the frozen classifiers as trained; a stage that trains the classifiers moves them."""
    torch.manual_seed(0)
    heads = LabelTokens(16, 8, ["event", "emotion", "gender"], head="linear+attention")
    enc, lengths = torch.randn(3, 20, 16) * 3 + 1, torch.tensor([20, 15, 9])
    heads(enc, lengths)  # train mode: statistics move
    trained = {k: v.clone() for k, v in heads.state_dict().items() if "running" in k}
    assert trained and all(not torch.equal(v, torch.zeros_like(v)) for k, v in trained.items() if "mean" in k)
    for name, p in heads.named_parameters():
        p.requires_grad_(name.startswith("values."))
    heads.train()
    assert heads.training and heads.heads.training
    logits, tokens = heads(enc, lengths)
    tokens.sum().backward()  # the class vectors still learn
    assert all(heads.values[f].grad is not None for f in heads.fields)
    assert all(torch.equal(heads.state_dict()[k], v) for k, v in trained.items())
    for p in heads.parameters():
        p.requires_grad_(True)
    heads.train()
    heads(enc * 2, lengths)
    assert not torch.equal(heads.state_dict()["norm.running_mean"], trained["norm.running_mean"])
