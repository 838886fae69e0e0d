"""F0 statistics for the label heads (osum/data/pitch.py) and the heads that read them."""

from __future__ import annotations

import math

import pytest
import torch

from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.pitch import PITCH_FEATURES, pitch_features
from osum.data.tts import synthesize
from osum.model.label_tokens import PITCH_ONLY, LabelTokens


def tone(hz: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    # a voice-like harmonic tone: the tracker reads its fundamental
    return sum(0.3 / k * torch.sin(2 * math.pi * k * hz * t) for k in range(1, 6))


@pytest.mark.parametrize("hz", [100.0, 220.0])
def test_a_harmonic_tone_gives_its_fundamental(hz):
    f = pitch_features(tone(hz))
    assert f.shape == (PITCH_FEATURES,) and f.dtype == torch.float32
    assert 2 ** float(f[1]) * 150 == pytest.approx(hz, rel=0.02)
    assert float(f[3]) > 0.9  # voiced nearly throughout


def test_silence_noise_and_too_short_clips_give_zeros():
    for wave in (torch.zeros(SAMPLE_RATE), torch.zeros(100)):
        assert torch.equal(pitch_features(wave), torch.zeros(PITCH_FEATURES))
    assert (
        float(pitch_features(torch.randn(SAMPLE_RATE, generator=torch.Generator().manual_seed(0)) * 0.1)[3])
        < 0.2
    )


def test_a_female_voice_is_higher_than_a_male_one(tmp_path):
    text = "the orange kite drifted slowly over the quiet harbor"
    female = pitch_features(load_audio(synthesize(text, tmp_path / "f.wav", engine="flite", voice="slt")))
    male = pitch_features(load_audio(synthesize(text, tmp_path / "m.wav", engine="flite", voice="rms")))
    assert float(female[1]) - float(male[1]) > 0.5  # more than half an octave apart


def test_pitch_only_heads_ignore_the_frames_and_the_rest_read_both():
    torch.manual_seed(0)
    heads = LabelTokens(8, fields=["gender", "age", "speech"], pitch=True).eval()
    enc, lengths = torch.randn(2, 5, 8), torch.tensor([5, 3])
    pitch = torch.randn(2, PITCH_FEATURES)
    a, _ = heads(enc, lengths, pitch)
    b, _ = heads(enc + 1.0, lengths, pitch)
    c, _ = heads(enc, lengths, pitch + 1.0)
    assert "gender" in PITCH_ONLY
    assert torch.equal(a["gender"], b["gender"]) and not torch.equal(a["gender"], c["gender"])
    assert not torch.equal(a["age"], b["age"]) and not torch.equal(a["age"], c["age"])
    with pytest.raises(ValueError, match="pitch features"):
        heads(enc, lengths)
