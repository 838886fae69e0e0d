"""Shared pieces of the corpus preparers: the :class:`Corpus` record, :class:`Skip`, and small readers.

A preparer turns a local copy of a public corpus into :class:`~osum.data.manifest.Utterance` records. It yields
an Utterance per usable example and a :class:`Skip` (where, reason) per example it had to leave out, so the
caller can count both. Missing files or folders raise :class:`~osum.errors.ConfigError` naming the path and the
expected layout; a line that cannot be parsed raises :class:`~osum.errors.ManifestError` ``file:line: ...``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from osum.data.manifest import Utterance
from osum.errors import ConfigError, ManifestError
from osum.tasks import get_task


@dataclass(frozen=True)
class Skip:
    """An example a preparer left out: where it is (``file:line`` or a path) and why (a short, countable
    reason such as ``"no transcript"``)."""

    where: str
    reason: str


Record = Utterance | Skip
Preparer = Callable[[Path, str, str], Iterator[Record]]


@dataclass(frozen=True)
class Corpus:
    """One public corpus we can turn into a manifest.

    ``prepare(src, subset, task)`` yields an :class:`Utterance` (task ``task``) or a :class:`Skip` per example
    of ``subset``; ``subset`` is one of ``subsets`` and ``task`` one of ``tasks`` (our task names), both
    already checked by :func:`osum.data.corpora.prepare_corpus`. ``layout`` describes the folder layout the
    preparer expects (shown by ``osum data prepare --list`` and in error messages).
    """

    name: str
    description: str
    subsets: tuple[str, ...]
    default_subset: str
    tasks: tuple[str, ...]  # the first one is the default
    layout: str
    prepare: Preparer

    def __post_init__(self) -> None:
        object.__setattr__(self, "subsets", tuple(self.subsets))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if self.default_subset not in self.subsets:
            raise ConfigError(f"corpus {self.name!r}: default subset {self.default_subset!r} is not listed")
        for task in self.tasks:
            get_task(task)  # a typo in a task name fails at import, not during a long preparation


def make_key(corpus: str, subset: str, ident: str) -> str:
    """``"<corpus>-<subset>-<id>"`` with dots and path separators replaced: keys name tar-shard members, and
    OSUM groups those by the text before the last dot."""
    return re.sub(r"[./\\\s]+", "_", f"{corpus}-{subset}-{ident}")


def layout_error(corpus: str, missing: Path | str, layout: str, hint: str = "") -> ConfigError:
    """ConfigError: ``missing`` is not there, with the corpus's expected layout (and an optional hint)."""
    hint = f"\n{hint}" if hint else ""
    return ConfigError(f"{corpus}: {missing} not found; expected this layout:\n{layout}{hint}")


def check_src(corpus: str, src: Path, layout: str) -> Path:
    """``src`` made absolute; ConfigError if it is not a folder."""
    src = Path(src).expanduser().absolute()
    if not src.is_dir():
        what = "is not a folder" if src.exists() else "does not exist"
        raise ConfigError(f"{corpus}: SRC {src} {what}; expected a local copy laid out as:\n{layout}")
    return src


def find_first(corpus: str, candidates: Sequence[Path], layout: str, hint: str = "") -> Path:
    """The first of ``candidates`` that exists; otherwise a ConfigError listing every place tried."""
    for path in candidates:
        if path.exists():
            return path
    tried = " or ".join(str(p) for p in candidates)
    raise layout_error(corpus, tried, layout, hint)


def read_lines(path: Path) -> Iterator[tuple[str, str]]:
    """``("file:line", line)`` for each non-blank line of a UTF-8 text file (BOM and line ends stripped)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8").lstrip("\ufeff").strip()
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}:{n}", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
        if line:
            yield f"{path}:{n}", line


def decode_text(data: bytes) -> str:
    """Bytes of a text file from UTF-8 (with or without BOM), else Windows-1252 (what older CSVs use)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_csv(path: Path, required: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """``("file:line", row)`` for each row of a CSV with a header; ManifestError if a column is missing."""
    try:
        text = decode_text(path.read_bytes())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise ManifestError(f"{path}:1", f"missing column(s) {missing}; the header has {header}")
    reader.fieldnames = header
    line = reader.line_num + 1
    for row in reader:
        where = f"{path}:{line}"
        line = reader.line_num + 1
        surplus = row.pop(None, None) or []  # type: ignore[call-overload]
        if any(v.strip() for v in surplus) or any(row.get(c) is None for c in required):
            # Too few fields, or more than the header (an unquoted comma would shift every column after it)
            raise ManifestError(where, f"expected {len(header)} columns ({', '.join(header)})")
        yield where, {k: (v or "").strip() for k, v in row.items()}


def join_tokens(tokens: Sequence[str]) -> str:
    """Word-segmented Chinese joined without spaces, keeping one space between two Latin/digit tokens
    (``["我", "爱", "NBA", "TV"]`` -> ``"我爱NBA TV"``)."""
    out = ""
    for tok in tokens:
        if out and out[-1].isascii() and out[-1].isalnum() and tok[:1].isascii() and tok[:1].isalnum():
            out += " "
        out += tok
    return out


def audio_duration(path: Path) -> float | None:
    """Duration in seconds from the header of a WAV/FLAC file (no decoding); None for other formats (MP3
    and Opus may need a scan of the whole file) or an unreadable header."""
    if path.suffix.lower() not in (".wav", ".flac"):
        return None
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError):
        return None
    return info.frames / info.samplerate if info.frames > 0 and info.samplerate > 0 else None


def labelled(
    task: str,
    where: str,
    labels: Mapping[str, str | None],
    text: str | None,
    why: Mapping[str, str] | None = None,
    **fields: object,
) -> Record:
    """The Utterance for ``task`` with just the labels it needs, or a Skip saying which one is missing.

    ``labels`` maps each label field the corpus knows to its canonical value (None = unknown); ``why`` may
    give the reason a label is None (e.g. ``"gender 'other' has no label"``). A task with a transcript needs
    ``text`` (``""`` is allowed: vocal-event clips have no speech).
    """
    spec = get_task(task)
    chosen: dict[str, str] = {}
    for f in spec.label_fields:
        value = labels.get(f.name)
        if value is None:
            return Skip(where, (why or {}).get(f.name) or f"no {f.name} label")
        chosen[f.name] = value
    if spec.has_transcript and text is None:
        return Skip(where, "no transcript")
    return Utterance(task=spec.name, text=text, labels=chosen, **fields)  # type: ignore[arg-type]
