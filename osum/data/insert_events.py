"""VED training data by insertion (the OSUM paper's section 3.4): vocal events mixed into transcribed speech.

OSUM built its vocal-event data by inserting event clips (laughter, coughs, ...) into ASR recordings, with a voice
conversion step so that the inserted sound and the speaker do not always differ in timbre. ``osum data
insert-events`` does this for any of our manifests: each speech clip gets one event before, after or inside its
speech, at a random speech-to-event power ratio (SNR over the active frames of each), and becomes an ASR+VED
clip: the transcript stays the target's text, the event is its label, and the record says where the event is.

Events come from the user's recordings (``events/<name>/*.wav``, one folder per VED class, e.g.
``events/cough/``, ``events/throat_clearing/``) or, without a folder, from the synthetic corpus's event generators
(:mod:`osum.data.synth.events`). The timbre change is a spectrum shift of the event (every frequency times a
factor drawn from ``timbre``; 1 = none): a stand-in for voice conversion that moves pitch and formants together.

Per output record: ``task: ved``, the source's ``text`` and ``speaker``, ``labels.event``, ``words`` moved with the
speech, and ``extra``: ``event`` (the class), ``event_onset`` / ``event_offset`` (s), ``event_placement``,
``event_snr_db``, ``event_source`` (a file, or ``synth``), ``timbre_shift``, ``speech_onset`` and ``source_key``.
The same manifest, settings and seed give the same files (each clip's draws come from the seed and its key).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.manifest import Utterance, transcribed_clips, utterance_from_dict, write_manifest
from osum.data.reader import read_any
from osum.data.synth.dsp import shift_spectrum, trim_bounds
from osum.data.synth.events import EVENT_GENERATORS, PLACEMENTS, event_gain, layout, make_event
from osum.errors import ConfigError, OsumError
from osum.tasks.base import Word
from osum.vocabulary import EVENT

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
MAX_EVENT_SECONDS = 10.0  # an "event" file longer than this is refused (likely the wrong folder)
PEAK = 0.98  # a mixture louder than this is scaled down to it


@dataclass(frozen=True)
class InsertSettings:
    """How events are inserted: SNR range (speech power over event power, dB), the placements to draw from, the
    event's spectrum-shift range (``(1, 1)``: no timbre change), the silence between event and speech for
    "before"/"after" (s), and the seed."""

    snr_db: tuple[float, float] = (0.0, 15.0)
    placements: tuple[str, ...] = PLACEMENTS
    timbre: tuple[float, float] = (1.0, 1.0)
    gap_s: tuple[float, float] = (0.1, 0.3)
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.snr_db
        if not lo <= hi:
            raise ConfigError(f"snr_db: low {lo} above high {hi}")
        bad = sorted(set(self.placements) - set(PLACEMENTS))
        if bad or not self.placements:
            raise ConfigError(f"placements {bad or '[]'}: choose among {list(PLACEMENTS)}")
        t0, t1 = self.timbre
        if not 0.5 <= t0 <= t1 <= 2.0:
            raise ConfigError(f"timbre ({t0}, {t1}): a spectrum-shift range within 0.5..2.0, low <= high")
        g0, g1 = self.gap_s
        if not 0.0 <= g0 <= g1 <= 5.0:
            raise ConfigError(f"gap_s ({g0}, {g1}): seconds within 0..5, low <= high")


@dataclass
class InsertSummary:
    """What :func:`insert_events` wrote: clips per event class, skipped inputs by reason, the manifest path."""

    manifest: str
    clips: int = 0
    events: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "clips": self.clips,
            "events": dict(sorted(self.events.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }


def event_bank(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """``folder/<event>/*.wav`` (also .flac, .ogg, .mp3) -> ``{event class: files}``. Folder names are VED classes
    (:data:`osum.vocabulary.EVENT`; ``throat_clearing`` and ``scream`` are understood). ConfigError for a
    missing folder, a subfolder that names no class, or no audio at all."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"events folder {root} does not exist")
    bank: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        name = EVENT.canonical(sub.name)
        if name is None or name == "other":
            raise ConfigError(
                f"events folder {sub}: {sub.name!r} is not a vocal event class; name the folders after "
                f"{[v for v in EVENT.values if v != 'other']} (throat_clearing for throat clearing)"
            )
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        if files:
            bank.setdefault(name, []).extend(files)
    if not bank:
        raise ConfigError(
            f"events folder {root}: no audio files in its class folders (e.g. {root}/cough/*.wav)"
        )
    return bank


def _rng(seed: int, key: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _load_event(path: Path) -> np.ndarray:
    wave = load_audio(str(path), max_seconds=MAX_EVENT_SECONDS).numpy().astype(np.float64)
    start, end = trim_bounds(wave, threshold_db=-40.0, frame=80)
    if end - start < SAMPLE_RATE // 50:
        raise OsumError(f"event file {path}: silent (nothing above -40 dB of its peak)")
    return wave[start:end]


def mix_event(
    speech: np.ndarray, event: np.ndarray, placement: str, snr_db: float, gap: int, frac: float
) -> tuple[np.ndarray, int, int]:
    """Speech ``(N,)`` and an event ``(M,)`` -> (mixture, speech offset, event onset), samples.

    "before"/"after": the event and ``gap`` samples of silence before or after the speech; "inside": overlaid at
    ``frac`` of the room the speech leaves (the whole event inside the speech when it is shorter). The event is
    scaled so that speech power / event power = ``snr_db`` over the active frames of each; a mixture louder
    than PEAK is scaled down as a whole."""
    lay = layout(len(speech), len(event), placement, 0, 0, gap, frac)
    out = np.zeros(lay.length, np.float64)
    out[lay.speech_at : lay.speech_at + len(speech)] += speech
    gain = event_gain(speech, event, snr_db)
    if gain == 0.0:
        raise OsumError("the speech or the event is silent: no level to mix at")
    out[lay.event_at : lay.event_at + len(event)] += event * gain
    peak = float(np.abs(out).max())
    if peak > PEAK:
        out *= PEAK / peak
    return out, lay.speech_at, lay.event_at


def _moved(words: Sequence[Word] | None, seconds: float) -> list[dict[str, Any]] | None:
    if not words:
        return None
    return [
        {"word": w.word, "start": round(w.start + seconds, 4), "end": round(w.end + seconds, 4)}
        for w in words
    ]


def insert_events(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    settings: InsertSettings = InsertSettings(),
    events: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
    progress: bool = True,
) -> InsertSummary:
    """Write ``out/ved.jsonl`` and ``out/wavs/<key>.wav``: every clip of ``manifest`` with a transcript, with one
    vocal event inserted (see the module doc). ``events``: a folder of event recordings (:func:`event_bank`), else
    the synthesizer's events; ``classes``: the event classes to draw from (default: all available), in turn per
    clip so that each class gets an equal share. Clips without a transcript, or whose audio fails to load, are
    skipped and counted by reason."""
    out = Path(out)
    bank = event_bank(events) if events is not None else None
    available = sorted(bank) if bank is not None else [EVENT.canonical(n) for n in EVENT_GENERATORS]
    unknown = [c for c in classes or () if EVENT.canonical(c) not in available]
    if unknown:
        raise ConfigError(f"event classes {unknown}: not available here; available: {available}")
    chosen = [str(EVENT.canonical(c)) for c in classes] if classes else available
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    summary = InsertSummary(manifest=str(out / "ved.jsonl"))
    utterances = list(read_any(manifest))

    def clips() -> Iterator[Utterance]:
        found = transcribed_clips(utterances, summary.skipped, desc="insert events" if progress else None)
        for u, wave in found:
            name = chosen[summary.clips % len(chosen)]
            record = _insert_one(u, wave.numpy().astype(np.float64), name, bank, settings, out)
            summary.clips += 1
            summary.events[name] += 1
            yield record

    write_manifest(out / "ved.jsonl", clips())
    (out / "insert_summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _insert_one(
    u: Utterance,
    speech: np.ndarray,
    name: str,
    bank: Mapping[str, Sequence[Path]] | None,
    settings: InsertSettings,
    out: Path,
) -> Utterance:
    """Clip ``u`` (its samples ``speech``) with an event of class ``name`` inserted, written to ``out/wavs``."""
    rng = _rng(settings.seed, u.key)
    if bank is not None:
        source = bank[name][int(rng.integers(len(bank[name])))]
        event, source_name = _load_event(source), str(source)
    else:
        generator = next(n for n in EVENT_GENERATORS if EVENT.canonical(n) == name)
        event, source_name = make_event(generator, rng).astype(np.float64), "synth"
    shift = float(rng.uniform(*settings.timbre))
    if shift != 1.0:
        event = shift_spectrum(event, shift).astype(np.float64)
    placement = settings.placements[int(rng.integers(len(settings.placements)))]
    snr = round(float(rng.uniform(*settings.snr_db)), 2)
    gap = int(rng.uniform(*settings.gap_s) * SAMPLE_RATE)
    try:
        audio, speech_at, event_at = mix_event(
            speech, event, placement, snr, gap, float(rng.uniform(0.15, 0.85))
        )
    except OsumError as exc:
        raise OsumError(f"{u.key}: {exc}") from exc
    key = f"{u.key}-ved"
    path = out / "wavs" / f"{key.replace('/', '_')}.wav"
    sf.write(str(path), audio.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    sec = 1.0 / SAMPLE_RATE
    extra: dict[str, Any] = {
        "event": name,
        "event_onset": round(event_at * sec, 4),
        "event_offset": round((event_at + len(event)) * sec, 4),
        "event_placement": placement,
        "event_snr_db": snr,
        "event_source": source_name,
        "timbre_shift": round(shift, 4),
        "speech_onset": round(speech_at * sec, 4),
        "source_key": u.key,
    }
    record: dict[str, Any] = {
        "key": key,
        "audio": str(path),
        "task": "ved",
        "text": u.text,
        "labels": {**{k: v for k, v in u.labels.items() if k != "event"}, "event": name},
        "duration": round(len(audio) * sec, 4),
        "language": u.language,
        "speaker": u.speaker,
        "words": _moved(u.words, speech_at * sec),
        "extra": extra,
    }
    return utterance_from_dict({k: v for k, v in record.items() if v is not None})
