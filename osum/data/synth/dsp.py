"""Small numpy signal tools for the synthetic corpus: frame energy, silence trimming, levels, F0, filtering.

All functions take mono float arrays ``(N,)`` at ``SAMPLE_RATE`` (16 kHz) unless told otherwise and never
modify their input.
"""

from __future__ import annotations

import functools

import numpy as np
import soxr

SAMPLE_RATE = 16000
FRAME = 160  # 10 ms analysis frames for energy
_EPS = 1e-12


def frame_rms(x: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """RMS of consecutive non-overlapping frames ``(ceil(N / frame),)``; the last frame is zero-padded."""
    n = -(-len(x) // frame)
    padded = np.zeros(n * frame, dtype=np.float64)
    padded[: len(x)] = x
    return np.sqrt((padded.reshape(n, frame) ** 2).mean(axis=1))


def db(value: float | np.ndarray) -> float | np.ndarray:
    """Amplitude ratio -> decibels (20 log10), floored at -240 dB."""
    return 20.0 * np.log10(np.maximum(value, _EPS))


def trim_bounds(x: np.ndarray, threshold_db: float = -35.0, frame: int = FRAME) -> tuple[int, int]:
    """``(start, end)`` sample bounds of the part louder than ``threshold_db`` below the loudest frame.

    Whole frames are kept, so the bounds are multiples of ``frame`` (clipped to the signal). Silence gives
    ``(0, 0)``.
    """
    rms = frame_rms(x, frame)
    if rms.size == 0 or rms.max() <= _EPS:
        return 0, 0
    active = np.nonzero(rms >= rms.max() * 10 ** (threshold_db / 20))[0]
    return int(active[0] * frame), int(min(len(x), (active[-1] + 1) * frame))


def trim(x: np.ndarray, threshold_db: float = -35.0) -> np.ndarray:
    """``x`` without its leading and trailing silence (see :func:`trim_bounds`)."""
    start, end = trim_bounds(x, threshold_db)
    return x[start:end]


def active_power(x: np.ndarray, threshold_db: float = -30.0, frame: int = FRAME) -> float:
    """Mean square over the frames within ``threshold_db`` of the loudest one (speech-level power)."""
    rms = frame_rms(x, frame)
    if rms.size == 0 or rms.max() <= _EPS:
        return 0.0
    loud = rms[rms >= rms.max() * 10 ** (threshold_db / 20)]
    return float((loud**2).mean())


def normalize_peak(x: np.ndarray, peak_db: float) -> np.ndarray:
    """``x`` scaled so that its largest absolute sample is at ``peak_db`` dBFS (silence stays silence)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= _EPS:
        return x.astype(np.float32)
    return (x * (10 ** (peak_db / 20) / peak)).astype(np.float32)


def resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """soxr resampling (HQ)."""
    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), rate_in, rate_out)


def shift_spectrum(x: np.ndarray, factor: float) -> np.ndarray:
    """Multiply every frequency (F0 and formants) by ``factor`` and shorten the signal by ``1 / factor``.

    Playing the samples back ``factor`` times faster is what a shorter vocal tract with a higher pitch sounds
    like; we use it for children's voices.
    """
    if factor == 1.0:
        return x.astype(np.float32)
    return resample(x, SAMPLE_RATE * factor, SAMPLE_RATE)


@functools.cache
def fast_len(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n``: an FFT size that numpy transforms quickly (a length with a large
    prime factor can be 20 times slower)."""
    best = 1 << max(0, int(n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return max(best, 1)


def band_filter(x: np.ndarray, low: float, high: float, rolloff: float = 0.15) -> np.ndarray:
    """Zero-phase band-pass in the FFT domain with raised-cosine edges ``rolloff`` octaves wide."""
    size = fast_len(len(x))
    spec = np.fft.rfft(x, size)
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    octaves = np.log2(np.maximum(freqs, 1.0))
    gain = np.ones_like(freqs)
    for edge, sign in ((low, 1.0), (high, -1.0)):
        if edge is None or edge <= 0 or edge >= SAMPLE_RATE / 2:
            continue
        t = np.clip(sign * (octaves - np.log2(edge)) / rolloff + 0.5, 0.0, 1.0)
        gain *= 0.5 - 0.5 * np.cos(np.pi * t)
    return np.fft.irfft(spec * gain, n=size)[: len(x)].astype(np.float32)


def colored_noise(
    n: int, rng: np.random.Generator, low: float, high: float, tilt_db: float = 0.0
) -> np.ndarray:
    """Band-limited Gaussian noise ``(n,)`` with unit RMS; ``tilt_db`` dB per octave above ``low``."""
    size = fast_len(n)  # made at a fast FFT length and cut to n
    noise = rng.standard_normal(size)
    if tilt_db:
        spec = np.fft.rfft(noise)
        freqs = np.maximum(np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE), max(low, 1.0))
        spec *= 10 ** (tilt_db * np.log2(freqs / max(low, 1.0)) / 20)
        noise = np.fft.irfft(spec, n=size)
    out = band_filter(noise, low, high)[:n]
    return (out / max(float(np.sqrt((out**2).mean())), _EPS)).astype(np.float32)


def smooth_noise(n: int, rng: np.random.Generator, cutoff: float) -> np.ndarray:
    """Slowly varying random curve ``(n,)``, zero mean, unit RMS, with content below ``cutoff`` Hz."""
    return colored_noise(n, rng, 0.0, cutoff) if n > 1 else np.zeros(n, np.float32)


def f0_track(
    x: np.ndarray, fmin: float = 60.0, fmax: float = 600.0, threshold: float = 0.12, hop: int = 160
) -> np.ndarray:
    """Frame-wise F0 in Hz ``(T,)`` by YIN (cumulative mean normalised difference); NaN where unvoiced.

    Frames are 40 ms with a 20 ms integration window, so F0 down to 50 Hz is measurable. A frame counts as
    voiced when its normalised difference dips below ``threshold`` and it is within 35 dB of the loudest frame.
    """
    window = 320
    n = 2 * window
    if len(x) < n:
        return np.zeros(0)
    starts = np.arange(0, len(x) - n + 1, hop)
    frames = x[starts[:, None] + np.arange(n)].astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    energy = (frames[:, :window] ** 2).mean(axis=1)
    # d(tau) = sum_{j<W} (x_j - x_{j+tau})^2 = e(0, W) + e(tau, tau + W) - 2 r(tau), with r by FFT.
    head = frames.copy()
    head[:, window:] = 0.0
    r = np.fft.irfft(np.conj(np.fft.rfft(head, n)) * np.fft.rfft(frames, n), n)[:, : window + 1]
    csum = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(window + 1)
    d = csum[:, window : window + 1] + csum[:, taus + window] - csum[:, taus] - 2.0 * r
    d[:, 0] = 0.0
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(np.cumsum(d[:, 1:], axis=1), _EPS)
    lo, hi = int(SAMPLE_RATE / fmax), min(int(SAMPLE_RATE / fmin), window)
    seg = cmnd[:, lo : hi + 1]
    below = seg < threshold
    idx = np.argmax(below, axis=1)
    # Walk down to the bottom of the first dip (vectorised over frames).
    for _ in range(seg.shape[1]):
        nxt = np.minimum(idx + 1, seg.shape[1] - 1)
        step = seg[np.arange(len(seg)), nxt] < seg[np.arange(len(seg)), idx]
        if not step.any():
            break
        idx = np.where(step, nxt, idx)
    voiced = below.any(axis=1) & (energy >= energy.max() * 10 ** (-35 / 10))
    return np.where(voiced, SAMPLE_RATE / (lo + idx), np.nan)


def median_f0(x: np.ndarray) -> float:
    """Median F0 (Hz) over voiced frames, NaN when nothing is voiced."""
    track = f0_track(x)
    track = track[np.isfinite(track)]
    return float(np.median(track)) if track.size else float("nan")
