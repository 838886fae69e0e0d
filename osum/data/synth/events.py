"""Procedural vocal events (laugh, cough, cry, screaming, sigh, throat clearing, sneeze) and their mixing, and
the procedural sounds of non-speech clips (silence, room tone, noise, hum, tones, clicks).

Each event generator returns a mono float32 clip ``(N,)`` at 16 kHz, peak 1, built from two ingredients: a
voiced source (harmonics of a time-varying F0 shaped by vowel formants) and shaped noise, under an envelope that
gives the event its rhythm. They are caricatures, not recordings: good enough that the event's presence and
timing are acoustic facts, and that the classes differ in pitch, noisiness and rhythm.

:func:`nonspeech_sound` makes the sound of a clip without speech at an absolute level (dBFS), so that silence
stays quiet; a vocal event alone (kind ``"event"``) is laid out by ``render.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth.acoustics import make_noise
from osum.data.synth.dsp import SAMPLE_RATE, active_power, colored_noise, smooth_noise, trim_bounds

Formants = tuple[tuple[float, float], ...]  # (centre Hz, bandwidth Hz)
_VOWEL_A: Formants = ((800.0, 110.0), (1250.0, 130.0), (2600.0, 220.0))
_VOWEL_U: Formants = ((350.0, 90.0), (900.0, 120.0), (2400.0, 220.0))
_VOWEL_E: Formants = ((500.0, 100.0), (1900.0, 150.0), (2700.0, 220.0))


def _n(seconds: float) -> int:
    return max(1, int(round(seconds * SAMPLE_RATE)))


def voiced(f0: np.ndarray, formants: Formants, rng: np.random.Generator, tilt_db: float = -9.0) -> np.ndarray:
    """Harmonic source following ``f0`` (Hz per sample, ``(N,)``) filtered by ``formants``; unit peak.

    Harmonic k has amplitude ``tilt(k) * sum_i resonance_i(k * f0)``, so the vowel colour stays put while the
    pitch moves. A little jitter keeps it from sounding like a pure synthesizer tone.
    """
    n = len(f0)
    f0 = f0 * (1.0 + 0.01 * smooth_noise(n, rng, 30.0))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    out = np.zeros(n)
    for k in range(1, 60):
        fk = k * f0
        if fk.min() >= SAMPLE_RATE / 2 - 400:
            break
        gain = sum(1.0 / (1.0 + ((fk - c) / (bw / 2)) ** 2) for c, bw in formants) + 0.02
        gain *= 10 ** (tilt_db * np.log2(k) / 20) * (fk < SAMPLE_RATE / 2 - 400)
        out += gain * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return (out / max(np.max(np.abs(out)), 1e-9)).astype(np.float32)


def envelope(n: int, attack: float, release: float, decay_tau: float | None = None) -> np.ndarray:
    """Raised-cosine attack and release (seconds); optionally an exponential decay after the attack."""
    env = np.ones(n)
    a, r = min(_n(attack), n), min(_n(release), n)
    env[:a] *= 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, a))
    env[n - r :] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, r))
    if decay_tau:
        env[a:] *= np.exp(-np.arange(n - a) / (decay_tau * SAMPLE_RATE))
    return env


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    out = np.concatenate(parts).astype(np.float64)
    return (out / max(np.max(np.abs(out)), 1e-9)).astype(np.float32)


def _silence(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return np.zeros(_n(rng.uniform(low, high)))


def laugh(rng: np.random.Generator) -> np.ndarray:
    """3-6 "ha" bursts: breathy onset then a voiced /a/, pitch falling from burst to burst."""
    f0 = rng.uniform(180, 380)
    parts = []
    for _ in range(int(rng.integers(3, 7))):
        n_h, n_a = _n(rng.uniform(0.02, 0.04)), _n(rng.uniform(0.07, 0.13))
        h = 0.3 * colored_noise(n_h, rng, 500, 4000) * envelope(n_h, 0.01, 0.005)
        a = voiced(np.linspace(f0 * 1.05, f0 * 0.95, n_a), _VOWEL_A, rng) * envelope(n_a, 0.015, 0.04)
        a += 0.15 * colored_noise(n_a, rng, 800, 5000) * envelope(n_a, 0.01, 0.05)
        parts += [h, a, _silence(rng, 0.05, 0.12)]
        f0 *= rng.uniform(0.94, 0.99)
    return _concat(parts[:-1])


def cough(rng: np.random.Generator) -> np.ndarray:
    """1-3 coughs: a broadband burst with a sharp (2-5 ms) attack and fast exponential decay."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        n = _n(rng.uniform(0.2, 0.35))
        burst = colored_noise(n, rng, 200, 5000, tilt_db=-2.0) * envelope(
            n, rng.uniform(0.002, 0.005), 0.03, decay_tau=rng.uniform(0.04, 0.08)
        )
        low = voiced(np.full(n, rng.uniform(110, 160)), _VOWEL_A, rng) * envelope(
            n, 0.003, 0.02, decay_tau=0.03
        )
        parts += [burst + 0.4 * low, _silence(rng, 0.1, 0.3)]
    return _concat(parts[:-1])


