"""Audio front end: load any soundfile-readable file or array as 16 kHz mono, and compute Whisper log-mels.

The features are the ones OSUM (and Whisper) feed the encoder: an 80- or 128-bin log-mel spectrogram with a
25 ms window (400 samples) and a 10 ms hop (160 samples), normalised per utterance. Unlike Whisper, OSUM never
pads audio to 30 s, so neither does this module: an utterance of N samples gives ``N // 160`` frames.
"""

from __future__ import annotations

import functools
import io
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import torch.nn.functional as F
from transformers.audio_utils import mel_filter_bank

from osum.errors import AudioError, AudioFormatError, AudioTooLongError, ConfigError

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160

# soxr "HQ" (libsoxr's 20-bit-precision preset, and python-soxr's default) is far beyond what 80-bin speech
# features can resolve; "VHQ" (28 bit) would only cost time.
RESAMPLE_QUALITY = "HQ"

_ARRAY_NAME = "<array>"


def num_mel_frames(n_samples: int) -> int:
    """Number of log-mel frames for ``n_samples`` samples at 16 kHz: ``n_samples // HOP_LENGTH``.

    This is the single definition of the feature length; the model's speech-token count is built on it.
    """
    if n_samples < 0:
        raise AudioError(f"number of samples must be >= 0, got {n_samples}")
    return int(n_samples) // HOP_LENGTH


def load_audio(
    source: str | os.PathLike | bytes | np.ndarray | torch.Tensor,
    sample_rate: int | None = None,
    *,
    max_seconds: float | None = None,
    name: str | None = None,
) -> torch.Tensor:
    """Load audio as a float32 mono waveform ``(N,)`` at 16 kHz on the CPU.

    Args:
        source: a path to any file soundfile reads (wav, flac, ogg, mp3, ...), the bytes of such a file (an
            upload; never taken as a path), or an array / tensor holding
            samples, either ``(N,)`` mono or ``(N, C)`` channels-last. Float arrays are taken as they are
            (nominally in [-1, 1]); integer arrays are PCM and are scaled to [-1, 1] (int16 by 1/32768, ...).
        sample_rate: the sample rate of an array / tensor (required for them). For a file the header gives
            the rate; if ``sample_rate`` is passed too it must agree with it.
        max_seconds: if given, audio longer than this many seconds is rejected.
        name: how the audio is called in error messages (defaults to the path, ``"<bytes>"`` or ``"<array>"``).

    Channels are averaged to mono, then the signal is resampled to 16 kHz with soxr (quality "HQ").

    Raises:
        AudioFormatError: (an AudioError) the file or bytes are in no format soundfile can open.
        AudioError: missing file, undecodable data, bad sample rate, bad array shape or dtype, no samples, NaN/inf
            samples, or longer than ``max_seconds``.
    """
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be > 0, got {max_seconds}")
    if isinstance(source, (str, os.PathLike)):
        label = name or os.fspath(source)
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{label}: file not found")
        if not path.is_file():
            raise AudioError(f"{label}: not a regular file")
        data, rate = _read_file(path, label, sample_rate, max_seconds)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        if len(source) == 0:
            raise AudioError(f"{label}: the file is empty (0 bytes)")
        data, rate = _read_file(io.BytesIO(bytes(source)), label, sample_rate, max_seconds)
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        label = name or _ARRAY_NAME
        if sample_rate is None:
            raise AudioError(f"{label}: sample_rate is required for an array or tensor input")
        rate = _check_rate(sample_rate, label)
        data = _array_to_numpy(source, label)
    else:
        raise AudioError(
            f"{name or _ARRAY_NAME}: expected a path, numpy array or torch tensor, got {type(source).__name__}"
        )

    if data.shape[0] == 0:
        raise AudioError(f"{label}: the audio is empty (0 samples)")
    _check_duration(data.shape[0], rate, max_seconds, label)
    if not np.isfinite(data).all():
        bad = ~np.isfinite(data).all(axis=1)
        raise AudioError(
            f"{label}: contains NaN or infinite samples ({int(bad.sum())} of {data.shape[0]}, "
            f"first at sample {int(np.argmax(bad))})"
        )

    # Downmix before resampling: both are linear, so the order does not change the result, and this way soxr
    # processes one channel instead of C.
    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE:
        mono = soxr.resample(np.ascontiguousarray(mono), rate, SAMPLE_RATE, quality=RESAMPLE_QUALITY)
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))


