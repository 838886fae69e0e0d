"""Tests of the Lhotse reader on manifests built with lhotse's own API (lhotse is a test dependency only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from osum.data.audio import SAMPLE_RATE
from osum.data.lhotse_io import read_lhotse
from osum.data.manifest import detect_format, load_utterance_audio
from osum.data.reader import read_any
from osum.errors import ManifestError
from osum.tasks import Word

lhotse = pytest.importorskip("lhotse")
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet  # noqa: E402
from lhotse.supervision import AlignmentItem  # noqa: E402


@pytest.fixture()
def corpus(tmp_path: Path) -> dict[str, Path]:
    """A 3 s 16 kHz mono recording and a 2 s 22.05 kHz stereo one, and Lhotse manifests over them."""
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, rng.uniform(-0.5, 0.5, 3 * SAMPLE_RATE).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    sf.write(b, rng.uniform(-0.5, 0.5, (44100, 2)).astype(np.float32), 22050, subtype="FLOAT")
    recordings = RecordingSet.from_recordings([Recording.from_file(a), Recording.from_file(b)])
    sups = [
        SupervisionSegment(
            "s1",
            "a",
            start=0.5,
            duration=1.0,
            channel=0,
            text="今天的新闻",
            language="zh",
            speaker="spk1",
            gender="F",
            custom={"task": "ssr", "style": "新闻科普", "age": "adult", "question": "什么风格？"},
        ),
        SupervisionSegment(
            "s2",
            "a",
            start=1.5,
            duration=1.25,
            channel=0,
            text="hello world",
            alignment={"word": [AlignmentItem("hello", 1.6, 0.4), AlignmentItem("world", 2.1, 0.5)]},
            custom={"task": "<TRANSCRIBE> <ALIGN>"},
        ),
        SupervisionSegment(
            "s3",
            "b",
            start=0.0,
            duration=1.0,
            channel=[0, 1],
            text="How is the weather",
            custom={"task": "sttc", "answer": "It is sunny.", "emotion": "happy", "event": "nonsense"},
        ),
        SupervisionSegment(
            "s4",
            "b",
            start=1.0,
            duration=1.0,
            channel=[0, 1],
            text="a man",
            gender="male",
            custom={"task": "sgc", "words": [{"word": "a", "start": 0.0, "end": 0.2}]},
        ),
    ]
    supervisions = SupervisionSet.from_segments(sups)
    recordings.to_file(tmp_path / "demo_recordings_train.jsonl.gz")
    supervisions.to_file(tmp_path / "demo_supervisions_train.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    cuts.trim_to_supervisions(keep_overlapping=False).to_file(tmp_path / "trimmed_cuts.jsonl")
    return {"a": a, "b": b, "dir": tmp_path}


def _check_corpus(utts, corpus) -> None:
    assert [u.key for u in utts] == ["s1", "s2", "s3", "s4"]
    s1, s2, s3, s4 = utts
    assert (s1.audio, s1.task, s1.text, s1.language, s1.speaker) == (
        str(corpus["a"]),
        "ssr",
        "今天的新闻",
        "zh",
        "spk1",
    )
    assert dict(s1.labels) == {"gender": "female", "style": "新闻科普", "age": "adult"}
    assert (s1.start, s1.end, s1.duration) == (0.5, 1.5, 1.0)
    assert dict(s1.extra) == {"question": "什么风格？"}
    assert s1.target() == "今天的新闻<新闻科普>"
    assert s2.task == "srwt" and (s2.start, s2.end) == (1.5, 2.75)
    assert s2.words == (Word("hello", 0.1, 0.5), Word("world", 0.6, 1.1))  # shifted to the segment
    assert s2.target() == "hello<0.10,0.50> world<0.60,1.10>"
    assert s3.answer == "It is sunny." and dict(s3.labels) == {"emotion": "happy"}  # unknown event dropped
    assert s3.audio == str(corpus["b"]) and (s3.start, s3.end) == (0.0, 1.0)
    assert s4.words == (Word("a", 0.0, 0.2),) and s4.target() == "a man<male>"


def test_cutset_jsonl_gz(corpus):
    path = corpus["dir"] / "cuts.jsonl.gz"
    assert detect_format(path) == "lhotse_cuts"
    _check_corpus(list(read_any(path)), corpus)
    _check_corpus(list(read_lhotse(path)), corpus)


def test_trimmed_cuts_give_the_same_segments(corpus):
    """trim_to_supervisions moves the offset into cut.start; the absolute segment stays the same."""
    _check_corpus(list(read_any(corpus["dir"] / "trimmed_cuts.jsonl")), corpus)


def test_recording_and_supervision_sets(corpus):
    recs = corpus["dir"] / "demo_recordings_train.jsonl.gz"
    sups = corpus["dir"] / "demo_supervisions_train.jsonl.gz"
    assert detect_format(recs) == "lhotse_recordings" and detect_format(sups) == "lhotse_supervisions"
    _check_corpus(list(read_lhotse(recs, sups)), corpus)
    _check_corpus(list(read_any(recs)), corpus)  # the partner file is found by name
    _check_corpus(list(read_any(sups)), corpus)


def test_segment_audio_matches_lhotse(corpus):
    cuts = {c.id: c for c in CutSet.from_file(corpus["dir"] / "trimmed_cuts.jsonl")}
    ours = {u.key: u for u in read_any(corpus["dir"] / "cuts.jsonl.gz")}
    for key in ("s1", "s2"):  # the 16 kHz recording: sample-exact
        expected = torch.from_numpy(cuts[key].load_audio()[0])
        assert torch.equal(load_utterance_audio(ours[key]), expected)
    # The 22.05 kHz stereo recording: lhotse at 16 kHz, channels averaged, versus ours.
    expected = torch.from_numpy(cuts["s4"].resample(SAMPLE_RATE).load_audio().mean(axis=0))
    got = load_utterance_audio(ours["s4"])
    assert got.shape == expected.shape
    # White noise up to 11 kHz: the two resamplers differ only around their 8 kHz cut-off.
    assert torch.corrcoef(torch.stack([got, expected.float()]))[0, 1] > 0.97


def test_errors_name_file_and_line(corpus, tmp_path):
    line = json.loads(next(iter(_lines(corpus["dir"] / "cuts.jsonl.gz"))))
    mixed = {"id": "m", "type": "MixedCut", "tracks": []}
    url = json.loads(json.dumps(line))
    url["recording"]["sources"][0]["type"] = "url"
    badtask = json.loads(json.dumps(line))
    badtask["supervisions"][0]["custom"]["task"] = "dance"
    badstyle = json.loads(json.dumps(line))
    badstyle["supervisions"][0]["custom"]["style"] = "opera"
    stereo = json.loads(json.dumps(line))
    stereo["recording"]["channel_ids"] = [0, 1]
    stereo["recording"]["sources"][0]["channels"] = [0, 1]
    lines = [mixed, url, badtask, badstyle, stereo, line]
    path = tmp_path / "bad_cuts.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in lines), encoding="utf-8")
    reader = read_lhotse(path, on_error="skip")
    assert [u.key for u in reader] == ["s2", "s2", "s1", "s2"]  # the line's other supervision is fine
    wheres = [w for w, _ in reader.skipped]
    sup = [
        f"{path}:{n}: supervision '{s}'"
        for n, s in [(2, "s1"), (2, "s2"), (3, "s1"), (4, "s1"), (5, "s1"), (5, "s2")]
    ]
    assert wheres == [f"{path}:1", *sup]
    reasons = " | ".join(r for _, r in reader.skipped)
    for expected in (
        "cut type 'MixedCut' is not supported",
        "source type 'url'",
        "unknown task 'dance'",
        "label style='opera'",
        "uses channel(s) [0] of a 2-channel recording",
    ):
        assert expected in reasons
    with pytest.raises(ManifestError, match=rf"^{path}:1: cut type 'MixedCut'"):
        list(read_lhotse(path))


def test_missing_recording_and_partner(corpus, tmp_path):
    sups = tmp_path / "x_supervisions.jsonl"
    sups.write_text(json.dumps({"id": "q", "recording_id": "zzz", "start": 0, "duration": 1}) + "\n")
    with pytest.raises(
        ManifestError, match="x_supervisions.jsonl: a Lhotse supervisions manifest needs its recordings"
    ):
        read_any(sups)
    recs = corpus["dir"] / "demo_recordings_train.jsonl.gz"
    with pytest.raises(ManifestError, match=rf"{sups}:1: recording 'zzz' is not in"):
        list(read_lhotse(recs, sups))


def _lines(path: Path):
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        yield from f
