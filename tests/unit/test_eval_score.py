"""Scoring of decoded records and the evaluation plan: hand-computed values and edge cases."""

from __future__ import annotations

import json

import pytest

from osum.data.manifest import Utterance
from osum.errors import OsumError
from osum.evaluation.run import plan, read_decode_file, read_records
from osum.evaluation.score import missing_references, score_records
from osum.tasks import get_task


def rec(key, task, raw, ref, error=None):
    """A hyps.jsonl record as evaluate() writes it (the model's raw text parsed by the task)."""
    t = get_task(task)
    full_ref = {"text": None, "labels": {}, "words": None, "answer": None, "language": None, **ref}
    if error:
        return {"key": key, "task": task, "raw": None, "parsed": None, "error": error, "ref": full_ref}
    return {"key": key, "task": task, "raw": raw, "parsed": t.parse(raw).to_dict(), "ref": full_ref}


def test_asr_wer_cer_and_alignment_by_hand():
    records = [
        # normalised: "hello world 1 2" vs "hello word 1 2": 1 substitution of 4 words
        rec("a", "asr", "hello word 1 2", {"text": "Hello, World! one two"}),
        # empty hypothesis: 3 deletions
        rec("b", "asr", "", {"text": "good morning everyone"}),
        # audio failed: scored as empty (2 deletions), never dropped
        rec("c", "asr", None, {"text": "thank you"}, error="c.wav: file not found"),
    ]
    tasks, lines = score_records(records)
    asr = tasks["asr"]
    assert asr["n"] == 3 and asr["failed"] == 1 and asr["primary"] == "wer"
    wer = asr["asr"]["wer"]
    assert (wer["substitutions"], wer["deletions"], wer["insertions"], wer["hits"]) == (1, 5, 0, 3)
    assert asr["metrics"]["wer"] == pytest.approx(6 / 9)
    # CER over characters without spaces: "hello world 1 2" (12 chars) vs "hello word 1 2" (11): 1 deletion
    assert asr["asr"]["cer"]["reference_length"] == 12 + 19 + 8
    assert asr["asr"]["cer"]["deletions"] == 1 + 19 + 8
    first = lines[0]
    assert first["unit"] == "word" and first["errors"] == 1 and first["ref_length"] == 4
    assert first["ops"] == [
        ["equal", "hello", "hello"],
        ["substitute", "world", "word"],
        ["equal", "1 2", "1 2"],
    ]
    assert lines[1]["ops"] == [["delete", "good morning everyone", ""]]


def test_chinese_is_scored_by_characters():
    records = [
        rec("z1", "asr", "你好视界。", {"text": "你好，世界", "language": "zh"}),
        rec("z2", "asr", "今天天气很好", {"text": "今天天气好"}),  # CJK text without a language: Chinese too
        rec("e1", "asr", "hello", {"text": "hello"}),
    ]
    tasks, lines = score_records(records)
    asr = tasks["asr"]
    assert asr["primary"] == "cer"  # most references are Chinese
    assert asr["metrics"]["cer"] == pytest.approx((1 + 1 + 0) / (4 + 5 + 5))
    assert asr["asr"]["wer"]["reference_length"] == 1  # only the English record has words
    assert [x["unit"] for x in lines] == ["char", "char", "word"]


def test_labels_with_invalid_and_transcript_of_asr_plus_x():
    records = [
        rec("1", "ser", "i am so glad<happy>", {"text": "I am so glad", "labels": {"emotion": "happy"}}),
        rec("2", "ser", "leave me alone<angry>", {"text": "leave me alone", "labels": {"emotion": "sad"}}),
        rec("3", "ser", "no tag here", {"text": "no tag here", "labels": {"emotion": "angry"}}),
        rec("4", "ser", "", {"text": "x", "labels": {"emotion": "angry"}}, error="bad audio"),
    ]
    tasks, _ = score_records(records)
    ser = tasks["ser"]
    m = ser["metrics"]
    assert ser["primary"] == "emotion_accuracy"
    assert m["emotion_accuracy"] == pytest.approx(1 / 4)
    assert m["emotion_invalid"] == pytest.approx(2 / 4)
    report = ser["labels"]["emotion"]
    labels = report["labels"]
    assert (
        report["confusion"][labels.index("sad")][labels.index("anger")] == 1
    )  # "angry" is an alias of anger
    assert report["confusion"][labels.index("anger")][-1] == 2  # both anger references got no valid label
    assert m["wer"] == pytest.approx(1 / 11)  # transcripts: 4 + 3 + 3 words right, then "x" deleted


