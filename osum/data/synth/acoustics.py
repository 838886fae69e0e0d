"""Render-time acoustic augmentation of synthetic clips: speed, reverberation, additive noise, phone channels and
codecs, and level.

Synthetic speech is far cleaner and narrower than real recordings. Each planned clip gets an
:class:`AcousticChain` (drawn by :func:`sample_chain` at plan time from the per-task :class:`AugmentPolicy`;
about 40% of the clips stay clean). Rendering applies it in a fixed order:

1. speed perturbation (0.9x / 1.1x by resampling, which also shifts the pitch, as Kaldi's ``sox speed``) on the
   speech alone, before the clip is laid out, so word and event times are measured after it and stay exact
   (``render.py`` calls :func:`speed_perturb`);
2. reverberation: an exponentially decaying noise tail (RT60 0.1-0.8 s) after a direct path, unit energy,
   convolved and cut back to the clip's length (:func:`reverb_ir`, :func:`add_reverb`);
3. additive noise at an SNR relative to the speech's active power: white, pink, brown, speech-shaped (a
   speech-like spectrum with a syllable-rate wobble) or babble (4-8 synthetic talkers summed)
   (:func:`make_noise`, :func:`add_noise`);
4. a channel: the telephone band (300-3400 Hz) alone, or a codec round trip through ``sox``: 8 kHz mu-law,
   GSM 06.10 or AMR-NB (all on the telephone band), or 16 kHz MP3 at 16-48 kbit/s; then back to 16 kHz, time
   aligned (:func:`apply_channel`);
5. a level change (``gain_db``), which ``render.py`` folds into its final peak normalisation.

Every random draw comes from generators seeded by the clip spec, so a build is the same on every run. Steps
2-4 are :func:`apply_chain`, which returns what it really applied (a codec whose ``sox`` format is missing falls
back to the telephone band, and the record says so).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth.dsp import (
    SAMPLE_RATE,
    active_power,
    band_filter,
    colored_noise,
    fast_len,
    resample,
    trim,
)

NOISE_KINDS = ("white", "pink", "brown", "speech_shaped", "babble")
# "telephone" is the 300-3400 Hz band alone; the 8 kHz codecs are applied to that band too.
CODECS = ("telephone", "mulaw", "gsm", "amr-nb", "mp3")
SPEEDS = (0.9, 1.1)  # perturbed speeds (1.0 = not perturbed)
MP3_KBPS = (16, 24, 32, 48)
PHONE_BAND = (300.0, 3400.0)
_NOISE_WEIGHTS = MappingProxyType(
    {"white": 0.15, "pink": 0.2, "brown": 0.15, "speech_shaped": 0.25, "babble": 0.25}
)
_CODEC_WEIGHTS = MappingProxyType({"telephone": 0.25, "mulaw": 0.15, "gsm": 0.2, "amr-nb": 0.15, "mp3": 0.25})
# (sox format arguments, sample rate) of each codec; mp3 takes its bit rate with -C.
_SOX_CODECS = MappingProxyType(
    {
        "mulaw": (("-t", "raw", "-e", "u-law", "-b", "8"), 8000),
        "gsm": (("-t", "gsm"), 8000),
        "amr-nb": (("-t", "amr-nb"), 8000),
        "mp3": (("-t", "mp3"), 16000),
    }
)
_MAX_CODEC_DELAY = 4000  # samples: encoder delays (mp3: 1105 at 16 kHz) are found by correlation up to this
# Fixed babble material, spoken once per process by ten training voices (background in both splits).
_BABBLE_LINES = (
    ("en-us+m3", "I told them we would be there by six but the traffic was terrible again tonight."),
    ("en+f2", "Did you see the message about the meeting on Thursday afternoon?"),
    ("en-gb-scotland+m1", "The kettle's on, would anybody like a cup of tea before we start?"),
    ("en-us-nyc+f4", "No, no, the other one, the blue folder on the top shelf near the window."),
    ("en-gb-x-rp+m4", "Apparently the prices went up again last week, which nobody expected."),
    ("en-gb-x-gbclan+f1", "We could walk down to the harbour after lunch if the rain stops."),
    ("en-us+Alicia", "She said the new place has really good noodles and it's open late."),
    ("en-gb-x-gbcwmd+m2", "Right, so who is picking up the kids from school on Friday then?"),
    ("en+f3", "I think I left my keys in the car, can you check the passenger seat?"),
    ("en-us+m5", "The game went into overtime and everyone in the bar was shouting."),
)


@dataclass(frozen=True)
class AcousticChain:
    """What to do to one clip (all fields at their defaults = a clean clip)."""

    speed: float = 1.0
    noise: str | None = None  # one of NOISE_KINDS
    snr_db: float | None = None  # speech active power / noise power
    reverb_rt60: float | None = None  # seconds
    reverb_drr_db: float | None = None  # direct-to-reverberant energy ratio
    codec: str | None = None  # one of CODECS
    mp3_kbps: int | None = None
    gain_db: float = 0.0  # level change folded into the final peak normalisation

    @property
    def clean(self) -> bool:
        return self == AcousticChain()

    def to_dict(self) -> dict[str, Any]:
        """Only what is applied, e.g. ``{"noise": "pink", "snr_db": 12.3, "codec": "gsm"}``; ``{}`` if clean."""
        out: dict[str, Any] = {}
        if self.speed != 1.0:
            out["speed"] = self.speed
        if self.noise is not None:
            out.update(noise=self.noise, snr_db=self.snr_db)
        if self.reverb_rt60 is not None:
            out.update(reverb_rt60=self.reverb_rt60, reverb_drr_db=self.reverb_drr_db)
        if self.codec is not None:
            out["codec"] = self.codec
            if self.codec == "mp3":
                out["mp3_kbps"] = self.mp3_kbps
        if self.gain_db != 0.0:
            out["gain_db"] = self.gain_db
        return out


@dataclass(frozen=True)
class AugmentPolicy:
    """How a task's clips may be degraded. Probabilities apply to the clips that are not left clean."""

    clean_share: float = 0.4
    p_noise: float = 0.65
    p_reverb: float = 0.35
    p_codec: float = 0.25
    p_speed: float = 0.4
    p_gain: float = 0.5
    snr_db: tuple[float, float] = (0.0, 30.0)
    rt60: tuple[float, float] = (0.1, 0.8)
    drr_db: tuple[float, float] = (-2.0, 12.0)
    gain_db: tuple[float, float] = (-20.0, 2.0)
    codecs: tuple[str, ...] = CODECS
    noise_margin_db: float = 5.0  # VED: the noise stays this far below the event


