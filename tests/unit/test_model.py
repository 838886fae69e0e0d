"""OsumModel invariants on the tiny preset: lengths, layout, loss masking, batch == single, decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from osum.inference.decoding import DecodingOptions, generate_ids
from osum.model.adaptor import num_speech_tokens, num_speech_tokens_for_samples
from osum.model.osum import IGNORE_INDEX, OsumModel
from osum.presets import preset_config
from osum.testing.tiny import random_batch, row

VOCAB = 151646


@pytest.fixture(scope="module")
def model() -> OsumModel:
    torch.manual_seed(0)
    m = OsumModel(preset_config("tiny"))
    with torch.no_grad():  # LoRA B starts at zero; make the adapters matter so the tests cover them
        for name, p in m.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return m.eval()


# Durations whose mel lengths are odd and even, so padding meets every stride phase.
BATCH = dict(durations=[1.37, 0.91, 2.05, 0.5], prompt_lengths=[7, 3, 11, 5], target_lengths=[4, 9, 2, 6])


def test_num_speech_tokens_matches_the_layers(model):
    for n_mel in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 170, 113, 2999, 3000]:
        feats = torch.randn(1, n_mel, 80)
        with torch.no_grad():
            speech, lengths = model.encode_speech(feats, torch.tensor([n_mel]))
        assert speech.shape[1] == lengths.item() == num_speech_tokens(n_mel)
    assert num_speech_tokens(3000) == 375  # 30 s -> 375 tokens at 12.5 Hz, as in OSUM
    assert num_speech_tokens_for_samples(27200) == 22  # the reference fixture's utterance A


def test_layout_labels_and_loss_cover_targets_only(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        out = model(batch)
    speech = num_speech_tokens(batch.feat_lengths)
    for i in range(4):
        p, t, s = int(batch.prompt_lengths[i]), int(batch.target_lengths[i]), int(speech[i])
        n = p + s + 2 + t
        assert out.attention_mask[i].tolist() == [1] * n + [0] * (out.attention_mask.shape[1] - n)
        assert out.position_ids[i, :n].tolist() == list(range(n))
        labels = out.labels[i].tolist()
        assert labels[: p + s + 2] == [IGNORE_INDEX] * (p + s + 2)
        assert labels[p + s + 2 : n] == batch.target_ids[i, :t].tolist()
        assert set(labels[n:]) <= {IGNORE_INDEX}
        emb = model.embed_tokens(batch.prompt_ids[i, :p])
        torch.testing.assert_close(out.inputs_embeds[i, :p], emb)
        torch.testing.assert_close(out.inputs_embeds[i, p], model.speech_bos)
        torch.testing.assert_close(out.inputs_embeds[i, p + s + 1], model.speech_eos)
    # the loss is the mean next-token cross-entropy over target tokens only
    logits, labels = out.logits[:, :-1], out.labels[:, 1:]
    manual = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
    )
    torch.testing.assert_close(out.loss, manual)


def test_each_padded_row_equals_its_single_run(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        out = model(batch)
        for i in range(4):
            alone = model(row(batch, i))
            n = alone.logits.shape[1]
            torch.testing.assert_close(out.logits[i, :n], alone.logits[0], atol=2e-4, rtol=1e-4)
            scored = out.labels[i, 1:n] != IGNORE_INDEX
            per_tok = F.cross_entropy(out.logits[i, : n - 1][scored], out.labels[i, 1:n][scored])
            torch.testing.assert_close(per_tok, alone.loss, atol=1e-4, rtol=1e-4)


def test_collator_token_count_mismatch_raises(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    wrong = dataclasses.replace(batch, speech_tokens=num_speech_tokens(batch.feat_lengths) + 1)
    with pytest.raises(ValueError, match="speech token counts"):
        model(wrong)
    right = dataclasses.replace(batch, speech_tokens=num_speech_tokens(batch.feat_lengths))
    with torch.no_grad():
        assert torch.isfinite(model(right).loss)


@pytest.mark.parametrize("beams", [1, 3])
def test_generation_batch_equals_single_and_is_deterministic(model, beams):
    batch = random_batch(**BATCH, vocab=VOCAB)
    opts = DecodingOptions(max_new_tokens=6, num_beams=beams)
    together = generate_ids(model, batch, opts)
    assert together == generate_ids(model, batch, opts)  # deterministic
    for i in range(4):
        assert generate_ids(model, row(batch, i), opts)[0] == together[i]


def test_forced_answer_prefix_continues_the_greedy_answer(model):
    """Forcing the first k ids of a greedy answer gives the rest of it; a padded batch of rows with prefixes of
    different lengths gives each row what it gets alone."""
    batch = random_batch(**BATCH, vocab=VOCAB)
    opts = DecodingOptions(max_new_tokens=8)
    free = generate_ids(model, batch, opts)
    prefixes = [free[i][:k] for i, k in enumerate([0, 1, 3, 2])]
    forced = generate_ids(model, batch, DecodingOptions(max_new_tokens=8), prefixes)
    for i, p in enumerate(prefixes):
        assert p + forced[i][: 8 - len(p)] == free[i]
        assert generate_ids(model, row(batch, i), opts, [p])[0] == forced[i]
    with pytest.raises(ValueError, match="one id list per row"):
        generate_ids(model, batch, opts, prefixes[:2])


@pytest.mark.parametrize("beams", [1, 3])
def test_static_kv_cache_decodes_the_same_answers(model, beams):
    """The static cache (allocated once for prefix + max_new_tokens) gives the dynamic cache's tokens, also with
    forced answer prefixes of different lengths in one padded batch, and the same per-token scores."""
    from osum.inference.decoding import generate

    batch = random_batch(**BATCH, vocab=VOCAB)
    dynamic, static = (DecodingOptions(max_new_tokens=8, num_beams=beams, kv_cache=c) for c in ("dynamic", "static"))
    assert generate_ids(model, batch, static) == generate_ids(model, batch, dynamic)
    prefixes = [[11, 12], [], [13], [14, 15, 16]]
    assert generate_ids(model, batch, static, prefixes) == generate_ids(model, batch, dynamic, prefixes)
    if beams == 1:
        (ids_d, scores_d), (ids_s, scores_s) = (generate(model, batch, o, caps=[8] * 4) for o in (dynamic, static))
        assert ids_s == ids_d
        assert [s is None for s in scores_s] == [s is None for s in scores_d]
        assert all(s == pytest.approx(d, abs=1e-4) for s, d in zip(scores_s, scores_d, strict=True) if s is not None)


def test_compiled_decoding_gives_the_eager_answers(model):
    """kv_cache="compiled" (static cache, torch.compile of the decoding step; on the CPU too) gives the dynamic
    cache's tokens, also for rows with forced answer prefixes."""
    batch = random_batch(**BATCH, vocab=VOCAB)
    eager, compiled = (DecodingOptions(max_new_tokens=6, kv_cache=c) for c in ("dynamic", "compiled"))
    prefixes = [[11, 12], [], [13], [14, 15, 16]]
    assert generate_ids(model, batch, compiled, prefixes) == generate_ids(model, batch, eager, prefixes)


