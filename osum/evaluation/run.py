"""``evaluate()``: decode a test manifest with a model (or read a decode file) and score it, resumably.

The output folder (schema in the README, "Evaluation")::

    DIR/eval.json          the settings of the run (model, manifest, tasks, decoding); a resumed run must match
    DIR/hyps.jsonl         one line per (utterance, task): raw and parsed output, the reference, or an error
    DIR/alignments.jsonl   per-utterance WER/CER alignments (S/D/I and the operations)
    DIR/metrics.json       every task's metrics
    DIR/report.md, DIR/plots/*.png

Which utterances are scored on which task: by default each utterance on its own manifest task; with ``tasks``,
every utterance on every listed task whose references it has (``--tasks asr`` scores ASR on every utterance with
a transcript, whatever its manifest task). Decoding is greedy unless the options say otherwise, so a rerun gives
the same file. ``hyps.jsonl`` is appended to and flushed after every chunk: an interrupted run continues where it
stopped and decodes only what is missing (a line cut by a crash is dropped and decoded again).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osum.data.manifest import Utterance, load_utterance_audio
from osum.data.reader import read_any
from osum.errors import OsumError
from osum.evaluation.score import missing_references, score_records
from osum.inference.decoding import DecodingOptions
from osum.inference.long_audio import MAX_AUDIO_SECONDS
from osum.tasks import Task, get_task

if TYPE_CHECKING:
    from osum.api import Osum

SCHEMA = 1
OUTPUTS = ("eval.json", "hyps.jsonl", "alignments.jsonl", "metrics.json", "report.md", "plots")


@dataclass(frozen=True)
class EvalItem:
    utterance: Utterance
    task: Task

    @property
    def id(self) -> tuple[str, str]:
        return (self.utterance.key, self.task.name)


@dataclass
class Plan:
    items: list[EvalItem]
    # utterances scored on no task, by reason ("task ser: missing labels.emotion")
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalResult:
    out_dir: Path
    metrics: dict[str, Any]
    decoded: int  # (utterance, task) pairs decoded by this call
    reused: int  # pairs found in an earlier, interrupted run of the same settings
    skipped: dict[str, int]


def reference(u: Utterance) -> dict[str, Any]:
    """The reference fields of an utterance as stored in ``hyps.jsonl``."""
    return {
        "text": u.text,
        "labels": dict(u.labels),
        "words": None if u.words is None else [w.to_dict() for w in u.words],
        "answer": u.answer,
        "language": u.language,
    }


def plan(
    utterances: Iterable[Utterance], tasks: Sequence[Task] | None = None, limit: int | None = None
) -> Plan:
    """The (utterance, task) pairs to score, in manifest order; see the module docstring for the rule.

    ``limit`` keeps the first N utterances. Keys must be unique (OsumError naming the key).
    """
    items: list[EvalItem] = []
    skipped: dict[str, int] = {}
    seen: set[str] = set()
    for n, u in enumerate(utterances):
        if limit is not None and n >= limit:
            break
        if u.key in seen:
            raise OsumError(f"utterance key {u.key!r} occurs twice in the manifest; keys must be unique")
        seen.add(u.key)
        candidates = list(tasks) if tasks is not None else [get_task(u.task)]
        usable = 0
        reasons = []
        for task in candidates:
            missing = missing_references(task, reference(u))
            if missing:
                reasons.append(f"task {task.name}: no {', '.join(missing)}")
            else:
                items.append(EvalItem(u, task))
                usable += 1
        if not usable:
            for reason in reasons[:1] if tasks is None else ["no reference for any requested task"]:
                skipped[reason] = skipped.get(reason, 0) + 1
    return Plan(items, skipped)


# ---- hyps.jsonl ---------------------------------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    """The complete lines of ``hyps.jsonl``; a last line cut by a crash is removed from the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    records, good = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
        good += len(line)
    if good < len(data):
        with open(path, "r+b") as f:
            f.truncate(good)
    return records


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _record(item: EvalItem, raw: str | None, error: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"key": item.utterance.key, "task": item.task.name}
    if error is not None:
        record.update(raw=None, parsed=None, error=error)
    else:
        record.update(raw=raw, parsed=item.task.parse(raw or "").to_dict())
    record["ref"] = reference(item.utterance)
    return record


def decode_items(
    model: Osum,
    items: Sequence[EvalItem],
    options: DecodingOptions,
    hyps_path: Path,
    chunk_size: int = 64,
    progress: bool = False,
) -> int:
    """Decode ``items`` with ``model``, appending records to ``hyps_path`` chunk by chunk; returns the count.

    Items are decoded task by task (one prompt per batch). Audio that cannot be used becomes an ``error`` record.
    """
    by_task: dict[str, list[EvalItem]] = {}
    for it in items:
        by_task.setdefault(it.task.name, []).append(it)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="decoding", unit="utt")
    for name, group in by_task.items():
        for start in range(0, len(group), chunk_size):
            chunk = group[start : start + chunk_size]
            records: dict[int, dict[str, Any]] = {}
            waves, ok = [], []
            for k, it in enumerate(chunk):
                try:
                    waves.append(load_utterance_audio(it.utterance, max_seconds=MAX_AUDIO_SECONDS))
                    ok.append(k)
                except OsumError as exc:
                    records[k] = _record(it, None, error=str(exc))
            if waves:
                results = model.run(waves, tasks=[name], options=options, sample_rate=16000)
                for k, res in zip(ok, results, strict=True):
                    records[k] = _record(chunk[k], res[name].raw)
            _append(hyps_path, [records[k] for k in range(len(chunk))])
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return len(items)