_CONTENT = AugmentPolicy()
# Paralinguistic proxies live in pitch, rate and voice quality: no speed perturbation (it moves pitch and rate),
# and no noise louder than the speech's -5 dB.
_PARALINGUISTIC = AugmentPolicy(p_speed=0.0, snr_db=(5.0, 30.0))
TASK_POLICIES: Mapping[str, AugmentPolicy] = MappingProxyType(
    {
        "asr": _CONTENT,
        "srwt": _CONTENT,
        "sttc": _CONTENT,
        # Events must stay audible: no phone band or codec (sneezes and screams live above 3.4 kHz), shorter
        # reverb tails, and noise at least noise_margin_db below the event (see sample_chain).
        "ved": AugmentPolicy(codecs=(), rt60=(0.1, 0.5)),
        "ser": _PARALINGUISTIC,
        "ssr": _PARALINGUISTIC,
        "sgc": _PARALINGUISTIC,
        "sap": _PARALINGUISTIC,
        # Non-speech clips (except a vocal event alone) are their own noise: room and channel only, no level
        # change (their level is part of what they are).
        "nonspeech": AugmentPolicy(p_noise=0.0, p_speed=0.0, p_gain=0.0, p_reverb=0.4, p_codec=0.35),
    }
)


def _weighted(rng: np.random.Generator, weights: Mapping[str, float], allowed: tuple[str, ...]) -> str:
    names = [n for n in weights if n in allowed]
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_chain(
    rng: np.random.Generator, policy: AugmentPolicy, event_snr_db: float | None = None
) -> AcousticChain:
    """Draw one clip's chain. With ``event_snr_db`` (speech-to-event power ratio, VED) the noise SNR is at
    least ``event_snr_db + policy.noise_margin_db``, so the noise stays below the event."""
    if rng.random() < policy.clean_share:
        return AcousticChain()
    chances = {
        "noise": policy.p_noise,
        "reverb": policy.p_reverb,
        "codec": policy.p_codec if policy.codecs else 0.0,
        "speed": policy.p_speed,
        "gain": policy.p_gain,
    }
    for _ in range(8):  # a clip that is not clean gets at least one step
        use = {k: rng.random() < p for k, p in chances.items()}
        if any(use.values()):
            break
    else:
        return AcousticChain()
    values: dict[str, Any] = {}
    if use["speed"]:
        values["speed"] = SPEEDS[int(rng.integers(len(SPEEDS)))]
    if use["noise"]:
        low, high = policy.snr_db
        if event_snr_db is not None:
            low = min(high, max(low, event_snr_db + policy.noise_margin_db))
        values["noise"] = _weighted(rng, _NOISE_WEIGHTS, NOISE_KINDS)
        values["snr_db"] = round(float(rng.uniform(low, high)), 1)
    if use["reverb"]:
        values["reverb_rt60"] = round(float(rng.uniform(*policy.rt60)), 2)
        values["reverb_drr_db"] = round(float(rng.uniform(*policy.drr_db)), 1)
    if use["codec"]:
        values["codec"] = _weighted(rng, _CODEC_WEIGHTS, policy.codecs)
        if values["codec"] == "mp3":
            values["mp3_kbps"] = MP3_KBPS[int(rng.integers(len(MP3_KBPS)))]
    if use["gain"]:
        values["gain_db"] = round(float(rng.uniform(*policy.gain_db)), 1)
    return AcousticChain(**values)


