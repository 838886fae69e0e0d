"""The manifest record (:class:`Utterance`), our JSONL format, OSUM's raw JSONL, and one reader for every format.

Formats (``read_any`` tells them apart by content, see :func:`detect_format`):

- **ours** (``.jsonl``, optionally gzipped): one :meth:`Utterance.to_dict` object per line. Relative audio paths
  are relative to the manifest's folder.
- **OSUM raw** (``.jsonl``): ``{"key", "wav", "txt", "task", "lang", "extra", "start", "end"}`` where ``txt`` is
  the ASR+X label (``"hello world<female>"``) and ``task`` an OSUM tag (``"<TRANSCRIBE> <GENDER>"``). Reading
  splits ``txt`` with ``Task.parse``, so the transcript comes back normalised (lower-case), and only labels the
  task's tag carries survive (plus OSUM's optional ``gender``/``emotion`` keys). Relative paths are relative
  to the current directory, as in OSUM.
- **tar shards** (a ``.tar``, or a ``.list``/``.txt`` of tar paths): see :mod:`osum.data.shards`.
- **Lhotse** CutSet or RecordingSet + SupervisionSet JSONL(.gz): see :mod:`osum.data.lhotse_io`.

Bad records raise :class:`~osum.errors.ManifestError` whose message starts with ``file:line:``; with
``on_error="skip"`` a reader logs and counts them instead (``reader.skipped``).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import logging
import math
import os
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import soundfile as sf
import torch

from osum.data.audio import SAMPLE_RATE, load_audio
from osum.errors import AudioError, ConfigError, ManifestError, TaskError
from osum.tasks import TASKS, LabelField, Word, get_task

log = logging.getLogger(__name__)

FIELDS = ("key", "audio", "task", "text", "labels", "words", "answer", "start", "end", "duration")
FIELDS += ("language", "speaker", "extra")
ON_ERROR = ("raise", "skip")
_DURATION_TOLERANCE = 0.01  # s; `duration` may differ this much from `end - start`
_RESAMPLE_MARGIN = 0.05  # s of context resampled around a segment, so resampler edge effects stay outside it


@dataclass(frozen=True)
class Utterance:
    """One example: an audio segment, its task and its reference fields; the contract between the corpus
    builder, the readers and the trainer. The ASR+X target text is :meth:`target`.

    ``labels`` and ``extra`` are read-only mappings and ``words`` a tuple. ``audio_bytes`` holds encoded audio
    from a tar shard (``audio`` then only says where it came from); it is never written to JSONL.
    """

    key: str  # unique id
    audio: str  # audio file path (absolute after reading), or "shard.tar:key.wav" for shard audio
    task: str = "asr"  # our task name (osum.tasks.TASKS)
    text: str | None = None  # transcript as spoken (targets normalise it)
    labels: Mapping[str, str] = field(default_factory=dict)  # emotion, gender, age, style, event
    words: tuple[Word, ...] | None = None  # SRWT word times in seconds, relative to `start`
    answer: str | None = None  # STTC reply
    start: float | None = None  # segment start in the audio (s); None = 0
    end: float | None = None  # segment end (s); None = end of the audio
    duration: float | None = None  # segment duration (s) when known
    language: str | None = None  # "en", "zh", ...
    speaker: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # free-form JSON, e.g. {"question": ...}
    audio_bytes: bytes | None = field(default=None, repr=False)  # encoded audio (tar shards)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        if self.words is not None:
            object.__setattr__(self, "words", tuple(self.words))

    def __hash__(self) -> int:
        return hash((self.key, self.audio, self.task, self.start, self.end))

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        # mappingproxy cannot be pickled; rebuild from plain values (DataLoader workers pickle utterances).
        values = [getattr(self, f.name) for f in dataclasses.fields(self)]
        return (self.__class__, tuple(dict(v) if isinstance(v, Mapping) else v for v in values))

    def target(self) -> str:
        """The ASR+X target text, e.g. ``"hello world<female>"``; TaskError if a needed field is missing."""
        return get_task(self.task).target(self.text, self.labels, self.words, self.answer)

    def to_dict(self) -> dict[str, Any]:
        """Our JSONL object: the schema's field names, None/empty fields left out, no ``audio_bytes``."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is None or (isinstance(value, (Mapping, tuple)) and not value):
                continue
            if name == "words":
                value = [w.to_dict() for w in value]
            out[name] = dict(value) if isinstance(value, Mapping) else value
        return out


