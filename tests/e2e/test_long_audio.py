"""Audio of any length and the no-speech guard, with the committed models.

A two-minute recording is built here from espeak-ng sentences, each spoken word by word (every word's start and end
known to the sample, as in the synthetic corpus), with pauses between sentences; it decodes end to end into one
transcript, segments and word times in the recording's time. Silence, coloured noise and tone chords give empty
answers with a high ``no_speech_prob``.
"""

from __future__ import annotations

import difflib

import numpy as np
import pytest

import osum
from osum.data.audio import SAMPLE_RATE
from osum.data.synth.dsp import trim_bounds
from osum.data.tts import synthesize_array
from osum.evaluation.metrics import word_errors
from osum.evaluation.normalize import normalize_english
from osum.testing.sentences import PLAIN_SENTENCES as SENTENCES

pytestmark = pytest.mark.slow

MAX_ERROR = 0.3  # seconds


@pytest.fixture(scope="module")
def recording() -> tuple[np.ndarray, list[tuple[str, float, float]], list[tuple[float, float]]]:
    """(samples, [(word, start s, end s)], [(sentence start s, end s)]) of about two minutes."""
    rng = np.random.default_rng(7)
    parts: list[np.ndarray] = [np.zeros(int(0.7 * SAMPLE_RATE), np.float32)]
    pos = parts[0].shape[0]
    words, sentences = [], []
    for sentence in SENTENCES:
        first = pos
        for i, word in enumerate(sentence.split()):
            wave = synthesize_array(word, "en-us", speed=160)
            start, end = trim_bounds(wave, threshold_db=-35.0)
            if i:
                gap = int(rng.uniform(0.04, 0.12) * SAMPLE_RATE)
                parts.append(np.zeros(gap, np.float32))
                pos += gap
            parts.append(wave[start:end])
            words.append((word, pos / SAMPLE_RATE, (pos + end - start) / SAMPLE_RATE))
            pos += end - start
        sentences.append((first / SAMPLE_RATE, pos / SAMPLE_RATE))
        pause = int(rng.uniform(0.8, 1.6) * SAMPLE_RATE)
        parts.append(np.zeros(pause, np.float32))
        pos += pause
    audio = np.concatenate(parts)
    audio += rng.normal(0, 1e-3, audio.shape[0]).astype(np.float32)  # a quiet room, not digital silence
    assert 100 < audio.shape[0] / SAMPLE_RATE < 160
    return audio, words, sentences


def _nearest(t: float, times: list[float]) -> float:
    return min(abs(t - x) for x in times)


@pytest.mark.parametrize("name", ["mini", "mini-stage1"])
def test_a_two_minute_recording_decodes_with_times_in_the_recording(name, recording):
    audio, words, sentences = recording
    model = osum.load(name, device="cpu")
    (result,) = model.run([audio], tasks=["srwt", "asr", "sgc"], sample_rate=SAMPLE_RATE)
    asr, srwt = result["asr"], result["srwt"]
    reference = " ".join(SENTENCES)
    assert word_errors([reference], [asr.transcript], normalize_english).rate < 0.25, asr.transcript
    # segments: cut at pauses, each within the window, starting and ending where sentences do
    duration = audio.shape[0] / SAMPLE_RATE
    assert asr.segments is not None and len(asr.segments) >= duration / 30
    for seg in asr.segments:
        assert 0 <= seg.start < seg.end <= duration and seg.end - seg.start <= 30.0
        assert _nearest(seg.start, [s for s, _ in sentences]) <= MAX_ERROR, seg
        assert _nearest(seg.end, [e for _, e in sentences]) <= MAX_ERROR, seg
    assert [s.start for s in asr.segments] == sorted(s.start for s in asr.segments)
    assert " ".join(s.text for s in asr.segments) == asr.transcript
    # word times in the recording's time: the words matched to the reference are within 0.3 s of where they were said
    hyp = srwt.words
    assert hyp and all(0 <= w.start < w.end <= duration for w in hyp)
    ref_tokens = [w for w, _, _ in words]
    hyp_tokens = [normalize_english(w.word) for w in hyp]
    errors = []
    for block in difflib.SequenceMatcher(a=ref_tokens, b=hyp_tokens, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            (_, start, end), w = words[block.a + k], hyp[block.b + k]
            errors += [abs(w.start - start), abs(w.end - end)]
    assert len(errors) >= 0.7 * 2 * len(words)  # the words heard right (WER is checked above)
    errors = np.array(errors)
    assert errors.mean() <= MAX_ERROR and np.mean(errors <= MAX_ERROR) >= 0.9, (errors.mean(), errors.max())
    # labels: per segment, and for the clip the one given to most of the speech
    sgc = result["sgc"]
    assert sgc.labels["gender"] == "male" and sgc.label_share["gender"] >= 0.5
    assert all(s.labels.get("gender") in ("male", "female") for s in sgc.segments)


def _tones(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.1 * sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))).astype(np.float32)


def _coloured(seconds: float, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (1: pink, 2: brown)."""
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum[1:] /= f[1:] ** (exponent / 2)
    x = np.fft.irfft(spectrum, n)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("name", ["mini", "mini-stage1"])
def test_silence_noise_and_tones_get_empty_answers_with_a_high_no_speech_prob(name):
    rng = np.random.default_rng(3)
    clips = {
        "silence 20 s": np.zeros(20 * SAMPLE_RATE, np.float32),
        "pink noise 10 s": _coloured(10, 1.0, rng),
        "brown noise 45 s": _coloured(45, 2.0, rng),
        "white noise 5 s": (0.05 * rng.normal(size=5 * SAMPLE_RATE)).astype(np.float32),
        "tone chord 10 s": _tones(10),
    }
    model = osum.load(name, device="cpu")
    results = model.run(list(clips.values()), tasks=["asr", "sgc", "sttc"], sample_rate=SAMPLE_RATE)
    for kind, per_task in zip(clips, results, strict=True):
        for task, r in per_task.items():
            assert not (r.transcript or "").strip() and not r.answer, (kind, task, r.raw)
            assert all(v is None for v in r.labels.values()), (kind, task, r.labels)
            assert r.no_speech_prob is not None and r.no_speech_prob > 0.5, (kind, task, r.no_speech_prob)
