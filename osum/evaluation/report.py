"""Human-readable views of an ``osum eval`` folder: ``report.md`` with tables, PNG plots, and a comparison table.

- :func:`write_report` turns ``DIR/metrics.json`` (+ ``DIR/alignments.jsonl``) into ``DIR/report.md`` and
  ``DIR/plots/*.png``: a header, a summary table, one section per task, and the hardest utterances.
- :func:`plot_confusion` and :func:`plot_summary` draw with ``Figure`` + ``FigureCanvasAgg`` (no pyplot global
  state); PNGs carry no timestamp or version: the same input and matplotlib give the same bytes.
- :func:`compare_table` is ``osum eval --compare DIR1 DIR2 ...``: one markdown table, best value per row in bold.

metrics.json schema 1: rates are fractions shown as percent with 2 decimals, ``*_ms`` with 1 decimal, ``*_score``
(1-10 judge) with 2. Lower is better for ``wer``, ``cer``, ``*_ms`` and ``*_invalid``; higher for the rest.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from osum.errors import OsumError

SCHEMA = 1
DASH = "–"  # shown where a value is absent or not computable
HARDEST = 10
_HINT = "run `osum eval --out DIR` first"
# Fonts with Chinese glyphs (SSR labels are Chinese), used as per-glyph fallback when installed.
# fmt: off
_CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "Droid Sans Fallback", "SimHei", "Microsoft YaHei", "PingFang SC", "AR PL UMing CN",
)
# fmt: on
_NORMALISER_NOTE = (
    "WER/CER after text normalisation (`osum.evaluation.normalize`): English is lower-cased, bracketed asides, "
    "fillers and punctuation are removed, spelled-out numbers become digits and British spellings American; "
    "Chinese loses spaces and punctuation and is scored by characters. Labels are compared after mapping "
    "aliases to the task's label set; an output with no valid label counts as wrong (column *invalid*)."
)


# ----------------------------------------------------------------------------------------------- formatting


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (error rates, timing errors, invalid-label shares)."""
    return metric in ("wer", "cer") or metric.endswith(("_ms", "_invalid", "_wer", "_cer"))


def _unit(metric: str) -> str:
    return "ms" if metric.endswith("_ms") else "" if metric.endswith("_score") else "%"


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when absent, NaN or not a number."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    return float(value) if ok else None


def format_value(metric: str, value: Any) -> str:
    """``value`` of ``metric`` as shown in tables: percent (2 decimals), ms (1 decimal), score (2 decimals)."""
    v, unit = _number(value), _unit(metric)
    if v is None:
        return DASH
    return f"{100 * v:.2f}" if unit == "%" else f"{v:.1f}" if unit == "ms" else f"{v:.2f}"


def metric_label(metric: str) -> str:
    """``wer (%) ↓``: the metric's name, unit, and ↓ when lower is better."""
    unit = _unit(metric)
    shown = f"{metric} ({unit})" if unit and unit not in metric else metric
    return f"{shown} ↓" if lower_is_better(metric) else shown


def _pct(value: Any) -> str:
    return format_value("share", value)


def _ms(seconds: Any) -> str:
    v = _number(seconds)
    return DASH if v is None else f"{1000 * v:.1f}"


def _cell(value: Any) -> str:
    """Text safe inside a markdown table cell: one line, pipes, asterisks, backticks and angle brackets escaped
    (underscores stay: keys and metric names have them inside words, where they do not make emphasis)."""
    if value is None:
        return DASH
    text = " ".join(str(value).split())
    return re.sub(r"([\\|*`<>])", r"\\\1", text)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "l") -> list[str]:
    """A markdown table; ``align`` gives the first columns' alignment ("l"/"r"), the rest (numbers) are "r"."""
    marks = [":--" if a == "l" else "--:" for a in align.ljust(len(header), "r")]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "x"


# -------------------------------------------------------------------------------------------------- reading


def _check_metrics(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), Mapping):
        raise OsumError(f"{where} is not an osum eval folder (no 'tasks' mapping in metrics.json): {_HINT}")
    if data.get("schema", SCHEMA) != SCHEMA:
        raise OsumError(f"{where}: metrics.json schema {data['schema']!r} is not supported (reads {SCHEMA})")
    for name, entry in data["tasks"].items():
        if not isinstance(entry, Mapping):
            raise OsumError(f"{where}: metrics.json tasks.{name} is not a mapping")
    return dict(data)


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """``folder/metrics.json`` (or ``folder`` itself if it is the file), checked to be an osum eval result."""
    folder = Path(folder)
    path = folder if folder.is_file() else folder / "metrics.json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc.strerror}"
        raise OsumError(f"{folder} is not an osum eval folder ({path} {reason}): {_HINT}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OsumError(
            f"{folder} is not an osum eval folder ({path} is not valid JSON: {exc.msg}, line {exc.lineno}): {_HINT}"
        ) from None
    return _check_metrics(data, str(path))