def read_decode_file(path: str | os.PathLike) -> dict[str, str]:
    """OSUM's decode output (``llmasr_decode/text``): ``key<TAB>hypothesis`` lines (a key alone = empty answer).

    Raises OsumError naming ``file:line`` for a duplicate key; blank lines are ignored.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OsumError(f"cannot read decode file {p}: {exc}") from None
    hyps: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, _, hyp = line.partition("\t") if "\t" in line else line.strip().partition(" ")
        key = key.strip()
        if key in hyps:
            raise OsumError(f"{p}:{n}: key {key!r} occurs twice")
        hyps[key] = hyp.strip()
    return hyps


# ---- the run ------------------------------------------------------------------------------------------------


def _settings(**kwargs: Any) -> dict[str, Any]:
    return {"schema": SCHEMA, **kwargs}


def _prepare_dir(out: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Create ``out`` or check that it holds the same run; ``overwrite`` clears an earlier run's outputs."""
    out.mkdir(parents=True, exist_ok=True)
    header = out / "eval.json"
    if header.is_file() and not overwrite:
        try:
            old = json.loads(header.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise OsumError(f"{header} is unreadable ({exc}); use --overwrite to start again") from None
        diff = [k for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if diff:
            shown = "; ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in diff)
            raise OsumError(
                f"{out} holds an evaluation with other settings ({shown}); use another --out folder or --overwrite"
            )
        return
    for name in OUTPUTS:
        target = out / name
        if target.is_dir():
            for png in target.glob("*.png"):
                png.unlink()
        elif target.exists():
            target.unlink()
    header.write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _finite(data: Any) -> Any:
    """``data`` with NaN/inf floats as None: strict JSON, and "not computable" is visible as null."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


def _write_lines_atomic(path: Path, lines: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    tmp.replace(path)


def evaluate(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    model: Osum | None = None,
    tasks: Sequence[str] | None = None,
    options: DecodingOptions | None = None,
    decode_file: str | os.PathLike | None = None,
    judge: Callable[[list[tuple[str, str, str | None]]], dict[str, Any]] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> EvalResult:
    """Decode (``model``) or read (``decode_file``) hypotheses for ``manifest`` and write every output to ``out_dir``.

    Exactly one of ``model`` and ``decode_file`` is given. ``tasks``: task names, or None for each utterance's own
    task. ``judge``: optional STTC judge (see :mod:`osum.evaluation.judge`); it only scores, so a finished run can be
    judged later with the same command. Returns the metrics and how much was decoded now versus reused.
    """
    if (model is None) == (decode_file is None):
        raise OsumError("give either a model to decode with or a decode file to score, not both or neither")
    options = options or DecodingOptions()
    task_list = None if tasks is None else [get_task(t) for t in tasks]
    if decode_file is not None and task_list is not None and len(task_list) > 1:
        raise OsumError("a decode file holds one answer per key: score it for one task at a time")
    manifest = Path(manifest)
    # a missing audio file becomes that utterance's error record (decode_items), not a refusal of the manifest
    reader = read_any(manifest, require_target=False, check_audio=False)
    the_plan = plan(reader, task_list, limit)
    if not the_plan.items:
        raise OsumError(
            f"{manifest}: no utterance has references for the requested tasks"
            + (f" ({'; '.join(the_plan.skipped)})" if the_plan.skipped else "")
        )
    source = str(Path(decode_file).resolve()) if decode_file is not None else model.source
    settings = _settings(
        model=source if model is not None else None,
        decode_file=source if decode_file is not None else None,
        manifest=str(manifest.resolve()),
        tasks=None if task_list is None else [t.name for t in task_list],
        limit=limit,
        decoding=asdict(options) if model is not None else None,
        prompt_language=model.config.prompt_language if model is not None else None,
    )
    out = Path(out_dir)
    _prepare_dir(out, settings, overwrite)
    hyps_path = out / "hyps.jsonl"
    done = {(r["key"], r["task"]): r for r in read_records(hyps_path)}
    pending = [it for it in the_plan.items if it.id not in done]
    reused = len(the_plan.items) - len(pending)
    if model is not None:
        decode_items(model, pending, options, hyps_path, progress=progress)
    else:
        hyps = read_decode_file(decode_file)
        _append(
            hyps_path,
            [
                _record(it, hyps[it.utterance.key])
                if it.utterance.key in hyps
                else _record(it, None, error=f"key not in decode file {decode_file}")
                for it in pending
            ],
        )
    records = {(r["key"], r["task"]): r for r in read_records(hyps_path)}
    ordered = [records[it.id] for it in the_plan.items]  # manifest order, however the decoding was cut
    task_entries, alignments = score_records(ordered, judge)
    metrics = {
        **{k: v for k, v in settings.items() if k not in ("limit",)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "osum_version": _version(),
        "skipped": the_plan.skipped,
        "tasks": task_entries,
    }
    _write_lines_atomic(out / "alignments.jsonl", alignments)
    metrics = _finite(metrics)
    _write_json_atomic(out / "metrics.json", metrics)
    from osum.evaluation.report import write_report

    write_report(out, metrics)
    return EvalResult(out, metrics, len(pending), reused, the_plan.skipped)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("osum")
    except PackageNotFoundError:
        return "unknown"
