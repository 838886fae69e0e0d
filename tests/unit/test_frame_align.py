"""The frame aligner (osum/data/frame_align.py): letters, frame targets, the Viterbi path through a transcript,
training a head and saving/loading it, and the shipped aligner on words spoken at known times."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osum.cli.main import main
from osum.data.align import align_manifest, load_aligner
from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.frame_align import (
    OTHER,
    PAUSE,
    SYMBOLS,
    FrameAligner,
    HeadConfig,
    frame_targets,
    letter_path,
    letters,
    train_frame_aligner,
    viterbi_spans,
    with_long_pauses,
)
from osum.data.reader import read_any
from osum.errors import ConfigError, OsumError
from osum.evaluation.metrics import word_timing
from osum.tasks.base import Word
from osum.testing.tiny import words_at_known_times

WORDS = ["seven", "orange", "kites", "drifted", "over", "harbor"]


def _logp(symbols: list[int], sure: float = 0.9) -> np.ndarray:
    """Frame log-probabilities ``(T, C)`` that put ``sure`` on each frame's symbol."""
    p = np.full((len(symbols), len(SYMBOLS)), (1 - sure) / (len(SYMBOLS) - 1))
    p[np.arange(len(symbols)), symbols] = sure
    return np.log(p)


def test_letters_keep_letters_and_apostrophes_and_mark_other_signs():
    assert [SYMBOLS[i] for i in letters("Don't!")] == list("don't")
    assert [SYMBOLS[i] for i in letters("Café")] == list("cafe")
    assert letters("42") == [OTHER, OTHER] and letters("--") == [OTHER]


def test_frame_targets_share_a_word_among_its_letters():
    target = frame_targets([Word("ab", 0.04, 0.12), Word("c", 0.16, 0.18)], 10)
    a, b, c = letters("abc")
    assert target.tolist() == [PAUSE, PAUSE, a, a, b, b, PAUSE, PAUSE, c, PAUSE]


def test_viterbi_finds_the_words_and_the_pauses_between_them():
    a, b, c, d = letters("abcd")
    frames = [PAUSE, PAUSE, a, a, b, PAUSE, PAUSE, PAUSE, c, c, d, d, d, PAUSE]
    assert viterbi_spans(_logp(frames), ["ab", "cd"]) == [(2, 5), (8, 13)]
    # words spoken without a pause between them, no pause at either end
    assert viterbi_spans(_logp([a, b, b, c, d]), ["ab", "cd"]) == [(0, 3), (3, 5)]
    # a word with more letters than frames skips letters at a cost; each word keeps at least one frame
    assert viterbi_spans(_logp([PAUSE, a, c, PAUSE, d]), ["abc", "d"]) == [(1, 3), (4, 5)]
    with pytest.raises(OsumError, match="more letters than the audio has frames"):
        viterbi_spans(_logp([a]), ["ab", "cd"])


def test_letter_path_follows_the_letters_in_order():
    a, b, c = letters("abc")
    assert letter_path(_logp([a, a, b, c, c, c]), [a, b, c]).tolist() == [a, a, b, c, c, c]
    assert letter_path(_logp([a, a]), [a, b, c]).tolist() == [
        a,
        b,
    ]  # fewer frames than letters: shared evenly


def test_long_pauses_move_the_later_words_with_their_sound():
    import torch

    rng = np.random.default_rng(0)
    wave = np.full(SAMPLE_RATE, 1e-3, np.float32)  # 1 s at a low floor, three loud "words"
    words = [Word("a", 0.1, 0.2), Word("b", 0.4, 0.5), Word("c", 0.7, 0.9)]
    for w in words:
        wave[int(w.start * SAMPLE_RATE) : int(w.end * SAMPLE_RATE)] = 0.5
    for _ in range(10):
        longer, moved = with_long_pauses(torch.from_numpy(wave), words, rng)
        added = (longer.shape[0] - wave.shape[0]) / SAMPLE_RATE
        assert 0.2 <= added <= 4.5
        for old, new in zip(words, moved, strict=True):
            assert new.end - new.start == pytest.approx(old.end - old.start, abs=1e-3)
            a, b = int(new.start * SAMPLE_RATE) + 8, int(new.end * SAMPLE_RATE) - 8
            assert float(longer[a:b].abs().min()) == pytest.approx(0.5)  # the word's own sound, moved with it
        quiet = longer.abs() < 0.1
        assert float(quiet.float().mean()) > float((np.abs(wave) < 0.1).mean())  # the pauses are quiet


