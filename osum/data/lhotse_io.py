"""Read Lhotse manifests as utterances, with plain json/gzip (lhotse itself is not needed, nor imported).

Inputs: a CutSet JSONL(.gz) of ``MonoCut`` s (or ``MultiCut`` s that use every channel), or a RecordingSet +
SupervisionSet pair. Each **supervision** becomes one :class:`~osum.data.manifest.Utterance`:

====================  ==========================================================================================
Utterance             Lhotse
====================  ==========================================================================================
``key``               ``supervision.id``
``audio``             ``recording.sources[0].source``; only one source of type ``"file"``, no ``transforms``.
                      Relative paths are relative to ``base_dir`` (default: the current directory, as in lhotse)
``start`` / ``end``   ``cut.start + supervision.start`` / ``+ supervision.duration``, clipped to the recording
``duration``          ``end - start``
``text``              ``supervision.text``
``language``          ``supervision.language``
``speaker``           ``supervision.speaker``
``task``              ``custom["task"]`` (our name or an OSUM tag), else ``"asr"``
``labels``            ``gender``: ``supervision.gender`` (``"m"``/``"f"`` accepted) or ``custom["gender"]``;
                      ``emotion``, ``age``, ``style``, ``event``: ``custom[...]``. A label the task needs is
                      validated; one it does not need is kept only if it is in our vocabulary
``answer``            ``custom["answer"]`` (STTC reply)
``words``             ``custom["words"]`` (``[{word, start, end}]`` relative to the supervision start), else
                      ``supervision.alignment["word"]`` (lhotse times are relative to the recording; shifted)
``extra``             the other ``custom`` keys (e.g. ``question``)
====================  ==========================================================================================

osum reads audio as the mean of all channels, so a supervision on some channels of a multi-channel recording
is an error. Bad lines give ManifestError ``file:line:`` like the other readers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from osum.data.manifest import (
    ManifestIterator,
    Utterance,
    aux_label,
    check_on_error,
    convert_records,
    existing_file,
    json_lines,
    resolve,
    utterance_from_dict,
)
from osum.errors import ManifestError, TaskError
from osum.tasks import get_task

LABEL_KEYS = ("gender", "emotion", "age", "style", "event")
_GENDER_CODES = {"m": "male", "f": "female"}  # lhotse recipes often write single letters
_CUT_TYPES = ("MonoCut", "MultiCut")


def read_lhotse(
    path: str | os.PathLike,
    supervisions: str | os.PathLike | None = None,
    on_error: str = "raise",
    *,
    check_audio: bool = True,
    require_target: bool = True,
    base_dir: str | os.PathLike | None = None,
) -> ManifestIterator:
    """Utterances of a Lhotse CutSet (``path`` alone) or RecordingSet ``path`` + SupervisionSet ``supervisions``.

    Both JSONL, optionally gzipped. ``check_audio`` stats each audio file; ``require_target`` demands what the
    task's target needs. See the module docstring for the field mapping.
    """
    check_on_error(on_error)
    path = existing_file(path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if supervisions is None:
        records = _cut_records(path)
    else:
        records = _pair_records(path, existing_file(supervisions))

    def convert(obj: dict[str, Any], where: str) -> Utterance:
        return _utterance(obj["cut"], obj["sup"], obj["rec"], base, where)

    return ManifestIterator(convert_records(records, convert, check_audio, require_target), on_error)


def partner_manifest(path: str | os.PathLike, kind: str) -> Path:
    """The supervisions file of a recordings file (``kind="lhotse_recordings"``) or the other way round."""
    path = Path(path)
    mine, other = (
        ("recordings", "supervisions") if kind == "lhotse_recordings" else ("supervisions", "recordings")
    )
    partner = path.with_name(path.name.replace(mine, other))
    if partner == path or not partner.is_file():
        expected = f"expected {partner.name} next to it" if partner != path else f"its name has no {mine!r}"
        raise ManifestError(
            str(path),
            f"a Lhotse {mine} manifest needs its {other} ({expected}); "
            f"call osum.data.lhotse_io.read_lhotse(recordings, supervisions) to name both",
        )
    return partner


def _cut_records(path: Path) -> Iterator[tuple[str, dict[str, Any]] | ManifestError]:
    for item in json_lines(path):
        if isinstance(item, ManifestError):
            yield item
            continue
        where, cut = item
        if cut.get("type", "MonoCut") not in _CUT_TYPES:
            kind = cut.get("type")
            yield ManifestError(where, f"cut type {kind!r} is not supported (only {', '.join(_CUT_TYPES)})")
            continue
        sups = cut.get("supervisions") or []
        if not isinstance(sups, list):
            yield ManifestError(where, "cut supervisions must be a list")
            continue
        for sup in sups:
            sid = sup.get("id") if isinstance(sup, Mapping) else None
            yield f"{where}: supervision {sid!r}", {"cut": cut, "sup": sup, "rec": cut.get("recording")}


def _pair_records(
    recordings: Path, supervisions: Path
) -> Iterator[tuple[str, dict[str, Any]] | ManifestError]:
    by_id: dict[str, dict[str, Any]] = {}
    for item in json_lines(recordings):
        if isinstance(item, ManifestError):
            yield item  # a broken recordings line is reported; its supervisions then fail to find it
        else:
            by_id[str(item[1].get("id"))] = item[1]
    for item in json_lines(supervisions):
        if isinstance(item, ManifestError):
            yield item
            continue
        where, sup = item
        rec = by_id.get(str(sup.get("recording_id")))
        if rec is None:
            yield ManifestError(where, f"recording {sup.get('recording_id')!r} is not in {recordings}")
            continue
        yield where, {"cut": None, "sup": sup, "rec": rec}


def _recording(rec: object, base: Path, where: str) -> tuple[str, list[int], float | None]:
    """``(audio path, channel ids, duration)`` of a recording dict."""
    if not isinstance(rec, Mapping):
        raise ManifestError(where, "the cut has no recording (cuts without audio are not supported)")
    rid = rec.get("id")
    if rec.get("transforms"):
        names = [t.get("name") if isinstance(t, Mapping) else t for t in rec["transforms"]]
        raise ManifestError(
            where, f"recording {rid!r}: transforms {names} are not supported; save the audio first"
        )
    sources = rec.get("sources") or []
    if len(sources) != 1 or not isinstance(sources[0], Mapping):
        raise ManifestError(
            where, f"recording {rid!r}: {len(sources)} sources; only one audio file is supported"
        )
    source = sources[0]
    if source.get("type") != "file" or not isinstance(source.get("source"), str):
        raise ManifestError(
            where, f"recording {rid!r}: source type {source.get('type')!r} is not supported (only 'file')"
        )
    channels = rec.get("channel_ids") or source.get("channels") or [0]
    duration = rec.get("duration")
    duration = (
        float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None
    )
    return resolve(source["source"], base), sorted(channels), duration


def _seconds(value: object, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ManifestError(where, f"{name} must be a number of seconds, got {value!r:.40}")
    return float(value)


def _utterance(cut: dict[str, Any] | None, sup: object, rec: object, base: Path, where: str) -> Utterance:
    if not isinstance(sup, Mapping):
        raise ManifestError(where, f"a supervision must be an object, got {sup!r:.60}")
    audio, channels, rec_seconds = _recording(rec, base, where)
    used = sup.get("channel", cut.get("channel") if cut else None)
    used = sorted(used) if isinstance(used, list) else channels if used is None else [used]
    if len(channels) > 1 and used != channels:
        raise ManifestError(
            where,
            f"uses channel(s) {used} of a {len(channels)}-channel recording; osum reads the mean of all channels",
        )
    offset = _seconds(cut.get("start", 0.0), "cut start", where) if cut else 0.0
    start = offset + _seconds(sup.get("start"), "supervision start", where)
    end = start + _seconds(sup.get("duration"), "supervision duration", where)
    start, end = round(max(0.0, start), 6), round(min(end, rec_seconds or end), 6)

    custom = sup.get("custom") or {}
    if not isinstance(custom, Mapping):
        raise ManifestError(where, f"supervision custom must be an object, got {custom!r:.60}")
    custom = dict(custom)
    task_name = custom.pop("task", "asr")
    try:
        task_fields = {f.name for f in get_task(task_name).label_fields}
    except TaskError as e:
        raise ManifestError(where, str(e)) from None
    labels = {}
    for name in LABEL_KEYS:
        value = custom.pop(name, None)
        if name == "gender" and sup.get("gender") is not None:
            value = sup["gender"]
        if name == "gender" and isinstance(value, str):
            value = _GENDER_CODES.get(value.strip().lower(), value)
        if name in task_fields and value is not None:
            labels[name] = value  # validated with the task's vocabulary later
        elif aux_label(name, value) is not None:
            labels[name] = aux_label(name, value)
    words = custom.pop("words", None)
    if words is None and isinstance(sup.get("alignment"), Mapping) and sup["alignment"].get("word"):
        words = [_aligned_word(item, start, where) for item in sup["alignment"]["word"]]
    record = {
        "key": sup.get("id"),
        "audio": audio,
        "task": task_name,
        "text": sup.get("text"),
        "labels": labels,
        "words": words,
        "answer": custom.pop("answer", None),
        "start": start,
        "end": end,
        "duration": round(end - start, 6),
        "language": sup.get("language"),
        "speaker": sup.get("speaker"),
        "extra": custom,
    }
    return utterance_from_dict(record, where)


def _aligned_word(item: object, start: float, where: str) -> dict[str, Any]:
    """A lhotse AlignmentItem (``[symbol, start, duration, score]`` or a dict) -> our word, relative to ``start``."""
    if isinstance(item, Mapping):
        item = [item.get("symbol"), item.get("start"), item.get("duration")]
    if not isinstance(item, (list, tuple)) or len(item) < 3:
        raise ManifestError(where, f"bad alignment item {item!r:.60}")
    t0 = _seconds(item[1], "alignment start", where) - start
    t1 = t0 + _seconds(item[2], "alignment duration", where)
    return {"word": item[0], "start": round(max(0.0, t0), 6), "end": round(max(0.0, t1), 6)}
