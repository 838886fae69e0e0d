"""The ``osum`` console script, run as a user would (subprocess), on the tiny preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from osum.data.tts import synthesize
from osum.evaluation.normalize import normalize_english
from osum.testing.tiny import chirp

OSUM = [sys.executable, "-m", "osum"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*OSUM, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    speech = synthesize("hello world", folder / "x.wav", voice="en-us+f2")
    sf.write(folder / "tone.flac", chirp(0.8), 16000)
    return [speech, folder / "tone.flac"]


@pytest.mark.parametrize("tasks", [["--task", "ser,sgc"], ["--task", "ser", "--task", "sgc"]])
def test_infer_json_gives_parsed_results(clips, tasks):
    proc = _run("infer", "--model", "tiny", *tasks, "--json", "--max-new-tokens", "4", *map(str, clips))
    assert proc.returncode == 0, proc.stderr
    assert "untrained" in proc.stderr  # the tiny/mini adaptors are random and we say so
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(c) for c in clips]
    for r in records:
        assert set(r["results"]) == {"ser", "sgc"}
        assert set(r["results"]["sgc"]["labels"]) == {"gender"}
        assert set(r["results"]["ser"]) >= {"raw", "transcript", "labels", "words", "answer"}


def test_infer_table_and_bad_files(clips, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    proc = _run("infer", "--model", "tiny", "--task", "asr", "--max-new-tokens", "3", str(clips[0]), str(bad))
    assert proc.returncode == 1  # the good file is still decoded; the bad one is reported
    assert proc.stdout.splitlines()[0] == "file\ttask\ttranscript\tlabels"
    assert proc.stdout.splitlines()[1].startswith(f"{clips[0]}\tasr\t")
    assert "broken.wav: cannot read audio" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors_are_one_line(clips):
    proc = _run("infer", "--model", "tiny", "--task", "nonsense", str(clips[0]))
    assert proc.returncode == 2 and "unknown task" in proc.stderr.lower() and "Traceback" not in proc.stderr
    proc = _run("infer", "--model", "no-such-model", str(clips[0]))
    assert proc.returncode == 2 and "neither a checkpoint directory nor a preset" in proc.stderr
    proc = _run("convert-osum", "/nonexistent/infer.pt", "/tmp/out")
    assert proc.returncode == 2 and "file not found" in proc.stderr


def test_tasks_lists_the_registry():
    proc = _run("tasks", "--prompts")
    assert proc.returncode == 0
    for name in ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc"):
        assert any(line.startswith(name + " ") for line in proc.stdout.splitlines())
    assert "转录如下音频。" in proc.stdout


def test_all_means_the_papers_eight_tasks():
    from osum.tasks import parse_task_list

    assert [t.name for t in parse_task_list("all")] == ["asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc"]
    lines = _run("tasks").stdout.split("combined tags")
    assert "asr_age_gender" not in lines[0] and "asr_age_gender" in lines[1]


WORDS = ["window", "kitchen", "office", "letter", "market", "garage"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Six short spoken clips (one with a name that is not valid UTF-8, in a subfolder) and one broken file."""
    root = tmp_path_factory.mktemp("folder")
    (root / "sub").mkdir()
    for i, word in enumerate(WORDS):
        synthesize(f"please open the {word} now", root / f"{i}-{word}.wav", voice="en-us")
    synthesize("please open the garden now", root / "sub" / "x.wav", voice="en-us")
    (root / "sub" / "x.wav").rename(root / "sub" / os.fsdecode(b"caf\xe9.wav"))  # Latin-1 bytes, not UTF-8
    (root / "sub" / "broken.wav").write_text("not audio")
    (root / "notes.txt").write_text("not an audio file name")
    return root


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_infer_reads_a_folder_with_any_file_names(folder, tmp_path):
    out = tmp_path / "out.jsonl"
    proc = _run("infer", "--model", "mini", "--task", "asr", "--out", str(out), str(folder))
    assert proc.returncode == 1, proc.stderr  # the broken file
    assert "Traceback" not in proc.stderr and "osum infer: 8 files" in proc.stderr
    records = _records(out)
    names = [r["file"] for r in records]
    assert names == sorted(names, key=lambda n: ("/sub/" in n, n))  # input order: the folder, then sub/
    assert names[-1].endswith("sub/caf\\xe9.wav") and names[-2].endswith("sub/broken.wav")
    assert "error" in records[-2] and "notes.txt" not in " ".join(names)
    heard = [normalize_english(r["results"]["asr"]["transcript"]) for r in records if "results" in r]
    assert sum(w in h for w, h in zip([*WORDS, "garden"], heard, strict=True)) >= 5, heard


def test_infer_killed_midway_resumes_without_losing_or_repeating_a_file(folder, tmp_path):
    import signal
    import time

    files = sorted(str(p) for p in folder.glob("*.wav"))
    whole = tmp_path / "whole.jsonl"
    assert _run("infer", "--model", "mini", "--task", "asr,sgc", "--out", str(whole), *files).returncode == 0
    out = tmp_path / "out.jsonl"
    cmd = [*OSUM, "infer", "--model", "mini", "--task", "asr,sgc", "--batch-size", "1", "--out", str(out), *files]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # records are written per batch: two are on disk already
    proc.wait()
    kept = out.read_text().count("\n")
    assert 2 <= kept < len(files)
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"file": "torn')  # a kill in the middle of a write
    proc = _run("infer", "--model", "mini", "--task", "asr,sgc", "--out", str(out), "--resume", *files)
    assert proc.returncode == 0, proc.stderr
    assert f"{kept} files already in" in proc.stderr
    got, expected = _records(out), _records(whole)
    assert sorted(r["file"] for r in got) == files  # every file exactly once
    by_file = {r["file"]: r for r in got}
    for r in expected:
        assert by_file[r["file"]]["results"]["asr"]["transcript"] == r["results"]["asr"]["transcript"]
        assert by_file[r["file"]]["results"]["sgc"]["labels"] == r["results"]["sgc"]["labels"]


def test_a_prompt_over_the_limit_is_refused_before_decoding(clips):
    proc = _run("infer", "--model", "tiny", "--prompt", "word " * 300, "--max-prompt-tokens", "100", str(clips[0]))
    assert proc.returncode == 2 and "the limit is 100" in proc.stderr and "Traceback" not in proc.stderr


def test_eval_uses_the_default_model_and_counts_a_missing_file_as_failed(folder, tmp_path):
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"key": "a", "audio": str(folder / "0-window.wav"), "task": "asr", "text": "please open the window now"},
        {"key": "b", "audio": str(folder / "missing.wav"), "task": "asr", "text": "two"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = _run("eval", "--manifest", str(manifest), "--out", str(tmp_path / "ev"))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["model"].endswith("models/mini") and metrics["tasks"]["asr"]["failed"] == 1
