"""AISHELL-1 (OpenSLR 33; ASR and speaker gender) and the AISHELL-2 dev/test sets (ASR), Mandarin.

The paper reports AISHELL-1 test for SGC and AISHELL-2 test (iOS, Android, Mic) for ASR (CER). Transcripts
are written without the word-segmentation spaces of the original files (Latin words keep one space between
them); the evaluation compares characters.
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
    join_tokens,
    labelled,
    layout_error,
    make_key,
    read_lines,
)
from osum.errors import ConfigError, ManifestError

# ---- AISHELL-1 ---------------------------------------------------------------------------------------

AISHELL1_LAYOUT = """\
  SRC = the folder holding data_aishell/ and resource_aishell/, or data_aishell/ itself:
  data_aishell/transcript/aishell_transcript_v0.8.txt   lines '<utt-id> 分词 后 的 文本'
  data_aishell/wav/<split>/<speaker>/<utt-id>.wav        split = train, dev, test; speaker = S0002 ...
      (extract the shipped per-speaker archives first: cd data_aishell/wav && for f in *.tar.gz; do tar xzf $f; done)
  resource_aishell/speaker.info                          lines '<speaker> <M|F>', e.g. '0002 F' (SGC only)"""

_GENDERS = {"m": "male", "f": "female"}


def _aishell1_root(src: Path) -> Path:
    """``data_aishell/``: ``src/data_aishell`` or ``src`` itself."""
    for candidate in (src / "data_aishell", src):
        if (candidate / "transcript").is_dir() or (candidate / "wav").is_dir():
            return candidate
    raise layout_error("aishell1", f"{src / 'data_aishell'}", AISHELL1_LAYOUT)


def _transcripts(path: Path) -> dict[str, str]:
    """utt-id -> transcript without segmentation spaces (``""`` when the line has no text)."""
    out: dict[str, str] = {}
    for _, line in read_lines(path):
        uid, *tokens = line.split()
        out[uid] = join_tokens(tokens)
    return out


def _speaker_genders(path: Path) -> dict[str, str]:
    """``speaker.info`` -> {"0002": "female", ...}; speaker ids without the ``S`` of the folder names."""
    out: dict[str, str] = {}
    for where, line in read_lines(path):
        fields = line.split()
        gender = _GENDERS.get(fields[-1].lower()) if len(fields) >= 2 else None
        if gender is None:
            raise ManifestError(where, f"expected '<speaker> <M|F>', got {line[:80]!r}")
        out[fields[0].upper().lstrip("S")] = gender
    return out


def prepare_aishell1(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One utterance per extracted wav of ``subset``; wavs without a transcript (or, for SGC, whose speaker
    is not in ``speaker.info``) are skipped."""
    root = _aishell1_root(check_src("aishell1", src, AISHELL1_LAYOUT))
    transcript = find_first(
        "aishell1", [root / "transcript" / "aishell_transcript_v0.8.txt"], AISHELL1_LAYOUT
    )
    split = root / "wav" / subset
    if not split.is_dir():
        tarballs = sorted((root / "wav").glob("*.tar.gz"))
        if tarballs:
            raise ConfigError(
                f"aishell1: {split} does not exist, but {root / 'wav'} holds {len(tarballs)} .tar.gz archives "
                f"(e.g. {tarballs[0].name}): extract them first with\n  cd {root / 'wav'} && "
                'for f in *.tar.gz; do tar xzf "$f"; done'
            )
        raise layout_error("aishell1", split, AISHELL1_LAYOUT)
    genders: dict[str, str] = {}
    if task == "sgc":
        info = find_first(
            "aishell1",
            [root.parent / "resource_aishell" / "speaker.info", root / "resource_aishell" / "speaker.info"],
            AISHELL1_LAYOUT,
            "speaker.info is in resource_aishell.tgz (OpenSLR 33)",
        )
        genders = _speaker_genders(info)
    texts = _transcripts(transcript)
    for audio in sorted(split.glob("*/*.wav")):
        uid, speaker = audio.stem, audio.parent.name
        text = texts.get(uid) or None
        gender = genders.get(speaker.upper().lstrip("S"))
        yield labelled(
            task,
            str(audio),
            {"gender": gender},
            text,
            {"gender": f"speaker {speaker} not in speaker.info"},
            key=make_key("aishell1", subset, uid),
            audio=str(audio),
            duration=audio_duration(audio),
            language="zh",
            speaker=speaker,
        )