# ---- speed ---------------------------------------------------------------------------------------------------


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster (length ``/ factor``, pitch ``* factor``), by resampling."""
    if factor == 1.0:
        return np.asarray(x, dtype=np.float32)
    return resample(x, SAMPLE_RATE * factor, SAMPLE_RATE)


# ---- noise ---------------------------------------------------------------------------------------------------


def _speech_shaped(n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise with a long-term speech spectrum (flat to 500 Hz, -9 dB/octave above), wobbling at 2-6 Hz."""
    size = fast_len(n)
    spec = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    gain = np.where(freqs < 500.0, 1.0, (np.maximum(freqs, 1.0) / 500.0) ** (-9.0 / 6.02))
    gain *= freqs > 80.0
    out = np.fft.irfft(spec * gain, n=size)[:n]
    t = np.arange(n) / SAMPLE_RATE
    depth = rng.uniform(0.0, 0.6)
    out *= 1.0 + depth * np.sin(2 * np.pi * rng.uniform(2.0, 6.0) * t + rng.uniform(0, 2 * np.pi))
    return out


@functools.cache
def _babble_sources() -> tuple[np.ndarray, ...]:
    """The fixed babble talkers (16 kHz, silence trimmed); empty if espeak-ng is missing."""
    from osum.data.tts import synthesize_array
    from osum.errors import OsumError

    out = []
    for voice, line in _BABBLE_LINES:
        try:
            wave = trim(synthesize_array(line, voice, "espeak-ng"), threshold_db=-40.0)
        except OsumError:
            return ()
        out.append(wave / max(float(np.sqrt(active_power(wave))), 1e-9))
    return tuple(out)


def _babble(n: int, rng: np.random.Generator) -> np.ndarray:
    """4-8 talkers from the fixed pool, each looped from a random offset, within +-4 dB of each other."""
    sources = _babble_sources()
    if not sources:
        return _speech_shaped(n, rng)  # no synthesizer: the closest stand-in
    out = np.zeros(n)
    for i in rng.permutation(len(sources))[: int(rng.integers(4, 9))]:
        src = sources[int(i)]
        idx = (np.arange(n) + int(rng.integers(len(src)))) % len(src)
        out += src[idx] * 10 ** (rng.uniform(-4.0, 4.0) / 20)
    return out


