"""Sentence material: templates per style genre and per emotion, filled from :mod:`~osum.data.synth.lexicon`.

Every sentence belongs to exactly one split, decided by a hash of its normalised text (:func:`text_split`), so
a sentence that is in the test set can never be drawn for training, whichever task or genre produced it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from osum.data.synth.lexicon import LEXICON
from osum.errors import OsumError

SPLITS = ("train", "test")
T = TypeVar("T")

# Style genres; keys are OSUM's style labels (osum.tasks.ssr.STYLE), glosses in comments.
STYLE_TEMPLATES = MappingProxyType(
    {
        "新闻科普": (  # news and popular science
            "Scientists at the {institution} have found that {sci_subject} can {sci_verb} {sci_object}.",
            "According to a new report, {stat} rose by {percent} percent last {period}.",
            "The city council announced on {weekday} that the new {facility} will open in {month}.",
            "Forecasters warn that {weather} may affect {region} later this week.",
            "A recent study suggests that {habit} can improve {outcome}.",
            "Officials in {town} said that {stat} fell by {percent} percent this {period}.",
            "Researchers at the {institution} will present their results on {sci_subject} in {month}.",
        ),
        "恐怖故事": (  # horror story
            "The {old_place} was silent, until something began to {horror_verb} behind the {barrier}.",
            "At midnight, a {horror_thing} appeared at the end of the {dark_place}.",
            "Nobody who entered the {old_place} ever came back, and the {horror_sound} never stopped.",
            "She heard {horror_sound} from the {dark_place}, but she lived alone.",
            "The candle went out, and in the {dark_place} a {horror_thing} was waiting.",
            "Every night at three, {horror_sound} came from the {barrier} of the {old_place}.",
        ),
        "童话故事": (  # fairy tale
            "Once upon a time, a {royal} lived in a {fairy_home} beyond the {fairy_land}.",
            "The {creature} waved a {magic_item}, and the {fairy_object} turned into {fairy_result}.",
            "Long ago, in the {fairy_land}, there lived a {creature} who loved {fairy_love}.",
            "And so the {royal} and the {creature} lived happily ever after in the {fairy_home}.",
            "One morning, the {royal} found a {magic_item} hidden inside a {fairy_object}.",
            "The {creature} promised to guide the {royal} across the {fairy_land}.",
        ),
        "客服": (  # customer service
            "Thank you for calling {company}, my name is {name}, how may I help you today?",
            "I am sorry for the inconvenience, let me check your {account_item} right away.",
            "Your {order_item} has been shipped and should arrive {delivery}.",
            "Could you please confirm the {detail} on your account?",
            "Thank you for waiting, I can see your {account_item} here, and everything is in order.",
            "For security reasons, may I have your {detail}, please?",
            "Your {order_item} from {company} will arrive {delivery}, is there anything else I can do?",
        ),
        "诗歌散文": (  # poetry and prose
            "The {nature} {poetic_verb} beneath {sky}, and {poetic_noun} rest in the {season} {day_part}.",
            "O {nature}, how softly you {poetic_base} upon the {poetic_place}.",
            "{season} comes like {simile}, {poetic_adj} and slow.",
            "I walked across the {poetic_place}, where {poetic_noun} {poetic_base} like {simile}.",
            "In the {poetic_adj} {day_part}, the {nature} {poetic_verb} and the world grows still.",
        ),
        "有声书": (  # audiobook narrative prose
            "{name} closed the {book_object} and looked out at the {narr_place}, remembering {memory}.",
            "It was the {ordinal} {season} since {name} had left the {narr_place}.",
            "Chapter {chapter}. The {vehicle} reached {town} just before {day_part}.",
            "{name} did not answer at once; {pronoun} was thinking about {memory}.",
            "When the {vehicle} stopped, {name} picked up the {book_object} and stepped into the {day_part}.",
            "For a long time nobody spoke, and {name} watched the {narr_place} fade into the {day_part}.",
        ),
        "日常口语": (  # everyday conversation
            "Hey, did you see {casual_thing} {time}?",
            "I'm gonna grab some {food}, do you want anything?",
            "Honestly, {casual_thing} was kind of {casual_adj}.",
            "Oh yeah, {name} told me about that, it was so {casual_adj}.",
            "Can you text me when you get to the {casual_place}?",
            "So I was at the {casual_place} {time}, and guess who I saw? {name}!",
            "Wanna get some {food} after {casual_thing}?",
        ),
    }
)

# Emotion-bearing sentences; keys are OSUM's emotion labels (osum.tasks.ser.EMOTION) except "other".
EMOTION_TEMPLATES = MappingProxyType(
    {
        "happy": (
            "I am so happy, {good_news}!",
            "This is wonderful, {good_news}!",
            "What a lovely {good_thing}, it made my whole day!",
            "Yes, {good_news}, I can't stop smiling!",
            "Thank you so much, {name}, this {good_thing} is perfect!",
        ),
        "sad": (
            "I miss {lost_one} so much, nothing is the same now.",
            "Nothing has felt right since {sad_event}.",
            "I tried my best, {name}, but {sad_event}.",
            "I keep thinking about {lost_one}, and I feel so alone.",
            "It is {season} again, and {sad_event}.",
        ),
        "anger": (
            "How dare you {bad_act}!",
            "I told you a hundred times not to {bad_act}!",
            "This is unacceptable, {name}, you {bad_act_past} again!",
            "Stop it right now, I am sick of {annoyance}!",
            "Get out, {name}, I am done with {annoyance}!",
        ),
        "fear": (
            "Please, somebody help me, {threat}!",
            "I think {threat}, what do we do now?",
            "Did you hear that, {name}? I think {threat}.",
            "I'm so scared, {threat} and the door won't open!",
            "Hide, quickly, {threat}!",
        ),
        "surprise": (
            "Wow, really? You mean {surprise_news}?",
            "No way, {surprise_news}!",
            "Oh my goodness, I never expected {surprise_thing}!",
            "What? {name}, {surprise_news}?",
            "I can't believe it, {surprise_thing}!",
        ),
        "disgust": (
            "Ugh, that {gross_thing} smells absolutely awful.",
            "Eww, there is {gross_thing} in my {food}!",
            "That is disgusting, who left {gross_thing} {place}?",
            "Yuck, I can't believe you ate the {food} with {gross_thing} on it.",
            "Gross, {name}, there is {gross_thing} all over the {noun}.",
        ),
        "neutral": (
            "The {noun} is {place}.",
            "The meeting starts at {clock} on {weekday}.",
            "Please put the {adj} {noun} {place}.",
            "The train to {town} leaves at {clock}.",
            "{name} will call you back on {weekday}.",
            "The {person} left the {noun} {place} {time}.",
        ),
    }
)

# General sentences for ASR, SRWT, SGC, SAP and VED: everyday statements plus every genre above.
GENERAL_TEMPLATES = (
    "{name} {verb_past} the {adj} {noun} {place} {time}.",
    "The {person} said that the {noun} was {adj2}.",
    "Could you bring the {adj} {noun} {place}?",
    "We should {verb_base} the {noun} before {future}.",
    "My {relative} keeps a {adj} {noun} {place}.",
    "There is a {adj} {noun} {place}, next to the {noun}.",
    "{name} and the {person} {verb_past} a {noun} {time}.",
    "The {adj} {noun} that {name} {verb_past} is {place}.",
    "Why did the {person} {verb_base} the {noun} {time}?",
    "Every {weekday}, my {relative} buys {food} {place}.",
)

_SLOT = re.compile(r"\{(\w+)\}")
_WORD = re.compile(r"[A-Za-z']+")


def normalize_sentence(text: str) -> str:
    """Lower-case words only, single spaces: the identity used for the train/test text split."""
    return " ".join(w.lower() for w in _WORD.findall(text))


def words_of(text: str) -> list[str]:
    """The spoken words of ``text`` (punctuation removed, case kept): SRWT's word sequence."""
    return _WORD.findall(text)