class ManifestIterator(Iterator[Utterance]):
    """The utterances of a manifest, read lazily. One pass; call the reader again for another.

    With ``on_error="skip"`` bad records are logged, left out and listed in ``skipped`` as ``(where, reason)``.
    ``count`` is the number of utterances yielded so far.
    """

    def __init__(self, records: Iterable[Utterance | ManifestError], on_error: str = "raise") -> None:
        self.on_error = check_on_error(on_error)
        self.skipped: list[tuple[str, str]] = []
        self.count = 0
        self._records = iter(records)

    def __iter__(self) -> ManifestIterator:
        return self

    def __next__(self) -> Utterance:
        for item in self._records:
            if isinstance(item, ManifestError):
                if self.on_error == "raise":
                    self.close()
                    raise item
                self.skipped.append((item.where, item.reason))
                log.warning("skipped %s", item)
                continue
            self.count += 1
            return item
        raise StopIteration

    def close(self) -> None:
        """Close the underlying file(s) now instead of at garbage collection."""
        close = getattr(self._records, "close", None)
        if close is not None:
            close()


def check_on_error(on_error: str) -> str:
    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    return on_error


class _Invalid(Exception):
    """What is wrong with one record; the caller adds the location and raises ManifestError."""


@lru_cache(maxsize=1)
def label_fields() -> Mapping[str, LabelField]:
    """Every label field any task uses, by name (``emotion``, ``gender``, ``age``, ``style``, ``event``)."""
    return MappingProxyType({f.name: f for t in TASKS.values() for f in t.label_fields})


def aux_label(name: str, value: object) -> str | None:
    """Canonical ``value`` of label field ``name`` from a foreign format, or None when unknown or empty."""
    known = label_fields().get(name)
    if known is None or not isinstance(value, str):
        return None
    return known.canonical(value.strip().strip("<>"))