def make_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Noise ``(n,)`` of ``kind`` (one of NOISE_KINDS), float32, zero mean, unit RMS."""
    if kind == "white":
        out = rng.standard_normal(n)
    elif kind == "pink":
        out = colored_noise(n, rng, 20.0, 7900.0, tilt_db=-3.0)
    elif kind == "brown":
        out = colored_noise(n, rng, 20.0, 7900.0, tilt_db=-6.0)
    elif kind == "speech_shaped":
        out = _speech_shaped(n, rng)
    elif kind == "babble":
        out = _babble(n, rng)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {NOISE_KINDS}")
    out = np.asarray(out, dtype=np.float64)
    out -= out.mean() if n else 0.0
    rms = float(np.sqrt(np.mean(out**2))) if n else 0.0
    return (out / max(rms, 1e-12)).astype(np.float32)


def add_noise(
    x: np.ndarray, noise: np.ndarray, snr_db: float, speech_power: float | None = None
) -> np.ndarray:
    """``x + g * noise`` (float64) with ``speech_power / mean(g * noise) ** 2 = snr_db`` in dB.

    ``speech_power`` defaults to the active power of ``x`` (``dsp.active_power``); pass it when ``x`` holds more
    than the speech (an event, say), so that the SNR refers to the speech alone.
    """
    power = active_power(x) if speech_power is None else speech_power
    noise = np.asarray(noise, dtype=np.float64)
    noise_power = float(np.mean(noise**2)) if noise.size else 0.0
    if power <= 0 or noise_power <= 0:
        return np.asarray(x, dtype=np.float64)
    gain = np.sqrt(power / (noise_power * 10 ** (snr_db / 10)))
    return np.asarray(x, dtype=np.float64) + gain * noise


# ---- reverberation -------------------------------------------------------------------------------------------


def reverb_ir(rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response ``(L,)`` with unit energy.

    A direct path at sample 0, then after 2-10 ms a Gaussian-noise tail whose amplitude falls 60 dB in ``rt60``
    seconds (lightly low-passed, as walls absorb highs), scaled so that direct / tail energy is ``drr_db``.
    """
    length = max(2, int(rt60 * SAMPLE_RATE))
    delay = int(rng.uniform(0.002, 0.010) * SAMPLE_RATE)
    t = np.arange(length - delay) / SAMPLE_RATE
    tail = rng.standard_normal(length - delay) * np.exp(-6.908 * t / rt60)
    tail = np.convolve(tail, np.ones(3) / 3.0, mode="same")
    energy = float(np.sum(tail**2))
    ir = np.zeros(length)
    ir[0] = 1.0
    if energy > 0:
        ir[delay:] = tail * np.sqrt(10 ** (-drr_db / 10) / energy)
    return ir / np.sqrt(np.sum(ir**2))


