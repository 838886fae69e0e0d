"""mini-stage1 as Whisper transcribes (decoder.label_heads): the pretrained decoding, labels from heads, word times."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration

import osum
from osum.convert.whisper import load_whisper, packaged_tiny_en_dir
from osum.data.audio import load_audio, log_mel_spectrogram
from osum.data.collate import collate
from osum.data.pitch import pitch_features
from osum.data.tts import synthesize
from osum.inference.decoding import DecodingOptions
from osum.inference.vad import SpeechMap
from osum.inference.word_times import dtw_path, group_words
from osum.model.label_tokens import AttentionPool
from osum.tasks import LABEL_FIELDS, attribute_classes
from osum.training.optim import set_trainable

SENTENCE = "the orange kite drifted slowly over the quiet harbor"


@pytest.fixture(scope="module")
def base():
    return osum.load("mini-stage1-base", device="cpu")


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> torch.Tensor:
    return load_audio(synthesize(SENTENCE, tmp_path_factory.mktemp("s") / "x.wav", voice="en-us+m3"))


def test_it_transcribes_exactly_as_the_pretrained_whisper(base, speech):
    """Its own prompt, the whole 30 s window, Whisper's suppressed tokens: transformers' generate, token for token
    (unpadded, the decoder never sees the silence after the speech and loops or drops words)."""
    cfg, sd = load_whisper(packaged_tiny_en_dir())
    hf = WhisperForConditionalGeneration(cfg).eval()
    hf.load_state_dict(sd)
    padded = log_mel_spectrogram(torch.nn.functional.pad(speech, (0, 480000 - speech.shape[0])))
    ref = hf.generate(input_features=padded.T[None], max_new_tokens=40)[0].tolist()
    ref_text = base.tokenizer.decode([t for t in ref if t < 50256]).strip()
    ours = base.run([speech], tasks=["asr"], sample_rate=16000, options=DecodingOptions(max_new_tokens=40))
    assert ours[0]["asr"].raw == ref_text
    assert ref_text.lower().rstrip(".") == SENTENCE


def test_every_task_shares_one_transcript_and_the_heads_give_the_labels(base, speech, monkeypatch):
    trained = osum.Osum(base.model, base.tokenizer)
    trained.model.config.trained = True
    # the gender head reads the pitch features alone, through a small MLP, the event head pools frames by
    # attention: set their output layers
    heads = {
        n: h[-1] if isinstance(h, torch.nn.Sequential) else h.out if isinstance(h, AttentionPool) else h
        for n, h in trained.model.label_tokens.heads.items()
    }
    saved = {n: (h.weight.clone(), h.bias.clone()) for n, h in heads.items()}
    try:
        with torch.no_grad():  # a head that always says "male", and one that always says "speech"
            for name, value in (("gender", "male"), ("speech", "speech")):
                heads[name].weight.zero_()
                heads[name].bias.fill_(-10.0)
                heads[name].bias[LABEL_FIELDS[name].values.index(value)] = 10.0
        out = trained.run([speech], tasks=["asr", "sgc", "ser", "sttc"], sample_rate=16000)[0]
        assert out["sgc"].transcript == out["asr"].transcript == out["sttc"].transcript
        assert out["sgc"].labels["gender"] == "male" and out["ser"].labels["emotion"] is not None
        assert out["sgc"].raw.endswith("<male>")
        # the voice activity detector hears nothing, the speech head hears speech: the words go (the guard), the
        # classifiers' reading of the voice stays
        deaf = lambda wave: SpeechMap(torch.zeros(max(1, wave.shape[0] // 512)), (), wave.shape[0])  # noqa: E731
        monkeypatch.setattr("osum.inference.engine.default_detector", lambda: deaf)
        gated = trained.run([speech], tasks=["asr", "sgc", "sttc"], sample_rate=16000)[0]
        assert gated["asr"].raw == "" and gated["sttc"].raw == ""
        assert gated["sgc"].raw == "<male>" and gated["sgc"].transcript == ""
        assert gated["sgc"].labels["gender"] == "male" and gated["sgc"].no_speech_prob == 1.0
        monkeypatch.undo()
        with torch.no_grad():  # now the speech head hears none: no words, no labels, whatever is asked
            heads["speech"].bias.neg_()
        silent = trained.run([speech], tasks=["asr", "sgc", "ved"], sample_rate=16000)[0]
        assert silent["asr"].transcript == "" and silent["sgc"].labels["gender"] is None
        assert silent["ved"].raw == "" and silent["ved"].labels["event"] is None
        with torch.no_grad():  # a vocal sound without words (a lone cough): VED names it, nothing else answers
            for name, value in (("speech", "vocal"), ("event", "cough")):
                heads[name].weight.zero_()
                heads[name].bias.fill_(-10.0)
                heads[name].bias[LABEL_FIELDS[name].values.index(value)] = 10.0
        vocal = trained.run([speech], tasks=["asr", "sgc", "ved", "ser"], sample_rate=16000)[0]
        assert vocal["ved"].raw == "<cough>" and vocal["ved"].transcript == ""
        assert vocal["ved"].labels["event"] == "cough" and vocal["ved"].label_probs["event"]["cough"] > 0.99
        assert vocal["asr"].raw == "" and vocal["sgc"].labels["gender"] is None
        assert vocal["ser"].labels["emotion"] is None
    finally:
        trained.model.config.trained = False
        with torch.no_grad():
            for n, (w, b) in saved.items():
                heads[n].weight.copy_(w)
                heads[n].bias.copy_(b)


def test_srwt_word_times_follow_the_speech(base, tmp_path):
    """Word by word synthesis with known pauses: the alignment heads' times land near the true word times."""
    words = SENTENCE.split()[:5]
    pieces, times, pos = [], [], 0.05
    for i, w in enumerate(words):
        x = load_audio(synthesize(w, tmp_path / f"{i}.wav", voice="en-us+f3")).numpy()
        keep = np.flatnonzero(np.abs(x) > 0.02)
        x = x[keep[0] : keep[-1] + 1]
        pieces.append(np.zeros(int(0.25 * 16000), np.float32))
        pieces.append(x)
        pos += 0.25
        times.append((pos, pos + len(x) / 16000))
        pos += len(x) / 16000
    wave = torch.from_numpy(np.concatenate([np.zeros(int(0.05 * 16000), np.float32), *pieces]))
    got = base.run([wave], tasks=["srwt"], sample_rate=16000)[0]["srwt"]
    assert [w.word.strip(".,").lower() for w in got.words] == words
    # the first word starts where the path does (0 s); the others start within 0.3 s of the truth
    starts = [abs(w.start - t[0]) for w, t in zip(got.words[1:], times[1:], strict=True)]
    assert max(starts) < 0.3, (got.raw, times)