@pytest.fixture(scope="module")
def timed_clip(tmp_path_factory):
    """The words spoken one by one (espeak-ng), each trimmed, with 0.25 s pauses: exact reference times."""
    return words_at_known_times(WORDS, tmp_path_factory.mktemp("frame-align"))


def test_the_shipped_aligner_times_words_within_a_frame_or_two(timed_clip):
    path, reference = timed_clip
    aligner = load_aligner("frames")
    assert isinstance(aligner, FrameAligner)
    words = aligner.align(load_audio(str(path)), " ".join(WORDS))
    assert [w.word for w in words] == WORDS
    report = word_timing([reference], [words])
    assert report.aas < 0.04 and report.within_50ms >= 0.9  # seconds; the attention aligner: ~0.1 s here
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))


def test_long_recordings_are_read_window_by_window(timed_clip):
    """Two copies of the clip 31 s apart: the second copy's words land 31 s (plus the clip) later."""
    path, reference = timed_clip
    wave = load_audio(str(path))
    gap = np.zeros(int(31 * SAMPLE_RATE) - wave.shape[0], np.float32)
    joined = np.concatenate([wave.numpy(), gap, wave.numpy()])
    import torch

    words = load_aligner("frames").align(torch.from_numpy(joined), " ".join(WORDS * 2))
    second = [Word(w.word, w.start - 31.0, w.end - 31.0) for w in words[len(WORDS) :]]
    assert word_timing([reference], [second]).aas < 0.06


def test_a_head_trains_saves_and_loads(timed_clip, tmp_path):
    path, reference = timed_clip
    wave = load_audio(str(path))
    summary = train_frame_aligner(
        [(wave, reference)] * 4,
        tmp_path / "head",
        head=HeadConfig(hidden=32, layers=1),
        epochs=30,
        rounds=2,
        pause_share=1.0,
    )
    assert summary.clips == 8 and len(summary.loss) == 60  # each clip again with long pauses and summary.loss[-1] < summary.loss[0] / 2
    meta = json.loads((tmp_path / "head" / "aligner.json").read_text())
    assert meta["encoder"] == "mini-stage1-base" and meta["head"]["hidden"] == 32
    loaded = FrameAligner.load(tmp_path / "head")
    words = loaded.align(wave, " ".join(WORDS))
    assert word_timing([reference], [words]).aas < 0.1  # it learnt the clip it saw
    (tmp_path / "bad").mkdir()
    with pytest.raises(ConfigError, match="not a frame aligner"):
        FrameAligner.load(tmp_path / "bad")


def test_align_and_train_aligner_commands(timed_clip, tmp_path, capsys):
    path, reference = timed_clip
    timed = {"key": "a", "audio": str(path), "task": "srwt", "text": " ".join(WORDS)}
    timed["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in reference]
    manifest = tmp_path / "in.jsonl"
    manifest.write_text(json.dumps(timed) + "\n")
    summary = align_manifest(manifest, tmp_path / "out.jsonl", progress=False)
    (record,) = read_any(tmp_path / "out.jsonl")
    assert summary.clips == 1 and record.extra == {"aligner": "frames", "refined": False}
    assert word_timing([reference], [record.words]).aas < 0.04
    with pytest.raises(ConfigError, match="no such folder"):
        load_aligner(str(tmp_path / "missing"))
    assert main(["data", "align", str(manifest), str(tmp_path / "att.jsonl"), "--aligner", "attention"]) == 0
    (record,) = read_any(tmp_path / "att.jsonl")
    assert record.extra["aligner"] == "attention" and record.extra["refined"] is True
    capsys.readouterr()
    out = tmp_path / "trained"
    assert (
        main(["data", "train-aligner", str(manifest), str(out), "--epochs", "1", "--rounds", "1", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["clips"] == 1 and (out / "head.safetensors").is_file()
    untimed = tmp_path / "untimed.jsonl"
    untimed.write_text(json.dumps({"key": "b", "audio": str(path), "text": "seven"}) + "\n")
    assert main(["data", "train-aligner", str(untimed), str(out)]) == 2
    assert "no clip has timed words" in capsys.readouterr().err
