"""Metrics against hand-computed values, edge cases, and jiwer where it applies."""

from __future__ import annotations

import math

import jiwer
import pytest

from osum.evaluation.metrics import answer_accuracy, char_errors, classification, word_errors, word_timing
from osum.evaluation.normalize import normalize_chinese, normalize_english
from osum.tasks import Word


def test_wer_hand_computed_and_equal_to_jiwer():
    refs, hyps = ["a b c d", "the cat sat"], ["a x c", "the cat sat on it"]
    c = word_errors(refs, hyps)
    # utterance 1: b->x (S), d deleted (D); utterance 2: two insertions
    assert (c.substitutions, c.deletions, c.insertions, c.hits) == (1, 1, 2, 5)
    assert c.rate == pytest.approx(4 / 7)
    assert c.rate == pytest.approx(jiwer.wer(refs, hyps))


def test_wer_edge_cases():
    assert word_errors([""], [""]).rate == 0.0
    assert word_errors([""], ["extra words"]).insertions == 2 and math.isinf(word_errors([""], ["x"]).rate)
    empty_hyp = word_errors(["three ref words"], [""])
    assert (empty_hyp.deletions, empty_hyp.rate) == (3, 1.0)
    assert word_errors(["a", ""], ["a", "b"]).rate == 1.0  # 1 insertion over 1 reference word
    with pytest.raises(ValueError, match="2 references but 1"):
        word_errors(["a", "b"], ["a"])


def test_normalised_wer_ignores_case_punctuation_numbers_and_spelling():
    c = word_errors(["What is seven plus five?"], ["what is 7 plus 5"], normalize_english)
    assert c.rate == 0.0
    assert word_errors(["The colour grey."], ["the color gray"], normalize_english).rate == 0.0


def test_cer_for_chinese():
    c = char_errors(["你好，世界"], ["你号世界啊"], normalize_chinese)
    assert (c.substitutions, c.insertions, c.hits, c.reference_length) == (1, 1, 3, 4)
    assert c.rate == pytest.approx(jiwer.cer("你好世界", "你号世界啊"))


def test_classification_hand_computed():
    labels = ["female", "male"]
    refs = ["female", "female", "male", "male"]
    hyps = ["female", "male", "male", None]
    r = classification(refs, hyps, labels)
    assert r.accuracy == 0.5 and r.invalid_share == 0.25 and r.n == 4
    assert r.confusion == [[1, 1, 0], [0, 1, 1]]
    assert r.precision == {"female": 1.0, "male": 0.5} and r.recall == {"female": 0.5, "male": 0.5}
    f_female, f_male = 2 * 1 * 0.5 / 1.5, 0.5
    assert r.macro_f1 == pytest.approx((f_female + f_male) / 2)
    none = classification(["male"], [None], labels)
    assert none.accuracy == 0.0 and none.invalid_share == 1.0
    with pytest.raises(ValueError, match="not in the label set"):
        classification(["child"], ["child"], labels)


def test_word_timing_aligns_and_scores_matched_words():
    ref = [Word("hello", 0.0, 0.5), Word("big", 0.6, 0.9), Word("world", 1.0, 1.5)]
    hyp = [Word("Hello", 0.05, 0.45), Word("world", 1.25, 1.5), Word("again", 1.6, 2.0)]  # "big" missing
    r = word_timing([ref], [hyp])
    assert (r.matched, r.reference_words, r.hypothesis_words) == (2, 3, 3)
    assert r.mean_start_error == pytest.approx((0.05 + 0.25) / 2)
    assert r.mean_end_error == pytest.approx((0.05 + 0.0) / 2)
    assert r.aas == pytest.approx((0.05 + 0.25 + 0.05 + 0.0) / 4)
    assert r.within_100ms == pytest.approx(3 / 4) and r.within_200ms == pytest.approx(3 / 4)
    unmatched = word_timing([ref], [None])
    assert unmatched.matched == 0 and math.isnan(unmatched.aas)


def test_answer_accuracy():
    assert answer_accuracy(["Twelve", "paris"], ["twelve", None]) == 0.5
    assert answer_accuracy(["twelve"], ["12"], normalize_english) == 1.0
    assert answer_accuracy([], []) == 0.0


def test_calibration_error():
    from osum.evaluation.metrics import calibration_error

    assert calibration_error([]) == 0.0
    assert calibration_error([(1.0, True)] * 4) == 0.0  # sure and right
    assert calibration_error([(0.75, True)] * 3 + [(0.75, False)]) == pytest.approx(0.0)  # 75% sure, 75% right
    assert calibration_error([(0.9, False)] * 2) == pytest.approx(0.9)  # sure and wrong
    # two bins: 0.95 x 2 (one right) and 0.55 x 2 (both right): 0.5 * |0.5 - 0.95| + 0.5 * |1 - 0.55|
    pairs = [(0.95, True), (0.95, False), (0.55, True), (0.55, True)]
    assert calibration_error(pairs) == pytest.approx(0.45)