def cry(rng: np.random.Generator) -> np.ndarray:
    """A wavering high voiced tone (vibrato and drift) broken into sobs by a 2-4 Hz amplitude pulse."""
    n = _n(rng.uniform(1.0, 2.0))
    t = np.arange(n) / SAMPLE_RATE
    vib = rng.uniform(0.04, 0.08) * np.sin(2 * np.pi * rng.uniform(5, 8) * t)
    f0 = rng.uniform(350, 550) * (1.0 + vib + 0.08 * smooth_noise(n, rng, 2.0))
    tone = voiced(f0, _VOWEL_U if rng.random() < 0.5 else _VOWEL_A, rng, tilt_db=-7.0)
    sob = np.abs(np.sin(np.pi * rng.uniform(2, 4) * t + rng.uniform(0, np.pi))) ** 1.5
    breath = 0.2 * colored_noise(n, rng, 1000, 6000) * (1.0 - sob)
    return _concat([(tone * sob + breath) * envelope(n, 0.05, 0.15)])


def screaming(rng: np.random.Generator) -> np.ndarray:
    """A loud, bright, high voiced tone (F0 700-1200 Hz) with rough noise, rise-fall contour."""
    n = _n(rng.uniform(0.6, 1.5))
    contour = np.sin(np.pi * np.linspace(0.15, 0.85, n))
    f0 = rng.uniform(700, 1200) * (0.85 + 0.15 * contour) * (1.0 + 0.02 * smooth_noise(n, rng, 15.0))
    bright: Formants = ((1000.0, 200.0), (1800.0, 250.0), (3200.0, 300.0))
    tone = voiced(f0, bright, rng, tilt_db=-4.0) + 0.15 * colored_noise(n, rng, 1000, 7000)
    return _concat([tone * envelope(n, 0.03, 0.1)])


def sigh(rng: np.random.Generator) -> np.ndarray:
    """Breathy noise with a quick rise and a long falling envelope, over a faint falling voiced tone."""
    n = _n(rng.uniform(0.6, 1.3))
    noise = colored_noise(n, rng, 300, 3500, tilt_db=-3.0)
    tone = voiced(np.linspace(rng.uniform(180, 240), rng.uniform(100, 130), n), _VOWEL_A, rng)
    env = envelope(n, rng.uniform(0.08, 0.15), 0.1, decay_tau=rng.uniform(0.25, 0.45))
    return _concat([(noise + 0.25 * tone) * env])


def throat_clearing(rng: np.random.Generator) -> np.ndarray:
    """2-3 low rough bursts: low-passed noise and a creaky low buzz, pulsed at 25-60 Hz."""
    parts = []
    for _ in range(int(rng.integers(2, 4))):
        n = _n(rng.uniform(0.1, 0.25))
        t = np.arange(n) / SAMPLE_RATE
        pulses = (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(25, 60) * t)) ** 3
        buzz = voiced(np.full(n, rng.uniform(70, 110)), _VOWEL_E, rng, tilt_db=-3.0)
        body = (colored_noise(n, rng, 80, 900) + 0.8 * buzz) * pulses
        parts += [body * envelope(n, 0.01, 0.04), _silence(rng, 0.04, 0.12)]
    return _concat(parts[:-1])


def sneeze(rng: np.random.Generator) -> np.ndarray:
    """A rising inhale ("ah") then a sharp high-frequency burst ("choo") with a fast decay."""
    n_in, n_out = _n(rng.uniform(0.25, 0.5)), _n(rng.uniform(0.12, 0.25))
    inhale = colored_noise(n_in, rng, 800, 3000) * np.linspace(0.05, 0.35, n_in) ** 1.5
    inhale += 0.2 * voiced(np.linspace(250, 400, n_in), _VOWEL_A, rng) * np.linspace(0, 1, n_in) ** 2
    burst = colored_noise(n_out, rng, 2000, 7500) * envelope(
        n_out, 0.004, 0.03, decay_tau=rng.uniform(0.04, 0.07)
    )
    return _concat([inhale, _silence(rng, 0.03, 0.08), burst])


EVENT_GENERATORS: MappingProxyType[str, Callable[[np.random.Generator], np.ndarray]] = MappingProxyType(
    {
        "laugh": laugh,
        "cough": cough,
        "cry": cry,
        "screaming": screaming,
        "sigh": sigh,
        "throat clearing": throat_clearing,
        "sneeze": sneeze,
    }
)
PLACEMENTS = ("before", "after", "inside")


