"""Score decoded records (``hyps.jsonl`` lines) task by task -> the ``metrics.json`` task entries and alignments.

A record is ``{"key", "task", "raw", "parsed": TaskResult.to_dict() | None, "ref": {...}, "error"?}``: everything
needed to score it travels with it, so a folder can be re-scored without the manifest or the model. A record
whose audio could not be used (``error``) is scored as an empty answer: it costs deletions and an invalid label,
never silently disappears.

The fixed pipeline (documented in the README, "Evaluation"):

- transcripts: English references and hypotheses go through :func:`normalize_english` and are scored by words
  (WER) and characters (CER); Chinese (``language`` ``zh``, or CJK text) through :func:`normalize_chinese`, by
  characters only. A task's headline is CER when most of its references are Chinese, else WER. The transcript part
  of every ASR+X answer is scored too (``wer``/``cer`` next to the task's own metrics).
- labels: each label field of the task (emotion, gender, ...) as a classification over the field's values.
- SRWT: word timing after aligning hypothesis words to reference words by text.
- STTC: exact match of the normalised answer; optionally a 1-10 judge score (:mod:`osum.evaluation.judge`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from osum.evaluation.metrics import (
    ErrorCounts,
    add_counts,
    align_tokens,
    answer_accuracy,
    chars,
    classification,
    word_timing,
)
from osum.evaluation.normalize import normalize_chinese, normalize_english
from osum.tasks import Task, Word, get_task

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def is_chinese(text: str, language: str | None) -> bool:
    """Score as Chinese: the record says so, or (no language given) the reference has CJK characters."""
    if language:
        return language.lower().startswith(("zh", "yue", "cmn"))
    return bool(_CJK.search(text))


def reference_text(ref: Mapping[str, Any]) -> str | None:
    """The reference transcript of a record: its ``text``, else its SRWT words joined."""
    if ref.get("text") is not None:
        return ref["text"]
    if ref.get("words"):
        return " ".join(w["word"] for w in ref["words"])
    return None


def _words(items: Sequence[Mapping[str, Any]] | None) -> tuple[Word, ...] | None:
    return None if items is None else tuple(Word(w["word"], w["start"], w["end"]) for w in items)


def _nan_to_none(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else x


def score_transcripts(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """WER (English records) and CER (all records) of the transcripts -> (task entry part, alignment lines).

    Records without a reference transcript are left out. The task entry part is ``{"primary_unit": "wer"|"cer",
    "asr": {"wer": counts, "cer": counts}}``; each alignment line is at the record's scoring unit.
    """
    word_counts: list[ErrorCounts] = []
    char_counts: list[ErrorCounts] = []
    lines: list[dict[str, Any]] = []
    n_zh = 0
    for r in records:
        ref = reference_text(r["ref"])
        if ref is None:
            continue
        parsed = r.get("parsed") or {}
        hyp = parsed.get("transcript") or ""
        zh = is_chinese(ref, r["ref"].get("language"))
        norm: Callable[[str], str] = normalize_chinese if zh else normalize_english
        ref_n, hyp_n = norm(ref), norm(hyp)
        char_al = align_tokens(chars(ref_n), chars(hyp_n))
        char_counts.append(char_al.counts)
        if zh:
            n_zh += 1
            unit, al = "char", char_al
        else:
            unit, al = "word", align_tokens(ref_n.split(), hyp_n.split())
            word_counts.append(al.counts)
        c = al.counts
        lines.append(
            {
                "key": r["key"],
                "task": r["task"],
                "unit": unit,
                "ref": ref_n,
                "hyp": hyp_n,
                "substitutions": c.substitutions,
                "deletions": c.deletions,
                "insertions": c.insertions,
                "hits": c.hits,
                "errors": c.substitutions + c.deletions + c.insertions,
                "ref_length": c.reference_length,
                "ops": [list(op) for op in al.ops],
            }
        )
    if not lines:
        return {}, []
    asr: dict[str, Any] = {"cer": add_counts(char_counts).to_dict()}
    if word_counts:
        asr["wer"] = add_counts(word_counts).to_dict()
    primary = "cer" if n_zh * 2 > len(lines) else "wer"
    return {"primary_unit": primary, "asr": asr}, lines


def score_task(
    task: Task,
    records: Sequence[Mapping[str, Any]],
    judge: Callable[[list[tuple[str, str, str | None]]], dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One task's ``metrics.json`` entry (schema in the README) and its alignment lines.

    ``judge`` (STTC only) takes ``[(question, reference answer, hypothesis answer)]`` and returns the summary
    stored under ``answers.judge`` (with ``mean_score``).
    """
    entry: dict[str, Any] = {"n": len(records), "failed": sum(1 for r in records if r.get("error"))}
    metrics: dict[str, float | None] = {}
    primary: str | None = None
    transcripts, lines = score_transcripts(records) if task.has_transcript else ({}, [])
    if transcripts:
        entry["asr"] = transcripts["asr"]
        for unit, counts in transcripts["asr"].items():
            metrics[unit] = _nan_to_none(counts["rate"])
        silent = [line for line in lines if not line["ref"]]
        if silent:  # clips without speech (an empty reference): the answer should be empty too
            empty = sum(1 for line in silent if not line["hyp"])
            entry["no_speech"] = {"clips": len(silent), "empty_answers": empty}
            metrics["no_speech_empty"] = empty / len(silent)
    if task.label_fields:
        entry["labels"] = {}
        for f in task.label_fields:
            refs = [f.canonical(r["ref"]["labels"][f.name]) for r in records]
            hyps = [((r.get("parsed") or {}).get("labels") or {}).get(f.name) for r in records]
            report = classification(refs, hyps, f.values)
            entry["labels"][f.name] = report.to_dict()
            metrics[f"{f.name}_accuracy"] = report.accuracy
            metrics[f"{f.name}_macro_f1"] = report.macro_f1
            metrics[f"{f.name}_invalid"] = report.invalid_share
        primary = f"{task.label_fields[0].name}_accuracy"
    if task.name == "srwt":
        timing = word_timing(
            [_words(r["ref"]["words"]) or () for r in records],
            [_words((r.get("parsed") or {}).get("words")) for r in records],
            normalize=lambda w: normalize_english(w) or w.lower(),
        )
        entry["timing"] = {k: _nan_to_none(v) for k, v in timing.to_dict().items()}
        metrics["aas_ms"] = _nan_to_none(timing.aas * 1000)
        metrics["within_50ms"] = _nan_to_none(timing.within_50ms)
        metrics["within_100ms"] = _nan_to_none(timing.within_100ms)
        metrics["within_200ms"] = _nan_to_none(timing.within_200ms)
        primary = "aas_ms"
    if task.name == "sttc":
        refs = [r["ref"]["answer"] for r in records]
        hyps = [(r.get("parsed") or {}).get("answer") for r in records]
        accuracy = answer_accuracy(refs, hyps, normalize=normalize_english)
        entry["answers"] = {"accuracy": accuracy, "n": len(records), "judge": None}
        metrics["answer_accuracy"] = accuracy
        primary = "answer_accuracy"
        if judge is not None:
            questions = [reference_text(r["ref"]) or "" for r in records]
            summary = judge(list(zip(questions, refs, hyps, strict=True)))
            entry["answers"]["judge"] = summary
            metrics["judge_score"] = summary.get("mean_score")
    if primary is None:
        primary = transcripts.get("primary_unit", "wer")
        if (
            not math.isfinite(metrics.get(primary) or math.inf) and "no_speech_empty" in metrics
        ):  # no speech at all
            primary = "no_speech_empty"
    entry["primary"] = primary
    entry["metrics"] = metrics
    return entry, lines


