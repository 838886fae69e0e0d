"""Kaggle "Common Voice" (Mozilla's 2017 English release as shared on Kaggle): speaker gender and age (paper:
SGC and SAP accuracy on cv-valid-test), and ASR.

Labels: gender ``male``/``female`` (``other`` has no SGC label and is skipped); age groups mapped to SAP's
three classes as ``teens`` -> child, ``twenties``..``fifties`` -> adult, ``sixties`` and older -> old. OSUM
did not publish its own mapping, so this one is our choice: ``teens`` (13-19) is the youngest group the corpus
has, hence ``child``. Rows without the label(s) a task needs are skipped and counted; most rows have none.
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

SUBSETS = ("valid-test", "valid-dev", "valid-train", "other-test", "other-dev", "other-train", "invalid")
COLUMNS = ("filename", "text", "age", "gender")
AGES = {
    "teens": "child",
    "twenties": "adult",
    "thirties": "adult",
    "fourties": "adult",  # sic: the corpus's spelling
    "forties": "adult",
    "fifties": "adult",
    "sixties": "old",
    "seventies": "old",
    "eighties": "old",
    "nineties": "old",
}
GENDERS = {"male": "male", "female": "female"}

LAYOUT = """\
  SRC = the unpacked Kaggle dataset (mozillaorg/common-voice), holding for each subset (valid-test, ...):
  cv-<subset>.csv                         columns filename, text, up_votes, down_votes, age, gender, accent,
                                          duration; filename = cv-<subset>/sample-000000.mp3
  cv-<subset>/cv-<subset>/sample-*.mp3    as Kaggle unpacks it (a single cv-<subset>/sample-*.mp3 also works)"""


def _audio(root: Path, filename: str) -> Path | None:
    """The clip of a CSV ``filename`` (``cv-valid-test/sample-000000.mp3``) under either nesting."""
    first = Path(filename).parts[0] if filename else ""
    for path in (root / filename, root / first / filename):
        if filename and path.is_file():
            return path
    return None


def prepare(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One utterance per CSV row that has the fields ``task`` needs and an audio file."""
    src = check_src("commonvoice", src, LAYOUT)
    csv_name = f"cv-{subset}.csv"
    csv_path = find_first("commonvoice", [src / csv_name, src / "common-voice" / csv_name], LAYOUT)
    root = csv_path.parent
    for where, row in read_csv(csv_path, COLUMNS):
        audio = _audio(root, row["filename"])
        if audio is None:
            yield Skip(f"{where} ({row['filename'] or 'no filename'})", "audio file not found")
            continue
        age, gender = row["age"].lower(), row["gender"].lower()
        why = {
            "age": f"unknown age group {age!r}" if age else "no age label",
            "gender": f"gender {gender!r} has no SGC label" if gender else "no gender label",
        }
        yield labelled(
            task,
            where,
            {"age": AGES.get(age), "gender": GENDERS.get(gender)},
            row["text"] or None,
            why,
            key=make_key("commonvoice", subset, Path(row["filename"]).stem),
            audio=str(audio),
            duration=audio_duration(audio),
            language="en",
            extra={"accent": row["accent"]} if row.get("accent") else {},
        )


COMMONVOICE = Corpus(
    name="commonvoice",
    description="Kaggle Common Voice (English, 2017); gender (SGC), age (SAP), both, or ASR",
    subsets=SUBSETS,
    default_subset="valid-test",
    tasks=("sgc", "sap", "age_gender", "asr_age_gender", "asr"),
    layout=LAYOUT,
    prepare=prepare,
)
