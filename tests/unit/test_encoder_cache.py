"""The padded 30 s window (encoder.pad_to_window) and the frozen-encoder cache (data.encoder_cache)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from osum.config import DataConfig, DatasetEntry
from osum.data.audio import log_mel_spectrogram
from osum.data.dataset import TrainingData
from osum.data.encoder_cache import EncoderCache, fill_cache
from osum.data.manifest import load_utterance_audio
from osum.data.reader import read_any
from osum.errors import ConfigError, OsumError
from osum.model.encoder import WhisperEncoder, pad_with_silence
from osum.model.osum import OsumModel
from osum.presets import preset_config
from osum.testing.tiny import chirp, write_toy_corpus


def tiny_encoder(pad: bool) -> WhisperEncoder:
    torch.manual_seed(0)
    cfg = dataclasses.replace(preset_config("tiny").encoder, pad_to_window=pad)
    return WhisperEncoder(cfg).eval()


def test_silence_padding_is_the_log_mel_of_a_zero_padded_wave():
    wave = torch.from_numpy(chirp(1.3))
    mel = log_mel_spectrogram(wave)
    whole = log_mel_spectrogram(torch.nn.functional.pad(wave, (0, 16000 * 4)))
    padded = pad_with_silence(mel[None], torch.tensor([mel.shape[0]]), whole.shape[0])[0]
    t = mel.shape[0]
    torch.testing.assert_close(padded[:t], mel)
    # past the two STFT frames that straddle the clip's end, the padding is exactly Whisper's silence
    torch.testing.assert_close(padded[t + 2 :], whole[t + 2 :])


def test_a_padded_window_batch_equals_each_clip_alone_and_keeps_its_own_frames():
    enc = tiny_encoder(pad=True)
    feats = [log_mel_spectrogram(torch.from_numpy(chirp(s, seed=i))) for i, s in enumerate((1.7, 0.6))]
    batch = torch.zeros(2, feats[0].shape[0], 80)
    for i, f in enumerate(feats):
        batch[i, : f.shape[0]] = f
    lengths = torch.tensor([f.shape[0] for f in feats])
    with torch.no_grad():
        both, out_lengths = enc(batch, lengths)
        window, _ = enc(batch, lengths, keep_window=True)
        for i, f in enumerate(feats):
            alone, n = enc(f[None], lengths[i : i + 1])
            torch.testing.assert_close(both[i, : int(n)], alone[0], atol=1e-5, rtol=1e-5)
    assert both.shape[1] == (feats[0].shape[0] + 1) // 2 and out_lengths.tolist() == [85, 30]
    assert window.shape[1] == enc.config.max_positions
    torch.testing.assert_close(window[:, : both.shape[1]], both)


@pytest.mark.parametrize("pad", [True, False])
def test_the_cache_holds_each_clips_frames_and_refuses_another_encoder(tmp_path, pad):
    """A window-padding encoder's cache holds the whole window (its decoder reads all of it), another's the
    clip's own frames; each equals the clip encoded alone."""
    manifest = write_toy_corpus(tmp_path / "corpus", n=6)
    clips = list(read_any(manifest))
    enc = tiny_encoder(pad=pad)
    cache = EncoderCache(tmp_path / "cache")
    assert fill_cache(cache, enc, clips, batch_size=4) == len({u.audio for u in clips})
    assert fill_cache(cache, enc, clips) == 0  # all there: nothing recomputed
    frames, n_mel = cache.load(clips[0])
    mel = log_mel_spectrogram(load_utterance_audio(clips[0]))
    with torch.no_grad():
        alone, _ = enc(mel[None], torch.tensor([mel.shape[0]]), keep_window=True)
    assert n_mel == mel.shape[0] and frames.shape == alone[0].shape
    assert frames.shape[0] == (enc.config.max_positions if pad else (mel.shape[0] + 1) // 2)
    torch.testing.assert_close(frames, alone[0], atol=2e-3, rtol=2e-3)  # stored as float16
    with pytest.raises(ConfigError, match="another encoder"):
        fill_cache(cache, tiny_encoder(pad=not pad), clips)
    (cache.path(clips[1])).unlink()
    with pytest.raises(OsumError, match="no cached encoder frames"):
        cache.load(clips[1])


def test_cached_batches_give_the_models_own_loss(tmp_path):
    """A batch read from the cache (no audio, no encoder) gives the same loss as one that runs the encoder."""
    manifest = write_toy_corpus(tmp_path / "corpus", n=4)
    torch.manual_seed(0)
    cfg = preset_config("tiny")
    cfg.encoder.pad_to_window = True
    model = OsumModel(cfg).eval()
    from osum.api import Osum
    from osum.model.assets import load_tokenizer

    osum_model = Osum(model, load_tokenizer(cfg.sources.tokenizer))
    codec = osum_model.codec(random_prompt=False)
    plain = DataConfig(spec_augment=False, num_workers=0)
    cached = dataclasses.replace(plain, encoder_cache=str(tmp_path / "cache"))
    entries = [DatasetEntry(path=str(manifest))]
    a, b = TrainingData(entries, plain, codec), TrainingData(entries, cached, codec)
    fill_cache(b.cache, model.encoder, b.utterances)
    batches = a.plan(0)
    x, _ = a.batch_set(batches, 0)[0]
    y, _ = b.batch_set(batches, 0)[0]
    assert y.encoder_frames is not None and y.feats.shape[-1] == 0
    assert torch.equal(x.feat_lengths, y.feat_lengths)
    with torch.no_grad():
        torch.testing.assert_close(model(x).loss, model(y).loss, atol=2e-3, rtol=2e-3)


def test_the_trainer_refuses_a_cache_for_an_encoder_that_trains(tmp_path):
    from osum.config import RunConfig, TrainConfig
    from osum.training.trainer import Trainer

    manifest = write_toy_corpus(tmp_path / "corpus", n=4)
    run = RunConfig(
        data=DataConfig(train=[DatasetEntry(path=str(manifest))], encoder_cache=str(tmp_path / "c")),
        train=TrainConfig(init="tiny", train_modules=["encoder", "adaptor"], out_dir=str(tmp_path / "run")),
    )
    with pytest.raises(ConfigError, match="encoder that does not train"):
        Trainer(run)
    assert not list(tmp_path.glob("c/*.npz"))


def test_a_whisper_decoder_and_its_label_heads_train_on_cached_windows(tmp_path):
    """A label-heads Whisper whose decoder trains: a batch read from the cache gives the loss of one that runs the
    encoder (decoder + heads), and its decoder targets are the transcripts alone, as Whisper writes them."""
    import osum
    from osum.training.optim import set_trainable

    manifest = write_toy_corpus(tmp_path / "corpus", n=4)
    base = osum.load("mini-stage1-base", device="cpu")  # Whisper tiny.en with (untrained) label heads
    model, cfg = base.model.eval(), base.config
    assert cfg.encoder.pad_to_window and cfg.decoder.label_heads
    set_trainable(model, ["decoder_layers", "label_tokens"])
    codec = base.codec(random_prompt=False)
    plain = DataConfig(spec_augment=False, num_workers=0)
    cached = dataclasses.replace(plain, encoder_cache=str(tmp_path / "cache"))
    entries = [DatasetEntry(path=str(manifest))]
    a, b = (TrainingData(entries, c, codec, pitch=True) for c in (plain, cached))
    fill_cache(b.cache, model.encoder, b.utterances)
    batches = a.plan(0)
    x, _ = a.batch_set(batches, 0)[0]
    y, _ = b.batch_set(batches, 0)[0]
    assert y.encoder_frames is not None and y.encoder_frames.shape[1] == cfg.encoder.max_positions
    texts = {codec.decode(row[: int(n)].tolist()) for row, n in zip(y.target_ids, y.target_lengths, strict=True)}
    assert texts <= {u.text.strip() for u in b.utterances} | {""}
    assert not any("<" in t for t in texts)  # no label tags: the heads answer those
    out_x, out_y = model(x), model(y)
    torch.testing.assert_close(out_x.loss, out_y.loss, atol=2e-3, rtol=2e-3)
    assert out_y.logits is not None  # the decoder ran (its loss is part of the total)
    heads_alone = model.label_tokens.loss(
        model.label_logits(y.encoder_frames, (y.feat_lengths + 1) // 2, y.pitch), y.attributes
    )
    assert float(out_y.loss) > float(heads_alone) > 0


def test_pitch_is_computed_once_per_cached_clip_and_read_back(tmp_path, monkeypatch):
    """Label heads that read pitch: the F0 statistics of a cached clip are stored beside its frames at first use and
    read from there afterwards (the audio is not decoded again); the values are pitch_features' own."""
    import osum.data.dataset as dataset_module
    from osum.data.pitch import pitch_features

    manifest = write_toy_corpus(tmp_path / "corpus", n=3)
    torch.manual_seed(0)
    cfg = preset_config("tiny")
    cfg.encoder.pad_to_window = True
    model = OsumModel(cfg).eval()
    from osum.api import Osum
    from osum.model.assets import load_tokenizer

    codec = Osum(model, load_tokenizer(cfg.sources.tokenizer)).codec(random_prompt=False)
    data_cfg = DataConfig(spec_augment=False, num_workers=0, encoder_cache=str(tmp_path / "cache"))
    data = TrainingData([DatasetEntry(path=str(manifest))], data_cfg, codec, pitch=True)
    fill_cache(data.cache, model.encoder, data.utterances)
    assert all(data.cache.load_pitch(u) is None for u in data.utterances)
    batches = data.plan(0)
    first, _ = data.batch_set(batches, 0)[0]
    stored = {u.key: data.cache.load_pitch(u) for u in data.utterances}
    assert all(p is not None for p in stored.values())
    u = data.utterances[0]
    torch.testing.assert_close(stored[u.key], pitch_features(load_utterance_audio(u)))
    calls = []
    monkeypatch.setattr(dataset_module, "load_utterance_audio", lambda *a, **k: calls.append(a) or None)
    again, _ = data.batch_set(batches, 1)[0]
    assert calls == [] and torch.equal(first.pitch, again.pitch)