def add_reverb(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``ir`` (FFT), cut to ``len(x)`` so that every time in the clip stays where it was."""
    n = len(x)
    if n == 0:
        return np.zeros(0)
    size = 1 << int(np.ceil(np.log2(n + len(ir))))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)
    return y[:n]


# ---- channels and codecs -------------------------------------------------------------------------------------


@functools.cache
def codec_available(codec: str) -> bool:
    """True when ``sox`` can encode and decode ``codec`` here (the band-only "telephone" is always available)."""
    if codec == "telephone":
        return True
    if codec not in _SOX_CODECS or shutil.which("sox") is None:
        return False
    try:
        probe = np.sin(np.arange(1600) * 0.3) * 0.3
        return _sox_roundtrip(probe, codec, 32).size > 0
    except (OSError, RuntimeError):
        return False


def _sox(args: list[str], data: bytes) -> bytes:
    # -D: no dither (sox dithers with a random seed when it reduces the bit depth); -R: repeatable anyway.
    proc = subprocess.run(["sox", "-V1", "-D", "-R", *args], input=data, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"sox {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def _sox_roundtrip(x: np.ndarray, codec: str, kbps: int | None) -> np.ndarray:
    """Encode and decode ``x`` (at the codec's rate, float in [-1, 1]) with sox; float64 at the same rate."""
    fmt, rate = _SOX_CODECS[codec]
    raw = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(rate)]
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2").tobytes()
    enc = list(fmt) + (["-C", str(kbps)] if codec == "mp3" and kbps else [])
    coded = _sox([*raw, "-", *enc, "-"], pcm)
    decoded = _sox([*fmt, "-r", str(rate), "-c", "1", "-", *raw, "-"], coded)
    return np.frombuffer(decoded, dtype="<i2").astype(np.float64) / 32768.0


def _align(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y`` shifted back by its delay against ``x`` (0.._MAX_CODEC_DELAY samples, by cross-correlation) and
    cut or zero-padded to ``len(x)``."""
    n = len(x)
    lag = 0
    if n and float(np.sum(x**2)) > 0 and len(y):
        size = 1 << int(np.ceil(np.log2(len(y) + n)))
        cc = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
        lag = int(np.argmax(cc[: min(_MAX_CODEC_DELAY, len(y)) + 1]))
    out = np.zeros(n)
    part = y[lag : lag + n]
    out[: len(part)] = part
    return out


def apply_channel(x: np.ndarray, codec: str, kbps: int | None = None) -> tuple[np.ndarray, str]:
    """``x`` through ``codec`` (one of CODECS) and back at 16 kHz, same length and timing, same scale.

    Returns the audio and the codec really applied ("telephone" when sox cannot do ``codec`` here).
    """
    x = np.asarray(x, dtype=np.float64)
    if codec != "mp3":
        x = band_filter(x, *PHONE_BAND).astype(np.float64)
    if codec == "telephone" or not codec_available(codec):
        return x, "telephone"
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 1e-9:
        return x, codec  # silence stays silence
    scale = 0.7 / peak  # use the codec's range whatever the clip's level, then undo it
    rate = _SOX_CODECS[codec][1]
    y = resample(x * scale, SAMPLE_RATE, rate) if rate != SAMPLE_RATE else x * scale
    y = _sox_roundtrip(np.asarray(y, dtype=np.float64), codec, kbps)
    if rate != SAMPLE_RATE:
        y = resample(y, rate, SAMPLE_RATE).astype(np.float64)
    return _align(y, x * scale) / scale, codec


# ---- the chain -----------------------------------------------------------------------------------------------


def apply_chain(
    x: np.ndarray, chain: AcousticChain, rng: np.random.Generator, speech_power: float | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Reverberation, noise and channel of ``chain`` applied to ``x`` ``(N,)``; float64 ``(N,)`` and
    ``chain.to_dict()`` with the codec really used. Speed and gain are the caller's (see the module docstring).

    ``speech_power`` is the active power of the speech in ``x`` (default: of ``x``); the noise SNR refers to it.
    The steps draw from ``rng`` in a fixed order, so the same chain and generator give the same samples.
    """
    ir_rng, noise_rng = (np.random.default_rng(int(s)) for s in rng.integers(2**62, size=2))
    y = np.asarray(x, dtype=np.float64)
    power = active_power(y) if speech_power is None else speech_power
    applied = chain.to_dict()
    if chain.reverb_rt60 is not None:
        y = add_reverb(y, reverb_ir(chain.reverb_rt60, chain.reverb_drr_db or 0.0, ir_rng))
    if chain.noise is not None and chain.snr_db is not None:
        y = add_noise(y, make_noise(chain.noise, len(y), noise_rng), chain.snr_db, power)
    if chain.codec is not None:
        y, used = apply_channel(y, chain.codec, chain.mp3_kbps)
        if used != chain.codec:
            applied["codec"] = used
            applied.pop("mp3_kbps", None)
    return y, applied