def _alignments(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of ``alignments.jsonl`` with integer ``errors`` and ``ref_length`` (computed when absent)."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                s, d, i, h = (
                    int(rec.get(k, 0)) for k in ("substitutions", "deletions", "insertions", "hits")
                )
                rec["errors"] = int(rec.get("errors", s + d + i))
                rec["ref_length"] = int(rec.get("ref_length", s + d + h))
            except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as exc:
                raise OsumError(f"{path}:{lineno}: not an alignment line ({exc})") from None
            yield rec


def hardest(path: Path, k: int = HARDEST) -> list[dict[str, Any]]:
    """The ``k`` alignments with most errors (ties: higher error rate, then task and key), only those with errors."""

    def order(rec: dict[str, Any]) -> tuple[float, float, str, str]:
        n = rec["ref_length"]
        rate = rec["errors"] / n if n else math.inf
        return (-rec["errors"], -rate, str(rec.get("task", "")), str(rec.get("key", "")))

    return heapq.nsmallest(k, (r for r in _alignments(path) if r["errors"] > 0), key=order)


# ------------------------------------------------------------------------------------------------ report.md


def _header(metrics: Mapping[str, Any]) -> list[str]:
    decoding = metrics.get("decoding")
    if isinstance(decoding, Mapping):
        decoding = ", ".join(f"{k}={v}" for k, v in decoding.items())
    rows = [("model", metrics.get("model"))]
    rows += [("decode file", metrics["decode_file"])] if metrics.get("decode_file") else []
    rows += [
        ("manifest", metrics.get("manifest")),
        ("date", metrics.get("created")),
        ("osum version", metrics.get("osum_version")),
        ("decoding", decoding or None),
        ("prompt language", metrics.get("prompt_language")),
    ]
    judge = metrics.get("judge")
    if isinstance(judge, Mapping):
        rows.append(("judge", f"{judge.get('model')} at {judge.get('url')}"))
    skipped = metrics.get("skipped")
    if isinstance(skipped, Mapping) and skipped:
        rows.append(("skipped", "; ".join(f"{n} × {reason}" for reason, n in skipped.items())))
    rows = [(k, _cell(v)) for k, v in rows]
    rows.append(
        ("normalisation", _cell(metrics["normalizer"]) if metrics.get("normalizer") else _NORMALISER_NOTE)
    )
    return ["# osum evaluation report", ""] + _table(["field", "value"], rows, align="ll")


def _summary(tasks: Mapping[str, Mapping[str, Any]], summary_png: str | None) -> list[str]:
    rows = []
    for name, entry in tasks.items():
        primary = entry.get("primary")
        label = _cell(metric_label(str(primary))) if primary else DASH
        value = format_value(str(primary), (entry.get("metrics") or {}).get(primary)) if primary else DASH
        rows.append((_cell(name), entry.get("n", DASH), label, value))
    lines = ["## Summary", ""] + _table(["task", "n", "primary metric", "value"], rows, align="lrl")
    if summary_png:
        lines += [f"![primary metric per task]({summary_png})", ""]
    return lines


def _asr_section(asr: Mapping[str, Any]) -> list[str]:
    rows = []
    for unit in ("wer", "cer"):
        c = asr.get(unit)
        if isinstance(c, Mapping):
            counts = [c.get(k, DASH) for k in ("substitutions", "deletions", "insertions", "hits")]
            rows.append(
                (unit.upper(), format_value(unit, c.get("rate")), *counts, c.get("reference_length", DASH))
            )
    if not rows:
        return []
    header = ["measure", "rate (%)", "S", "D", "I", "hits", "N"]
    return ["### WER / CER", ""] + _table(header, rows)