def test_dtw_and_word_grouping():
    cost = np.ones((3, 6))
    for i, j in ((0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)):
        cost[i, j] = 0.0
    rows, cols = dtw_path(cost)
    assert rows.tolist() == [0, 0, 1, 1, 2, 2] and cols.tolist() == [0, 1, 2, 3, 4, 5]
    assert group_words([" Hello", ",", " wor", "ld", "."]) == [("Hello,", 0, 2), ("world.", 2, 5)]


def test_only_the_heads_train_and_the_decoder_is_not_run(base, speech):
    params = set_trainable(base.model, ["label_tokens"])
    assert params and all(p.requires_grad for p in base.model.label_tokens.parameters())
    assert not any(p.requires_grad for p in base.model.decoder.parameters())
    feats = [log_mel_spectrogram(speech)] * 2
    attrs = [attribute_classes({"gender": "male", "speech": "speech"}), attribute_classes({"speech": "none"})]
    batch = collate(feats, [[1], [1]], [[2], [2]], attributes=attrs)
    with pytest.raises(ValueError, match="pitch features"):  # mini-stage1's heads read F0 statistics too
        base.model(batch)
    batch = collate(feats, [[1], [1]], [[2], [2]], attributes=attrs, pitch=[pitch_features(speech)] * 2)
    base.model.train()
    try:
        out = base.model(batch)
        out.loss.backward()
    finally:
        base.model.eval()
        for p in base.model.parameters():
            p.requires_grad_(False)
            p.grad = None
    assert out.logits is None and out.loss.item() > 0


def test_an_encoder_adapted_under_a_frozen_decoder_learns_from_the_transcript(base, speech):
    """train_modules [encoder] on a model with label heads: the decoder runs and its transcript loss reaches the
    encoder (it used to return the frozen heads' loss alone, with the decoder not run)."""
    set_trainable(base.model, ["encoder"])
    feats = [log_mel_spectrogram(speech)]
    attrs = [attribute_classes({"gender": "male", "speech": "speech"})]
    batch = collate(feats, [[1]], [[2, 3]], attributes=attrs, pitch=[pitch_features(speech)])
    base.model.train()
    try:
        out = base.model(batch)
        out.loss.backward()
        grads = [p.grad for p in base.model.encoder.layers.parameters()]
    finally:
        base.model.eval()
        for p in base.model.parameters():
            p.requires_grad_(False)
            p.grad = None
    assert out.logits is not None and out.loss.item() > 0
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_a_transcriber_decodes_the_models_own_adapted_encoder(base):
    """sources.transcriber on a model whose encoder was adapted (weights no longer the packaged ones): the
    transcriber's decoder reads that encoder (one pass; the LLM's frames are the model's own), not a second copy
    of the packaged one."""
    import copy

    from osum.inference.transcriber import Transcriber

    encoder = copy.deepcopy(base.model.encoder)
    with torch.no_grad():
        encoder.layers[0].fc1.weight.add_(0.01)
    assert Transcriber.build("packaged:whisper-tiny.en", encoder).model.encoder is encoder
