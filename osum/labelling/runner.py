"""Label a corpus: every clip answered for every asked task, one merged record per clip, resumable.

The loop reads clips lazily (:func:`osum.labelling.inputs.iter_inputs`), skips those already recorded, decodes a
chunk of clips at once through the engine (one encoder pass per clip, whatever the tasks; batches sorted by
length) and appends the chunk's records before it reads the next. A clip that cannot be read or is too long
becomes an error record; nothing stops the run but a broken model or output file.

Several processes (``torchrun --nproc_per_node N osum label ...``): process ``r`` of ``N`` takes clips
``r, r + N, ...`` and writes its own part file (``OUT.part-r-of-N``) with the clips' input positions; when all are
done, process 0 appends the parts to ``OUT`` in input order and removes them. A killed multi-process run resumes
from ``OUT`` and the parts, with any process count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from osum.data.manifest import Utterance, load_utterance_audio
from osum.errors import AudioError, OsumError
from osum.inference.decoding import DecodingOptions
from osum.labelling.records import RecordFile, Summary, error_record, label_record, read_records

PART_INFIX = ".part-"


def label_clips(
    model: Any,
    clips: Iterable[Utterance],
    tasks: Sequence[str],
    options: DecodingOptions,
    sink: RecordFile,
    *,
    model_info: Mapping[str, str],
    max_seconds: float | None,
    limit: int | None = None,
    chunk: int = 32,
    take: Callable[[int], bool] | None = None,
    on_chunk: Callable[[Summary, int], None] | None = None,
) -> Summary:
    """Answer ``tasks`` for every clip not in ``sink.done`` and append one record per clip -> the run's summary.

    ``model``: an :class:`osum.Osum`. ``limit``: stop after this many clips of the input (recorded ones count);
    ``chunk``: clips decoded together; ``take(index)``: which input positions this process labels (torchrun);
    records then carry ``index``, their input position (:func:`merge_parts` orders by it).
    ``on_chunk(summary, clips_seen)``: progress."""
    summary = Summary()
    start = time.monotonic()
    todo = PendingClips(clips, sink.done, limit, take)
    pending: list[tuple[int, Utterance]] = []

    def flush() -> None:
        records = _label_chunk(model, pending, tasks, options, model_info, max_seconds)
        if take is None:
            for r in records:
                r.pop("index", None)
        sink.write(records)
        for r in records:
            summary.add(r)
        pending.clear()
        summary.resumed = todo.resumed
        summary.wall_seconds = time.monotonic() - start
        if on_chunk is not None:
            on_chunk(summary, todo.seen)

    for item in todo:
        pending.append(item)
        if len(pending) >= chunk:
            flush()
    if pending:
        flush()
    summary.resumed = todo.resumed
    summary.wall_seconds = time.monotonic() - start
    return summary


class PendingClips:
    """The clips of an input still to label, with their input positions: the first ``limit``, those ``take``
    accepts (torchrun), each key once, none in ``done``. While iterating, ``seen`` counts the input clips read and
    ``resumed`` those skipped as already recorded."""

    def __init__(
        self,
        clips: Iterable[Utterance],
        done: set[str],
        limit: int | None = None,
        take: Callable[[int], bool] | None = None,
    ) -> None:
        self.clips, self.done, self.limit, self.take = clips, done, limit, take
        self.seen = self.resumed = 0

    def __iter__(self) -> Iterator[tuple[int, Utterance]]:
        emitted: set[str] = set()
        for index, u in enumerate(self.clips):
            if self.limit is not None and index >= self.limit:
                break
            self.seen = index + 1
            if self.take is not None and not self.take(index):
                continue
            if u.key in self.done or u.key in emitted:
                self.resumed += u.key in self.done
                continue
            emitted.add(u.key)
            yield index, u


def read_clip(u: Utterance, max_seconds: float | None) -> torch.Tensor | str:
    """The clip's samples (:func:`osum.data.manifest.load_utterance_audio`), or why it cannot be read."""
    try:
        return load_utterance_audio(u, max_seconds=max_seconds)
    except (AudioError, OSError) as exc:
        return str(exc) or type(exc).__name__


def answer_clips(
    model: Any,
    clips: Sequence[tuple[Utterance, torch.Tensor | str]],
    tasks: Sequence[str],
    options: DecodingOptions,
    model_info: Mapping[str, str],
) -> list[dict[str, Any]]:
    """One record per (clip, its 16 kHz samples or its read error), in order: the readable clips answered in one
    engine call, the rest error records."""
    records: list[dict[str, Any] | None] = [None] * len(clips)
    readable = [(i, wave) for i, (_, wave) in enumerate(clips) if isinstance(wave, torch.Tensor)]
    for i, (u, wave) in enumerate(clips):
        if isinstance(wave, str):
            records[i] = error_record(u, wave, model_info)
    if readable:
        waves = [wave for _, wave in readable]
        answers = model.run(waves, tasks=list(tasks), options=options, sample_rate=16000, max_seconds=None)
        for (i, wave), per_task in zip(readable, answers, strict=True):
            records[i] = label_record(clips[i][0], wave.shape[0] / 16000, per_task, model_info)
    return [r for r in records if r is not None]


def _label_chunk(
    model: Any,
    items: list[tuple[int, Utterance]],
    tasks: Sequence[str],
    options: DecodingOptions,
    model_info: Mapping[str, str],
    max_seconds: float | None,
) -> list[dict[str, Any]]:
    """One record per item, in order, each with ``index``, its input position."""
    loaded = [(u, read_clip(u, max_seconds)) for _, u in items]
    records = answer_clips(model, loaded, tasks, options, model_info)
    return [{**r, "index": index} for (index, _), r in zip(items, records, strict=True)]


# ---- several processes (torchrun) -----------------------------------------------------------------------


def part_path(out: str | os.PathLike, rank: int, world: int) -> Path:
    """Process ``rank`` of ``world``'s records file beside ``out``."""
    return Path(f"{out}{PART_INFIX}{rank}-of-{world}")


def part_files(out: str | os.PathLike) -> list[Path]:
    """Every part file left beside ``out`` (by any process count)."""
    out = Path(out)
    return sorted(out.parent.glob(out.name + PART_INFIX + "*"))


def recorded_keys(out: str | os.PathLike) -> set[str]:
    """Keys in ``out`` and in every part file beside it (what a resumed run skips)."""
    keys = {r["key"] for r in read_records(out)}
    for part in part_files(out):
        keys.update(r["key"] for r in read_records(part))
    return keys


def merge_parts(out: str | os.PathLike) -> int:
    """Append the records of every part file beside ``out`` to it, in input order (``index``), then remove the
    parts -> how many records were appended. A key already in ``out`` is not appended again."""
    out = Path(out)
    parts = part_files(out)
    if not parts:
        return 0
    have = {r["key"] for r in read_records(out)}
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for r in read_records(part):
            if r["key"] not in have:
                merged.setdefault(r["key"], r)
    ordered = sorted(merged.values(), key=lambda r: r.get("index", 0))
    for r in ordered:
        r.pop("index", None)
    with RecordFile(out, resume=True) as sink:
        sink.write(ordered)
    for part in parts:
        part.unlink()
    return len(ordered)


def rank_and_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) for a single process."""
    try:
        return (
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )
    except ValueError as exc:
        raise OsumError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({exc})") from None


def every(rank: int, world: int) -> Callable[[int], bool]:
    """The input positions process ``rank`` of ``world`` labels."""
    return lambda index: index % world == rank