def text_split(key: str, holdout: float) -> str:
    """``"test"`` for a stable pseudo-random ``holdout`` fraction of keys, else ``"train"``.

    The key is normally :func:`normalize_sentence` of a sentence (or a fact id); blake2b makes the split the
    same on every machine and Python version.
    """
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return "test" if int.from_bytes(digest, "big") / 2**64 < holdout else "train"


def pick(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One element of a non-empty sequence (numpy's ``choice`` would turn strings into numpy scalars)."""
    return items[int(rng.integers(len(items)))]


def fill(template: str, rng: np.random.Generator) -> str:
    """Fill every ``{slot}`` of ``template`` from the lexicon; the first letter is upper-cased."""
    text = _SLOT.sub(lambda m: pick(rng, LEXICON[m.group(1)]), template)
    return text[0].upper() + text[1:]


def templates_for(kind: str) -> tuple[str, ...]:
    """Templates of a sentence kind: ``"general"``, a style label (``"新闻科普"``) or ``"emotion:<label>"``."""
    if kind == "general":
        return GENERAL_TEMPLATES + tuple(t for ts in STYLE_TEMPLATES.values() for t in ts)
    if kind.startswith("emotion:"):
        label = kind.split(":", 1)[1]
        if label in EMOTION_TEMPLATES:
            return EMOTION_TEMPLATES[label]
    elif kind in STYLE_TEMPLATES:
        return STYLE_TEMPLATES[kind]
    raise OsumError(
        f"unknown sentence kind {kind!r}; use 'general', one of {list(STYLE_TEMPLATES)} or "
        f"'emotion:<{'|'.join(EMOTION_TEMPLATES)}>'"
    )


def sample_sentence(
    kind: str,
    split: str,
    rng: np.random.Generator,
    holdout: float,
    max_words: int = 22,
    min_words: int = 2,
    tries: int = 2000,
) -> str:
    """A sentence of ``kind`` whose text belongs to ``split`` and has ``min_words..max_words`` words.

    Raises OsumError if no such sentence turns up in ``tries`` draws (e.g. ``holdout`` 0 with split "test").
    """
    if split not in SPLITS:
        raise OsumError(f"split must be one of {SPLITS}, got {split!r}")
    templates = templates_for(kind)
    for _ in range(tries):
        text = fill(pick(rng, templates), rng)
        n = len(words_of(text))
        if min_words <= n <= max_words and text_split(normalize_sentence(text), holdout) == split:
            return text
    raise OsumError(
        f"could not draw a {split} sentence of kind {kind!r} with {min_words}-{max_words} words in {tries} "
        f"tries (text holdout fraction {holdout})"
    )
