"""Acoustic augmentation, clips without speech and the voice inventory of the synthetic corpus
(osum/data/synth/acoustics.py, events.py, voices.py). Fast: mostly numpy; a few clips rendered with espeak-ng."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from osum.data.manifest import utterance_from_dict, validate_utterance
from osum.data.synth import PlanSettings, plan_corpus, render_clip
from osum.data.synth import acoustics as A
from osum.data.synth.builder import record_of
from osum.data.synth.dsp import SAMPLE_RATE as SR
from osum.data.synth.dsp import active_power, band_filter, fast_len
from osum.data.synth.events import NONSPEECH_KINDS, nonspeech_sound
from osum.data.synth.plan import TASK_NAMES
from osum.data.synth.voices import TEST_ACCENTS, TEST_VARIANTS, read_variant, split_voices, voice_split
from osum.tasks import get_task

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")


def _speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Harmonic bursts (F0 110-220 Hz, 150-400 ms) separated by pauses: a stand-in for speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n)
    pos = int(0.2 * SR)
    while pos < n - int(0.5 * SR):
        m = int(rng.uniform(0.15, 0.4) * SR)
        t = np.arange(m) / SR
        f0 = rng.uniform(110, 220)
        burst = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 15) if k * f0 < 7000)
        out[pos : pos + m] = burst * np.hanning(m)
        pos += m + int(rng.uniform(0.05, 0.3) * SR)
    return 0.5 * out / np.max(np.abs(out))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


# ---- the augmentation steps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", A.NOISE_KINDS)
def test_noise_is_deterministic_unit_rms_and_hits_the_snr(kind):
    x = _speechlike()
    a = A.make_noise(kind, len(x), np.random.default_rng(5))
    b = A.make_noise(kind, len(x), np.random.default_rng(5))
    assert np.array_equal(a, b) and a.dtype == np.float32 and len(a) == len(x)
    assert abs(_rms(a) - 1.0) < 1e-3 and abs(float(a.mean())) < 1e-3
    assert not np.array_equal(a, A.make_noise(kind, len(x), np.random.default_rng(6)))
    for snr in (0.0, 12.3, 30.0):
        y = A.add_noise(x, a, snr)
        assert len(y) == len(x)
        measured = 10 * np.log10(active_power(x) / np.mean((y - x) ** 2))
        assert abs(measured - snr) < 0.01, (kind, snr, measured)
    # The SNR can refer to a given speech power (render.py passes the speech's, not the mix's).
    y = A.add_noise(x, a, 6.0, speech_power=0.01)
    assert abs(10 * np.log10(0.01 / np.mean((y - x) ** 2)) - 6.0) < 0.01


def test_noise_colours_have_their_spectral_tilt():
    n = 8 * SR
    rng = np.random.default_rng(0)

    def band_power(x: np.ndarray, low: float, high: float) -> float:
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / SR)
        return float(spec[(f >= low) & (f < high)].mean())

    tilt = {}
    for kind in ("white", "pink", "brown"):
        x = A.make_noise(kind, n, rng)
        tilt[kind] = 10 * np.log10(band_power(x, 3200, 4800) / band_power(x, 200, 300))  # 4 octaves apart
    assert abs(tilt["white"]) < 1.5
    assert -15 < tilt["pink"] < -9  # -3 dB per octave
    assert -27 < tilt["brown"] < -21  # -6 dB per octave


def test_reverb_is_deterministic_keeps_length_and_has_a_tail():
    x = np.zeros(2 * SR)
    x[int(0.2 * SR) : int(0.4 * SR)] = _speechlike(0.9)[int(0.2 * SR) : int(0.4 * SR)]
    for rt60 in (0.1, 0.4, 0.8):
        ir = A.reverb_ir(rt60, 0.0, np.random.default_rng(1))
        assert np.array_equal(ir, A.reverb_ir(rt60, 0.0, np.random.default_rng(1)))
        assert abs(np.sum(ir**2) - 1.0) < 1e-9 and len(ir) == int(rt60 * SR)
        y = A.add_reverb(x, ir)
        assert len(y) == len(x)
        end = int(0.4 * SR)
        early = _rms(y[end : end + int(rt60 * SR / 4)])
        late = _rms(y[end + int(rt60 * SR / 2) : end + int(rt60 * SR * 0.9)])
        assert early > 0.02 * _rms(y[:end]) and early > 3 * late > 0  # a tail that dies away
        # The tail falls about 60 dB in RT60: 15 dB per quarter (checked loosely on 30 ms frames).
        frames = [_rms(y[end + i : end + i + 480]) for i in range(0, int(rt60 * SR * 0.75), 480)]
        slope = np.polyfit(np.arange(len(frames)) * 480 / SR, 20 * np.log10(frames), 1)[0]
        assert -90 / rt60 < slope < -35 / rt60, (rt60, slope)


def test_speed_perturbation_changes_length_by_the_factor():
    x = _speechlike(2.0)
    for factor in A.SPEEDS:
        y = A.speed_perturb(x, factor)
        assert abs(len(y) - len(x) / factor) <= 2
        assert np.array_equal(y, A.speed_perturb(x, factor))
    assert np.array_equal(A.speed_perturb(x, 1.0), x.astype(np.float32))


@pytest.mark.parametrize("codec", A.CODECS)
def test_channel_round_trip_keeps_length_timing_and_scale(codec):
    if codec != "telephone" and not A.codec_available(codec):
        pytest.skip(f"sox cannot do {codec} here")
    x = 0.3 * _speechlike(2.0, seed=3)
    y, used = A.apply_channel(x, codec, 32)
    assert used == codec and len(y) == len(x) and np.isfinite(y).all()
    again, _ = A.apply_channel(x, codec, 32)
    assert np.array_equal(y, again)
    ref = x if codec == "mp3" else band_filter(x, *A.PHONE_BAND).astype(np.float64)

    def corr(lag: int) -> float:
        a, b = (y[lag:], ref[: len(ref) - lag]) if lag >= 0 else (y[:lag], ref[-lag:])
        return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))

    assert corr(0) > 0.85, codec
    assert corr(0) > max(corr(3), corr(-3))  # time-aligned (mp3's encoder delay removed)
    assert 0.7 < _rms(y) / _rms(ref) < 1.3
    if codec != "mp3":  # the phone band: nothing left above 3.4 kHz
        spec = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(len(y), 1 / SR)
        assert spec[f > 4500].sum() < 0.01 * spec.sum()


def test_a_missing_codec_falls_back_to_the_phone_band(monkeypatch):
    monkeypatch.setattr(A, "codec_available", lambda codec: False)
    x = _speechlike(1.0)
    y, used = A.apply_channel(x, "gsm")
    assert used == "telephone" and np.allclose(y, band_filter(x, *A.PHONE_BAND), atol=1e-6)
    chain = A.AcousticChain(codec="mp3", mp3_kbps=24)
    _, applied = A.apply_chain(x, chain, np.random.default_rng(0))
    assert applied == {"codec": "telephone"}


def test_apply_chain_is_deterministic_and_records_what_it_did():
    x = _speechlike(2.0)
    chain = A.AcousticChain(
        noise="babble", snr_db=10.0, reverb_rt60=0.3, reverb_drr_db=3.0, codec="telephone"
    )
    a, applied = A.apply_chain(x, chain, np.random.default_rng(9))
    b, _ = A.apply_chain(x, chain, np.random.default_rng(9))
    assert np.array_equal(a, b) and len(a) == len(x)
    assert applied == {"noise": "babble", "snr_db": 10.0, "reverb_rt60": 0.3, "reverb_drr_db": 3.0,
                       "codec": "telephone"}  # fmt: skip
    assert A.AcousticChain().to_dict() == {} and A.AcousticChain().clean
    assert fast_len(160001) == 162000 and fast_len(7) == 8


def test_sampled_chains_follow_the_task_policies():
    rng = np.random.default_rng(0)
    asr = [A.sample_chain(rng, A.TASK_POLICIES["asr"]) for _ in range(3000)]
    clean = np.mean([c.clean for c in asr])
    assert 0.36 < clean < 0.44
    assert {c.codec for c in asr} == {None, *A.CODECS}
    assert {c.noise for c in asr} == {None, *A.NOISE_KINDS}
    assert {c.speed for c in asr} == {1.0, *A.SPEEDS}
    assert all(0.0 <= c.snr_db <= 30.0 for c in asr if c.noise)
    assert all(0.1 <= c.reverb_rt60 <= 0.8 for c in asr if c.reverb_rt60)
    for task in ("ser", "ssr", "sgc", "sap"):  # paralinguistic: no speed change, noise at most speech -5 dB
        chains = [A.sample_chain(rng, A.TASK_POLICIES[task]) for _ in range(300)]
        assert all(c.speed == 1.0 for c in chains) and all(c.snr_db >= 5.0 for c in chains if c.noise)
    for event_snr in (-5.0, 4.0, 10.0):  # VED: no codec, and the noise stays 5 dB below the event
        chains = [A.sample_chain(rng, A.TASK_POLICIES["ved"], event_snr_db=event_snr) for _ in range(300)]
        assert all(c.codec is None for c in chains)
        assert all(c.snr_db >= max(0.0, event_snr + 5.0) - 1e-9 for c in chains if c.noise)


# ---- rendered clips ------------------------------------------------------------------------------------------


@needs_espeak
def test_speed_perturbation_comes_before_word_times():
    spec = next(s for s in plan_corpus(PlanSettings(0.02, 4, task_weights={"srwt": 1})) if s.voice)
    base = render_clip(replace(spec, acoustics=A.AcousticChain()))
    slow = render_clip(replace(spec, acoustics=A.AcousticChain(speed=0.9)))
    assert [w for w, _, _ in slow.words] == [w for w, _, _ in base.words]

    def span(r):
        return r.speech_span[1] - r.speech_span[0]

    assert abs(span(slow) / span(base) - 1 / 0.9) < 0.01
    for (_, s0, e0), (_, s1, e1) in zip(base.words, slow.words, strict=True):
        assert abs((e1 - s1) - (e0 - s0) / 0.9) < 0.002
    assert slow.acoustics == {"speed": 0.9} and base.acoustics == {}


@needs_espeak
def test_rendered_clip_records_its_acoustics_and_keeps_the_dry_clip():
    specs = [s for s in plan_corpus(PlanSettings(0.05, 2, task_weights={"asr": 1})) if s.voice]
    spec = next(s for s in specs if s.acoustics.noise and s.acoustics.codec is None)
    r = render_clip(spec)
    assert np.array_equal(r.audio, render_clip(spec).audio)
    assert len(r.audio) == len(r.dry) and r.audio.dtype == np.float32
    assert r.acoustics == spec.acoustics.to_dict()
    assert record_of(spec, r, float("nan"))["extra"]["acoustics"] == spec.acoustics.to_dict()

    # Noise fills the pauses: the clip's quietest 10% of frames are far louder, relative to its peak, than dry.
    def floor(x: np.ndarray) -> float:
        frames = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160).astype(np.float64) ** 2, axis=1))
        return float(np.percentile(frames, 10) / np.max(np.abs(x)))

    assert floor(r.audio) > 3 * floor(r.dry)
    clean = next(s for s in specs if s.acoustics.clean)
    rendered = render_clip(clean)
    assert rendered.acoustics == {} and record_of(clean, rendered, 100.0)["extra"]["acoustics"] == {}
    assert np.allclose(rendered.audio, rendered.dry, atol=1 / 32768)


# ---- clips without speech -----------------------------------------------------------------------------------


def test_nonspeech_clips_are_planned_for_every_task_and_split_with_empty_targets():
    specs = plan_corpus(PlanSettings(0.4, 1, test_fraction=0.5, nonspeech_share=0.25))
    none = [s for s in specs if s.nonspeech]
    assert {(s.split, s.task) for s in none} == {(sp, t) for sp in ("train", "test") for t in TASK_NAMES}
    assert 0.2 < len(none) / len(specs) < 0.3
    assert {s.nonspeech for s in none} == set(NONSPEECH_KINDS)
    for s in none:
        assert s.text == "" and s.voice is None and not s.word_by_word and s.answer is None
        task = get_task(s.task)
        if s.task == "ved" and s.nonspeech == "event":
            assert dict(s.labels) == {"event": s.event}
            assert task.target(s.text, s.labels) == f"<{s.event}>"
        else:
            assert dict(s.labels) == {}
            assert task.target(s.text, s.labels, None, s.answer) == ""
        assert s.acoustics.speed == 1.0 and (s.nonspeech == "event" or s.acoustics.noise is None)
    # The default share: about 6% of the clips, spread through each task.
    specs = plan_corpus(PlanSettings(2.0, 1))
    assert 0.045 < np.mean([s.nonspeech is not None for s in specs]) < 0.075


@needs_espeak
@pytest.mark.parametrize("kind", list(NONSPEECH_KINDS))
def test_nonspeech_clips_render_with_empty_targets_and_valid_records(kind):
    base = next(
        s for s in plan_corpus(PlanSettings(0.4, 1, nonspeech_share=0.3, task_weights={"ved": 1, "sgc": 1}))
        if s.nonspeech and s.task == ("ved" if kind == "event" else "sgc")
    )  # fmt: skip
    if kind == "event":
        spec = replace(base, nonspeech=kind, event="cough", labels={"event": "cough"})
    else:
        spec = replace(base, nonspeech=kind, event=None, labels={})
    r = render_clip(spec)
    assert np.array_equal(r.audio, render_clip(spec).audio)
    assert 1.0 <= r.duration <= 12.0 and np.isfinite(r.audio).all() and np.abs(r.audio).max() <= 1.0
    if kind == "silence":
        assert _rms(r.audio) < 10 ** (-60 / 20)
    record = record_of(spec, r, float("nan"))
    assert record["text"] == "" and record["extra"]["nonspeech"] is True and record["extra"]["kind"] == kind
    assert "speaker" not in record and "words" not in record
    u = validate_utterance(utterance_from_dict({**record, "audio": "/x.wav"}))
    assert u.target() == ("<cough>" if kind == "event" else "")
    if kind == "event":
        onset, offset = r.event_span
        assert 0 <= onset < offset <= r.duration
        inside = r.dry[int(onset * SR) : int(offset * SR)]
        assert _rms(inside) > 30 * _rms(r.dry[: max(int(onset * SR) - 16, 1)])


def test_nonspeech_sounds_are_deterministic_and_at_their_level():
    for kind in NONSPEECH_KINDS:
        if kind == "event":
            continue
        a, info = nonspeech_sound(kind, 3 * SR, np.random.default_rng(4))
        b, _ = nonspeech_sound(kind, 3 * SR, np.random.default_rng(4))
        assert np.array_equal(a, b) and len(a) == 3 * SR and a.dtype == np.float32
        assert np.abs(a).max() <= 1.0 and _rms(a) < 10 ** (-3 / 20)
        if kind in ("room_tone", "noise", "hum"):
            assert abs(20 * np.log10(_rms(a)) - info["level_dbfs"]) < 1.0, (kind, info)


# ---- voices --------------------------------------------------------------------------------------------------


def test_voice_inventory_splits_are_disjoint_and_hold_both_genders():
    for flite_split in ("test", "train", "split"):
        voices = split_voices(("espeak-ng", "flite"), flite_split)
        train, test = ({v.id for v in voices[s]} for s in ("train", "test"))
        assert not train & test
        for split in ("train", "test"):
            known = {v.gender for v in voices[split] if v.gender_known}
            assert known == {"female", "male"}
        for v in voices["train"]:
            assert v.variant not in TEST_VARIANTS and v.accent not in TEST_ACCENTS
    for v in split_voices(("espeak-ng",))["test"]:
        assert v.variant in TEST_VARIANTS or v.accent in TEST_ACCENTS
        assert voice_split(v) == "test"


@needs_espeak
def test_every_espeak_variant_is_in_the_inventory_with_its_files_gender():
    voices = split_voices(("espeak-ng",))
    variants = {v.variant: v for vs in voices.values() for v in vs}
    assert len(variants) >= 90  # espeak-ng 1.51 ships 101 variants
    assert variants["f1"].gender == "female" and variants["m3"].gender == "male"
    assert variants["Andy"].gender == "male" and variants["anika"].gender == "female"
    assert variants["klatt"].gender == "unknown" and not variants["whisper"].voiced
    assert not variants["whisper"].gender_known and not variants["klatt"].gender_known


def test_read_variant_parses_gender_and_voicing(tmp_path):
    cases = {
        "a": ("name a\ngender Male\npitch 80 110\n", ("male", True)),
        "b": ("language variant\ngender female 70\nvoicing 17\n", ("female", False)),
        "c": ("## gender female is a comment\nname c\nformant 0 100 100 100\n", ("unknown", True)),
        "d": ("gender neuter\nvoicing 150\n", ("unknown", True)),
        "e": ("klatt 6\nvoicing 0\n", ("unknown", True)),  # Klatt voices ignore "voicing"
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text, encoding="latin-1")
        assert read_variant(tmp_path / name) == expected, name


def test_gender_and_age_tasks_use_gender_known_voices_only():
    specs = plan_corpus(PlanSettings(0.3, 0, task_weights={"sgc": 1, "sap": 1, "ser": 1, "asr": 1}))
    by_task: dict = {}
    for s in specs:
        if s.voice is None:
            continue
        by_task.setdefault(s.task, []).append(s.voice)
        if s.task in ("sgc", "sap"):
            assert s.voice.gender_known
        if s.task == "sgc":
            assert s.voice.gender == s.labels["gender"]
        if s.task == "ser":
            assert s.voice.voiced
    if HAVE_ESPEAK:  # the other tasks also draw on gender-unknown variants
        assert any(v.gender == "unknown" for v in by_task["asr"])
