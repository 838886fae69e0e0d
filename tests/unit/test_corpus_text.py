"""The real-text sentence pool (osum/data/synth/corpus_text.py): cleaning rules, per-source splits, and its use
by sample_sentence. Tests that read the Debian sources (fortunes, wordnet-base, wamerican) skip without them."""

from __future__ import annotations

import numpy as np
import pytest

from osum.data.synth import corpus_text as ct
from osum.data.synth.text import REAL_TEXT_SHARE, normalize_sentence, sample_sentence, words_of
from osum.errors import ConfigError

HAVE_SOURCES = all(s.path.is_file() for s in ct.default_sources()) and ct.WORD_LIST.is_file()
needs_sources = pytest.mark.skipif(not HAVE_SOURCES, reason="Debian text packages not installed")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Tom & Jerry ran -- fast; very fast", "Tom and Jerry ran, fast, very fast."),
        ("I have 3 cats and 12 dogs.", "I have three cats and twelve dogs."),
        ('"Hello," she said, "it\'s late."', "Hello, she said, it's late."),
        ("the well-known cafe\u0301 is open!!", "The well known cafe is open!"),
        ("Why not?!  Really...", "Why not? Really."),
        ("'Tis the season to be jolly", "Tis the season to be jolly."),
        ("Wait... what did you say?", "Wait, what did you say?"),
    ],
)
def test_cleaning_makes_speakable_sentences(raw, clean):
    assert ct.clean_sentence(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "In 1984 the clocks struck thirteen.",  # a number over 999
        "It costs 3.50 on the 20th.",  # decimals, ordinals
        "Visit http://example.org for more news today.",  # URL
        "Mail me at someone@example.com please.",
        "THE END IS NEAR, they said.",  # all caps
        "The NASA probe landed on time.",  # acronym
        "x = f(y) + 1 is the code.",  # code and symbols
        "Two words.",  # too short
        " ".join(["word"] * 21),  # too long
        "He met J. R. Smith yesterday at home.",  # an initial left inside
    ],
)
def test_cleaning_rejects_unspeakable_text(raw):
    assert ct.clean_sentence(raw) is None


def test_vocabulary_filter_and_verse_capitals():
    vocab = frozenset("the cat sat on mat hold night and see flame".split())
    assert ct.clean_sentence("The cat sat on the mat", vocab) == "The cat sat on the mat."
    assert ct.clean_sentence("The cat sat on the zorb", vocab) is None
    assert (
        ct.clean_sentence("Hold the night, And see the flame", vocab) == "Hold the night, and see the flame."
    )


def test_sentence_splitting_and_readers(tmp_path):
    assert ct.split_sentences("It rained. Then it stopped!  Did it? yes.  Mr. Brown left.") == [
        "It rained.",
        "Then it stopped!",
        "Did it? yes.",
        "Mister Brown left.",
    ]
    fortune = tmp_path / "fortune"
    fortune.write_text(
        "A rule of life:\n\tNever eat soup\nwith a fork.\n\t\t-- Somebody Famous\n%\n"
        "Q: Why is the sky so blue?\nA: Because it likes the colour.\n%\n"
    )
    assert list(ct.fortune_texts(fortune)) == [
        "Never eat soup with a fork.",
        "Why is the sky so blue?",
        "Because it likes the colour.",
    ]
    wordnet = tmp_path / "data.adv"
    wordnet.write_text(
        "  1 This software and database is provided by Princeton\n"
        '00001 02 r 01 well 0 000 | in a good way; "she sings well"; "he did the job very well"\n'
    )
    assert list(ct.wordnet_texts(wordnet)) == ["he did the job very well"]


def test_split_is_per_source_and_test_wins(tmp_path):
    (tmp_path / "a").write_text("The cat sat on the mat.\n%\nThe dog ran after the ball.\n%\n")
    (tmp_path / "b").write_text('00002 | a gloss; "the cat sat on the mat"; "birds fly south in winter"\n')
    train = ct.TextSource("fortunes/a", "fortunes", tmp_path / "a", "fortune")
    test = ct.TextSource("wordnet/adv", "wordnet-base", tmp_path / "b", "wordnet")
    assert (train.split, test.split) == ("train", "test")
    pool = ct.build_pool([train, test], None)
    assert pool == {
        "fortunes/a": ["The dog ran after the ball."],
        "wordnet/adv": ["The cat sat on the mat.", "Birds fly south in winter."],
    }


def test_missing_source_names_package_and_install_script(tmp_path):
    source = ct.TextSource("fortunes/x", "fortunes", tmp_path / "nope", "fortune")
    with pytest.raises(ConfigError, match=r"fortunes.*install_system_deps\.sh"):
        ct.read_source(source)
    with pytest.raises(ConfigError, match="wamerican"):
        ct.load_vocabulary(tmp_path / "words")


@needs_sources
def test_real_pool_splits_are_disjoint_and_large():
    train, test = ct.sentence_pool("train"), ct.sentence_pool("test")
    train_norm = {normalize_sentence(t) for t in train}
    test_norm = {normalize_sentence(t) for t in test}
    assert len(train_norm) >= 20_000 and len(test_norm) >= 2_000
    assert len(train_norm) == len(train) and len(test_norm) == len(test)  # de-duplicated
    assert not train_norm & test_norm
    for text in train[::500] + test[::500]:
        assert ct.MIN_WORDS <= len(words_of(text)) <= ct.MAX_WORDS and text.isascii() and text[-1] in ".?!"
    held_out = [s for s in ct.default_sources() if s.split == "test"]
    assert {s.name for s in held_out} == ct.TEST_SOURCES
    vocab = ct.load_vocabulary()
    for source in held_out:  # every sentence of a test-only source is absent from train
        cleaned = {ct.clean_sentence(raw, vocab) for raw in ct.read_source(source)} - {None}
        assert cleaned and not {normalize_sentence(t) for t in cleaned} & train_norm
    card = "\n".join(ct.card_lines())
    for package in ("fortunes", "wordnet-base", "wamerican", "BSD-3-Clause", "WordNet 3.0"):
        assert package in card


@needs_sources
def test_sample_sentence_mixes_real_text_and_is_deterministic():
    def draws(seed: int, kind: str, split: str) -> list[str]:
        rng = np.random.default_rng(seed)
        return [sample_sentence(kind, split, rng, 0.2, max_words=12) for _ in range(300)]

    for split in ("train", "test"):
        pool = set(ct.sentence_pool(split))
        other = {normalize_sentence(t) for t in ct.sentence_pool("test" if split == "train" else "train")}
        general = draws(3, "general", split)
        assert general == draws(3, "general", split)
        share = np.mean([t in pool for t in general])
        assert REAL_TEXT_SHARE - 0.1 < share <= REAL_TEXT_SHARE + 0.06
        assert all(len(words_of(t)) <= 12 for t in general)
        assert not {normalize_sentence(t) for t in general} & other
        emotion = draws(4, "emotion:fear", split)
        assert emotion == draws(4, "emotion:fear", split)
        framed = [t for t in emotion if pool.intersection(ct.split_sentences(t))]
        assert 0.15 < len(framed) / len(emotion) < 0.45  # EMOTION_REAL_SHARE of them wrap a real sentence
    assert draws(5, "新闻科普", "train") == draws(5, "新闻科普", "train")
