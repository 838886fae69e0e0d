"""``osum label``'s records: one JSON object per recording, in an append-only file that survives a kill.

A record holds what every asked task said about one clip, merged: the transcript (with its segments and word
times), every label with its probabilities, each task's raw answer, the model that wrote it and the clip's length;
or the clip's ``error``. The file is written a batch at a time (flushed and synced), so a kill at any moment leaves
complete lines and at most one torn last line, which :class:`RecordFile` cuts off before it appends again.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osum.data.manifest import Utterance
from osum.errors import OsumError
from osum.tasks import TaskResult
from osum.vocabulary import LABEL_FIELDS


def _place(u: Utterance) -> dict[str, Any]:
    out: dict[str, Any] = {"key": u.key, "audio": u.audio}
    if u.start is not None:
        out["start"] = u.start
    if u.end is not None:
        out["end"] = u.end
    return out


def model_info(model: Any) -> dict[str, str]:
    """What a record says about the :class:`osum.Osum` that wrote it: its source, name and the osum version."""
    from osum import __version__

    return {"id": model.source, "name": model.config.name, "osum": __version__}


def error_record(u: Utterance, message: str, model: Mapping[str, str]) -> dict[str, Any]:
    """The record of a clip that could not be labelled (unreadable, too long, ...)."""
    return {**_place(u), "model": dict(model), "error": message}


def label_record(
    u: Utterance, seconds: float, results: Mapping[str, TaskResult], model: Mapping[str, str]
) -> dict[str, Any]:
    """Merge one clip's answers (``{task: TaskResult}``) into its record.

    ``transcript``/``segments``: the ASR answer's (else the first task's that has one); ``words``: SRWT's;
    ``labels``/``label_probs``: each field from the task that answers it; ``reply``: STTC's answer; ``answers``:
    every task's raw text; ``no_speech_prob``: the voice activity detector's."""
    ordered = sorted(results.values(), key=lambda r: r.task != "asr")  # the ASR answer first, if asked
    spoken = next((r for r in ordered if r.transcript is not None), None)
    record: dict[str, Any] = {**_place(u), "duration": round(seconds, 3), "model": dict(model)}
    record["transcript"] = spoken.transcript if spoken is not None else None
    if spoken is not None and spoken.segments is not None:
        record["segments"] = [s.to_dict() for s in spoken.segments]
    timed = next((r for r in ordered if r.words is not None), None)
    record["words"] = (
        [w.to_dict() for w in timed.words] if timed is not None and timed.words is not None else None
    )
    labels: dict[str, str | None] = {}
    probs: dict[str, dict[str, float]] = {}
    for r in ordered:
        for name, value in r.labels.items():
            labels.setdefault(name, value)
        for name, p in (r.label_probs or {}).items():
            probs.setdefault(name, {v: round(x, 4) for v, x in p.items()})
    record["labels"] = {n: labels[n] for n in LABEL_FIELDS if n in labels}
    if probs:
        record["label_probs"] = {n: probs[n] for n in LABEL_FIELDS if n in probs}
    reply = next((r.answer for r in ordered if r.answer is not None), None)
    if reply is not None:
        record["reply"] = reply
    record["answers"] = {r.task: r.raw for r in results.values()}
    no_speech = next((r.no_speech_prob for r in ordered if r.no_speech_prob is not None), None)
    if no_speech is not None:
        record["no_speech_prob"] = round(no_speech, 4)
    return record


class RecordFile:
    """An append-only JSON-lines file of records, keyed by ``key``.

    ``resume``: keep the records already there (a torn last line is cut off) and know their keys (:attr:`done`);
    otherwise start empty. Each :meth:`write` is flushed and synced before it returns."""

    def __init__(self, path: str | os.PathLike, resume: bool) -> None:
        self.path = Path(path)
        self.done: set[str] = read_keys(self.path) if resume else set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            cut_torn_line(self.path)
        self._file = self.path.open("a" if resume else "w", encoding="utf-8")

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        records = list(records)  # read twice below: the lines, then the keys
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
        if not lines:
            return
        self._file.write("".join(lines))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.update(r["key"] for r in records)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cut_torn_line(path: str | os.PathLike) -> None:
    """Cut a JSON-lines file back to its last complete line (a kill mid-write leaves a torn one); its writer calls
    this before it appends again. A missing file is left missing."""
    path = Path(path)
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete record of a records file, in order (a torn last line, left by a kill mid-write, is not a
    record; the file is not changed: only its writer cuts it, :func:`cut_torn_line`)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]  # the last line is complete only with its newline
    records = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                raise ValueError("no 'key'")
        except ValueError as exc:
            raise OsumError(f"{path}:{number}: not an osum label record ({exc})") from None
        records.append(record)
    return records


def read_keys(path: str | os.PathLike) -> set[str]:
    """The keys of the complete records in ``path`` (see :func:`read_records`)."""
    return {r["key"] for r in read_records(path)}


@dataclass
class Summary:
    """What a run did: counts, audio, time and every label value's count."""

    recordings: int = 0
    errors: int = 0
    resumed: int = 0  # already in the output file: skipped
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    no_speech: int = 0  # labelled clips with an empty transcript
    labels: dict[str, Counter] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        if "error" in record:
            self.errors += 1
            return
        self.recordings += 1
        self.audio_seconds += float(record.get("duration") or 0.0)
        if record.get("transcript") == "":
            self.no_speech += 1
        for name, value in (record.get("labels") or {}).items():
            self.labels.setdefault(name, Counter())[value if value is not None else "(none)"] += 1

    @property
    def recordings_per_second(self) -> float | None:
        return self.recordings / self.wall_seconds if self.wall_seconds else None

    @property
    def audio_hours_per_hour(self) -> float | None:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds else None

    def to_dict(self) -> dict[str, Any]:
        rate, speed = self.recordings_per_second, self.audio_hours_per_hour
        return {
            "recordings": self.recordings,
            "errors": self.errors,
            "resumed": self.resumed,
            "audio_hours": round(self.audio_seconds / 3600, 4),
            "wall_seconds": round(self.wall_seconds, 1),
            "recordings_per_second": round(rate, 3) if rate is not None else None,
            "audio_hours_per_hour": round(speed, 2) if speed is not None else None,
            "no_speech": self.no_speech,
            "labels": {n: dict(c.most_common()) for n, c in self.labels.items()},
        }

    def merge(self, other: Summary) -> None:
        """Add another process's counts (torchrun); wall time is the longest."""
        self.recordings += other.recordings
        self.errors += other.errors
        self.resumed += other.resumed
        self.audio_seconds += other.audio_seconds
        self.wall_seconds = max(self.wall_seconds, other.wall_seconds)
        self.no_speech += other.no_speech
        for name, counts in other.labels.items():
            self.labels.setdefault(name, Counter()).update(counts)
