"""recipes/pipeline/run.sh end to end: the paper's data pipeline on a small synthesized corpus (align, insert
events, agree labels, STTC pairs, weighted shards), then a few training steps of the tiny preset on the shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from osum.data.reader import read_any

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_the_pipeline_recipe_runs_and_trains(tmp_path):
    env = {**os.environ, "OSUM": f"{sys.executable} -m osum"}
    proc = subprocess.run(
        ["bash", str(ROOT / "recipes/pipeline/run.sh"), "--work", str(tmp_path), "--hours", "0.02"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    srwt = list(read_any(tmp_path / "srwt.jsonl"))
    assert srwt and all(u.task == "srwt" and u.words for u in srwt)
    ved = list(read_any(tmp_path / "ved" / "ved.jsonl"))
    assert ved and all(u.task == "ved" and u.labels["event"] == u.extra["event"] for u in ved)
    agreement = json.loads((tmp_path / "ser" / "agreement.json").read_text())
    assert agreement["agreed"] >= 1 and agreement["labellers"] == ["file:train.jsonl", "model:mini-stage1"]
    balance = json.loads((tmp_path / "shards" / "balance.json").read_text())
    assert [d["name"] for d in balance["datasets"]] == ["srwt", "ved", "ser", "sttc"]
    log = [json.loads(line) for line in (tmp_path / "train" / "train_log.jsonl").read_text().splitlines()]
    assert max(r.get("step", 0) for r in log) == 4
    assert (tmp_path / "train" / "checkpoints").is_dir()