def test_generation_refuses_train_mode(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    model.train()
    try:
        with pytest.raises(RuntimeError, match="eval"):
            generate_ids(model, batch, DecodingOptions(max_new_tokens=2))
    finally:
        model.eval()


def test_sampling_is_seeded(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    opts = DecodingOptions(max_new_tokens=6, do_sample=True, top_k=50, seed=3)
    assert generate_ids(model, batch, opts) == generate_ids(model, batch, opts)


def test_decoding_options_are_validated():
    from osum.errors import ConfigError

    with pytest.raises(ConfigError, match="num_beams=0"):
        DecodingOptions(num_beams=0)
    with pytest.raises(ConfigError, match="top_p"):
        DecodingOptions(top_p=1.5)
    with pytest.raises(ConfigError, match="kv_cache='paged'"):
        DecodingOptions(kv_cache="paged")


def test_encoder_rejects_audio_longer_than_its_positions(model):
    with pytest.raises(ValueError, match="exceed"):
        model.encoder(torch.zeros(1, 3002, 80), torch.tensor([3002]))


def test_lora_targets_and_trainable_split(model):
    names = [n for n, _ in model.named_parameters() if "lora_A" in n]
    targets = {n.split(".lora_A")[0].rsplit(".", 1)[1] for n in names}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj"}  # not up_proj
    lora_a = next(p for n, p in model.named_parameters() if "lora_A" in n)
    assert lora_a.shape[0] == 8
    base = [p for n, p in model.llm.named_parameters() if "lora_" not in n]
    assert base and not any(p.requires_grad for p in base)  # peft freezes the base LLM


def test_training_loss_path_equals_the_full_logits_loss(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        full, lean = model(batch), model(batch, full_logits=False)
    torch.testing.assert_close(lean.loss, full.loss, atol=1e-5, rtol=1e-5)
    assert lean.logits.shape == (int(batch.target_lengths.sum()), VOCAB)


def test_target_weights_give_the_weighted_mean_of_the_token_losses(model):
    """train.label_loss_weight: Batch.target_weights (B, L) weight each target token's cross-entropy; both loss
    paths agree, weights of 1 change nothing, and padding's weights are never read."""
    batch = random_batch(**BATCH, vocab=VOCAB)
    with torch.no_grad():
        plain = model(batch).loss
        per_token = [
            F.cross_entropy(
                model(row(batch, i)).logits[0, -int(batch.target_lengths[i]) - 1 : -1],
                batch.target_ids[i, : int(batch.target_lengths[i])],
                reduction="none",
            )
            for i in range(4)
        ]
        weights = torch.full(batch.target_ids.shape, 99.0)  # junk where a row has no target token
        rows = [torch.linspace(1, 4, int(n)) for n in batch.target_lengths]
        for i, w in enumerate(rows):
            weights[i, : len(w)] = w
        weighted = dataclasses.replace(batch, target_weights=weights)
        full, lean = model(weighted), model(weighted, full_logits=False)
        ones = model(dataclasses.replace(batch, target_weights=torch.ones_like(weights)), full_logits=False)
    manual = sum((ce * w).sum() for ce, w in zip(per_token, rows, strict=True)) / sum(w.sum() for w in rows)
    torch.testing.assert_close(full.loss, manual, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lean.loss, manual, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ones.loss, plain, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full.loss, plain)


def test_gradient_checkpointing_gives_the_same_gradients(model):
    batch = random_batch(**BATCH, vocab=VOCAB)
    grads = []
    for flag in (False, True):
        model.zero_grad()
        model.encoder.gradient_checkpointing = model.adaptor.gradient_checkpointing = flag
        model.train()
        torch.manual_seed(0)
        model(batch, full_logits=False).loss.backward()
        grads.append(model.adaptor.proj.weight.grad.clone())
    model.eval()
    model.encoder.gradient_checkpointing = model.adaptor.gradient_checkpointing = False
    torch.testing.assert_close(grads[0], grads[1])