AISHELL1 = Corpus(
    name="aishell1",
    description="AISHELL-1 Mandarin read speech (OpenSLR 33); ASR (CER) and speaker gender (SGC)",
    subsets=("test", "dev", "train"),
    default_subset="test",
    tasks=("asr", "sgc"),
    layout=AISHELL1_LAYOUT,
    prepare=prepare_aishell1,
)

# ---- AISHELL-2 dev/test sets -------------------------------------------------------------------------

AISHELL2_LAYOUT = """\
  SRC = AISHELL-DEV-TEST-SET/ (or the folder holding it, or one <device>/<split>/ folder):
  AISHELL-DEV-TEST-SET/<device>/<split>/wav.scp    lines '<utt-id> <path>', path relative to that folder
  AISHELL-DEV-TEST-SET/<device>/<split>/trans.txt  lines '<utt-id> 文本'
  AISHELL-DEV-TEST-SET/<device>/<split>/wav/...    device = iOS, Android, Mic; split = dev, test"""

_DEVICES = {"ios": "iOS", "android": "Android", "mic": "Mic"}
AISHELL2_SUBSETS = tuple(f"{d}-{s}" for s in ("test", "dev") for d in _DEVICES)


def _aishell2_split_dir(src: Path, subset: str) -> Path:
    device, _, split = subset.partition("-")
    names = (
        _DEVICES[device],
        device,
        device.upper(),
    )  # the release spells iOS, Android, Mic; Kaldi recipes IOS
    candidates = [base / name / split for base in (src, src / "AISHELL-DEV-TEST-SET") for name in names]
    for candidate in candidates:
        if (candidate / "wav.scp").is_file():
            return candidate
    if (src / "wav.scp").is_file():
        if (src.parent.name.lower(), src.name) != (device, split):
            raise ConfigError(
                f"aishell2: SRC {src} is one split folder but the subset asked for is {subset!r}; pass --subset "
                f"for this folder (one of {', '.join(AISHELL2_SUBSETS)}) or SRC = AISHELL-DEV-TEST-SET/"
            )
        return src
    if (src / split / "wav.scp").is_file() and src.name.lower() == device:  # SRC = the device folder
        return src / split
    return find_first("aishell2", [c / "wav.scp" for c in candidates[::2]], AISHELL2_LAYOUT).parent


def prepare_aishell2(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One ASR utterance per ``wav.scp`` line; ids without a transcript or a wav file are skipped."""
    folder = _aishell2_split_dir(check_src("aishell2", src, AISHELL2_LAYOUT), subset)
    trans = find_first("aishell2", [folder / "trans.txt"], AISHELL2_LAYOUT)
    texts = _transcripts(trans)
    for where, line in read_lines(folder / "wav.scp"):
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise ManifestError(where, f"expected '<utt-id> <wav path>', got {line[:80]!r}")
        uid, rel = fields
        audio = Path(rel) if Path(rel).is_absolute() else folder / rel
        if not audio.is_file():
            yield Skip(f"{where} ({audio})", "audio file not found")
            continue
        yield labelled(
            task,
            where,
            {},
            texts.get(uid) or None,
            key=make_key("aishell2", subset, uid),
            audio=str(audio),
            duration=audio_duration(audio),
            language="zh",
            speaker=audio.parent.name if audio.parent.parent.name == "wav" else None,
        )


AISHELL2 = Corpus(
    name="aishell2",
    description="AISHELL-2 Mandarin dev/test sets recorded on iOS, Android and Mic (AISHELL-DEV-TEST-SET); ASR",
    subsets=AISHELL2_SUBSETS,
    default_subset="ios-test",
    tasks=("asr",),
    layout=AISHELL2_LAYOUT,
    prepare=prepare_aishell2,
)
