"""OSUM's own record format: the fields of its raw JSONL lines and of its tar shards' members (``key, wav, txt,
task, lang, speaker, gender, emotion, extra, start, end``), to and from our :class:`~osum.data.manifest.Utterance`.

Used by the raw JSONL reader and writer here and by :mod:`osum.data.shards`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import soundfile as sf

from osum.data.manifest import (
    ManifestIterator,
    Utterance,
    _write_lines,
    aux_label,
    convert_records,
    existing_file,
    json_lines,
    resolve,
    utterance_from_dict,
    validate_utterance,
)
from osum.errors import ManifestError, TaskError
from osum.tasks import get_task

# ---- OSUM's fields <-> utterances (shared by the shards and OSUM's raw JSONL) -----------------------------

_OSUM_KEYS = (
    "key",
    "wav",
    "txt",
    "task",
    "lang",
    "speaker",
    "gender",
    "emotion",
    "extra",
    "start",
    "end",
    "duration",
)


def utterance_from_osum(
    fields: Mapping[str, Any], audio: str, where: str, *, require_target: bool = True
) -> Utterance:
    """An Utterance from OSUM's fields (a raw JSONL object or a shard's members); ManifestError if malformed.

    ``txt`` is split with the task's parser (no ``task`` means ASR, as in OSUM), so the transcript comes back
    normalised. ``extra.duration`` (where OSUM's tools keep it) becomes ``duration``; ``gender``/``emotion`` become
    labels when they are in our vocabulary (OSUM writes ``"None"`` for unknown); other keys are kept in ``extra``.
    """
    txt, task_name = fields.get("txt"), fields.get("task") or "asr"
    if not isinstance(txt, str):
        raise ManifestError(where, "missing required field 'txt' (the label text, a string)")
    try:
        task = get_task(task_name)
    except TaskError as e:
        raise ManifestError(where, str(e)) from None
    parsed = task.parse(txt)
    labels = {k: v for k, v in parsed.labels.items() if v is not None}
    missing = [f for f in task.label_fields if f.name not in labels]
    if require_target and missing:
        raise ManifestError(
            where,
            f"txt {txt!r:.80} has no valid <{missing[0].name}> tag; valid values: {missing[0].describe()}",
        )
    for name in ("gender", "emotion"):
        if aux_label(name, fields.get(name)) is not None:
            labels.setdefault(name, aux_label(name, fields[name]))
    extra = fields.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise ManifestError(where, f"extra must be a JSON object, got {extra!r:.80}")
    extra = {**{k: v for k, v in fields.items() if k not in _OSUM_KEYS}, **extra}
    duration = fields.get("duration", extra.pop("duration", None))
    record = {
        "key": fields.get("key"),
        "audio": audio,
        "task": task.name,
        "text": parsed.transcript,
        "labels": labels,
        "words": parsed.words or None,
        "answer": parsed.answer,
        "start": fields.get("start"),
        "end": fields.get("end"),
        "duration": duration or None,  # OSUM's shard writer stores 0 for unknown
        "language": _known(fields.get("lang")),
        "speaker": _known(fields.get("speaker")),
        "extra": extra,
    }
    return utterance_from_dict(record, where)


def _known(value: object) -> object:
    """``value`` stripped, or None for OSUM's placeholders of a missing value (``"None"``, ``""``)."""
    if isinstance(value, str):
        return None if value.strip().lower() in ("", "none", "null") else value.strip()
    return value


def osum_raw_record(u: Utterance) -> dict[str, Any]:
    """The OSUM raw JSONL object of ``u``: every key OSUM's ``make_shard_list_osum.py`` reads (null if unknown)."""
    u = validate_utterance(u)
    extra = dict(u.extra)
    duration = u.duration if u.duration is not None or u.end is None else u.end - (u.start or 0.0)
    if duration is not None:
        extra["duration"] = duration  # OSUM's shard writer takes the duration from extra
    record: dict[str, Any] = {"key": u.key, "wav": os.path.abspath(u.audio), "txt": u.target()}
    record.update(task=get_task(u.task).tag, lang=u.language, speaker=u.speaker)
    record.update(emotion=u.labels.get("emotion"), gender=u.labels.get("gender"), extra=extra)
    if u.start is not None or u.end is not None:  # OSUM's reader needs both
        record["start"] = u.start or 0.0
        record["end"] = u.end if u.end is not None else _end_of_file(u)
    return record


def _end_of_file(u: Utterance) -> float:
    if u.duration is not None:
        return (u.start or 0.0) + u.duration
    try:
        return float(sf.info(u.audio).duration)
    except (sf.SoundFileError, RuntimeError) as e:
        raise ManifestError(
            f"utterance {u.key!r}", f"cannot read the audio header of {u.audio}: {e}"
        ) from None


# ---- OSUM raw JSONL ----------------------------------------------------------------------------------


def read_osum_raw(
    path: str | os.PathLike,
    on_error: str = "raise",
    *,
    check_audio: bool = True,
    require_target: bool = True,
    base_dir: str | os.PathLike | None = None,
) -> ManifestIterator:
    """OSUM's raw JSONL (``key, wav, txt, task, lang, extra, start, end``); see the module docstring.

    Relative ``wav`` paths are relative to ``base_dir`` (default: the current directory, as in OSUM).
    """
    path = existing_file(path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    def convert(obj: dict[str, Any], where: str) -> Utterance:
        if not isinstance(obj.get("wav"), str) or not obj["wav"]:
            raise ManifestError(where, "missing required field 'wav' (the audio path)")
        return utterance_from_osum(obj, resolve(obj["wav"], base), where, require_target=require_target)

    return ManifestIterator(convert_records(json_lines(path), convert, check_audio, require_target), on_error)


def write_osum_raw(path: str | os.PathLike, utterances: Iterable[Utterance]) -> int:
    """Write OSUM raw JSONL (absolute ``wav`` paths, ``txt`` = the ASR+X target); returns the number of lines."""
    def encode(u: Utterance, where: str) -> dict[str, Any]:
        try:
            return osum_raw_record(u)
        except ManifestError as e:
            raise ManifestError(where, e.reason) from None

    return _write_lines(path, utterances, encode)
