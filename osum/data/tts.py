"""Speech synthesis with Debian's espeak-ng and flite, for demos, tests and the synthetic corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from osum.errors import OsumError

ENGINES = ("espeak-ng", "flite")


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
    if engine not in ENGINES:
        raise OsumError(f"unknown TTS engine {engine!r}; choose one of {ENGINES}")
    exe = shutil.which(engine)
    if exe is None:
        raise OsumError(
            f"{engine} is not installed: run scripts/install_system_deps.sh (apt-get install {engine})"
        )
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