def _label_section(task: str, field: str, rep: Mapping[str, Any], plot: str | None) -> list[str]:
    labels = [str(x) for x in rep.get("labels", ())]
    confusion = rep.get("confusion") or []
    support = [sum(row) for row in confusion] if len(confusion) == len(labels) else [DASH] * len(labels)
    precision, recall = rep.get("precision") or {}, rep.get("recall") or {}
    overall = f"accuracy {_pct(rep.get('accuracy'))} %, macro-F1 {_pct(rep.get('macro_f1'))} %, "
    overall += f"invalid {_pct(rep.get('invalid_share'))} %, n = {rep.get('n', DASH)}"
    lines = [f"### Label: {_cell(field)}", "", overall, ""]
    rows = []
    for k, lab in enumerate(labels):
        p, r = _number(precision.get(lab)), _number(recall.get(lab))
        f1 = None if p is None or r is None else (2 * p * r / (p + r) if p + r else 0.0)
        rows.append((k + 1, _cell(lab), _pct(p), _pct(r), _pct(f1), support[k]))
    header = ["#", "class", "precision (%)", "recall (%)", "F1 (%)", "support"]
    lines += _table(header, rows, align="ll")
    if len(confusion) == len(labels) and labels:
        lines += ["Confusion matrix (rows: reference, columns: hypothesis):", ""]
        header = ["reference ↓ / hypothesis →", *(_cell(x) for x in labels), "*invalid*"]
        lines += _table(header, [(_cell(lab), *row) for lab, row in zip(labels, confusion, strict=True)])
    if plot:
        lines += [f"![{_cell(task)} {_cell(field)} confusion matrix]({plot})", ""]
    return lines


def _timing_section(timing: Mapping[str, Any]) -> list[str]:
    rows = [
        ("matched words", timing.get("matched", DASH)),
        ("reference words", timing.get("reference_words", DASH)),
        ("hypothesis words", timing.get("hypothesis_words", DASH)),
        ("mean start error (ms)", _ms(timing.get("mean_start_error"))),
        ("mean end error (ms)", _ms(timing.get("mean_end_error"))),
        ("AAS (ms) ↓", _ms(timing.get("aas"))),
        ("boundaries within 50 ms (%)", _pct(timing.get("within_50ms"))),
        ("boundaries within 100 ms (%)", _pct(timing.get("within_100ms"))),
        ("boundaries within 200 ms (%)", _pct(timing.get("within_200ms"))),
    ]
    return ["### Word timing", ""] + _table(["measure", "value"], rows)


def _answers_section(answers: Mapping[str, Any]) -> list[str]:
    rows: list[tuple[str, Any]] = [
        ("answer accuracy (%)", _pct(answers.get("accuracy"))),
        ("answers", answers.get("n", DASH)),
    ]
    judge = answers.get("judge")
    if isinstance(judge, Mapping):
        score = _number(judge.get("mean_score"))
        rows += [
            ("judge", _cell(f"{judge.get('model')} at {judge.get('url')}")),
            ("judge mean score (1-10)", DASH if score is None else f"{score:.2f}"),
            ("judged / failed", f"{judge.get('scored', DASH)} / {judge.get('failed', DASH)}"),
        ]
    return ["### Answers", ""] + _table(["measure", "value"], rows)


def _task_section(name: str, entry: Mapping[str, Any], plots: Path, written: list[Path]) -> list[str]:
    primary = entry.get("primary")
    failed = entry.get("failed")
    n = f"n = {entry.get('n', DASH)}" + (f" ({failed} unusable)" if failed else "")
    lines = [f"## {_cell(name)}", "", n, ""]
    metrics = entry.get("metrics") or {}
    rows = [
        (_cell(metric_label(m)) + (" *(primary)*" if m == primary else ""), format_value(m, v))
        for m, v in metrics.items()
    ]
    lines += _table(["metric", "value"], rows)
    if isinstance(entry.get("asr"), Mapping):
        lines += _asr_section(entry["asr"])
    for field, rep in (entry.get("labels") or {}).items():
        if not isinstance(rep, Mapping):
            continue
        plot = None
        if rep.get("labels"):
            path = plots / f"{_file_part(name)}_{_file_part(field)}_confusion.png"
            written.append(plot_confusion(rep, f"{name} · {field}", path))
            plot = f"plots/{path.name}"
        lines += _label_section(name, field, rep, plot)
    if isinstance(entry.get("timing"), Mapping):
        lines += _timing_section(entry["timing"])
    if isinstance(entry.get("answers"), Mapping):
        lines += _answers_section(entry["answers"])
    return lines