def make_event(name: str, rng: np.random.Generator) -> np.ndarray:
    """One event clip ``(N,)`` with its own leading/trailing silence trimmed."""
    clip = EVENT_GENERATORS[name](rng)
    start, end = trim_bounds(clip, threshold_db=-40.0, frame=80)
    return clip[start:end]


@dataclass(frozen=True)
class Layout:
    """Where speech and event sit on the clip canvas (samples)."""

    length: int
    speech_at: int
    event_at: int
    event_len: int


def layout(
    speech_len: int, event_len: int, placement: str, lead: int, tail: int, gap: int, frac: float
) -> Layout:
    """Canvas layout: the event before the speech, after it, or overlaid inside it (at ``frac`` of the room).

    ``lead``/``tail`` are the silences at the clip ends and ``gap`` the silence between event and speech for
    "before"/"after". The layout depends on lengths only, so the same clip can be rebuilt without its event.
    """
    if placement == "before":
        return Layout(lead + event_len + gap + speech_len + tail, lead + event_len + gap, lead, event_len)
    if placement == "after":
        return Layout(lead + speech_len + gap + event_len + tail, lead, lead + speech_len + gap, event_len)
    room = max(0, speech_len - event_len)
    at = lead + int(frac * room)
    return Layout(max(lead + speech_len, at + event_len) + tail, lead, at, event_len)


def event_gain(speech: np.ndarray, event: np.ndarray, snr_db: float) -> float:
    """Gain for ``event`` so that speech power / event power = ``snr_db`` (both over their active frames)."""
    ps, pe = active_power(speech), active_power(event)
    if ps <= 0 or pe <= 0:
        return 0.0
    return float(np.sqrt(ps / (pe * 10 ** (snr_db / 10))))


# ---- non-speech clips ----------------------------------------------------------------------------------------

# Kinds of non-speech clip and their shares. "event" is a vocal event alone (its label is kept for VED only).
NONSPEECH_KINDS = MappingProxyType(
    {
        "silence": 0.1,
        "room_tone": 0.15,
        "noise": 0.2,
        "hum": 0.1,
        "tones": 0.1,
        "clicks": 0.1,
        "event": 0.25,
    }
)


def _at_rms(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32) if rms > 0 else x.astype(np.float32)


def _at_peak(x: np.ndarray, dbfs: float) -> np.ndarray:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (10 ** (dbfs / 20) / peak)).astype(np.float32) if peak > 0 else x.astype(np.float32)


def _room_tone(n: int, rng: np.random.Generator, low_db: float, high_db: float) -> tuple[np.ndarray, float]:
    level = float(rng.uniform(low_db, high_db))
    color = ("pink", "brown", "speech_shaped")[int(rng.integers(3))]
    return _at_rms(make_noise(color, n, rng), level), level