def _number(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(f"{name} must be a finite number of seconds, got {value!r:.80}")
    return float(value)


def _string(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _Invalid(f"{name} must be a string, got {value!r:.80}")
    return value


def _words(value: object) -> tuple[Word, ...] | None:
    """``[{"word", "start", "end"}, ...]`` or ``[[word, start, end], ...]`` -> Words."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise _Invalid(f"words must be a list of {{word, start, end}}, got {value!r:.80}")
    out = []
    for i, w in enumerate(value):
        if isinstance(w, Word):
            out.append(w)
            continue
        if isinstance(w, Mapping) and set(w) >= {"word", "start", "end"}:
            w = (w["word"], w["start"], w["end"])
        if not isinstance(w, (list, tuple)) or len(w) != 3 or not isinstance(w[0], str):
            raise _Invalid(f"words[{i}] must be {{word, start, end}}, got {w!r:.80}")
        try:
            out.append(Word(*w))
        except TaskError as e:
            raise _Invalid(f"words[{i}]: {e}") from None
    return tuple(out)


def _check(u: Utterance, require_target: bool) -> Utterance:
    """``u`` with its task name and labels made canonical; raises _Invalid naming the bad field."""
    if not isinstance(u.key, str) or not u.key.strip() or any(c in u.key for c in "\r\n"):
        raise _Invalid(f"key must be a non-empty one-line string, got {u.key!r:.80}")
    if not isinstance(u.audio, str) or not u.audio:
        raise _Invalid(f"audio must be a non-empty path, got {u.audio!r:.80}")
    try:
        task = get_task(u.task)
    except TaskError as e:
        raise _Invalid(str(e)) from None
    for name in ("text", "answer", "language", "speaker"):
        _string(getattr(u, name), name)
    start, end, duration = (_number(getattr(u, n), n) for n in ("start", "end", "duration"))
    span = None if end is None else end - (start or 0.0)
    if start is not None and start < 0:
        raise _Invalid(f"start must be >= 0, got {start}")
    if span is not None and span <= 0:
        raise _Invalid(f"end ({end}) must be after start ({start or 0.0})")
    if duration is not None and duration <= 0:
        raise _Invalid(f"duration must be > 0, got {duration}")
    if duration is not None and span is not None and abs(duration - span) > _DURATION_TOLERANCE:
        raise _Invalid(f"duration {duration} disagrees with end - start = {span:.3f}")
    labels = {}
    for name, value in u.labels.items():
        known = label_fields().get(name)
        if known is None:
            raise _Invalid(f"unknown label field {name!r}; label fields are: {', '.join(label_fields())}")
        labels[name] = known.canonical(value)
        if labels[name] is None:
            raise _Invalid(f"label {name}={value!r:.80} is not in the vocabulary: {known.describe()}")
    if u.words is not None and not all(isinstance(w, Word) for w in u.words):
        raise _Invalid("words must be osum.tasks.Word(word, start, end) items")
    if not isinstance(u.extra, Mapping):
        raise _Invalid(f"extra must be a JSON object, got {u.extra!r:.80}")
    if require_target:
        try:
            task.target(u.text, labels, u.words, u.answer)
        except TaskError as e:
            raise _Invalid(f"no target text: {e}") from None
    if task.name == u.task and labels == dict(u.labels):
        return u
    return dataclasses.replace(u, task=task.name, labels=labels)


def validate_utterance(u: Utterance, *, require_target: bool = True, where: str | None = None) -> Utterance:
    """``u`` checked and made canonical (task name, label values); ManifestError(``where``) if it is bad.

    ``require_target`` also demands every field the task's target needs (transcript, labels, words, answer).
    """
    try:
        return _check(u, require_target)
    except _Invalid as e:
        raise ManifestError(where or f"utterance {getattr(u, 'key', '?')!r}", str(e)) from None


def utterance_from_dict(d: Mapping[str, Any], where: str = "<dict>") -> Utterance:
    """An Utterance from our JSON object (types checked; ``audio`` as written). ManifestError if malformed."""
    try:
        unknown = sorted(set(d) - set(FIELDS))
        if unknown:
            raise _Invalid(f"unknown field(s) {unknown}; the fields are: {', '.join(FIELDS)}")
        for name in ("key", "audio"):
            if not isinstance(d.get(name), str) or not d[name]:
                raise _Invalid(f"missing or empty required field {name!r}")
        labels, extra = d.get("labels") or {}, d.get("extra") or {}
        if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
            raise _Invalid(f"labels must be an object of strings, got {labels!r:.80}")
        if not isinstance(extra, Mapping):
            raise _Invalid(f"extra must be a JSON object, got {extra!r:.80}")
        values = {n: _string(d.get(n), n) for n in ("text", "answer", "language", "speaker")}
        values.update({n: _number(d.get(n), n) for n in ("start", "end", "duration")})
        task = _string(d.get("task", "asr"), "task")
        words = _words(d.get("words"))
        return Utterance(d["key"], d["audio"], task, labels=labels, words=words, extra=extra, **values)
    except _Invalid as e:
        raise ManifestError(where, str(e)) from None


# ---- reading JSON lines ------------------------------------------------------------------------------


def existing_file(path: str | os.PathLike) -> Path:
    """``path`` as an absolute Path; ManifestError (always raised) if it is missing or not a file."""
    p = Path(path).absolute()
    if not p.is_file():
        raise ManifestError(str(path), "not found" if not p.exists() else "not a regular file")
    return p


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading, decompressing it if it is gzipped (told by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")  # type: ignore[return-value]


def json_lines(path: Path) -> Iterator[tuple[str, dict[str, Any]] | ManifestError]:
    """``("file:line", object)`` for each non-blank line, or a ManifestError for a line that is not an object."""
    n = 0
    try:
        with open_binary(path) as f:
            for n, raw in enumerate(f, 1):
                where = f"{path}:{n}"
                try:
                    line = raw.decode("utf-8").lstrip("\ufeff")
                except UnicodeDecodeError as e:
                    yield ManifestError(where, f"not UTF-8 text ({e.reason} at byte {e.start})")
                    continue
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    yield ManifestError(where, f"invalid JSON: {e.msg} (column {e.colno})")
                    continue
                if not isinstance(obj, dict):
                    yield ManifestError(where, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                yield where, obj
    except (OSError, EOFError, zlib.error) as e:
        yield ManifestError(f"{path}:{n + 1}", f"cannot read the file: {e}")


def convert_records(
    records: Iterable[tuple[str, dict[str, Any]] | ManifestError],
    convert: Callable[[dict[str, Any], str], Utterance],
    check_audio: bool,
    require_target: bool,
) -> Iterator[Utterance | ManifestError]:
    """Apply ``convert(obj, where)``, validate, and (``check_audio``) stat the audio file of each record."""
    for item in records:
        if isinstance(item, ManifestError):
            yield item
            continue
        where, obj = item
        try:
            u = validate_utterance(convert(obj, where), require_target=require_target, where=where)
            if check_audio and u.audio_bytes is None and not os.path.isfile(u.audio):
                raise ManifestError(where, f"audio file not found: {u.audio}")
            yield u
        except ManifestError as e:
            yield e


def resolve(audio: str, base_dir: str | os.PathLike) -> str:
    """``audio`` made absolute against ``base_dir`` (absolute paths are kept)."""
    return os.path.abspath(os.path.join(base_dir, audio))


# ---- our JSONL ---------------------------------------------------------------------------------------


def read_manifest(
    path: str | os.PathLike, on_error: str = "raise", *, check_audio: bool = True, require_target: bool = True
) -> ManifestIterator:
    """Our JSONL(.gz) manifest. Relative audio paths are relative to the manifest's folder.

    ``check_audio`` stats each audio file (no decoding); ``require_target`` demands the fields the task's
    target needs. Bad records: ManifestError ``file:line: ...`` (``on_error="raise"``) or skipped and counted.
    """
    path = existing_file(path)

    def convert(obj: dict[str, Any], where: str) -> Utterance:
        u = utterance_from_dict(obj, where)
        return dataclasses.replace(u, audio=resolve(u.audio, path.parent))

    return ManifestIterator(convert_records(json_lines(path), convert, check_audio, require_target), on_error)


def _write_lines(path: str | os.PathLike, utterances: Iterable[Utterance], encode: Callable) -> int:
    """Write ``encode(u, where)`` per line to a temporary file, then move it into place (gzip for ``.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with gzip.open(tmp, "wb") if path.suffix == ".gz" else open(tmp, "wb") as f:
            for n, u in enumerate(utterances, 1):
                where = f"{path}:{n}"
                try:
                    line = json.dumps(encode(u, where), ensure_ascii=False)
                except (TypeError, ValueError) as e:
                    raise ManifestError(where, f"utterance {u.key!r} is not JSON-serialisable: {e}") from None
                f.write(line.encode("utf-8") + b"\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def write_manifest(
    path: str | os.PathLike,
    utterances: Iterable[Utterance],
    *,
    relative: bool = True,
    require_target: bool = True,
) -> int:
    """Write our JSONL (gzipped if ``path`` ends in ``.gz``); returns the number of lines.

    Each utterance is validated first (ManifestError ``file:line:`` names the first bad one). With ``relative``,
    audio under the manifest's folder is written relative to it. ``audio_bytes`` is not written.
    """
    folder = Path(path).absolute().parent

    def encode(u: Utterance, where: str) -> dict[str, Any]:
        d = validate_utterance(u, require_target=require_target, where=where).to_dict()
        audio = os.path.abspath(u.audio)
        if relative and Path(audio).is_relative_to(folder):
            d["audio"] = os.path.relpath(audio, folder)
        return d

    return _write_lines(path, utterances, encode)


# ---- any format --------------------------------------------------------------------------------------

FORMATS = ("osum", "osum_raw", "shard_list", "tar", "lhotse_cuts", "lhotse_recordings", "lhotse_supervisions")


def detect_format(path: str | os.PathLike) -> str:
    """One of :data:`FORMATS`, from the name (``.tar``, ``.tgz``) or the fields of the first JSON line."""
    path = existing_file(path)
    if path.name.endswith((".tar", ".tar.gz", ".tgz")) or tarfile.is_tarfile(path):
        return "tar"
    with open_binary(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
            if not line:
                continue
            if line.startswith("["):
                raise ManifestError(f"{path}:{n}", "a JSON array is not supported; use JSON lines (.jsonl)")
            if not line.startswith("{"):
                return "shard_list"
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                if n >= 100:
                    break
                continue  # the reader reports the broken line in its place
            if "wav" in d and "txt" in d:
                return "osum_raw"
            if "key" in d and "audio" in d:
                return "osum"
            if str(d.get("type", "")).endswith("Cut") or {"supervisions", "recording"} <= set(d):
                return "lhotse_cuts"
            if "sources" in d and "sampling_rate" in d:
                return "lhotse_recordings"
            if "recording_id" in d:
                return "lhotse_supervisions"
            raise ManifestError(
                f"{path}:{n}",
                f"cannot tell the manifest format from the fields {sorted(d)[:12]}: expected ours (key, audio), "
                "OSUM raw (key, wav, txt) or a Lhotse manifest (cuts, recordings or supervisions)",
            )
    return "osum"  # no usable line: an empty manifest


# ---- audio -------------------------------------------------------------------------------------------


def transcribed_clips(
    utterances: Sequence[Utterance],
    skipped: Counter,
    max_seconds: float | None = None,
    desc: str | None = None,
) -> Iterator[tuple[Utterance, torch.Tensor]]:
    """The utterances that have a transcript and readable audio, each with its samples (:func:`load_utterance_audio`);
    the others are counted in ``skipped`` by reason ("no transcript", "longer than N s", "unreadable audio").
    ``desc``: show a progress bar with this name."""
    bar = None
    if desc is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(utterances), desc=desc, unit="clip")
    try:
        for u in utterances:
            if bar is not None:
                bar.update(1)
            if not (u.text or "").strip():
                skipped["no transcript"] += 1
                continue
            try:
                wave = load_utterance_audio(u, max_seconds=max_seconds)
            except AudioError as exc:
                too_long = max_seconds is not None and "longer than" in str(exc)
                skipped[f"longer than {max_seconds:g} s" if too_long else "unreadable audio"] += 1
                continue
            yield u, wave
    finally:
        if bar is not None:
            bar.close()


def load_utterance_audio(u: Utterance, max_seconds: float | None = None) -> torch.Tensor:
    """The utterance's segment as float32 mono 16 kHz samples ``(N,)``, via :func:`osum.data.audio.load_audio`.

    Reads ``audio_bytes`` when set, else the file. The crop is ``[round(start * 16000), round(end * 16000))`` in
    16 kHz samples. From a file only the frames needed are read (plus a 50 ms margin that is resampled with them
    when the file is not 16 kHz, so the result matches resampling the whole file). An end past the audio is cut
    to it. Raises AudioError (missing/unreadable audio, empty segment, longer than ``max_seconds``).
    """
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be > 0, got {max_seconds}")
    name = f"{u.audio} (utterance {u.key!r})"
    i0 = round((u.start or 0.0) * SAMPLE_RATE)
    i1 = None if u.end is None else round(u.end * SAMPLE_RATE)
    if i1 is not None and max_seconds is not None:
        _check_seconds(i1 - i0, max_seconds, name)  # refuse before decoding anything
    if u.audio_bytes is None and u.start is None and u.end is None:
        return load_audio(u.audio, max_seconds=max_seconds, name=name)
    if u.audio_bytes is None and not os.path.isfile(u.audio):
        raise AudioError(f"{name}: file not found")
    source = io.BytesIO(u.audio_bytes) if u.audio_bytes is not None else u.audio
    wave, offset = _read_segment(source, name, i0, i1)
    segment = wave[i0 - offset : None if i1 is None else i1 - offset]
    if segment.numel() == 0:
        raise AudioError(f"{name}: the segment {u.start}-{u.end} s holds no audio")
    if max_seconds is not None:
        _check_seconds(segment.numel(), max_seconds, name)
    return segment.clone() if segment.numel() < wave.numel() else segment


def _read_segment(source: str | BinaryIO, name: str, i0: int, i1: int | None) -> tuple[torch.Tensor, int]:
    """16 kHz samples covering 16 kHz sample indices ``[i0, i1)`` and the index of the first one."""
    try:
        with sf.SoundFile(source) as f:
            rate, total = int(f.samplerate), f.frames
            if i0 * rate >= total * SAMPLE_RATE:
                raise AudioError(
                    f"{name}: the segment starts at {i0 / SAMPLE_RATE:.3f} s, after the end of the audio "
                    f"({total / rate:.3f} s)"
                )
            if rate == SAMPLE_RATE:
                first, last, offset = i0, total if i1 is None else min(i1, total), i0
            else:
                # Start on a frame that maps to a whole 16 kHz index, so the resampled chunk lines up exactly
                # with the resampled file; the margin keeps the resampler's edge transients off the segment.
                g = math.gcd(rate, SAMPLE_RATE)
                step_in, step_out = rate // g, SAMPLE_RATE // g
                margin = round(_RESAMPLE_MARGIN * SAMPLE_RATE)
                offset = max(0, i0 - margin) // step_out * step_out
                first = offset // step_out * step_in
                last = total if i1 is None else min(total, -(-(i1 + margin) // step_out) * step_in)
            f.seek(first)
            data = f.read(last - first, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        reason = getattr(e, "error_string", None) or str(e)
        raise AudioError(f"{name}: cannot read audio (unreadable or unsupported format): {reason}") from e
    return load_audio(data, rate, name=name), offset


def _check_seconds(n_samples: int, max_seconds: float, name: str) -> None:
    if n_samples / SAMPLE_RATE > max_seconds:
        raise AudioError(
            f"{name}: {n_samples / SAMPLE_RATE:.2f} s is longer than the {max_seconds} s allowed"
        )
