"""report.md content and number formatting, PNG plots, and the --compare table, from hand-built metrics."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from matplotlib.image import imread

from osum.errors import OsumError
from osum.evaluation.metrics import ErrorCounts, classification, word_errors, word_timing
from osum.evaluation.report import compare_table, plot_confusion, plot_summary, write_report
from osum.tasks import Word

EMOTIONS = ("sad", "anger", "neutral", "happy")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(wer: float | None = 0.0512) -> dict:
    wer_counts = ErrorCounts(substitutions=10, deletions=2, insertions=1, hits=240).to_dict()  # 13/252
    cer_counts = word_errors(["a b c d"], ["a x c"]).to_dict()  # 1 S + 1 D over 4 -> 50 %
    ser = classification(
        ["sad", "sad", "happy", "anger", "neutral"], ["sad", "happy", "happy", None, "neutral"], EMOTIONS
    )
    age = classification(["child", "adult", "old"], ["child", "adult", "adult"], ("child", "adult", "old"))
    gender = classification(["female", "male"], ["female", "female"], ("female", "male"))
    timing = word_timing([[Word("hi", 0.0, 0.5), Word("there", 0.5, 1.0)]], [[Word("hi", 0.05, 0.52)]])
    return {
        "schema": 1,
        "model": "mini-stage1",
        "manifest": "/data/test.jsonl",
        "created": "2026-11-22T05:30:00Z",
        "osum_version": "0.1.0",
        "decoding": {"num_beams": 1, "max_new_tokens": 200, "batch_size": 8},
        "prompt_language": "en",
        "tasks": {
            "asr": {
                "n": 40,
                "primary": "wer",
                "metrics": {"wer": wer, "cer": cer_counts["rate"]},
                "asr": {"wer": wer_counts, "cer": cer_counts},
            },
            "ser": {
                "n": 5,
                "primary": "emotion_accuracy",
                "metrics": {"emotion_accuracy": ser.accuracy, "emotion_invalid": ser.invalid_share},
                "labels": {"emotion": ser.to_dict()},
            },
            "age_gender": {
                "n": 3,
                "primary": "age_accuracy",
                "metrics": {"age_accuracy": age.accuracy, "gender_accuracy": gender.accuracy},
                "labels": {"age": age.to_dict(), "gender": gender.to_dict()},
            },
            "srwt": {
                "n": 1,
                "primary": "aas_ms",
                "metrics": {"aas_ms": timing.aas * 1000, "within_100ms": timing.within_100ms},
                "timing": timing.to_dict(),
            },
            "sttc": {
                "n": 20,
                "primary": "answer_accuracy",
                "metrics": {"answer_accuracy": 0.55, "judge_score": 6.1},
                "answers": {
                    "accuracy": 0.55,
                    "n": 20,
                    "judge": {
                        "url": "http://judge/v1",
                        "model": "gpt-4o",
                        "mean_score": 6.1,
                        "scored": 19,
                        "failed": 1,
                    },
                },  # fmt: skip
            },
        },
    }


def _write(folder: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return folder


def _alignment(key: str, s: int, d: int, i: int, h: int, task: str = "asr", hyp: str = "x") -> dict:
    return {"key": key, "task": task, "unit": "word", "ref": f"ref of {key}", "hyp": hyp, "substitutions": s,
            "deletions": d, "insertions": i, "hits": h, "errors": s + d + i, "ref_length": s + d + h, "ops": []}  # fmt: skip


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def _check_png(path: Path) -> tuple[int, ...]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1024
    return imread(path).shape


def test_report_header_summary_and_task_numbers(tmp_path: Path):
    written = write_report(_write(tmp_path, _metrics()))
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert written[0] == tmp_path / "report.md" and all(p.is_file() for p in written)
    for line in ("| model | mini-stage1 |", "| manifest | /data/test.jsonl |", "| date | 2026-11-22T05:30:00Z |",
                 "| osum version | 0.1.0 |", "| decoding | num_beams=1, max_new_tokens=200, batch_size=8 |",
                 "| prompt language | en |"):  # fmt: skip
        assert line in report
    assert "normalisation" in report and "osum.evaluation.normalize" in report
    summary = _section(report, "Summary")
    # wer 0.0512 -> "5.12" percent; aas in ms with one decimal: errors 0.05 and 0.02 s -> 35.0 ms
    assert "| asr | 40 | wer (%) ↓ | 5.12 |" in summary
    assert "| ser | 5 | emotion_accuracy (%) | 60.00 |" in summary
    assert "| age_gender | 3 | age_accuracy (%) | 66.67 |" in summary
    assert "| srwt | 1 | aas_ms ↓ | 35.0 |" in summary
    assert "| sttc | 20 | answer_accuracy (%) | 55.00 |" in summary
    assert "![primary metric per task](plots/summary.png)" in summary
    asr = _section(report, "asr")
    assert "| WER | 5.16 | 10 | 2 | 1 | 240 | 252 |" in asr  # 13 / 252 from the counts
    assert "| CER | 50.00 | 1 | 1 | 0 | 2 | 4 |" in asr
    assert "| wer (%) ↓ *(primary)* | 5.12 |" in asr and "| cer (%) ↓ | 50.00 |" in asr
    srwt = _section(report, "srwt")
    for line in ("| matched words | 1 |", "| reference words | 2 |", "| mean start error (ms) | 50.0 |",
                 "| mean end error (ms) | 20.0 |", "| AAS (ms) ↓ | 35.0 |", "| boundaries within 100 ms (%) | 100.00 |"):  # fmt: skip
        assert line in srwt
    sttc = _section(report, "sttc")
    for line in ("| answer accuracy (%) | 55.00 |", "| judge | gpt-4o at http://judge/v1 |",
                 "| judge mean score (1-10) | 6.10 |", "| judged / failed | 19 / 1 |", "| judge_score | 6.10 |"):  # fmt: skip
        assert line in sttc
    assert "No alignments.jsonl in this folder." in report


def test_report_label_tables_confusion_and_plots(tmp_path: Path):
    written = write_report(_write(tmp_path, _metrics()))
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    ser = _section(report, "ser")
    assert "accuracy 60.00 %, macro-F1 58.33 %, invalid 20.00 %, n = 5" in ser
    # per class: precision, recall, F1, support (sad: 1 of 2 right, nothing else predicted sad)
    assert "| 1 | sad | 100.00 | 50.00 | 66.67 | 2 |" in ser
    assert "| 2 | anger | 0.00 | 0.00 | 0.00 | 1 |" in ser
    assert "| 4 | happy | 50.00 | 100.00 | 66.67 | 1 |" in ser
    assert "| reference ↓ / hypothesis → | sad | anger | neutral | happy | *invalid* |" in ser
    assert "| sad | 1 | 0 | 0 | 1 | 0 |" in ser
    assert "| anger | 0 | 0 | 0 | 0 | 1 |" in ser  # the None hypothesis lands in the invalid column
    assert "![ser emotion confusion matrix](plots/ser_emotion_confusion.png)" in ser
    both = _section(report, "age_gender")
    assert "### Label: age" in both and "### Label: gender" in both
    assert "| old | 0 | 1 | 0 | 0 |" in both and "| male | 1 | 0 | 0 |" in both
    assert (
        "(plots/age_gender_age_confusion.png)" in both and "(plots/age_gender_gender_confusion.png)" in both
    )
    pngs = {p.name for p in written[1:]}
    assert pngs == {"summary.png", "ser_emotion_confusion.png", "age_gender_age_confusion.png",
                    "age_gender_gender_confusion.png"}  # fmt: skip
    for p in written[1:]:
        shape = _check_png(p)
        assert shape[2] == 4 and shape[0] >= 300 and shape[1] >= 400


def test_hardest_utterances_order_and_escaping(tmp_path: Path):
    lines = [
        _alignment(f"u{k:02d}", s=k % 4, d=0, i=0, h=10) for k in range(12)
    ]  # 0-3 errors over 10-13 words
    lines += [_alignment("short", s=3, d=0, i=0, h=0, task="ser"), _alignment("pipe", 4, 1, 0, 5, hyp="a|b")]
    lines += [_alignment("clean", 0, 0, 0, 8)]
    folder = _write(tmp_path, _metrics())
    (folder / "alignments.jsonl").write_text(
        "\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8"
    )
    write_report(folder)
    rows = [r for r in _section(folder.joinpath("report.md").read_text(), "Hardest utterances").splitlines()
            if r.startswith("| ") and not r.startswith("| key")]  # fmt: skip
    keys = [r.split(" | ")[0][2:] for r in rows]
    # most errors first; equal errors: higher rate first (3/3 before 3/13), then key
    assert keys == ["pipe", "short", "u03", "u07", "u11", "u02", "u06", "u10", "u01", "u05"]
    assert rows[0] == "| pipe | asr | 5/10 | ref of pipe | a\\|b |"
    assert rows[1].startswith("| short | ser | 3/3 |")


def test_bad_alignment_line_names_file_and_line(tmp_path: Path):
    folder = _write(tmp_path, _metrics())
    (folder / "alignments.jsonl").write_text(json.dumps(_alignment("a", 1, 0, 0, 1)) + "\n{oops\n")
    with pytest.raises(OsumError, match=r"alignments\.jsonl:2: not an alignment line"):
        write_report(folder)


def test_none_and_nan_values_show_a_dash(tmp_path: Path):
    metrics = _metrics(wer=None)
    metrics["tasks"]["srwt"]["metrics"]["aas_ms"] = float("nan")
    metrics["tasks"]["srwt"]["timing"]["aas"] = None
    metrics["tasks"]["sttc"]["answers"]["judge"]["mean_score"] = None
    written = write_report(tmp_path, metrics)  # in-memory metrics (NaN allowed), no metrics.json needed
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| asr | 40 | wer (%) ↓ | – |" in report and "| srwt | 1 | aas_ms ↓ | – |" in report
    assert "| AAS (ms) ↓ | – |" in report and "| judge mean score (1-10) | – |" in report
    assert "| nan" not in report.lower()
    _check_png(written[1])  # the summary plot draws "n/a" bars instead of failing


def test_pngs_are_reproducible_and_cjk_labels_do_not_warn(tmp_path: Path):
    rep = classification(
        ["新闻科普", "客服", "客服"], ["新闻科普", "其他", "bad"], ("新闻科普", "客服", "其他")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Glyph missing" warnings whatever fonts are installed
        a = plot_confusion(rep.to_dict(), "ssr · style", tmp_path / "a.png")
        b = plot_confusion(rep.to_dict(), "ssr · style", tmp_path / "sub" / "b.png")
    assert a.read_bytes() == b.read_bytes()
    assert b"Software" not in a.read_bytes() and b"Matplotlib" not in a.read_bytes()
    s1 = plot_summary(_metrics(), tmp_path / "s1.png")
    s2 = plot_summary(_metrics(), tmp_path / "s2.png")
    assert s1.read_bytes() == s2.read_bytes()
    assert _check_png(s1)[2] == 4
    with pytest.raises(OsumError, match="does not fit 3 labels"):
        plot_confusion({"labels": ["a", "b", "c"], "confusion": [[1, 0, 0]]}, "bad", tmp_path / "c.png")


def test_compare_table_rows_columns_and_bold(tmp_path: Path):
    a, b = _metrics(), _metrics()
    b["tasks"]["asr"]["metrics"]["wer"] = 0.0431
    b["tasks"]["ser"]["metrics"] = {"emotion_accuracy": 0.4, "emotion_invalid": 0.0, "emotion_macro_f1": 0.3}
    b["tasks"]["srwt"]["metrics"]["aas_ms"] = 61.04
    del b["tasks"]["sttc"]
    b["tasks"]["ved"] = {"n": 4, "primary": "event_accuracy", "metrics": {"event_accuracy": 0.75}}
    table = compare_table([_write(tmp_path / "base", a), _write(tmp_path / "tuned", b)])
    lines = table.splitlines()
    assert lines[0] == "| task | metric | base | tuned |" and lines[1] == "|:--|:--|--:|--:|"
    rows = [tuple(c.strip() for c in line.strip("|").split("|")) for line in lines[2:]]
    # primary metrics first (task order of the first folder, then new tasks), then the others
    assert [r[:2] for r in rows[:6]] == [("asr", "wer (%) ↓"), ("ser", "emotion_accuracy (%)"),
        ("age_gender", "age_accuracy (%)"), ("srwt", "aas_ms ↓"), ("sttc", "answer_accuracy (%)"),
        ("ved", "event_accuracy (%)")]  # fmt: skip
    by_row = {r[:2]: r[2:] for r in rows}
    assert by_row[("asr", "wer (%) ↓")] == ("5.12", "**4.31**")  # lower is better
    assert by_row[("ser", "emotion_accuracy (%)")] == ("**60.00**", "40.00")  # higher is better
    assert by_row[("ser", "emotion_invalid (%) ↓")] == ("20.00", "**0.00**")
    assert by_row[("srwt", "aas_ms ↓")] == ("**35.0**", "61.0")
    assert by_row[("sttc", "judge_score")] == ("6.10", "–")  # absent in one folder: no bold for a lone value
    assert by_row[("ved", "event_accuracy (%)")] == ("–", "75.00")
    assert by_row[("ser", "emotion_macro_f1 (%)")] == ("–", "30.00")
    assert by_row[("age_gender", "gender_accuracy (%)")] == ("50.00", "50.00")  # equal: nothing bold
    assert len(rows) == len(set(by_row))


def test_compare_table_names_nan_and_duplicate_folder_names(tmp_path: Path):
    a, b, c = _metrics(), _metrics(wer=None), _metrics(wer=0.2)
    dirs = [_write(tmp_path / "x" / "eval", a), _write(tmp_path / "y" / "eval", b), _write(tmp_path / "z", c)]
    (dirs[1] / "metrics.json").write_text(json.dumps(b).replace("null", "NaN", 1))
    assert math.isnan(json.loads((dirs[1] / "metrics.json").read_text())["tasks"]["asr"]["metrics"]["wer"])
    lines = compare_table(dirs).splitlines()
    assert lines[0] == "| task | metric | x/eval | y/eval | z |"
    assert lines[2] == "| asr | wer (%) ↓ | **5.12** | – | 20.00 |"
    named = compare_table(dirs[:2], names=["run", "run"]).splitlines()
    assert named[0] == "| task | metric | run (1) | run (2) |"
    with pytest.raises(OsumError, match="2 names for 3"):
        compare_table(dirs, names=["a", "b"])


def test_folders_without_valid_metrics_are_rejected(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        OsumError, match=r"empty is not an osum eval folder \(.*metrics\.json not found\): run "
    ):
        compare_table([empty])
    with pytest.raises(OsumError, match="osum eval --out DIR"):
        write_report(empty)
    broken = _write(tmp_path / "broken", {})
    (broken / "metrics.json").write_text("{not json")
    with pytest.raises(OsumError, match=r"broken.*metrics\.json is not valid JSON"):
        compare_table([broken])
    (broken / "metrics.json").write_text(json.dumps({"schema": 1, "tasks": []}))
    with pytest.raises(OsumError, match="is not an osum eval folder"):
        compare_table([broken])
    (broken / "metrics.json").write_text(json.dumps({"schema": 2, "tasks": {}}))
    with pytest.raises(OsumError, match="schema 2 is not supported"):
        compare_table([broken])