def silence(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Digital silence (a third of the time) or a dither-level floor at -95..-75 dBFS RMS."""
    if rng.random() < 1 / 3:
        return np.zeros(n, np.float32), {"level_dbfs": None}
    level = float(rng.uniform(-95.0, -75.0))
    return _at_rms(make_noise("white", n, rng), level), {"level_dbfs": round(level, 1)}


def room_tone(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A quiet room: pink, brown or speech-shaped noise at -75..-50 dBFS RMS."""
    out, level = _room_tone(n, rng, -75.0, -50.0)
    return out, {"level_dbfs": round(level, 1)}


def steady_noise(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Fan, wind, traffic or hiss: coloured noise at -50..-18 dBFS RMS whose level drifts slowly (0-60%)."""
    color = ("white", "pink", "brown", "speech_shaped")[int(rng.integers(4))]
    out = make_noise(color, n, rng).astype(np.float64)
    depth = rng.uniform(0.0, 0.6)
    out *= np.clip(1.0 + depth * smooth_noise(n, rng, rng.uniform(0.2, 2.0)), 0.1, None)
    level = float(rng.uniform(-50.0, -18.0))
    return _at_rms(out, level), {"color": color, "level_dbfs": round(level, 1)}


def hum(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Mains hum or buzz: 50/60 Hz and 2-12 harmonics (odd ones stronger for a buzz), over a room tone."""
    f0 = (50.0, 60.0)[int(rng.integers(2))]
    t = np.arange(n) / SAMPLE_RATE
    buzz = rng.random() < 0.5
    out = np.zeros(n)
    for k in range(1, int(rng.integers(2, 13)) + 1):
        amp = k ** -rng.uniform(0.5, 1.5) * (1.5 if buzz and k % 2 else 1.0) * rng.uniform(0.5, 1.0)
        out += amp * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    out *= 1.0 + 0.05 * smooth_noise(n, rng, 1.0)
    level = float(rng.uniform(-50.0, -20.0))
    floor, _ = _room_tone(n, rng, level - 35.0, level - 20.0)
    return _at_rms(out, level) + floor, {"f0_hz": f0, "buzz": buzz, "level_dbfs": round(level, 1)}


def _note(freq: float, n: int, rng: np.random.Generator, harmonics: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    out = sum(
        k**-1.2 * np.sin(2 * np.pi * k * freq * t + rng.uniform(0, 2 * np.pi))
        for k in range(1, harmonics + 1)
        if k * freq < SAMPLE_RATE / 2 - 500
    )
    return np.asarray(out, dtype=np.float64)


def tones(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Beeps, dial/DTMF tones, a sweep, or a sequence of chords (music-like), at -25..-3 dBFS peak."""
    style = ("beeps", "dtmf", "sweep", "chords")[int(rng.integers(4))]
    out = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.5) * SAMPLE_RATE)
    if style == "sweep":
        f_a, f_b = rng.uniform(150, 600), rng.uniform(2000, 6000)
        if rng.random() < 0.5:
            f_a, f_b = f_b, f_a
        freq = f_a * (f_b / f_a) ** (np.arange(n) / max(n - 1, 1))  # a logarithmic sweep
        out = np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE) * envelope(n, 0.02, 0.02)
    while style != "sweep" and pos < n:
        if style == "beeps":
            m = _n(rng.uniform(0.08, 0.5))
            piece = _note(rng.uniform(400, 2500), m, rng, 1)
            gap = rng.uniform(0.1, 1.0)
        elif style == "dtmf":
            m = _n(rng.uniform(0.07, 0.25))
            piece = _note(rng.choice((697, 770, 852, 941)), m, rng, 1)
            piece += _note(rng.choice((1209, 1336, 1477)), m, rng, 1)
            gap = rng.uniform(0.05, 0.3)
        else:
            m = _n(rng.uniform(0.3, 1.5))
            root = 440.0 * 2 ** ((rng.integers(-15, 10)) / 12)
            steps = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 10), (0, 5, 9))[int(rng.integers(4))]
            piece = sum(_note(root * 2 ** (s / 12), m, rng, int(rng.integers(2, 7))) for s in steps)
            piece *= envelope(m, 0.01, 0.2, decay_tau=rng.uniform(0.3, 1.5))
            gap = rng.uniform(0.0, 0.2)
        m = min(m, n - pos)
        out[pos : pos + m] += piece[:m] * envelope(m, 0.005, 0.01)
        pos += m + _n(gap)
    peak = float(rng.uniform(-25.0, -3.0))
    floor, _ = _room_tone(n, rng, -80.0, -55.0)
    return _at_peak(out, peak) + floor, {"style": style, "peak_dbfs": round(peak, 1)}


def clicks(n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Random clicks and crackle, a ticking clock, or keyboard typing, at -25..-3 dBFS peak."""
    style = ("crackle", "ticks", "typing")[int(rng.integers(3))]
    out = np.zeros(n)
    period = rng.uniform(0.25, 1.0)
    t = rng.uniform(0.0, 0.3)
    while t * SAMPLE_RATE < n:
        at = int(t * SAMPLE_RATE)
        if style == "typing":
            m = _n(rng.uniform(0.01, 0.03))
            piece = colored_noise(m, rng, 800, 6000) * envelope(m, 0.001, 0.005, decay_tau=0.006)
            t += rng.uniform(0.08, 0.25) if rng.random() < 0.85 else rng.uniform(0.4, 1.2)
        else:
            m = _n(rng.uniform(0.001, 0.004))
            piece = colored_noise(m, rng, 300, 7500) * envelope(m, 0.0002, 0.001, decay_tau=0.001)
            t += period if style == "ticks" else rng.exponential(1.0 / rng.uniform(1.0, 15.0))
        m = min(m, n - at)
        out[at : at + m] += piece[:m] * rng.uniform(0.3, 1.0)
    peak = float(rng.uniform(-25.0, -3.0))
    floor, _ = _room_tone(n, rng, -80.0, -50.0)
    return _at_peak(out, peak) + floor, {"style": style, "peak_dbfs": round(peak, 1)}


_Sound = Callable[[int, np.random.Generator], tuple[np.ndarray, dict[str, Any]]]
NONSPEECH_GENERATORS: Mapping[str, _Sound] = MappingProxyType(
    {
        "silence": silence,
        "room_tone": room_tone,
        "noise": steady_noise,
        "hum": hum,
        "tones": tones,
        "clicks": clicks,
    }
)


def nonspeech_sound(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """``n`` samples of non-speech ``kind`` (any of NONSPEECH_KINDS but "event") at its own absolute level,
    float32 within [-1, 1], and a few facts about it (level, colour, style) for the manifest."""
    audio, info = NONSPEECH_GENERATORS[kind](n, rng)
    return np.clip(audio, -1.0, 1.0).astype(np.float32), info