def test_srwt_timing_by_hand():
    ref_words = [
        {"word": "hello", "start": 0.20, "end": 0.60},
        {"word": "world", "start": 0.70, "end": 1.10},
        {"word": "again", "start": 1.20, "end": 1.50},
    ]
    raw = "hello<0.25,0.60> world<0.70,1.40> extra<1.5,1.6>"
    tasks, _ = score_records([rec("s", "srwt", raw, {"words": ref_words})])
    srwt = tasks["srwt"]
    # matched: hello (0.05, 0.0), world (0.0, 0.3); "again" unmatched, "extra" inserted
    assert srwt["timing"]["matched"] == 2
    assert srwt["metrics"]["aas_ms"] == pytest.approx((50 + 0 + 0 + 300) / 4)
    assert srwt["metrics"]["within_100ms"] == pytest.approx(3 / 4)
    assert srwt["metrics"]["within_200ms"] == pytest.approx(3 / 4)
    assert srwt["metrics"]["wer"] == pytest.approx(1 / 3)  # "again" -> "extra": one substitution of 3 words
    assert srwt["primary"] == "aas_ms"


def test_srwt_without_any_match_gives_null_timing():
    ref = [{"word": "hello", "start": 0.2, "end": 0.6}]
    tasks, _ = score_records([rec("s", "srwt", "nothing useful", {"words": ref})])
    assert tasks["srwt"]["metrics"]["aas_ms"] is None
    assert tasks["srwt"]["timing"]["matched"] == 0


def test_sttc_answer_accuracy_and_judge_hook():
    records = [
        rec(
            "q1",
            "sttc",
            "what is two plus two<开始回答>Four.",
            {"text": "what is two plus two", "answer": "4"},
        ),
        rec(
            "q2",
            "sttc",
            "capital of france<开始回答>berlin",
            {"text": "capital of france", "answer": "paris"},
        ),
        rec("q3", "sttc", "no separator at all", {"text": "hi", "answer": "hello"}),
    ]
    seen = []

    def judge(items):
        seen.extend(items)
        return {"mean_score": 5.0, "scored": len(items), "failed": 0}

    tasks, _ = score_records(records, judge=judge)
    sttc = tasks["sttc"]
    assert sttc["metrics"]["answer_accuracy"] == pytest.approx(1 / 3)
    assert sttc["metrics"]["judge_score"] == 5.0
    assert seen[0] == ("what is two plus two", "4", "Four.") and seen[2][2] is None


def test_missing_references_and_plan_rules():
    ser = get_task("ser")
    assert missing_references(ser, {"text": "hi", "labels": {"emotion": "joyful-ish"}}) == ["labels.emotion"]
    assert missing_references(get_task("srwt"), {"text": "hi"}) == ["words"]
    assert missing_references(get_task("ved"), {"text": "", "labels": {"event": "cough"}}) == []
    utts = [
        Utterance("a", "/x/a.wav", task="ser", text="hi", labels={"emotion": "happy"}),
        Utterance("b", "/x/b.wav", task="ser", text="hi"),  # no emotion label
        Utterance("c", "/x/c.wav", task="asr", text="hello"),
    ]
    own = plan(utts)
    assert [(it.utterance.key, it.task.name) for it in own.items] == [("a", "ser"), ("c", "asr")]
    assert own.skipped == {"task ser: no labels.emotion": 1}
    asr_only = plan(utts, [get_task("asr")])
    assert [it.utterance.key for it in asr_only.items] == ["a", "b", "c"]
    assert len(plan(utts, limit=1).items) == 1
    with pytest.raises(OsumError, match="'a' occurs twice"):
        plan([utts[0], utts[0]])


def test_decode_file_reader(tmp_path):
    f = tmp_path / "text"
    f.write_text("k1\thello world<female>\nk2 hello there\nk3\n\n", encoding="utf-8")
    assert read_decode_file(f) == {"k1": "hello world<female>", "k2": "hello there", "k3": ""}
    f.write_text("k1\ta\nk1\tb\n", encoding="utf-8")
    with pytest.raises(OsumError, match=r"text:2: key 'k1' occurs twice"):
        read_decode_file(f)


def test_read_records_drops_a_cut_last_line(tmp_path):
    path = tmp_path / "hyps.jsonl"
    good = [json.dumps({"key": "a", "task": "asr"}), json.dumps({"key": "b", "task": "asr"})]
    path.write_text("\n".join(good) + '\n{"key": "c", "ta', encoding="utf-8")
    assert [r["key"] for r in read_records(path)] == ["a", "b"]
    assert path.read_text(encoding="utf-8") == "\n".join(good) + "\n"  # repaired for appending


def test_clips_without_speech_count_empty_answers():
    silent = [rec("n1", "asr", "", {"text": ""}), rec("n2", "asr", "you", {"text": ""})]
    metrics, _ = score_records(silent)
    entry = metrics["asr"]
    assert entry["no_speech"] == {"clips": 2, "empty_answers": 1}
    assert entry["metrics"]["no_speech_empty"] == 0.5 and entry["primary"] == "no_speech_empty"
    mixed, _ = score_records([*silent, rec("s", "asr", "hello world", {"text": "hello world"})])
    assert mixed["asr"]["primary"] == "wer" and mixed["asr"]["metrics"]["no_speech_empty"] == 0.5
