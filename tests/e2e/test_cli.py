"""The ``osum`` console script, run as a user would (subprocess), on the tiny preset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from osum.data.tts import synthesize
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


def test_infer_json_gives_parsed_results(clips):
    proc = _run(
        "infer", "--model", "tiny", "--task", "ser,sgc", "--json", "--max-new-tokens", "4", *map(str, clips)
    )
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