def needs(task: Task) -> tuple[str, ...]:
    """The reference fields a record must have to be scored on ``task`` (``text``, ``words``, ``answer``,
    ``labels.<field>``)."""
    out: list[str] = []
    if task.name == "srwt":
        out.append("words")
    elif task.has_transcript:
        out.append("text")
    if task.name == "sttc":
        out.append("answer")
    out += [f"labels.{f.name}" for f in task.label_fields]
    return tuple(out)


def missing_references(task: Task, ref: Mapping[str, Any]) -> list[str]:
    """Which of :func:`needs` ``ref`` lacks (a label outside the field's values counts as missing)."""
    missing = []
    for need in needs(task):
        if need.startswith("labels."):
            name = need.split(".", 1)[1]
            field = next(f for f in task.label_fields if f.name == name)
            if field.canonical((ref.get("labels") or {}).get(name)) is None:
                missing.append(need)
        elif not ref.get(need) and not (need == "text" and ref.get(need) == ""):
            missing.append(need)
    return missing


def score_records(
    records: Sequence[Mapping[str, Any]],
    judge: Callable[[list[tuple[str, str, str | None]]], dict[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Every task's entry (tasks in order of first appearance) and all alignment lines."""
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)
    tasks: dict[str, dict[str, Any]] = {}
    alignments: list[dict[str, Any]] = []
    for name, group in by_task.items():
        entry, lines = score_task(get_task(name), group, judge if name == "sttc" else None)
        tasks[name] = entry
        alignments += lines
    return tasks, alignments
