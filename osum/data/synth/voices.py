"""The synthesizer voice inventory and its train/test split.

A voice is an engine plus a voice name: espeak-ng ``<accent>+<variant>`` (``en-us+f3``) or a flite voice
(``slt``). Its gender comes from the variant (espeak-ng ``f1..f5`` female, ``m1..m7`` male; measured median F0
170-215 Hz vs 86-107 Hz, ASSETS.md) or from the flite voice (slt female; rms, awb, kal16 male).

Test voices are disjoint from training voices: whole variants (``f5``, ``m6``, ``m7``) and a whole accent
(``en-029``) are held out for test, and flite, a second synthesizer, is by default used for test only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from osum.data.tts import FLITE_VOICES
from osum.errors import ConfigError

# "en" is espeak-ng's British English (gmw/en); "en-gb" resolves to a voice that ignores the +variant.
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
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
TEST_VARIANTS = ("f5", "m6", "m7")
TEST_ACCENTS = ("en-029",)
FLITE_SPLITS = ("test", "train", "split")
# With flite_split="split": which flite voices go to test (the rest train).
_FLITE_TEST_VOICES = ("slt", "rms")


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng" or "flite"
    name: str  # engine voice name, e.g. "en-us+f3" or "slt"
    gender: str  # "female" or "male"
    accent: str  # espeak-ng accent, or "en-us" for flite (its voices are US/Scottish/Indian English)

    @property
    def id(self) -> str:
        """``"espeak-ng:en-us+f3"``: the speaker field of the manifest."""
        return f"{self.engine}:{self.name}"


def espeak_voices() -> list[Voice]:
    """Every accent x variant combination."""
    out = []
    for accent in ACCENTS:
        for variant in FEMALE_VARIANTS + MALE_VARIANTS:
            gender = "female" if variant in FEMALE_VARIANTS else "male"
            out.append(Voice("espeak-ng", f"{accent}+{variant}", gender, accent))
    return out


def flite_voices() -> list[Voice]:
    accents = {"slt": "en-us", "rms": "en-us", "awb": "en-gb-scotland", "kal16": "en-us"}
    return [Voice("flite", name, gender, accents[name]) for name, (gender, _) in FLITE_VOICES.items()]


def voice_split(voice: Voice, flite_split: str = "test") -> str:
    """``"train"`` or ``"test"`` for one voice (see the module docstring)."""
    if voice.engine == "flite":
        if flite_split == "split":
            return "test" if voice.name in _FLITE_TEST_VOICES else "train"
        return flite_split
    accent, variant = voice.name.split("+")
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
    for split, vs in out.items():
        if not vs:
            raise ConfigError(
                f"no {split} voices with engines={list(engines)} and flite_split={flite_split!r}; "
                "use espeak-ng, or flite_split='split'"
            )
    return out
