"""Cutting long audio at pauses and stitching the answers (osum/inference/long_audio.py), and the speech detector
(osum/inference/vad.py) on speech, silence and noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osum.data.audio import SAMPLE_RATE
from osum.data.tts import synthesize_array
from osum.inference.long_audio import (
    Piece,
    compression_ratio,
    fit_to_speech,
    plan_pieces,
    stitch,
    tidy_words,
)
from osum.inference.vad import SpeechDetector, SpeechMap
from osum.tasks import Segment, Word, get_task

S = SAMPLE_RATE


def _map(regions: list[tuple[float, float]], seconds: float) -> SpeechMap:
    n = int(seconds * S)
    return SpeechMap(torch.zeros(n // 512), tuple((int(a * S), int(b * S)) for a, b in regions), n)


def test_a_clip_that_fits_is_one_piece_and_silence_is_none():
    wave = torch.zeros(10 * S)
    assert plan_pieces(wave, _map([(1, 2)], 10), 30 * S, skip_silence=True) == [Piece(0, 10 * S)]
    assert plan_pieces(wave, _map([], 10), 30 * S, skip_silence=True) == []
    assert plan_pieces(wave, _map([], 10), 30 * S, skip_silence=False) == [Piece(0, 10 * S)]


def test_regions_are_joined_while_the_piece_fits_the_window():
    wave = torch.zeros(100 * S)
    regions = [(1, 9), (10, 20), (22, 29), (31, 40), (70, 75)]
    pieces = plan_pieces(wave, _map(regions, 100), 30 * S, skip_silence=True)
    assert [(p.start / S, p.end / S) for p in pieces] == [(1, 29), (31, 40), (70, 75)]
    assert all(p.seconds <= 30 for p in pieces)


def test_speech_without_a_pause_is_cut_at_its_quietest_point():
    rng = np.random.default_rng(0)
    wave = torch.from_numpy(rng.normal(0, 0.3, 70 * S).astype(np.float32))
    wave[int(22.0 * S) : int(22.2 * S)] *= 0.01  # a quiet breath at 22 s
    pieces = plan_pieces(wave, _map([(0, 70)], 70), 30 * S, skip_silence=True)
    assert all(p.seconds <= 30 for p in pieces) and pieces[0].start == 0 and pieces[-1].end == 70 * S
    assert 22.0 <= pieces[0].end / S <= 22.2
    assert all(a.end == b.start for a, b in zip(pieces, pieces[1:], strict=False))


def test_word_times_stay_in_the_clip_in_order_and_have_length():
    words = [Word("a", 0.0, 0.5), Word("b", 0.5, 0.5), Word("c", 0.4, 2.3), Word("d", 2.5, 2.9)]
    tidy = tidy_words(words, duration=2.0)
    assert all(0 <= w.start < w.end <= 2.0 for w in tidy), tidy
    assert all(a.end <= b.start for a, b in zip(tidy, tidy[1:], strict=False)), tidy
    assert [w.word for w in tidy] == ["a", "b", "c", "d"]


def test_words_leave_the_pauses():
    words = [Word("end.", 1.0, 4.0), Word("next", 4.2, 5.0), Word("in-pause", 6.1, 6.2)]
    fitted = fit_to_speech(words, [(0.5, 1.6), (4.5, 5.5), (7.0, 8.0)])
    assert fitted == [Word("end.", 1.0, 1.6), Word("next", 4.5, 5.0), Word("in-pause", 6.1, 6.2)]


def test_stitching_puts_the_pieces_in_the_recordings_time():
    sgc, srwt = get_task("sgc"), get_task("srwt")
    pieces = [Piece(1 * S, 21 * S), Piece(30 * S, 35 * S)]
    answers = [sgc.parse("hello there<female>"), sgc.parse("bye<male>")]
    r = stitch(sgc, pieces, answers, sgc.parse(""))
    assert r.transcript == "hello there bye" and r.labels == {"gender": "female"}
    assert r.label_share == {"gender": 0.8}  # 20 of 25 seconds of speech
    assert r.segments == (Segment(1.0, 21.0, "hello there", {"gender": "female"}), Segment(30.0, 35.0, "bye", {"gender": "male"}))
    timed = [srwt.parse("hello<0.10,0.50> there<0.60,0.90>"), srwt.parse("bye<0.00,0.40>")]
    r = stitch(srwt, pieces, timed, srwt.parse(""))
    assert [(w.word, w.start, w.end) for w in r.words] == [("hello", 1.1, 1.5), ("there", 1.6, 1.9), ("bye", 30.0, 30.4)]
    assert stitch(sgc, [], [], sgc.parse("")) == sgc.parse("")
    d = r.to_dict()
    assert d["segments"][1] == {"start": 30.0, "end": 35.0, "text": "bye", "labels": {}}


def test_compression_ratio_flags_repetition():
    assert compression_ratio("") is None
    assert compression_ratio("the cat sat on the mat") < 1.5
    assert compression_ratio("center " * 40) > 2.4


@pytest.fixture(scope="module")
def detector() -> SpeechDetector:
    return SpeechDetector()


def test_the_detector_finds_speech_and_not_silence_or_noise(detector):
    threads = torch.get_num_threads()
    speech = synthesize_array("the quick brown fox jumps over the lazy dog", "en-us")
    wave = torch.from_numpy(np.concatenate([np.zeros(2 * S, np.float32), speech, np.zeros(3 * S, np.float32)]))
    found = detector(wave)
    assert len(found.regions) == 1 and found.no_speech_prob() < 0.1
    start, end = found.regions[0]
    assert abs(start / S - 2.0) < 0.3 and abs(end / S - (2.0 + speech.shape[0] / S)) < 0.5
    assert found.no_speech_prob(0, int(1.5 * S)) > 0.5  # the leading silence alone
    rng = np.random.default_rng(0)
    for quiet in (torch.zeros(5 * S), torch.from_numpy((0.05 * rng.normal(size=5 * S)).astype(np.float32))):
        nothing = detector(quiet)
        assert nothing.regions == () and nothing.no_speech_prob() > 0.5
    assert detector(torch.zeros(100)).no_speech_prob() == 1.0  # shorter than one frame
    assert torch.get_num_threads() == threads  # silero's import sets 1 thread for the process; ours is put back


def test_the_detector_keeps_the_process_thread_count():
    """silero_vad's import sets torch to 1 thread for the whole process (every model then ran on one core)."""
    import subprocess
    import sys

    code = (
        "import torch; torch.set_num_threads(2)\n"
        "from osum.inference.vad import SpeechDetector\n"
        "SpeechDetector()(torch.zeros(16000)); print(torch.get_num_threads())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-1] == "2"