def _hardest_section(path: Path) -> list[str]:
    lines = ["## Hardest utterances", ""]
    if not path.is_file():
        return lines + [f"No {path.name} in this folder.", ""]
    worst = hardest(path)
    if not worst:
        return lines + ["No transcription errors.", ""]
    lines += [f"The {HARDEST} utterances (at most) with most errors, in normalised text.", ""]
    rows = [
        (_cell(r.get("key")), _cell(r.get("task")), f"{r['errors']}/{r['ref_length']}", _cell(r.get("ref")),
         _cell(r.get("hyp")))
        for r in worst
    ]  # fmt: skip
    return lines + _table(["key", "task", "errors/N", "reference", "hypothesis"], rows, align="lllll")


def write_report(out_dir: str | Path, metrics: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``out_dir/report.md`` and ``out_dir/plots/*.png``; returns the written paths (report first).

    ``metrics`` defaults to ``out_dir/metrics.json``; ``out_dir/alignments.jsonl`` is used when present.
    """
    out_dir = Path(out_dir)
    data = (
        read_metrics(out_dir)
        if metrics is None
        else _check_metrics(metrics, "the metrics given to write_report")
    )
    tasks = data["tasks"]
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = out_dir / "plots"
    written = [plot_summary(data, plots / "summary.png")] if tasks else []
    lines = _header(data) + _summary(tasks, "plots/summary.png" if tasks else None)
    for name, entry in tasks.items():
        lines += _task_section(name, entry, plots, written)
    lines += _hardest_section(out_dir / "alignments.jsonl")
    report = out_dir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return [report, *written]


# ---------------------------------------------------------------------------------------------------- plots


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attaches itself to fig: Agg rendering without pyplot's global state
    # No "Software" (matplotlib version) text chunk: the same input gives the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    return path


def _fonts() -> tuple[list[str], set[int]]:
    """Font families to draw labels with (DejaVu Sans + installed CJK fallbacks) and the code points they cover."""
    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    families = ["DejaVu Sans", *(name for name in _CJK_FAMILIES if name in installed)]
    covered: set[int] = set()
    for name in families:
        path = installed.get(name) or font_manager.findfont(name)
        covered.update(FT2Font(path).get_charmap())
    return families, covered


def plot_confusion(report: Mapping[str, Any], title: str, path: Path) -> Path:
    """Confusion matrix of one label field (``ClassificationReport.to_dict()``): colours are shares of the
    reference row, cells show counts, the last column is *invalid*. Classes are numbered as in report.md when
    no installed font can draw their names."""
    labels = [str(x) for x in report.get("labels", ())]
    rows, k = report.get("confusion") or [], len(labels)
    if k == 0 or len(rows) != k or any(len(row) != k + 1 for row in rows):
        raise OsumError(f"{title}: the confusion matrix does not fit {k} labels + an 'invalid' column")
    counts = np.asarray(rows, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    families, covered = _fonts()
    numbered = not all(ord(c) in covered or c.isspace() for lab in labels for c in lab)
    names = [str(i + 1) for i in range(k)] if numbered else labels
    side = 2.0 + 0.6 * (k + 1)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    size = 10 if k <= 6 else 8 if k <= 12 else 6
    for i in range(k):
        for j in range(k + 1):
            colour = "white" if share[i, j] > 0.5 else "black" if counts[i, j] else "0.6"
            ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", color=colour, fontsize=size)
    ax.axvline(k - 0.5, color="0.25", linewidth=2)  # sets the invalid column apart
    ax.set_xticks(range(k + 1), labels=[*names, "invalid"], rotation=40, ha="right", rotation_mode="anchor",
                  fontfamily=families)  # fmt: skip
    ax.set_yticks(range(k), labels=names, fontfamily=families)
    ax.set_xlabel("hypothesis")
    ax.set_ylabel("reference")
    ax.set_title(title + ("\n(classes numbered as in report.md)" if numbered else ""), fontsize=11)
    fig.colorbar(image, ax=ax, label="share of the reference row")
    return _save(fig, path)


def plot_summary(metrics: Mapping[str, Any], path: Path) -> Path:
    """Bars of each task's primary metric, one panel per direction and unit (higher-is-better %, lower-is-better
    %, ms, score); lower-is-better panels are orange and hatched. Missing values are marked "n/a"."""
    tasks = metrics["tasks"] if isinstance(metrics.get("tasks"), Mapping) else metrics
    panels: dict[tuple[bool, str], list[tuple[str, float | None]]] = {}
    for name, entry in tasks.items():
        if primary := str(entry.get("primary") or ""):
            value = _number((entry.get("metrics") or {}).get(primary))
            scaled = None if value is None else value * (100.0 if _unit(primary) == "%" else 1.0)
            panels.setdefault((lower_is_better(primary), _unit(primary)), []).append(
                (f"{name}\n{primary}", scaled)
            )
    order = sorted(panels, key=lambda p: (p[0], {"%": 0, "ms": 1, "": 2}.get(p[1], 3), p[1]))
    widths = [max(len(panels[p]), 1.5) for p in order] or [1]
    fig = Figure(figsize=(max(4.0, 1.1 * sum(widths) + 1.2 * len(widths)), 4.2), layout="constrained")
    if not order:
        fig.text(0.5, 0.5, "no primary metrics", ha="center", va="center")
        return _save(fig, path)
    axes = fig.subplots(1, len(order), width_ratios=widths, squeeze=False)[0]
    for ax, key in zip(axes, order, strict=True):
        lower, unit = key
        bars = panels[key]
        heights = [0.0 if v is None else v for _, v in bars]
        colour, hatch = ("#dd8452", "//") if lower else ("#4c72b0", None)
        drawn = ax.bar(range(len(bars)), heights, color=colour, hatch=hatch, edgecolor="0.2", width=0.6)
        shown = ["n/a" if v is None else f"{v:.1f}" if unit == "ms" else f"{v:.2f}" for _, v in bars]
        ax.bar_label(drawn, labels=shown, padding=2, fontsize=8)
        top = max(heights) if heights else 0.0
        ax.set_ylim(0, max(100.0, top * 1.12) if unit == "%" and not lower else max(top * 1.18, 1.0))
        ax.set_xticks(range(len(bars)), labels=[b[0] for b in bars], fontsize=8)
        ax.set_xlim(-0.6, max(len(bars), 1.5) - 0.4)
        ax.set_ylabel({"%": "percent", "ms": "milliseconds"}.get(unit, "score"))
        ax.set_title(("lower" if lower else "higher") + " is better " + ("↓" if lower else "↑"))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle("primary metric per task")
    return _save(fig, path)


# -------------------------------------------------------------------------------------------------- compare


def _headers(dirs: Sequence[Path], names: Sequence[str] | None) -> list[str]:
    """Column names: the given names or folder names; equal folder names get their parent, then a number."""
    if names is None:
        paths = [d.resolve() for d in dirs]
        names = [p.name or str(p) for p in paths]
        names = [
            "/".join(p.parts[-2:]) if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)
        ]
    heads = [str(n) for n in names]
    heads = [f"{h} ({heads[: k + 1].count(h)})" if heads.count(h) > 1 else h for k, h in enumerate(heads)]
    return [_cell(h) for h in heads]


def compare_table(dirs: Sequence[str | Path], names: Sequence[str] | None = None) -> str:
    """One markdown table comparing eval folders: a row per (task, metric) found in any ``metrics.json``
    (every task's primary metric first, then the others), a column per folder, the best value per row in bold
    (ties at the shown precision all bold; nothing bold where all shown values are equal)."""
    if not dirs:
        raise OsumError("compare needs at least one eval folder")
    if names is not None and len(names) != len(dirs):
        raise OsumError(f"{len(names)} names for {len(dirs)} eval folders")
    paths = [Path(d) for d in dirs]
    runs = [read_metrics(p)["tasks"] for p in paths]
    task_order = list(
        dict.fromkeys(t for tasks in runs for t in tasks)
    )  # first folder's order, then new ones
    primary_rows: list[tuple[str, str]] = []
    other_rows: list[tuple[str, str]] = []
    for task in task_order:
        entries = [tasks.get(task) or {} for tasks in runs]
        primaries = dict.fromkeys(e["primary"] for e in entries if e.get("primary"))  # ordered set
        primary_rows += [(task, m) for m in primaries]
        others = dict.fromkeys(m for e in entries for m in (e.get("metrics") or {}) if m not in primaries)
        other_rows += [(task, m) for m in others]
    rows = []
    for task, metric in primary_rows + other_rows:
        cells = [
            format_value(metric, ((tasks.get(task) or {}).get("metrics") or {}).get(metric)) for tasks in runs
        ]
        shown = [float(c) for c in cells if c != DASH and math.isfinite(float(c))]
        if len(set(shown)) >= 2:  # bold only where the folders differ
            best = min(shown) if lower_is_better(metric) else max(shown)
            cells = [f"**{c}**" if c != DASH and float(c) == best else c for c in cells]
        rows.append((_cell(task), _cell(metric_label(metric)), *cells))
    return "\n".join(_table(["task", "metric", *_headers(paths, names)], rows, align="ll")).rstrip("\n")
