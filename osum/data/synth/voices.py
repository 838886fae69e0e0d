"""The synthesizer voice inventory and its train/test split.

A voice is an engine plus a voice name: espeak-ng ``<accent>+<variant>`` (``en-us+f3``, ``en-gb-x-rp+Alicia``)
or a flite voice (``slt``). The espeak-ng voices are every English accent crossed with every variant file of the
installed espeak-ng (``espeak-ng --voices=variant``, about 100: f1-f5, m1-m8, klatt, whisper, croak, Andy, anika
...). A variant's gender is the ``gender`` line of its file; variants without one are ``"unknown"`` and never
used where gender or age is the label. Whispering variants (``voicing`` below 25: whisper, whisperf) have no F0,
so they are not used for gender, age, emotion or style either (:attr:`Voice.voiced`). Flite voices: slt
female; rms, awb, kal16 male.

Converted voices: flite's training voices are all male (slt, its one woman, is held out), so without help every
flite clip a model trains on is a man's and "sounds like flite" would mean "male, adult". Each male flite voice of
the training split therefore also speaks as a woman: its F0 raised to about 200 Hz and its spectrum shifted up by
:data:`FEMALE_TRACT` (a 15% shorter vocal tract), the way espeak-ng's female variants are its male voice with
other pitch and formant settings. These are a training augmentation (a stand-in for voice conversion, as the
paper's timbre change in VED data); test voices are never converted.

Test voices are disjoint from training voices: whole variants (:data:`TEST_VARIANTS`, with look-alike families
such as steph / steph2 / steph3 or the Klatt-based variants kept together) and a whole accent (``en-029``) are
held out for test, and flite, a second synthesizer, is by default used for test only.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from osum.data.tts import FLITE_VOICES
from osum.errors import ConfigError

# espeak-ng's English accents. "en" is British English (gmw/en); "en-gb" resolves to a voice that ignores the
# +variant. (The mbrola English voices need mbrola, which is not installed.)
ACCENTS = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-029",
)
TEST_ACCENTS = ("en-029",)
# Variant files held out for test. Female: f5, Annie, steph*; male: m6, m7, Storm, travis, Denis, Lee; gender
# unknown: iven*; and every variant built on espeak-ng's Klatt synthesizer (a "klatt" line: klatt*, adam,
# benjamin, caleb, david, edward*, robosoft-robosoft3, announcer, UniRobot), because several of them speak
# exactly or nearly alike (caleb = klatt), plus Mario and Michael, which sound close to m7. With this list no
# training variant's waveform correlates above 0.5 with a test variant's on the same sentence.
TEST_VARIANTS = (
    "f5",
    "Annie",
    "steph",
    "steph2",
    "steph3",
    "m6",
    "m7",
    "Mario",
    "Michael",
    "Storm",
    "travis",
    "Denis",
    "Lee",
    "iven",
    "iven2",
    "iven3",
    "iven4",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "klatt5",
    "klatt6",
    "adam",
    "benjamin",
    "caleb",
    "david",
    "edward",
    "edward2",
    "robosoft",
    "robosoft2",
    "robosoft3",
    "announcer",
    "UniRobot",
)
GENDERS = ("female", "male", "unknown")
FLITE_SPLITS = ("test", "train", "split")
# With flite_split="split": which flite voices go to test (the rest train).
_FLITE_TEST_VOICES = ("slt", "rms")
_MIN_VOICING = 25  # a variant whose "voicing" is below this whispers (no F0)
# Converted female voices (module docstring): spectrum shift and the mean F0 they speak at (before the shift).
FEMALE_TRACT = 1.15
_FEMALE_F0 = 200.0 / FEMALE_TRACT
# Used when the espeak-ng data folder cannot be read (e.g. espeak-ng not installed, planning only).
_FALLBACK_VARIANTS = tuple((f"f{i}", "female", True) for i in range(1, 6)) + tuple(
    (f"m{i}", "male", True) for i in range(1, 9)
)


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng" or "flite"
    name: str  # engine voice name, e.g. "en-us+f3" or "slt"
    gender: str  # "female", "male" or "unknown" (variant file without a gender line)
    accent: str  # espeak-ng accent, or "en-us" for flite (its voices are US/Scottish/Indian English)
    voiced: bool = True  # False for whispering variants (no F0)
    # a converted voice (module docstring): its tag in the id, spectrum shift and F0 factor (flite only)
    converted: str = ""
    tract: float = 1.0
    f0_scale: float = 1.0

    @property
    def id(self) -> str:
        """``"espeak-ng:en-us+f3"``, ``"flite:awb~female"`` (converted): the speaker field of the manifest."""
        return f"{self.engine}:{self.name}" + (f"~{self.converted}" if self.converted else "")

    @property
    def variant(self) -> str | None:
        """The espeak-ng variant (``"f3"``), None for flite."""
        return self.name.split("+", 1)[1] if self.engine == "espeak-ng" and "+" in self.name else None

    @property
    def gender_known(self) -> bool:
        """Usable where gender (or age, which is drawn per gender) is a label: known gender and a real F0."""
        return self.gender in ("female", "male") and self.voiced


def _data_dir() -> Path | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"Data at:\s*(\S.*)$", proc.stdout.strip(), re.M)
    return Path(m.group(1).strip()) if m else None


def read_variant(path: Path) -> tuple[str, bool]:
    """``(gender, voiced)`` of one espeak-ng variant file: its ``gender`` line (``"unknown"`` if there is none
    or it is neither male nor female) and whether it has an F0: ``voicing`` at least 25 (default 100), or a
    ``klatt`` line (the Klatt synthesizer ignores ``voicing``: caleb, "voicing 0", speaks exactly as klatt)."""
    text = path.read_text(encoding="latin-1")
    gender, voicing, klatt = "unknown", 100, False
    for line in text.splitlines():
        words = line.split("//")[0].split()
        key = words[0].lower() if words else ""
        if len(words) >= 2 and key == "gender" and words[1].lower() in ("male", "female"):
            gender = words[1].lower()
        elif len(words) >= 2 and key == "voicing" and words[1].isdigit():
            voicing = int(words[1])
        elif key == "klatt":
            klatt = True
    return gender, voicing >= _MIN_VOICING or klatt


@functools.cache
def espeak_variants() -> tuple[tuple[str, str, bool], ...]:
    """Every installed espeak-ng variant as ``(file name, gender, voiced)``, sorted by name.

    Read from ``<espeak-ng data>/voices/!v``; falls back to f1-f5 and m1-m8 when that folder is missing.
    """
    data = _data_dir()
    folder = data / "voices" / "!v" if data is not None else None
    if folder is None or not folder.is_dir():
        return _FALLBACK_VARIANTS
    out = [(p.name, *read_variant(p)) for p in folder.iterdir() if p.is_file()]
    return tuple(sorted(out, key=lambda v: (v[0].lower(), v[0]))) or _FALLBACK_VARIANTS


def espeak_voices() -> list[Voice]:
    """Every accent x variant combination."""
    return [
        Voice("espeak-ng", f"{accent}+{name}", gender, accent, voiced)
        for accent in ACCENTS
        for name, gender, voiced in espeak_variants()
    ]


def flite_voices() -> list[Voice]:
    accents = {"slt": "en-us", "rms": "en-us", "awb": "en-gb-scotland", "kal16": "en-us"}
    return [Voice("flite", name, gender, accents[name]) for name, (gender, _) in FLITE_VOICES.items()]


def converted_female(voice: Voice) -> Voice:
    """A male flite voice speaking as a woman (module docstring)."""
    if voice.engine != "flite" or voice.gender != "male":
        raise ConfigError(f"only male flite voices are converted, not {voice.id}")
    f0 = FLITE_VOICES[voice.name][1]
    return replace(voice, gender="female", converted="female", tract=FEMALE_TRACT, f0_scale=_FEMALE_F0 / f0)


def voice_split(voice: Voice, flite_split: str = "test") -> str:
    """``"train"`` or ``"test"`` for one voice (see the module docstring)."""
    if voice.engine == "flite":
        if flite_split == "split":
            return "test" if voice.name in _FLITE_TEST_VOICES else "train"
        return flite_split
    accent, variant = voice.name.split("+", 1)
    return "test" if variant in TEST_VARIANTS or accent in TEST_ACCENTS else "train"


def split_voices(engines: Sequence[str], flite_split: str = "test") -> dict[str, list[Voice]]:
    """``{"train": [...], "test": [...]}`` for the chosen engines; ConfigError if a split ends up empty."""
    if flite_split not in FLITE_SPLITS:
        raise ConfigError(f"flite_split must be one of {FLITE_SPLITS}, got {flite_split!r}")
    unknown = [e for e in engines if e not in ("espeak-ng", "flite")]
    if unknown or not engines:
        raise ConfigError(f"engines must be a non-empty subset of espeak-ng, flite; got {list(engines)}")
    voices = (espeak_voices() if "espeak-ng" in engines else []) + (
        flite_voices() if "flite" in engines else []
    )
    out: dict[str, list[Voice]] = {"train": [], "test": []}
    for v in voices:
        out[voice_split(v, flite_split)].append(v)
    out["train"] += [converted_female(v) for v in out["train"] if v.engine == "flite" and v.gender == "male"]
    for split, vs in out.items():
        if not vs:
            raise ConfigError(
                f"no {split} voices with engines={list(engines)} and flite_split={flite_split!r}; "
                "use espeak-ng, or flite_split='split'"
            )
    return out


def inventory(engines: Sequence[str], flite_split: str = "test") -> dict[str, dict[str, dict[str, int]]]:
    """Voice counts ``{split: {engine: {gender: n}}}``; whispering voices are counted under their gender and
    again under ``"whispered"``."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for split, vs in split_voices(engines, flite_split).items():
        per: dict[str, dict[str, int]] = {}
        for v in vs:
            counts = per.setdefault(v.engine, {})
            counts[v.gender] = counts.get(v.gender, 0) + 1
            if not v.voiced:
                counts["whispered"] = counts.get("whispered", 0) + 1
        out[split] = per
    return out
