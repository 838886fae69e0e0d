"""Guards against runaway answers (osum/inference/guards.py) in both decoders."""

from __future__ import annotations

import pytest
import torch

from osum.inference.decoding import DecodingOptions, generate, generate_ids
from osum.inference.guards import loop_start, repeats, token_cap, trim_loop
from osum.model.osum import OsumModel
from osum.presets import preset_config
from osum.testing.tiny import random_batch


def test_a_loop_is_found_and_trimmed_to_one_copy():
    assert loop_start([1, 2, 3]) is None
    assert loop_start([5] * 11) is None and trim_loop([5] * 12) == [5]  # one token: 12 copies
    assert trim_loop([9, 7, 5] + [1, 2] * 6) == [9, 7, 5, 1, 2]
    assert trim_loop([1, 2] * 5) == [1, 2] * 5  # 5 copies of a pair: still speech ("no no, no no")
    unit = [4, 5, 6, 7, 8]
    assert trim_loop([1] + unit * 3) == [1] + unit
    assert trim_loop([1] + unit * 2) == [1] + unit * 2
    assert [repeats(n) for n in (1, 2, 3, 4, 16)] == [12, 6, 4, 3, 3]


def test_the_token_cap_grows_with_the_audio():
    assert token_cap(0) == 16
    assert token_cap(10) == 16 + 120 and token_cap(10, timed=True) == 16 + 480


def _looping_llm() -> OsumModel:
    """The tiny preset whose LM head always prefers token 77: greedy decoding repeats it forever."""
    torch.manual_seed(0)
    model = OsumModel(preset_config("tiny")).eval()
    old = model.lm.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[77] = 5.0
    model.lm.lm_head = head
    return model


def test_a_looping_llm_answer_stops_and_is_trimmed():
    model = _looping_llm()
    batch = random_batch([1.0, 0.7], [3, 5], [1, 1], vocab=1000)
    options = DecodingOptions(max_new_tokens=60)
    assert generate_ids(model, batch, options) == [[77] * 60] * 2  # no guard: the loop fills the budget
    ids, means = generate(model, batch, options, caps=[40, 40])
    assert ids == [[77], [77]] and means == [None, None]  # cut by the guard: no score
    ids, _ = generate(model, batch, DecodingOptions(max_new_tokens=60, stop_loops=False), caps=[5, 5])
    assert ids == [[77] * 60] * 2  # the guards are off


def test_the_cap_stops_each_row_at_its_own_length():
    model = _looping_llm()
    with torch.no_grad():
        model.lm.lm_head.bias.zero_()
        model.lm.lm_head.weight[:50].normal_(0, 1.0)  # varied tokens, no loop
    batch = random_batch([1.0, 0.7], [3, 5], [1, 1], vocab=1000)
    free = generate_ids(model, batch, DecodingOptions(max_new_tokens=30))
    ids, _ = generate(model, batch, DecodingOptions(max_new_tokens=30), caps=[4, 9])
    assert ids[0] == trim_loop(free[0][:4]) and ids[1] == trim_loop(free[1][:9])


@pytest.mark.parametrize("stop_loops", [True, False])
def test_the_whisper_decoder_stops_a_loop(stop_loops, monkeypatch):
    from osum.data.audio import log_mel_spectrogram
    from osum.data.collate import collate
    from osum.testing.tiny import chirp, stage1_with_task_tags

    osum_model = stage1_with_task_tags()
    model = osum_model.model
    vocab = model.decoder.embed_tokens.weight.shape[0]
    scores = torch.zeros(vocab)
    scores[1000] = 10.0  # a decoder that says the same token forever

    monkeypatch.setattr(model, "logits", lambda hidden: scores.expand(hidden.shape[0], vocab).clone())
    prompt = osum_model.codec().prompt_ids(osum_model.task("asr"))
    feats = [log_mel_spectrogram(torch.from_numpy(chirp(1.0)), model.config.encoder.n_mels)]
    batch = collate(feats, [prompt], [[]])
    ids, means = model.decode(batch, 40, caps=[30] if stop_loops else None, loop_start=loop_start if stop_loops else None)
    if stop_loops:
        assert ids == [[1000]] and means == [None]
    else:
        assert ids == [[1000] * 40] and means[0] is None  # cut by the limit: no score either
