"""MELD (Multimodal EmotionLines Dataset, Friends TV dialogues): speech emotion recognition (paper: SER
accuracy on the MELD test set).

``MELD.Raw.tar.gz`` holds ``<split>_sent_emo.csv`` and one archive of ``.mp4`` clips per split. We need audio:
extract it with ffmpeg first (the error message gives the command). MELD's 7 emotions all have an SER label
(joy -> happy, sadness -> sad, the others by name); any other value is skipped and counted. The transcript is
the ``Utterance`` column, with Windows-1252 and double-encoded UTF-8 quotes repaired.
"""

from __future__ import annotations

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
    layout_error,
    make_key,
    read_csv,
)
from osum.errors import ConfigError, ManifestError
from osum.tasks.ser import EMOTION

# split -> the folder its .mp4 archive extracts to
SPLIT_DIRS = {"test": "output_repeated_splits_test", "dev": "dev_splits_complete", "train": "train_splits"}
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3")
COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
EMOTION_ALIASES = {"joy": "happy", "sadness": "sad"}  # MELD's other 5 emotions are SER labels by name

LAYOUT = """\
  SRC = MELD.Raw/ (or the folder holding it):
  MELD.Raw/<split>_sent_emo.csv    columns Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID,
                                   Utterance_ID, Season, Episode, StartTime, EndTime   (split = test, dev, train)
  MELD.Raw/<split folder>/dia<D>_utt<U>.wav (or .flac/.mp3), next to MELD's dia<D>_utt<U>.mp4,
      or MELD.Raw/audio/<split>/dia<D>_utt<U>.wav;
      split folders: test -> output_repeated_splits_test, dev -> dev_splits_complete, train -> train_splits"""

_PUNCTUATION = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."})


def ffmpeg_command(folder: Path) -> str:
    """The shell command that writes a 16 kHz mono ``.wav`` next to every ``.mp4`` of ``folder``."""
    return (
        f'cd "{folder}" && for f in *.mp4; do '
        'ffmpeg -nostdin -loglevel error -y -i "$f" -vn -ac 1 -ar 16000 "${f%.mp4}.wav"; done'
    )


def fix_text(text: str) -> str:
    """Repair double-encoded UTF-8 (``"Iâ\\x80\\x99m"`` -> ``"I'm"``) and use ASCII quotes and ellipses."""
    if any("\x80" <= c <= "\xff" for c in text):
        for encoding in ("latin-1", "cp1252"):
            try:
                text = text.encode(encoding).decode("utf-8")
                break
            except UnicodeError:
                continue
    return " ".join(text.translate(_PUNCTUATION).split())


def _audio_dirs(src: Path, subset: str) -> list[Path]:
    folder = src / SPLIT_DIRS[subset]
    dirs = [d for d in (folder, src / "audio" / subset, src / "audio" / SPLIT_DIRS[subset]) if d.is_dir()]
    if any(next(d.glob(f"*{ext}"), None) is not None for d in dirs for ext in AUDIO_EXTENSIONS):
        return dirs
    if folder.is_dir() and next(folder.glob("*.mp4"), None) is not None:
        raise ConfigError(
            f"meld: {folder} holds MELD's .mp4 video clips but no audio (.wav, .flac or .mp3). "
            f"Extract 16 kHz mono wav next to them first:\n  {ffmpeg_command(folder)}"
        )
    hint = (
        f"extract {subset}.tar.gz from MELD.Raw.tar.gz into {src}, then the audio with:\n  "
        + ffmpeg_command(folder)
    )
    raise layout_error("meld", f"audio for the {subset} split (in {folder})", LAYOUT, hint)


def _int(value: str, name: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ManifestError(where, f"{name} must be an integer, got {value!r:.40}") from None


def prepare(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One SER utterance per CSV row; rows without audio or with an emotion we have no label for are skipped."""
    src = check_src("meld", src, LAYOUT)
    csv_name = f"{subset}_sent_emo.csv"
    csv_path = find_first("meld", [src / csv_name, src / "MELD.Raw" / csv_name], LAYOUT)
    src = csv_path.parent
    dirs = _audio_dirs(src, subset)
    for where, row in read_csv(csv_path, COLUMNS):
        dialogue = _int(row["Dialogue_ID"], "Dialogue_ID", where)
        utt = _int(row["Utterance_ID"], "Utterance_ID", where)
        name = f"dia{dialogue}_utt{utt}"
        audio = next(
            (d / f"{name}{e}" for d in dirs for e in AUDIO_EXTENSIONS if (d / f"{name}{e}").is_file()), None
        )
        if audio is None:
            yield Skip(f"{where} ({name})", "audio file not found")
            continue
        raw = row["Emotion"].lower()
        emotion = EMOTION.canonical(EMOTION_ALIASES.get(raw, raw))
        yield labelled(
            task,
            where,
            {"emotion": emotion},
            fix_text(row["Utterance"]) or None,
            {"emotion": f"emotion {raw!r} has no SER label"},
            key=make_key("meld", subset, name),
            audio=str(audio),
            duration=audio_duration(audio),
            language="en",
            speaker=fix_text(row["Speaker"]) or None,
            extra={"sentiment": row["Sentiment"]} if row["Sentiment"] else {},
        )


MELD = Corpus(
    name="meld",
    description="MELD emotional dialogue from Friends (English); SER accuracy (7 emotions)",
    subsets=tuple(SPLIT_DIRS),
    default_subset="test",
    tasks=("ser",),
    layout=LAYOUT,
    prepare=prepare,
)
