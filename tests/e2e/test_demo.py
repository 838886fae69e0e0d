"""`osum demo` (the `make demo` job): held-out clips for all eight tasks, each model's answer beside the reference."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_answers_every_task_with_the_trained_stage1(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "osum", "demo", "--models", "mini-stage1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    for task in ("ASR", "SRWT", "VED", "SER", "SSR", "SGC", "SAP", "STTC"):
        assert f"== {task} " in out
    assert out.count("  reference  ") == 8 and out.count("  mini-stage1  ") == 8
    # the trained stage-1 model transcribes the held-out ASR clip word for word (normalised)
    asr = out.split("== ASR ")[1].split("==")[0].splitlines()
    ref = next(line for line in asr if "reference" in line).split("reference", 1)[1]
    hyp = next(line for line in asr if "mini-stage1" in line).split("mini-stage1", 1)[1]

    def words(text: str) -> list[str]:
        return "".join(c for c in text.lower() if c.isalnum() or c == " ").split()

    assert words(hyp) == words(ref)
    assert len(list(tmp_path.glob("wavs/test/*/*.wav"))) >= 8
