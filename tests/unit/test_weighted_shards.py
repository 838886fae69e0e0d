"""`osum data shards` (osum/data/weighted_shards.py): datasets as tar shards with their weights; osum train reads
the written config and trains on it."""

from __future__ import annotations

import json

import pytest
import yaml

from osum.cli.main import main
from osum.config import RunConfig, from_dict
from osum.data.reader import read_any
from osum.data.weighted_shards import Dataset, train_override, write_weighted_shards
from osum.errors import ConfigError
from osum.testing.tiny import write_toy_corpus


def test_datasets_become_weighted_shard_lists(tmp_path):
    a = write_toy_corpus(tmp_path / "a", n=5, seed=1)
    b = write_toy_corpus(tmp_path / "b", n=3, seed=2)
    report = write_weighted_shards(
        [Dataset("speech", str(a)), Dataset.parse(f"labels={b}@2.5")], tmp_path / "out", shard_size=2
    )
    rows = {d["name"]: d for d in report["datasets"]}
    assert rows["speech"]["clips"] == 5 and rows["labels"]["clips"] == 3 and rows["labels"]["weight"] == 2.5
    hours = {n: sum(u.duration for u in read_any(m)) / 3600 for n, m in [("speech", a), ("labels", b)]}
    assert rows["speech"]["hours"] == pytest.approx(hours["speech"], abs=1e-4)
    expected = hours["labels"] * 2.5 / (hours["speech"] + hours["labels"] * 2.5)
    assert rows["labels"]["epoch_share"] == pytest.approx(expected, abs=1e-3)
    tasks = {}
    for u in read_any(a):
        tasks[u.task] = tasks.get(u.task, 0) + 1
    assert rows["speech"]["tasks"] == tasks
    shards = sorted((tmp_path / "out" / "speech").glob("shard_*.tar"))
    assert len(shards) == 3  # 5 clips, 2 per tar
    assert [u.key for u in read_any(tmp_path / "out" / "speech" / "shards.list")] == [
        u.key for u in read_any(a)
    ]
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())["data"]["train"]
    assert data == [
        {"path": str(tmp_path / "out" / "speech" / "shards.list"), "weight": 1.0},
        {"path": str(tmp_path / "out" / "labels" / "shards.list"), "weight": 2.5},
    ]
    run = from_dict(RunConfig, {}, [train_override(report)])
    assert [(e.path, e.weight) for e in run.data.train] == [(d["path"], d["weight"]) for d in data]
    assert "| labels | 2.5 | 3 |" in (tmp_path / "out" / "balance.md").read_text()


def test_bad_specs_are_named(tmp_path):
    with pytest.raises(ConfigError, match="NAME=MANIFEST"):
        Dataset.parse("speech.jsonl")
    with pytest.raises(ConfigError, match="not a number"):
        Dataset.parse("a=x.jsonl@heavy")
    with pytest.raises(ConfigError, match="weight must be > 0"):
        Dataset.parse("a=x.jsonl@0")
    with pytest.raises(ConfigError, match="folder name"):
        Dataset("../up", "x.jsonl")
    a = write_toy_corpus(tmp_path / "a", n=2)
    with pytest.raises(ConfigError, match="must differ"):
        write_weighted_shards([Dataset("x", str(a)), Dataset("x", str(a))], tmp_path / "o")


def test_cli_then_a_training_run_on_the_shards(tmp_path, capsys):
    from osum.training.trainer import Trainer

    a = write_toy_corpus(tmp_path / "a", n=6)
    assert main(["data", "shards", str(tmp_path / "out"), f"toy={a}@2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    run = from_dict(
        RunConfig,
        {
            "data": {"max_frames_in_batch": 800, "num_workers": 0},
            "train": {"init": "tiny", "max_steps": 2, "save_every": 2, "out_dir": str(tmp_path / "run")},
        },
        [train_override(report)],
    )
    trainer = Trainer(run)
    assert trainer.fit().step == 2
    trainer.close()
    assert (tmp_path / "run" / "checkpoints").is_dir()
