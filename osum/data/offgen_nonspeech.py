"""Non-speech clips for the off-generator evaluation: the right transcript of every one is the empty string.

:data:`SPECS` is the fixed list of synthetic clips (kind, length, parameters); :func:`render_nonspeech` makes
one as float32 16 kHz samples from numpy's seeded generator, so a seed always gives the same clips. Levels are
RMS in dBFS. Kinds: digital silence, dither and near-silence, white/pink/brown noise, mains hum (50/60 Hz with
harmonics), pure tones, chords, DTMF digits, call-progress tones, clicks, and synthetic non-vocal sounds
(sweep, siren, wind, rain, engine, clock ticks, bell, knocks). The builder adds packaged non-speech recordings
(alsa-utils' Noise.wav, Asterisk's recorded silences).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth.dsp import SAMPLE_RATE, band_filter, colored_noise, smooth_noise

_FADE = 0.01  # s of raised-cosine fade at both ends (no onset click) for every kind but silence and clicks


@dataclass(frozen=True)
class NonSpeechSpec:
    """One synthetic clip: ``name`` (unique, used in the key), ``kind``, length and the kind's parameters."""

    name: str
    kind: str
    seconds: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


def _spec(kind: str, seconds: float, suffix: str = "", **params: Any) -> NonSpeechSpec:
    return NonSpeechSpec(f"{kind}{'-' + suffix if suffix else ''}", kind, seconds, params)


SPECS: tuple[NonSpeechSpec, ...] = (
    _spec("silence", 2.0, "2s"),
    _spec("silence", 7.5, "7s"),
    _spec("silence", 15.0, "15s"),
    _spec("dither", 3.0, "1lsb"),
    _spec("near-silence", 6.0, "m80db", level_db=-80.0),
    _spec("near-silence", 12.0, "m66db", level_db=-66.0),
    *(
        _spec(f"{color}-noise", s, f"m{-level:g}db", level_db=level)
        for color, levels in (
            ("white", ((4.0, -45.0), (9.0, -30.0), (18.0, -15.0))),
            ("pink", ((3.5, -45.0), (10.0, -30.0), (16.0, -15.0))),
            ("brown", ((5.0, -40.0), (8.0, -25.0), (20.0, -15.0))),
        )
        for s, level in levels
    ),
    _spec("hum", 6.0, "50hz-m35db", f0=50.0, level_db=-35.0),
    _spec("hum", 11.0, "50hz-m20db", f0=50.0, level_db=-20.0),
    _spec("hum", 5.5, "60hz-m35db", f0=60.0, level_db=-35.0),
    _spec("hum", 14.0, "60hz-m20db", f0=60.0, level_db=-20.0),
    _spec("tone", 2.5, "250hz", freqs=(250.0,), level_db=-20.0),
    _spec("tone", 4.0, "1000hz", freqs=(1000.0,), level_db=-12.0),
    _spec("tone", 7.0, "3150hz", freqs=(3150.0,), level_db=-25.0),
    _spec("chord", 5.0, "c-major", freqs=(261.63, 329.63, 392.0), level_db=-18.0),
    _spec("chord", 8.0, "cluster", freqs=(440.0, 466.16, 493.88), level_db=-22.0),
    _spec("dtmf", 6.0, "5551234", digits="5551234", level_db=-18.0),
    _spec("dtmf", 9.0, "all", digits="0123456789*#", level_db=-18.0),
    _spec("call-progress", 10.0, "dial", freqs=(350.0, 440.0), on=1.0, off=0.0, level_db=-20.0),
    _spec("call-progress", 8.0, "busy", freqs=(480.0, 620.0), on=0.5, off=0.5, level_db=-20.0),
    _spec("clicks", 5.0, "regular", rate=4.0, regular=True, level_db=-40.0),
    _spec("clicks", 10.0, "random", rate=3.0, regular=False, level_db=-45.0),
    _spec("sweep", 6.0, level_db=-20.0),
    _spec("siren", 9.0, level_db=-20.0),
    _spec("wind", 12.0, level_db=-28.0),
    _spec("rain", 15.0, level_db=-30.0),
    _spec("engine", 10.0, level_db=-22.0),
    _spec("ticking", 8.0, level_db=-36.0),
    _spec("bell", 6.5, level_db=-24.0),
    _spec("knocks", 4.5, level_db=-26.0),
)

