"""LibriSpeech (OpenSLR 12): read English audiobooks, for ASR (the paper reports WER on test-clean/test-other).

Each subset tarball (``test-clean.tar.gz``, ...) extracts to ``LibriSpeech/<subset>/``; inside, one folder per
speaker and chapter holds the FLAC files and one transcript per chapter whose lines are ``<utt-id> TEXT``
(upper case, no punctuation). Keys are ``librispeech-<subset>-<utt-id>``; the speaker is the speaker id.
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
    labelled,
    layout_error,
    make_key,
    read_lines,
)
from osum.errors import ConfigError, ManifestError

SUBSETS = (
    "test-clean",
    "test-other",
    "dev-clean",
    "dev-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)

LAYOUT = """\
  SRC = the folder holding LibriSpeech/, LibriSpeech/ itself, or one subset folder (e.g. test-clean/):
  LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   lines '<speaker>-<chapter>-<n> TEXT'
  LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac"""

_UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def subset_dir(src: Path, subset: str) -> Path:
    """The folder of ``subset``: ``src/<subset>``, ``src/LibriSpeech/<subset>``, or ``src`` when it is named
    ``<subset>`` or directly holds ``<speaker>/<chapter>/*.trans.txt``."""
    for candidate in (src / subset, src / "LibriSpeech" / subset):
        if candidate.is_dir():
            return candidate
    if src.name == subset or next(src.glob("*/*/*.trans.txt"), None) is not None:
        return src
    raise layout_error("librispeech", f"{src / subset} or {src / 'LibriSpeech' / subset}", LAYOUT)


def prepare(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One ASR utterance per transcript line of ``subset``; lines whose FLAC is missing are skipped."""
    root = subset_dir(check_src("librispeech", src, LAYOUT), subset)
    transcripts = sorted(root.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise ConfigError(
            f"librispeech: no <speaker>/<chapter>/*.trans.txt under {root}; expected:\n{LAYOUT}"
        )
    for path in transcripts:
        chapter_id = path.name[: -len(".trans.txt")]
        for where, line in read_lines(path):
            uid, _, text = line.partition(" ")
            m = _UTT_ID.match(uid)
            if m is None or not uid.startswith(chapter_id + "-"):
                raise ManifestError(where, f"expected '<{chapter_id}-N> TEXT', got {line[:80]!r}")
            audio = path.parent / f"{uid}.flac"
            if not audio.is_file():
                yield Skip(str(audio), "audio file not found")
                continue
            yield labelled(
                task,
                where,
                {},
                text.strip() or None,
                key=make_key("librispeech", subset, uid),
                audio=str(audio),
                duration=audio_duration(audio),
                language="en",
                speaker=m.group(1),
            )


LIBRISPEECH = Corpus(
    name="librispeech",
    description="LibriSpeech read English audiobooks (OpenSLR 12); ASR, WER",
    subsets=SUBSETS,
    default_subset="test-clean",
    tasks=("asr",),
    layout=LAYOUT,
    prepare=prepare,
)
