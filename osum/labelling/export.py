"""Turn ``osum label`` records into training data: a Lhotse CutSet, or OSUM tar shards for ``osum train``.

Lhotse: one ``MonoCut`` per recording with one supervision over it: the transcript as ``text``, the gender as
``gender``, the other labels, their probabilities and the chat reply in ``custom``, SRWT's word times as the
``word`` alignment (recording time). Written with plain JSON (lhotse itself is not needed to write it; it reads it).

Shards: one training example per (recording, task answered): the task's ASR+X target from the record (transcript,
that task's labels, word times, reply), so label -> filter by confidence (``--min-confidence``) -> train is one
loop. A task whose label was withheld (below the confidence threshold) gives no example for that recording.
Both need the audio where the record says it is (a file; clips read from tar shards are refused by name).
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from osum.data.manifest import Utterance, utterance_from_dict
from osum.data.shards import write_shards
from osum.errors import OsumError
from osum.tasks import get_task


def _audio_file(record: Mapping[str, Any]) -> str:
    audio = str(record["audio"])
    if not os.path.isfile(audio):
        raise OsumError(
            f"record {record['key']!r}: its audio {audio!r} is not a file here; exporting needs the audio files "
            "(clips read from tar shards: export their records to JSONL only)"
        )
    return audio


def _labelled(records: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    return (r for r in records if "error" not in r)


def record_utterances(record: Mapping[str, Any]) -> list[Utterance]:
    """One training utterance per task the record answers, with that task's target fields from the record."""
    out = []
    safe = re.sub(r"[^\w.-]+", "_", record["key"]).strip("_") or "clip"
    labels = record.get("labels") or {}
    for name in record.get("answers") or {}:
        task = get_task(name)
        needed = {f.name: labels.get(f.name) for f in task.label_fields}
        if any(v is None for v in needed.values()):
            continue  # a withheld (uncertain) label: no example for this task
        if task.name == "sttc" and record.get("reply") is None and record.get("transcript"):
            continue  # speech without a reply: nothing to learn from
        if task.name == "srwt" and record.get("words") is None:
            continue
        fields = {
            "key": f"{safe}-{task.name}",
            "audio": _audio_file(record),
            "task": task.name,
            "text": record.get("transcript") if task.has_transcript else None,
            "labels": needed,
            "words": record.get("words") if task.name == "srwt" else None,
            "answer": record.get("reply") if task.name == "sttc" else None,
            "start": record.get("start"),
            "end": record.get("end"),
            "extra": {"labelled_by": record.get("model", {}).get("id", "")},
        }
        out.append(utterance_from_dict(fields, f"record {record['key']!r}"))
    return out


def write_label_shards(
    records: Iterable[Mapping[str, Any]], out_dir: str | os.PathLike, shard_size: int = 1000
) -> list[Path]:
    """OSUM tar shards (and ``shards.list``) of every labelled record's per-task examples -> the tar paths."""
    utterances = (u for record in _labelled(records) for u in record_utterances(record))
    return write_shards(utterances, out_dir, shard_size, on_error="skip", require_target=True)


def lhotse_cut(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as a Lhotse ``MonoCut`` dict (see the module docstring)."""
    import soundfile as sf

    audio = _audio_file(record)
    info = sf.info(os.fsencode(audio))
    start = float(record.get("start") or 0.0)
    duration = float(record["duration"])
    ident = record["key"]
    labels = dict(record.get("labels") or {})
    custom: dict[str, Any] = {k: v for k, v in labels.items() if k != "gender" and v is not None}
    if record.get("label_probs"):
        custom["label_probs"] = record["label_probs"]
    if record.get("reply") is not None:
        custom["reply"] = record["reply"]
    custom["labelled_by"] = record.get("model", {}).get("id", "")
    supervision: dict[str, Any] = {
        "id": ident,
        "recording_id": ident,
        "start": 0.0,
        "duration": duration,
        "channel": 0,
        "text": record.get("transcript") or "",
        "custom": custom,
    }
    if labels.get("gender"):
        supervision["gender"] = labels["gender"]
    if record.get("words"):
        supervision["alignment"] = {
            "word": [
                [w["word"], round(start + w["start"], 4), round(w["end"] - w["start"], 4), 1.0]
                for w in record["words"]
            ]
        }
    return {
        "id": ident,
        "start": start,
        "duration": duration,
        "channel": 0,
        "supervisions": [supervision],
        "recording": {
            "id": ident,
            "sources": [{"type": "file", "channels": [0], "source": os.path.abspath(audio)}],
            "sampling_rate": info.samplerate,
            "num_samples": info.frames,
            "duration": info.frames / info.samplerate,
            "channel_ids": [0],
        },
        "type": "MonoCut",
    }


def write_lhotse_cuts(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> int:
    """A Lhotse CutSet JSONL (gzipped when ``path`` ends in ``.gz``) of every labelled record -> cuts written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    opener = gzip.open if path.name.endswith(".gz") else open
    n = 0
    with opener(tmp, "wt", encoding="utf-8") as f:
        for record in _labelled(records):
            f.write(json.dumps(lhotse_cut(record), ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n
