"""`osum data align` (osum/data/align.py): word times of a known transcript from Whisper tiny.en's alignment heads,
refined on the audio's pauses; measured here against words placed at known times."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from osum.cli.main import main
from osum.data.align import AttentionAligner, align_manifest, frame_levels, refine_words
from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.reader import read_any
from osum.evaluation.metrics import word_timing
from osum.tasks.base import Word
from osum.testing.tiny import words_at_known_times

WORDS = ["seven", "orange", "kites", "drifted", "over", "harbor"]


@pytest.fixture(scope="module")
def timed_clip(tmp_path_factory):
    """The words spoken one by one (espeak-ng), each trimmed, with 0.25 s pauses: exact reference times."""
    return words_at_known_times(WORDS, tmp_path_factory.mktemp("align"))


def test_refinement_moves_boundaries_onto_the_sound():
    levels = np.full(100, -60.0)
    levels[20:40] = -5.0  # the word's sound: 0.20-0.40 s
    levels[60:70] = -10.0
    words = [Word("a", 0.1, 0.5), Word("b", 0.5, 0.9), Word("c", 0.9, 1.0)]
    assert refine_words(words, levels) == [Word("a", 0.2, 0.4), Word("b", 0.6, 0.7), Word("c", 0.9, 1.0)]
    wave = np.zeros(1600)
    wave[800:] = 0.5
    assert frame_levels(wave)[0] < -100 and frame_levels(wave)[-1] == 0.0


def test_known_word_times_are_found(timed_clip):
    path, reference = timed_clip
    aligner = AttentionAligner()
    wave = load_audio(str(path))
    dtw = aligner.align(wave, " ".join(WORDS), refine=False)
    refined = aligner.align(wave, " ".join(WORDS))
    assert [w.word for w in refined] == WORDS
    raw, better = word_timing([reference], [dtw]), word_timing([reference], [refined])
    assert better.matched == len(WORDS)
    assert better.aas < 0.15 and better.aas <= raw.aas  # seconds; refining on the pauses does not hurt
    assert all(a.end <= b.start + 1e-6 for a, b in zip(refined, refined[1:], strict=False))


def test_a_manifest_becomes_timed_srwt_records(timed_clip, tmp_path, capsys):
    path, _ = timed_clip
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(31 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    lines = [
        {"key": "a", "audio": str(path), "task": "asr", "text": " ".join(WORDS)},
        {"key": "b", "audio": str(path), "task": "asr", "text": ""},
        {"key": "c", "audio": str(long), "task": "asr", "text": "too long"},
    ]
    manifest = tmp_path / "in.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    summary = align_manifest(manifest, tmp_path / "out.jsonl", "attention", progress=False)
    assert summary.clips == 1 and summary.words == len(WORDS)
    assert summary.skipped == {"longer than 30 s": 1, "no transcript": 1}
    (record,) = read_any(tmp_path / "out.jsonl")
    assert record.task == "srwt" and [w.word for w in record.words] == WORDS
    assert record.extra == {"aligner": "attention", "refined": True}
    cli = ["data", "align", str(manifest), str(tmp_path / "cli.jsonl"), "--aligner", "attention:mini-stage1-base"]
    assert main([*cli, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 1
    assert main(["data", "align", str(manifest), str(tmp_path / "cli.txt")]) == 2
    assert "manifest file" in capsys.readouterr().err