_DTMF_ROWS = {"123": 697.0, "456": 770.0, "789": 852.0, "*0#": 941.0}
_DTMF_COLS = {"147*": 1209.0, "2580": 1336.0, "369#": 1477.0}


def dtmf_pair(digit: str) -> tuple[float, float]:
    """The (row, column) frequencies in Hz of a DTMF key."""
    row = next(f for keys, f in _DTMF_ROWS.items() if digit in keys)
    col = next(f for keys, f in _DTMF_COLS.items() if digit in keys)
    return row, col


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _sines(n: int, freqs: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    t = _t(n)
    return sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)


def _gate(n: int, on: float, off: float) -> np.ndarray:
    if off <= 0:
        return np.ones(n)
    return ((_t(n) % (on + off)) < on).astype(np.float64)


def _events(n: int, times: np.ndarray, make: Callable[[int], np.ndarray]) -> np.ndarray:
    """Sum of ``make(i)`` (a short array) placed at each of ``times`` (s), cut at the end."""
    out = np.zeros(n)
    for i, t0 in enumerate(times):
        start = int(t0 * SAMPLE_RATE)
        piece = make(i)[: max(0, n - start)]
        out[start : start + len(piece)] += piece
    return out


def _decay(seconds: float, tau: float) -> np.ndarray:
    return np.exp(-_t(int(seconds * SAMPLE_RATE)) / tau)


