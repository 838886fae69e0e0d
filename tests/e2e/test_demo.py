"""`osum demo` (the `make demo` job): held-out clips for all eight tasks, each model's answer beside the reference;
then recorded speech and non-speech from Debian packages beside the untouched Whisper tiny.en."""

from __future__ import annotations

import subprocess
import sys

import pytest

from osum.evaluation.metrics import word_errors

pytestmark = pytest.mark.slow


def test_demo_answers_every_task_with_the_trained_stage1(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "osum", "demo", "--models", "mini-stage1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    out, recorded = out.split("recorded speech and non-speech from Debian packages", 1)
    for task in ("ASR", "SRWT", "VED", "SER", "SSR", "SGC", "SAP", "STTC"):
        assert f"== {task} " in out
    assert out.count("  reference  ") == 8 and out.count("  mini-stage1  ") == 8
    # the trained stage-1 model transcribes the held-out ASR clip (a new voice and text, augmented: mostly right)
    asr = out.split("== ASR ")[1].split("==")[0].splitlines()
    ref = next(line for line in asr if "reference" in line).split("reference", 1)[1]
    hyp = next(line for line in asr if "mini-stage1" in line).split("mini-stage1", 1)[1]

    def words(text: str) -> list[str]:
        return "".join(c for c in text.lower() if c.isalnum() or c == " ").split()

    wrong = word_errors([" ".join(words(ref))], [" ".join(words(hyp))], str).rate
    assert wrong <= 0.5, (ref, hyp)
    assert len(list(tmp_path.glob("wavs/test/*/*.wav"))) >= 8
    # 5 recorded clips and 3 non-speech ones, each answered by the untouched Whisper and the model
    blocks = recorded.split("\n== ")[1:]
    assert len(blocks) == 8 and all("whisper-tiny.en" in b and "mini-stage1" in b for b in blocks)
    for block in blocks[-3:]:  # silence, noise, a chord: the trained model answers with nothing
        said = next(line for line in block.splitlines() if line.strip().startswith("mini-stage1"))
        assert said.split("mini-stage1", 1)[1].strip() == "''", block
