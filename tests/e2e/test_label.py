"""``osum label``: one merged record per recording, exactly once after kills, the same under torchrun, every output
format read back (JSONL, Lhotse via lhotse, shards via our reader and the training loader)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from osum.data.tts import synthesize
from osum.testing.tiny import chirp

MODEL = str(Path(__file__).resolve().parents[2] / "models" / "mini-stage1")
OSUM = [sys.executable, "-m", "osum.cli.main"]
SENTENCES = (
    "the kettle boiled over",
    "please close the window",
    "seven green bottles",
    "we walked home slowly",
    "the radio was too loud",
    "a cat sat by the door",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A folder: six spoken clips (one in a sub-folder), a tone, and a file that is not audio."""
    root = tmp_path_factory.mktemp("label") / "in"
    (root / "sub").mkdir(parents=True)
    voices = ("en-us+f3", "en+m3")
    for i, text in enumerate(SENTENCES):
        where = root / "sub" if i == 5 else root
        synthesize(text, where / f"clip{i}.wav", voice=voices[i % 2])
    sf.write(root / "tone.wav", (0.3 * chirp(1.5)).astype(np.float32), 16000)
    (root / "sub" / "broken.wav").write_text("not audio")
    return root


def label(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*OSUM, "label", *args], capture_output=True, text=True, timeout=timeout, env=_env()
    )


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def comparable(recs: list[dict]) -> list[dict]:
    """Records without the label probabilities' last digits (batch composition moves float noise)."""
    out = []
    for r in recs:
        r = dict(r)
        probs = r.pop("label_probs", None)
        if probs:
            r["label_probs"] = {f: {v: round(p, 2) for v, p in d.items()} for f, d in probs.items()}
        out.append(r)
    return out


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """One uninterrupted run, with every export."""
    out = tmp_path_factory.mktemp("ref")
    proc = label(
        str(corpus),
        "--model",
        MODEL,
        "--out",
        str(out / "rec.jsonl"),
        "--lhotse",
        str(out / "cuts.jsonl.gz"),
        "--shards",
        str(out / "shards"),
        "--chunk",
        "2",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # one file is not audio: reported, the rest labelled
    return out


def test_one_record_per_recording_in_input_order(corpus, reference):
    recs = records(reference / "rec.jsonl")
    names = [Path(r["key"]).name for r in recs]
    # a folder's own files (sorted) before its sub-folders'
    assert names == [f"clip{i}.wav" for i in range(5)] + ["tone.wav", "broken.wav", "clip5.wav"]
    by_name = {Path(r["key"]).name: r for r in recs}
    hits = 0
    assert "not a format soundfile opens" in by_name["broken.wav"]["error"]
    assert by_name["tone.wav"]["transcript"] == "" and by_name["tone.wav"]["no_speech_prob"] > 0.5
    for i, text in enumerate(SENTENCES):
        r = by_name[f"clip{i}.wav"]
        assert set(r["answers"]) == {"asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc"}
        assert r["model"]["name"] == "mini-stage1" and r["duration"] > 0.5
        assert set(r["labels"]) == {"event", "emotion", "style", "gender", "age"}
        assert abs(sum(r["label_probs"]["gender"].values()) - 1) < 1e-3
        assert r["words"] and r["words"][-1]["end"] <= r["duration"] + 0.05
        heard = "".join(c for c in r["transcript"].lower() if c.isalpha() or c == " ")
        hits += sum(w in heard.split() for w in text.split())
    assert hits >= 0.6 * sum(len(t.split()) for t in SENTENCES)  # Whisper tiny.en on espeak-ng voices
    summary = json.loads((reference / "rec.jsonl.summary.json").read_text())
    assert summary["recordings"] == 7 and summary["errors"] == 1 and summary["no_speech"] == 1
    assert sum(summary["labels"]["gender"].values()) == 7


def test_resume_after_sigkill_records_each_clip_once(corpus, reference, tmp_path):
    """Kill the run at several points (mid-chunk, a torn last line), then the same command with --resume."""
    out = tmp_path / "rec.jsonl"
    args = [*OSUM, "label", str(corpus), "--model", MODEL, "--out", str(out), "--chunk", "1"]
    for stop_after in (1, 4):
        proc = subprocess.Popen(
            args + (["--resume"] if out.exists() else []), env=_env(), stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and (not out.exists() or len(records(out)) < stop_after):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert len(records(out)) < 8
    with out.open("a", encoding="utf-8") as f:
        f.write('{"key": "half a rec')  # a kill in the middle of a line
    done = subprocess.run(args + ["--resume"], env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    got = records(out)
    assert sorted(r["key"] for r in got) == sorted(r["key"] for r in records(reference / "rec.jsonl"))
    assert comparable(sorted(got, key=lambda r: r["key"])) == comparable(
        sorted(records(reference / "rec.jsonl"), key=lambda r: r["key"])
    )
    again = subprocess.run(args + ["--resume"], env=_env(), capture_output=True, text=True, timeout=600)
    assert len(records(out)) == 8 and "8 already recorded" in again.stderr


def test_two_processes_under_torchrun_give_the_same_records(corpus, reference, tmp_path):
    out = tmp_path / "rec.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29541",
            "-m",
            "osum.cli.main",
            "label",
            str(corpus),
            "--model",
            MODEL,
            "--out",
            str(out),
            "--chunk",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(),
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert comparable(records(out)) == comparable(records(reference / "rec.jsonl"))  # merged in input order
    assert not list(tmp_path.glob("rec.jsonl.part-*"))
    summary = json.loads((tmp_path / "rec.jsonl.summary.json").read_text())
    assert summary["recordings"] == 7 and summary["errors"] == 1


def test_local_ray_with_two_workers_gives_the_same_records_and_resumes(corpus, reference, tmp_path):
    """Ray Data: decode tasks, two model actors; records in input order, identical to one process; a resumed run
    (half the records already there) labels only the rest."""
    out = tmp_path / "rec.jsonl"
    args = [str(corpus), "--model", MODEL, "--out", str(out), "--chunk", "2", "--ray", "--workers", "2"]
    proc = label(*args, timeout=900)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "on Ray: 2 workers (1 CPU each)" in proc.stderr
    assert comparable(records(out)) == comparable(records(reference / "rec.jsonl"))
    summary = json.loads((tmp_path / "rec.jsonl.summary.json").read_text())
    assert summary["recordings"] == 7 and summary["errors"] == 1
    kept = out.read_text(encoding="utf-8").splitlines(keepends=True)[:4]
    out.write_text("".join(kept) + '{"key": "torn', encoding="utf-8")  # a kill after four records
    again = label(*args, "--resume", timeout=900)
    assert again.returncode == 1, again.stderr[-3000:]
    assert "4 clips already recorded" in again.stderr
    assert comparable(records(out)) == comparable(records(reference / "rec.jsonl"))


def test_every_output_format_reads_back(reference):
    from lhotse import CutSet

    from osum.config import DataConfig, DatasetEntry
    from osum.data.reader import read_any

    recs = {r["key"]: r for r in records(reference / "rec.jsonl") if "error" not in r}
    cuts = CutSet.from_file(reference / "cuts.jsonl.gz")
    assert sorted(c.id for c in cuts) == sorted(recs)
    for cut in cuts:
        sup, rec = cut.supervisions[0], recs[cut.id]
        assert sup.text == rec["transcript"] and sup.gender == rec["labels"]["gender"]
        assert sup.custom.get("emotion") == rec["labels"]["emotion"]
        assert abs(cut.load_audio().shape[1] / cut.sampling_rate - rec["duration"]) < 0.01
    ours = list(read_any(reference / "cuts.jsonl.gz"))
    assert {u.key for u in ours} == set(recs)
    examples = list(read_any(reference / "shards"))
    speech = [r for r in recs.values() if r["transcript"]]
    # per speech clip: its seven tasks with a transcript and labels (mini-stage1 writes no chat reply)
    assert len([u for u in examples if u.task != "sttc"]) >= 7 * len(speech)
    sgc = {u.key: u for u in examples if u.task == "sgc"}
    for r in speech:
        u = next(u for k, u in sgc.items() if k.endswith(Path(r["key"]).name.replace(".wav", ".wav-sgc")))
        assert u.labels["gender"] == r["labels"]["gender"] and u.text == r["transcript"]
    import osum
    from osum.data.dataset import TrainingData

    codec = osum.load(MODEL, device="cpu").codec(random_prompt=False)
    data = TrainingData([DatasetEntry(path=str(reference / "shards"))], DataConfig(num_workers=0), codec)
    assert len(data.utterances) == len(examples)
    batch, _ = data.batch_set(data.plan(0)[:1], 0)[0]
    assert batch.feats.shape[0] >= 1


def test_min_confidence_withholds_uncertain_labels_and_dry_run_counts(corpus, tmp_path):
    proc = label(str(corpus), "--dry-run", "--out", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 0 and "8 clips" in proc.stdout and "unknown length" in proc.stdout
    assert not (tmp_path / "x.jsonl").exists()
    out = tmp_path / "sure.jsonl"
    proc = label(
        str(corpus),
        "--model",
        MODEL,
        "--out",
        str(out),
        "--limit",
        "3",
        "--min-confidence",
        "0.99",
        "--tasks",
        "sgc,ser",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    recs = records(out)
    assert len(recs) == 3 and all(set(r["answers"]) == {"sgc", "ser"} for r in recs)
    for r in recs:
        for name, value in r["labels"].items():
            assert value is None or r["label_probs"][name][value] >= 0.99


def test_bad_inputs_are_named(tmp_path):
    proc = label(str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.jsonl"), "--model", MODEL)
    assert proc.returncode == 2 and "nowhere: no such file or folder" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = label(str(tmp_path / "empty"), "--out", str(tmp_path / "x.jsonl"), "--model", MODEL)
    assert proc.returncode == 2 and "no audio files in this folder" in proc.stderr
    (tmp_path / "x.jsonl").write_text('{"no key": 1}\n')
    proc = label(str(tmp_path / "empty"), "--out", str(tmp_path / "x.jsonl"), "--resume", "--model", MODEL)
    assert proc.returncode == 2 and "x.jsonl:1: not an osum label record" in proc.stderr


def test_progress_goes_to_a_log_file_as_plain_lines(monkeypatch, capsys):
    """With stderr not a terminal (a job's log), the bar is off and a plain progress line is written at most every
    LOG_EVERY_SECONDS, naming the clips done, the total and the rates."""
    from types import SimpleNamespace

    from osum.cli import label as cli

    summary = SimpleNamespace(recordings_per_second=2.5, audio_hours_per_hour=30.0, errors=1)
    progress = cli._Progress(10)
    assert progress.bar.disable  # pytest's captured stderr is not a terminal
    progress.tick(summary, 3)
    assert capsys.readouterr().err == ""  # not yet: the last line (the start) is under LOG_EVERY_SECONDS old
    monkeypatch.setattr(cli, "LOG_EVERY_SECONDS", 0.0)
    progress.tick(summary, 4)
    assert capsys.readouterr().err == "osum label: 4 of 10 clips; 2.50 rec/s, 30.0 audio h/h, 1 errors\n"
