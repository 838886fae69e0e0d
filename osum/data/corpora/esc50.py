"""ESC-50 (Piczak 2015): 2000 five-second environmental sound clips in 50 classes, for vocal event detection
(paper: VED accuracy on ESC-50).

Only four classes are vocal events with a VED label: laughing -> laugh, coughing -> cough, sneezing ->
sneeze, crying_baby -> cry. ``breathing`` and ``snoring`` are vocal but have no VED label, and no class is a
scream or a throat clearing. Subset ``vocal`` (the default) holds the four mapped classes (160 clips);
subset ``all`` holds every clip, the other 46 classes labelled ``other``. ``extra`` keeps the original class
and the fold. The clips are not speech, so the transcript is ``""``.
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
    make_key,
    read_csv,
)

# ESC-50 category -> VED label
EVENTS = {"laughing": "laugh", "coughing": "cough", "sneezing": "sneeze", "crying_baby": "cry"}
COLUMNS = ("filename", "fold", "target", "category")

LAYOUT = """\
  SRC = ESC-50-master/ (the unpacked GitHub archive) or the folder holding it:
  meta/esc50.csv        columns filename, fold, target, category, esc10, src_file, take
  audio/<filename>      e.g. audio/1-100038-A-14.wav (5 s, 44.1 kHz)"""


def prepare(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One VED utterance per clip of the ``subset`` classes; rows whose wav is missing are skipped."""
    src = check_src("esc50", src, LAYOUT)
    csv_path = find_first(
        "esc50", [src / "meta" / "esc50.csv", src / "ESC-50-master" / "meta" / "esc50.csv"], LAYOUT
    )
    root = csv_path.parent.parent
    for where, row in read_csv(csv_path, COLUMNS):
        category = row["category"]
        event = EVENTS.get(category)
        if event is None and subset != "all":
            continue  # not a vocal event: not part of this subset
        audio = root / "audio" / row["filename"]
        if not row["filename"] or not audio.is_file():
            yield Skip(f"{where} ({audio})", "audio file not found")
            continue
        yield labelled(
            task,
            where,
            {"event": event or "other"},
            "",
            key=make_key("esc50", subset, Path(row["filename"]).stem),
            audio=str(audio),
            duration=audio_duration(audio),
            extra={
                "source_label": category,
                "fold": int(row["fold"]) if row["fold"].isdigit() else row["fold"],
            },
        )


ESC50 = Corpus(
    name="esc50",
    description="ESC-50 environmental sounds; VED accuracy on the vocal classes (or all 50, rest -> other)",
    subsets=("vocal", "all"),
    default_subset="vocal",
    tasks=("ved",),
    layout=LAYOUT,
    prepare=prepare,
)
