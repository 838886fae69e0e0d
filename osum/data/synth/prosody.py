"""Delivery settings (pitch, rate, loudness, voice quality) per emotion, age group and speaking style.

These are PROCEDURAL PROXIES: a "sad" clip is a clip spoken low, slow and quiet, not a sad speaker. The
settings are drawn from ranges (so classes overlap a little, like real speech) and recorded in the manifest.
``apply_effects`` adds what the engines cannot do: a spectrum shift (child vocal tract; and for every other clip a
small random one, 0.95-1.05, so that formants vary from clip to clip within a voice), tremolo, roughness
(croak-like shimmer), breathiness and tension (soft saturation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth.dsp import SAMPLE_RATE, colored_noise, frame_rms, shift_spectrum, smooth_noise
from osum.data.synth.text import pick


@dataclass(frozen=True)
class Delivery:
    """How one clip is spoken. Engine controls first, then numpy effects (see :func:`apply_effects`)."""

    pitch: float = 50.0  # espeak-ng 0-99 scale (flite maps it to F0, see osum.data.tts)
    speed: float = 175.0  # words per minute as heard in the final clip
    pitch_range: str = "medium"  # osum.data.tts.PITCH_RANGES
    amplitude: float = 100.0  # espeak-ng -a; louder input drives its internal dynamics
    word_gap: int = 0  # extra pause between words, 10 ms units (espeak-ng only)
    level_db: float = 0.0  # peak level relative to the corpus target (quiet voices are quieter)
    shift: float = 1.0  # spectrum shift factor (> 1: shorter vocal tract, higher pitch)
    tremolo_hz: float = 0.0
    tremolo_depth: float = 0.0
    roughness: float = 0.0  # depth of random 20-70 Hz amplitude shimmer (croak-like)
    breath: float = 0.0  # breath noise RMS relative to the speech RMS
    drive: float = 0.0  # tanh saturation strength (tense, pressed voice)

    def engine_speed(self) -> float:
        """The rate to ask the engine for, so that the speed after the spectrum shift is ``speed``."""
        return float(np.clip(self.speed / self.shift, 80.0, 450.0))

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


# Each table row: field -> (low, high) drawn uniformly, or a tuple of choices for pitch_range.
# Rows without a "shift" get this one: a +-5% formant and pitch shift per clip (vocal-tract length variety).
_SHIFT = (0.95, 1.05)
_DEFAULT = {"pitch": (38, 62), "speed": (150, 195), "pitch_range": ("low", "medium", "high")}

EMOTION_DELIVERY = MappingProxyType(
    {
        "neutral": {"pitch": (42, 58), "speed": (155, 185), "pitch_range": ("medium",)},
        "happy": {
            "pitch": (66, 82),
            "speed": (190, 225),
            "pitch_range": ("high", "x-high"),
            "level_db": (-1, 0),
        },
        "sad": {
            "pitch": (20, 34),
            "speed": (105, 130),
            "pitch_range": ("x-low", "low"),
            "level_db": (-12, -8),
            "breath": (0.03, 0.06),
        },
        "anger": {
            "pitch": (45, 62),
            "speed": (200, 235),
            "pitch_range": ("high",),
            "amplitude": (150, 190),
            "drive": (2.5, 4.0),
        },
        "fear": {
            "pitch": (68, 85),
            "speed": (205, 240),
            "pitch_range": ("low", "medium"),
            "level_db": (-6, -3),
            "tremolo_hz": (7, 10),
            "tremolo_depth": (0.25, 0.4),
            "breath": (0.02, 0.04),
        },
        "surprise": {"pitch": (80, 95), "speed": (160, 185), "pitch_range": ("x-high",), "level_db": (-2, 0)},
        "disgust": {
            "pitch": (26, 40),
            "speed": (120, 145),
            "pitch_range": ("low",),
            "level_db": (-5, -3),
            "roughness": (0.3, 0.5),
        },
    }
)

AGE_DELIVERY = MappingProxyType(
    {
        # Children (spoken by female engine voices, see plan.py): high pitch, fast, and a 1.08-1.2x spectrum
        # shift, i.e. a shorter vocal tract. Median F0 comes out around 300 Hz.
        "child": {
            "pitch": (75, 95),
            "speed": (190, 230),
            "pitch_range": ("high", "x-high"),
            "shift": (1.08, 1.2),
        },
        "adult": {"pitch": (38, 62), "speed": (150, 195), "pitch_range": ("low", "medium", "high")},
        "old": {
            "pitch": (10, 30),
            "speed": (100, 135),
            "pitch_range": ("low", "medium"),
            "tremolo_hz": (4, 7),
            "tremolo_depth": (0.15, 0.3),
            "roughness": (0.3, 0.6),
            "breath": (0.01, 0.03),
        },
    }
)

STYLE_DELIVERY = MappingProxyType(
    {
        "新闻科普": {"pitch": (45, 55), "speed": (170, 190), "pitch_range": ("low", "medium")},
        "恐怖故事": {
            "pitch": (15, 30),
            "speed": (100, 125),
            "pitch_range": ("low",),
            "level_db": (-8, -5),
            "breath": (0.03, 0.06),
            "word_gap": (2, 5),
        },
        "童话故事": {"pitch": (62, 78), "speed": (165, 195), "pitch_range": ("x-high",), "level_db": (-1, 0)},
        "客服": {
            "pitch": (55, 65),
            "speed": (175, 200),
            "pitch_range": ("medium", "high"),
            "level_db": (-2, 0),
        },
        "诗歌散文": {
            "pitch": (40, 52),
            "speed": (105, 130),
            "pitch_range": ("high",),
            "word_gap": (3, 8),
            "level_db": (-3, -1),
        },
        "有声书": {"pitch": (42, 55), "speed": (145, 170), "pitch_range": ("medium",), "level_db": (-2, 0)},
        "日常口语": {
            "pitch": (45, 65),
            "speed": (185, 225),
            "pitch_range": ("medium", "high"),
            "level_db": (-1, 0),
        },
    }
)


def _draw(table: dict, rng: np.random.Generator) -> Delivery:
    values: dict[str, Any] = {}
    table = {"shift": _SHIFT, **table}
    for name in sorted(table):  # sorted: the draw order (and so the result) must not depend on dict order
        spec = table[name]
        if name == "pitch_range":
            values[name] = pick(rng, spec)
        elif name == "word_gap":
            values[name] = int(rng.integers(spec[0], spec[1] + 1))
        else:
            values[name] = round(float(rng.uniform(*spec)), 3)
    return Delivery(**values)


def default_delivery(rng: np.random.Generator) -> Delivery:
    """Ordinary read speech: for ASR, SRWT, SGC, VED and STTC."""
    return _draw(_DEFAULT, rng)


def emotion_delivery(emotion: str, rng: np.random.Generator) -> Delivery:
    return _draw(EMOTION_DELIVERY[emotion], rng)


def age_delivery(age: str, rng: np.random.Generator) -> Delivery:
    return _draw(AGE_DELIVERY[age], rng)


def style_delivery(style: str, rng: np.random.Generator) -> Delivery:
    return _draw(STYLE_DELIVERY[style], rng)


def apply_effects(x: np.ndarray, d: Delivery, rng: np.random.Generator) -> np.ndarray:
    """Spectrum shift, tremolo, roughness, breath noise and saturation of ``d`` applied to speech ``(N,)``."""
    y = shift_spectrum(x, d.shift).astype(np.float64)
    n = len(y)
    if n == 0:
        return y.astype(np.float32)
    t = np.arange(n) / SAMPLE_RATE
    if d.tremolo_depth > 0:
        # A slightly wandering rate, like a real tremor.
        rate = d.tremolo_hz * (1.0 + 0.1 * smooth_noise(n, rng, 1.0))
        phase = 2 * np.pi * np.cumsum(rate) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
        y *= 1.0 + d.tremolo_depth * np.sin(phase)
    if d.roughness > 0:
        shimmer = colored_noise(n, rng, 20.0, 70.0)
        y *= np.clip(1.0 + d.roughness * shimmer, 0.0, None)
    if d.breath > 0:
        # Breath noise follows the speech envelope so that it sits on the voice, not in the pauses.
        rms = frame_rms(y)
        env = np.interp(t, (np.arange(len(rms)) + 0.5) * 0.01, rms)
        y += d.breath * 3.0 * env * colored_noise(n, rng, 1200.0, 6000.0)
    if d.drive > 0:
        peak = float(np.max(np.abs(y))) or 1.0
        y = np.tanh(d.drive * y / peak) / np.tanh(d.drive) * peak
    return y.astype(np.float32)
