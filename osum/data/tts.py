"""Speech synthesis with Debian's espeak-ng and flite, for demos, tests and the synthetic corpus.

``synthesize`` writes a wav file at the engine's own rate; ``synthesize_array`` returns 16 kHz float samples
with pitch, rate, loudness, word-gap and pitch-range controls that work (where the engine allows) for both
engines, so the corpus builder can drive them the same way.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import MappingProxyType
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf
import soxr

from osum.errors import OsumError

ENGINES = ("espeak-ng", "flite")
# espeak-ng SSML <prosody range=...> values, narrowest to widest intonation.
PITCH_RANGES = ("x-low", "low", "medium", "high", "x-high")
# flite voices: speaker gender and the median F0 we measured at default settings (Hz); the F0 anchors the
# espeak-style 0-99 pitch scale so that `pitch` means the same thing for both engines.
FLITE_VOICES = MappingProxyType(
    {"slt": ("female", 170.0), "rms": ("male", 102.0), "awb": ("male", 130.0), "kal16": ("male", 90.0)}
)
# flite's F0 standard deviation (Hz) used for each pitch range; None keeps the voice's own.
_FLITE_F0_STD = MappingProxyType({"x-low": 4.0, "low": 10.0, "medium": None, "high": 28.0, "x-high": 40.0})
_ESPEAK_DEFAULT_SPEED = 175  # words per minute


def _executable(engine: str) -> str:
    if engine not in ENGINES:
        raise OsumError(f"unknown TTS engine {engine!r}; choose one of {ENGINES}")
    exe = shutil.which(engine)
    if exe is None:
        raise OsumError(
            f"{engine} is not installed: run scripts/install_system_deps.sh (apt-get install {engine})"
        )
    return exe


def synthesize(
    text: str,
    out_path: str | os.PathLike,
    voice: str = "en-us",
    engine: str = "espeak-ng",
    pitch: int | None = None,
    speed: int | None = None,
) -> Path:
    """Speak ``text`` into a wav file (espeak-ng: 22.05 kHz; flite: 16 kHz) and return its path.

    ``voice`` is an espeak-ng voice (``en-us``, ``en-gb+f3`` ...) or a flite voice (``slt``, ``rms``, ``awb``,
    ``kal16``). ``pitch`` (0-99) and ``speed`` (words per minute) apply to espeak-ng only.
    """
    exe = _executable(engine)
    if not text.strip():
        raise OsumError("nothing to synthesize: the text is empty")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if engine == "espeak-ng":
        cmd = [exe, "-v", voice, "-w", str(out)]
        if pitch is not None:
            cmd += ["-p", str(pitch)]
        if speed is not None:
            cmd += ["-s", str(speed)]
        cmd.append(text)
    else:
        cmd = [exe, "-voice", voice, "-t", text, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
        raise OsumError(f"{engine} failed for voice {voice!r}: {proc.stderr.strip() or 'no audio written'}")
    return out


def synthesize_array(
    text: str,
    voice: str = "en-us",
    engine: str = "espeak-ng",
    *,
    pitch: float | None = None,
    speed: float | None = None,
    amplitude: float | None = None,
    word_gap: int | None = None,
    pitch_range: str | None = None,
    sample_rate: int = 16000,
    f0_scale: float = 1.0,
) -> np.ndarray:
    """Speak ``text`` and return float32 samples ``(N,)`` at ``sample_rate`` (resampled with soxr).

    Args:
        text: what to say (plain text; it is escaped for espeak-ng's SSML mode when needed).
        voice: espeak-ng voice (``en-gb+f3``) or flite voice (one of ``FLITE_VOICES``).
        pitch: espeak-ng pitch 0-99 (50 = the voice's default). For flite it sets the mean F0 to the voice's
            default F0 times ``2 ** ((pitch - 50) / 80)``, which follows espeak-ng's measured curve.
        speed: words per minute (espeak-ng ``-s``, default 175); for flite a duration stretch of 175 / speed.
        amplitude: espeak-ng ``-a`` (0-200, default 100); for flite the samples are scaled by amplitude / 100.
        word_gap: extra pause between words in units of 10 ms (espeak-ng ``-g``; ignored by flite).
        pitch_range: one of ``PITCH_RANGES``: intonation width (espeak-ng SSML ``<prosody range>``; flite F0
            standard deviation).
        f0_scale: flite only: multiplies the mean F0 target (the synthesizer's converted voices,
            :mod:`osum.data.synth.voices`, speak a male flite voice at a woman's F0). 0.5-3.

    Raises:
        OsumError: unknown engine/voice/range, engine not installed, empty text, or the engine failed.
    """
    exe = _executable(engine)
    if not isinstance(text, str) or not text.strip():
        raise OsumError("nothing to synthesize: the text is empty")
    if pitch_range is not None and pitch_range not in PITCH_RANGES:
        raise OsumError(f"unknown pitch_range {pitch_range!r}; choose one of {PITCH_RANGES}")
    if pitch is not None and not 0 <= pitch <= 99:
        raise OsumError(f"pitch must be in 0..99, got {pitch}")
    if speed is not None and not 40 <= speed <= 500:
        raise OsumError(f"speed must be in 40..500 words per minute, got {speed}")
    if not 0.5 <= f0_scale <= 3.0:
        raise OsumError(f"f0_scale must be in 0.5..3, got {f0_scale}")
    if engine == "espeak-ng":
        if f0_scale != 1.0:
            raise OsumError("f0_scale applies to flite voices only; use pitch for espeak-ng")
        wave, rate = _espeak(exe, text, voice, pitch, speed, amplitude, word_gap, pitch_range)
    else:
        wave, rate = _flite(exe, text, voice, pitch, speed, pitch_range, f0_scale)
        if amplitude is not None:
            wave = wave * (amplitude / 100.0)
    if wave.size == 0:
        raise OsumError(f"{engine} wrote no audio for voice {voice!r} and text {text[:60]!r}")
    if rate != sample_rate:
        wave = soxr.resample(wave, rate, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def _espeak(
    exe: str,
    text: str,
    voice: str,
    pitch: float | None,
    speed: float | None,
    amplitude: float | None,
    word_gap: int | None,
    pitch_range: str | None,
) -> tuple[np.ndarray, int]:
    # Text goes through stdin so that a leading "-" can never be read as an option.
    cmd = [exe, "-v", voice, "--stdout", "--stdin"]
    for flag, value in (("-p", pitch), ("-s", speed), ("-a", amplitude), ("-g", word_gap)):
        if value is not None:
            cmd += [flag, str(int(round(value)))]
    if pitch_range is not None:
        cmd.append("-m")
        text = f'<speak><prosody range="{pitch_range}">{escape(text)}</prosody></speak>'
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or len(proc.stdout) <= 44 or "does not exist" in err:
        raise OsumError(f"espeak-ng failed for voice {voice!r}: {err or 'no audio written'}")
    wave, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return (wave if wave.ndim == 1 else wave.mean(axis=1)), int(rate)


def _flite(
    exe: str,
    text: str,
    voice: str,
    pitch: float | None,
    speed: float | None,
    pitch_range: str | None,
    f0_scale: float = 1.0,
) -> tuple[np.ndarray, int]:
    if voice not in FLITE_VOICES:
        raise OsumError(f"unknown flite voice {voice!r}; choose one of {sorted(FLITE_VOICES)}")
    cmd = [exe, "-voice", voice]
    if pitch is not None or f0_scale != 1.0:
        f0 = FLITE_VOICES[voice][1] * f0_scale * 2.0 ** (((pitch if pitch is not None else 50.0) - 50.0) / 80.0)
        cmd += ["--setf", f"int_f0_target_mean={f0:.1f}"]
    if speed is not None:
        cmd += ["--setf", f"duration_stretch={_ESPEAK_DEFAULT_SPEED / speed:.3f}"]
    std = _FLITE_F0_STD.get(pitch_range) if pitch_range is not None else None
    if std is not None:
        cmd += ["--setf", f"int_f0_target_stddev={std:.1f}"]
    # flite cannot write a wav to a pipe (it seeks back to fill the header), so it gets a private temp file.
    with tempfile.TemporaryDirectory(prefix="osum-flite-") as tmp:
        out = Path(tmp) / "speech.wav"
        proc = subprocess.run(cmd + ["-t", text, "-o", str(out)], capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            raise OsumError(f"flite failed for voice {voice!r}: {proc.stderr.strip() or 'no audio written'}")
        wave, rate = sf.read(out, dtype="float32")
    return (wave if wave.ndim == 1 else wave.mean(axis=1)), int(rate)