def _render(kind: str, n: int, p: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    t = _t(n)
    if kind == "silence":
        return np.zeros(n)
    if kind == "dither":  # triangular (TPDF) dither of +-1 LSB of 16-bit audio
        return rng.triangular(-1.0, 0.0, 1.0, n) / 32768.0
    if kind in ("near-silence", "white-noise"):
        return rng.standard_normal(n)
    if kind in ("pink-noise", "brown-noise"):
        return colored_noise(n, rng, 20.0, SAMPLE_RATE / 2, tilt_db=-3.0 if kind == "pink-noise" else -6.0)
    if kind == "hum":  # mains hum: harmonics 1-8, falling amplitudes, odd ones stronger (transformer buzz)
        gains = [(1.0 if k % 2 else 0.4) / k for k in range(1, 9)]
        return sum(
            g * np.sin(2 * np.pi * k * p["f0"] * t + rng.uniform(0, 2 * np.pi))
            for k, g in enumerate(gains, 1)
        )
    if kind in ("tone", "chord"):
        return _sines(n, p["freqs"], rng)
    if kind == "call-progress":
        return _sines(n, p["freqs"], rng) * _gate(n, p["on"], p["off"])
    if kind == "dtmf":  # each key 150 ms, 100 ms apart, the sequence repeated after a 1 s pause
        keys = p["digits"]
        cycle = len(keys) * 0.25 + 1.0
        times = np.array(
            [c * cycle + i * 0.25 for c in range(int(n / SAMPLE_RATE / cycle) + 1) for i in range(len(keys))]
        )
        tone = int(0.15 * SAMPLE_RATE)
        return _events(
            n, times, lambda i: _sines(tone, dtmf_pair(keys[i % len(keys)]), rng) * np.hanning(tone) ** 0.1
        )
    if kind == "clicks":
        count = int(p["rate"] * n / SAMPLE_RATE)
        times = (
            np.arange(count) / p["rate"] if p["regular"] else np.sort(rng.uniform(0, n / SAMPLE_RATE, count))
        )
        gains = np.ones(count) if p["regular"] else rng.uniform(0.2, 1.0, count)
        return _events(n, times, lambda i: gains[i] * np.array([1.0, -0.6, 0.3, -0.1]))
    if kind == "sweep":  # logarithmic chirp 100 Hz -> 7 kHz
        f0, f1, dur = 100.0, 7000.0, n / SAMPLE_RATE
        k = np.log(f1 / f0) / dur
        return np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    if kind == "siren":  # a wail between 650 and 1100 Hz, up and down in 2.9 s
        freq = 875.0 + 225.0 * np.sin(2 * np.pi * 0.35 * t)
        return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)
    if kind == "wind":  # low-passed pink noise with slow gusts
        gust = 1.0 + 0.6 * smooth_noise(n, rng, 0.4)
        return band_filter(
            colored_noise(n, rng, 40.0, 1200.0, tilt_db=-3.0) * np.clip(gust, 0.1, None), 40.0, 1500.0
        )
    if kind == "rain":  # ~80 drops/s (short decaying noise bursts) over pink noise
        times = np.sort(rng.uniform(0, n / SAMPLE_RATE, int(80 * n / SAMPLE_RATE)))
        drop = int(0.008 * SAMPLE_RATE)
        drops = _events(
            n, times, lambda i: rng.uniform(0.1, 1.0) * rng.standard_normal(drop) * _decay(0.008, 0.0015)
        )
        return band_filter(drops, 800.0, 7000.0) + 0.05 * colored_noise(n, rng, 100.0, 8000.0, tilt_db=-3.0)
    if kind == "engine":  # idling engine: 27 Hz firing harmonics with jitter, plus brown noise
        f0 = 27.0 * (1.0 + 0.03 * smooth_noise(n, rng, 1.0))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        return sum(np.sin(k * phase) / k for k in range(1, 12)) + 0.2 * colored_noise(
            n, rng, 20.0, 4000.0, -6.0
        )
    if kind == "ticking":  # tick-tock every 0.5 s: band-passed clicks, alternating pitch
        tick = int(0.02 * SAMPLE_RATE)
        times = np.arange(0, n / SAMPLE_RATE, 0.5)
        return _events(
            n, times, lambda i: np.sin(2 * np.pi * (2500 if i % 2 else 1800) * _t(tick)) * _decay(0.02, 0.003)
        )
    if kind == "bell":  # inharmonic struck bell (partial ratios of a church bell), a strike every 2 s
        ratios, amps = (0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67), (0.6, 1.0, 0.7, 0.5, 0.4, 0.25, 0.2)
        strike = _t(int(2.0 * SAMPLE_RATE))
        ring = sum(
            a * np.sin(2 * np.pi * 523.0 * r * strike) * np.exp(-strike * r / 0.9)
            for r, a in zip(ratios, amps, strict=True)
        )
        return _events(n, np.arange(0.2, n / SAMPLE_RATE, 2.0), lambda i: ring)
    if kind == "knocks":  # three knocks on a door, then a pause
        thud = _t(int(0.15 * SAMPLE_RATE))
        knock = np.sin(2 * np.pi * 110.0 * thud) * np.exp(-thud / 0.03)
        times = np.array(
            [c * 1.5 + d for c in range(int(n / SAMPLE_RATE / 1.5) + 1) for d in (0.1, 0.32, 0.54)]
        )
        return _events(
            n,
            times,
            lambda i: (
                knock * rng.uniform(0.7, 1.0) + 0.2 * rng.standard_normal(len(knock)) * np.exp(-thud / 0.01)
            ),
        )
    raise ValueError(f"unknown non-speech kind {kind!r}")


def render_nonspeech(spec: NonSpeechSpec, seed: int, index: int) -> np.ndarray:
    """The clip as float32 16 kHz ``(round(seconds * 16000),)``, RMS at ``params["level_db"]`` dBFS (peak at
    most 0.9); the same ``(seed, index)`` always gives the same samples."""
    n = round(spec.seconds * SAMPLE_RATE)
    rng = np.random.default_rng([seed, index])
    x = np.asarray(_render(spec.kind, n, spec.params, rng), dtype=np.float64)
    if "level_db" in spec.params:
        rms = float(np.sqrt(np.mean(x**2)))
        x = x * (10 ** (spec.params["level_db"] / 20) / max(rms, 1e-12))
    peak = float(np.max(np.abs(x))) if n else 0.0
    if peak > 0.9:
        x *= 0.9 / peak
    if spec.kind not in ("silence", "dither", "clicks"):
        fade = min(int(_FADE * SAMPLE_RATE), n // 2)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        x[:fade] *= ramp
        x[n - fade :] *= ramp[::-1]
    return x.astype(np.float32)