def _read_file(
    file: Path | io.BytesIO, label: str, sample_rate: int | None, max_seconds: float | None
) -> tuple[np.ndarray, int]:
    """Read a file as float32 ``(N, C)`` and its rate; checks the length from the header before decoding."""
    try:
        # a path as bytes: soundfile encodes str paths strictly, which fails on names that are not valid UTF-8
        sound = sf.SoundFile(os.fsencode(file) if isinstance(file, Path) else file)
    except (sf.SoundFileError, RuntimeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise AudioFormatError(
            f"{label}: cannot read audio (not a format soundfile opens: wav, flac, ogg, mp3, ...): {reason}"
        ) from e
    try:
        with sound as f:
            rate = int(f.samplerate)
            if sample_rate is not None and _check_rate(sample_rate, label) != rate:
                raise AudioError(
                    f"{label}: sample_rate={sample_rate} was given but the file is {rate} Hz "
                    "(leave sample_rate out for files; the header gives it)"
                )
            _check_rate(rate, label)
            # Reject long files from the header, so a multi-hour file is never decoded just to be refused.
            _check_duration(f.frames, rate, max_seconds, label)
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise AudioError(f"{label}: cannot read audio (the data does not decode): {reason}") from e
    return data, rate


def _array_to_numpy(source: np.ndarray | torch.Tensor, label: str) -> np.ndarray:
    """Convert an array / tensor to float32 ``(N, C)``; integer PCM is scaled to [-1, 1]."""
    if isinstance(source, torch.Tensor):
        t = source.detach().cpu()
        # numpy has no bfloat16; every float tensor goes through float32 first.
        arr = t.float().numpy() if t.is_floating_point() else t.numpy()
    else:
        arr = np.asarray(source)
    if arr.ndim not in (1, 2):
        raise AudioError(f"{label}: expected shape (N,) or (N, C), got {tuple(arr.shape)}")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.shape[1] > arr.shape[0]:
        raise AudioError(
            f"{label}: shape {tuple(arr.shape)} has more channels than samples; arrays must be channels-last "
            "(N, C); transpose a (C, N) array first"
        )
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise AudioError(f"{label}: unsupported sample dtype {arr.dtype}; use float or integer PCM")
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        # Unsigned PCM (e.g. 8-bit WAV) is offset binary: the midpoint is silence.
        half = float(np.iinfo(arr.dtype).max // 2 + 1)
        return ((arr.astype(np.float64) - half) / half).astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        scale = float(np.iinfo(arr.dtype).max) + 1.0
        return (arr.astype(np.float64) / scale).astype(np.float32)
    # Always copy: the returned tensor must not alias (or inherit read-only flags from) the caller's buffer.
    return np.array(arr, dtype=np.float32, copy=True)


def _check_rate(rate: object, label: str) -> int | float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not math.isfinite(rate) or rate <= 0:
        raise AudioError(f"{label}: bad sample rate {rate!r}; it must be a positive number of Hz")
    return int(rate) if float(rate).is_integer() else float(rate)


def _check_duration(n_samples: int, rate: float, max_seconds: float | None, label: str) -> None:
    if max_seconds is None:
        return
    seconds = n_samples / rate
    if seconds > max_seconds:
        # Enough decimals that the two numbers differ on screen (30.04 vs 30.0 would both print as 30.0).
        digits = next((d for d in (1, 2, 3) if round(seconds, d) > round(max_seconds, d)), 4)
        raise AudioTooLongError(
            f"{label}: {seconds:.{digits}f} s is longer than the {max_seconds:.{digits}f} s this model accepts",
            seconds,
            max_seconds,
        )


@functools.lru_cache(maxsize=8)
def mel_filters(n_mels: int = 80) -> torch.Tensor:
    """Slaney mel filter bank ``(N_FFT // 2 + 1, n_mels)`` = ``(201, n_mels)``, float32, CPU.

    The same matrix ``transformers.WhisperFeatureExtractor(feature_size=n_mels)`` builds (0-8 kHz, slaney scale
    and area normalisation). Cached per ``n_mels``; do not modify the returned tensor in place.
    """
    if isinstance(n_mels, bool) or not isinstance(n_mels, numbers.Integral) or n_mels <= 0:
        raise ConfigError(f"n_mels must be a positive integer, got {n_mels!r}")
    bank = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(bank).to(torch.float32)  # float64 -> float32, as the extractor's torch path does


def _reflect_index(n: int, pad: int) -> torch.Tensor:
    """Indices ``(n + 2 * pad,)`` that reflect-pad a length-n signal by ``pad`` on both sides.

    Same as numpy's ``np.pad(mode="reflect")``, which keeps reflecting when ``pad >= n``. For ``pad < n`` this
    is exactly what ``torch.stft(center=True)`` does, but torch refuses ``pad >= n``, i.e. waves of 160-200
    samples that still have one frame.
    """
    idx = torch.arange(-pad, n + pad).abs() % (2 * (n - 1))
    return torch.where(idx >= n, 2 * (n - 1) - idx, idx)


def log_mel_spectrogram(wave: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """Whisper log-mel spectrogram of one utterance, without padding to 30 s.

    Args:
        wave: ``(N,)`` 16 kHz samples, any float dtype, on any device (the result stays on that device).
        n_mels: number of mel bins (80 for OSUM and Whisper up to large-v2, 128 for Whisper large-v3).

    Returns:
        ``(T, n_mels)`` float32 with ``T = N // 160``: STFT (Hann 400, hop 160, centred with reflect padding),
        power, last frame dropped, mel, ``log10`` (floor 1e-10), clipped to 8 below the utterance maximum,
        then ``(x + 4) / 4``.

    Raises:
        AudioError: not 1-D, shorter than one hop (160 samples), or NaN/inf samples.
    """
    wave = torch.as_tensor(wave)
    if wave.ndim != 1:
        raise AudioError(f"expected a mono wave of shape (N,), got {tuple(wave.shape)}")
    n = wave.shape[0]
    if num_mel_frames(n) == 0:
        raise AudioError(
            f"the audio is too short: {n} samples ({1000 * n / SAMPLE_RATE:.1f} ms) give no frames; "
            f"at least {HOP_LENGTH} samples (10 ms at 16 kHz) are needed"
        )
    wave = wave.to(torch.float32)
    if not bool(torch.isfinite(wave).all()):
        raise AudioError("the audio contains NaN or infinite samples")
    device = wave.device
    if n > N_FFT // 2:  # torch's reflect padding (a copy); it refuses pads as long as the wave
        padded = F.pad(wave[None], (N_FFT // 2, N_FFT // 2), mode="reflect")[0]
    else:
        padded = wave[_reflect_index(n, N_FFT // 2).to(device)]
    window = torch.hann_window(N_FFT, periodic=True, device=device)
    spec = torch.stft(padded, N_FFT, HOP_LENGTH, window=window, center=False, return_complex=True)
    # The centred STFT has N // 160 + 1 frames; Whisper drops the last one. The power as re^2 + im^2: the
    # complex abs() (a careful hypot) took more time than the STFT itself on CPU.
    spec = spec[:, :-1]
    power = spec.real**2 + spec.imag**2  # (201, T)
    mel = mel_filters(n_mels).to(device).T @ power  # (n_mels, T)
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).T.contiguous()


def batch_log_mel(waves: Sequence[torch.Tensor], n_mels: int = 80) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mels of several utterances, zero-padded on the right.

    Each utterance is computed alone (the reflect padding and the per-utterance maximum would make a padded
    batch differ), so row ``b`` equals ``log_mel_spectrogram(waves[b])[: lengths[b]]`` exactly.

    Args:
        waves: B tensors ``(N_b,)``; the result is on the first one's device.
        n_mels: number of mel bins.

    Returns:
        ``feats (B, T_max, n_mels)`` float32, zero after each row's length, and ``lengths (B,)`` int64.
    """
    if len(waves) == 0:
        raise AudioError("batch_log_mel needs at least one wave, got none")
    mels = []
    for i, wave in enumerate(waves):
        try:
            mels.append(log_mel_spectrogram(wave, n_mels))
        except AudioError as e:
            raise AudioError(f"batch item {i}: {e}") from e
    device = mels[0].device
    lengths = torch.tensor([m.shape[0] for m in mels], dtype=torch.int64, device=device)
    feats = torch.zeros(len(mels), int(lengths.max()), n_mels, dtype=torch.float32, device=device)
    for i, m in enumerate(mels):
        feats[i, : m.shape[0]] = m
    return feats, lengths
