"""VocalSound (Gong et al., ICASSP 2022): 21k crowd-sourced non-speech vocal sounds, for vocal event detection
(paper: VED accuracy on the VocalSound test set).

Six classes; five are VED labels (laughter -> laugh, sigh, cough, throatclearing -> throat clearing, sneeze).
``sniff`` has no VED label: it is labelled ``other`` rather than dropped, so the test set keeps all its clips
and stays comparable with published VocalSound numbers; ``extra.source_label`` keeps the original class, so a
scorer can leave those clips out. The clips hold no speech, so the transcript is ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from osum.data.corpora.base import (
    Corpus,
    Record,
    Skip,
    audio_duration,
    check_src,
    find_first,
    labelled,
    make_key,
    read_lines,
)
from osum.errors import ManifestError

# VocalSound class -> VED label
EVENTS = {
    "laughter": "laugh",
    "sigh": "sigh",
    "cough": "cough",
    "throatclearing": "throat clearing",
    "sneeze": "sneeze",
    "sniff": "other",
}
META_FILES = {"test": "te_meta.csv", "train": "tr_meta.csv", "val": "val_meta.csv"}

LAYOUT = """\
  SRC = the unpacked VocalSound release (or the folder holding vocalsound_16k/):
  audio_16k/<speaker>_<n>_<class>.wav   e.g. f0003_0_cough.wav; class = laughter, sigh, cough, throatclearing,
                                        sneeze, sniff
  meta/te_meta.csv, meta/tr_meta.csv, meta/val_meta.csv   one row per speaker of the test/train/val split,
                                        the speaker id (e.g. f0003) in a column of its own"""

_FILE = re.compile(r"^([fm]\d+)_(\d+)_([a-z]+)$", re.IGNORECASE)
_SPEAKER = re.compile(r"^[fm]\d+$", re.IGNORECASE)


def split_speakers(path: Path) -> set[str]:
    """The speaker ids of a split's meta file: in each row, the first comma-separated field shaped like
    ``f0003``/``m0105`` (other columns and a header row, if any, are ignored)."""
    speakers: set[str] = set()
    for _, line in read_lines(path):
        ids = [f.strip().strip('"') for f in line.split(",")]
        speaker = next((f.lower() for f in ids if _SPEAKER.match(f)), None)
        if speaker is not None:
            speakers.add(speaker)
    if not speakers:
        raise ManifestError(f"{path}:1", "no speaker id (like f0003 or m0105) in any row")
    return speakers


def _root(src: Path) -> Path:
    for candidate in (src, src / "vocalsound_16k"):
        if (candidate / "audio_16k").is_dir() or (candidate / "meta").is_dir():
            return candidate
    return src


def prepare(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One VED utterance per clip of a ``subset`` speaker; clips named otherwise are skipped."""
    root = _root(check_src("vocalsound", src, LAYOUT))
    audio_dir = find_first("vocalsound", [root / "audio_16k"], LAYOUT)
    speakers = split_speakers(find_first("vocalsound", [root / "meta" / META_FILES[subset]], LAYOUT))
    for audio in sorted(audio_dir.glob("*.wav")):
        m = _FILE.match(audio.stem)
        if m is None:
            yield Skip(str(audio), "file name is not <speaker>_<n>_<class>.wav")
            continue
        speaker, source = m.group(1).lower(), m.group(3).lower()
        if speaker not in speakers:
            continue  # another split's speaker
        yield labelled(
            task,
            str(audio),
            {"event": EVENTS.get(source)},
            "",
            {"event": f"class {source!r} has no VED label"},
            key=make_key("vocalsound", subset, audio.stem),
            audio=str(audio),
            duration=audio_duration(audio),
            speaker=speaker,
            extra={"source_label": source},
        )


VOCALSOUND = Corpus(
    name="vocalsound",
    description="VocalSound non-speech vocal sounds (6 classes; sniff -> other); VED accuracy",
    subsets=tuple(META_FILES),
    default_subset="test",
    tasks=("ved",),
    layout=LAYOUT,
    prepare=prepare,
)
