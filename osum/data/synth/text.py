"""Sentence material: real text (:mod:`~osum.data.synth.corpus_text`) plus templates per style genre and per
emotion, filled from :mod:`~osum.data.synth.lexicon`.

``general`` sentences are mostly real sentences from Debian-packaged text (:data:`REAL_TEXT_SHARE`), whose
split is decided per source, so whole sources are test-only. Template sentences belong to exactly one split,
decided by a hash of their normalised text (:func:`text_split`), so a sentence that is in the test set can
never be drawn for training, whichever task or genre produced it. Emotion sentences sometimes wrap a real
sentence in an emotional frame (:data:`EMOTION_REAL_SHARE`); those pass both checks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from osum.data.synth import corpus_text
from osum.data.synth.lexicon import LEXICON
from osum.errors import OsumError

SPLITS = ("train", "test")
T = TypeVar("T")
REAL_TEXT_SHARE = 0.85  # share of "general" sentences drawn from the real-text pool rather than templates
EMOTION_REAL_SHARE = 0.3  # share of emotion sentences that wrap a real sentence in an emotional frame

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
            "Engineers in {town} have built a {facility} that runs entirely on {energy}.",
            "The {institution} says that {sci_subject} are more common than anyone expected.",
            "Doctors recommend {habit} to anyone who wants better {outcome}.",
            "Traffic around {town} is expected to be heavy on {weekday} because of {weather}.",
            "A team from the {institution} spent {duration} studying {sci_subject} in {region}.",
            "New figures show that {stat} has almost doubled since last {period}.",
            "Experts believe that {sci_subject} could help us understand {sci_topic}.",
            "In other news, the {facility} in {town} will close for repairs until {month}.",
        ),
        "恐怖故事": (  # horror story
            "The {old_place} was silent, until something began to {horror_verb} behind the {barrier}.",
            "At midnight, a {horror_thing} appeared at the end of the {dark_place}.",
            "Nobody who entered the {old_place} ever came back, and the {horror_sound} never stopped.",
            "She heard {horror_sound} from the {dark_place}, but she lived alone.",
            "The candle went out, and in the {dark_place} a {horror_thing} was waiting.",
            "Every night at three, {horror_sound} came from the {barrier} of the {old_place}.",
            "Nobody remembers who built the {old_place}, but everyone knows not to go near it after dark.",
            "The {horror_thing} in the {dark_place} did not move, but it was closer every time she looked.",
            "When {name} opened the {barrier}, the air turned cold and {horror_sound} filled the room.",
            "They said the {old_place} was empty, so why was there a light in the window?",
            "Something in the {dark_place} whispered my name, and it sounded just like {name}.",
            "Do not look behind the {barrier}, whatever you hear tonight.",
            "By morning the footprints led into the {dark_place}, and none of them came out.",
        ),
        "童话故事": (  # fairy tale
            "Once upon a time, a {royal} lived in a {fairy_home} beyond the {fairy_land}.",
            "The {creature} waved a {magic_item}, and the {fairy_object} turned into {fairy_result}.",
            "Long ago, in the {fairy_land}, there lived a {creature} who loved {fairy_love}.",
            "And so the {royal} and the {creature} lived happily ever after in the {fairy_home}.",
            "One morning, the {royal} found a {magic_item} hidden inside a {fairy_object}.",
            "The {creature} promised to guide the {royal} across the {fairy_land}.",
            "The {creature} laughed and said, whoever finds the {magic_item} shall rule the {fairy_land}.",
            "Deep in the {fairy_land}, a {royal} met a {creature} who could not stop crying.",
            "Every night, the {creature} crept out of the {fairy_home} and spent hours {fairy_love}.",
            "The {royal} had three wishes, and the first was to see the {fairy_land}.",
            "Under the old bridge lived a {creature} who guarded a {magic_item}.",
            "When the clock struck twelve, {fairy_result} vanished and the {royal} ran home.",
            "The {creature} told the {royal} to follow the river all the way to the {fairy_home}.",
        ),
        "客服": (  # customer service
            "Thank you for calling {company}, my name is {name}, how may I help you today?",
            "I am sorry for the inconvenience, let me check your {account_item} right away.",
            "Your {order_item} has been shipped and should arrive {delivery}.",
            "Could you please confirm the {detail} on your account?",
            "Thank you for waiting, I can see your {account_item} here, and everything is in order.",
            "For security reasons, may I have your {detail}, please?",
            "Your {order_item} from {company} will arrive {delivery}, is there anything else I can do?",
            "I understand your frustration, and I will transfer you to our {department} team.",
            "Your {account_item} has been updated, and you will receive a confirmation by email.",
            "I have applied a discount to your {account_item} as an apology for the delay.",
            "Please hold the line while I connect you to a specialist at {company}.",
            "Can I ask for your {detail} so that I can find your {account_item}?",
            "Your {order_item} was returned to us, would you like us to send it again {delivery}?",
            "Thank you for your patience, {name}, and have a wonderful {weekday}.",
        ),
        "诗歌散文": (  # poetry and prose
            "The {nature} {poetic_verb} beneath {sky}, and {poetic_noun} rest in the {season} {day_part}.",
            "O {nature}, how softly you {poetic_base} upon the {poetic_place}.",
            "{season} comes like {simile}, {poetic_adj} and slow.",
            "I walked across the {poetic_place}, where {poetic_noun} {poetic_base} like {simile}.",
            "In the {poetic_adj} {day_part}, the {nature} {poetic_verb} and the world grows still.",
            "The {nature} remembers what {poetic_noun} forget.",
            "Let the {poetic_adj} {day_part} carry me home across the {poetic_place}.",
            "Beneath {sky}, {poetic_noun} {poetic_base} and the {nature} listens.",
            "I have loved the {nature} as one loves {simile}.",
            "In {season} the {poetic_place} is {poetic_adj}, and so is my heart.",
            "Who will remember the {nature} when {poetic_noun} are gone?",
            "Slowly, slowly, the {nature} {poetic_verb}, and {season} turns to gold.",
        ),
        "有声书": (  # audiobook narrative prose
            "{name} closed the {book_object} and looked out at the {narr_place}, remembering {memory}.",
            "It was the {ordinal} {season} since {name} had left the {narr_place}.",
            "Chapter {chapter}. The {vehicle} reached {town} just before {day_part}.",
            "{name} did not answer at once; {pronoun} was thinking about {memory}.",
            "When the {vehicle} stopped, {name} picked up the {book_object} and stepped into the {day_part}.",
            "For a long time nobody spoke, and {name} watched the {narr_place} fade into the {day_part}.",
            "{name} had never trusted the {narr_place}, and tonight there was good reason not to.",
            "The letter was short, and {name} had to read it three times.",
            "By the time the {vehicle} left {town}, {name} had made a decision.",
            "Nobody in {town} knew where {name} had gone, or why.",
            "{name} smiled for the first time since {memory}.",
            "Outside, the {narr_place} lay quiet under the {day_part} sky.",
            "Chapter {chapter}. Nobody expected {name} to come back to {town}.",
        ),
        "日常口语": (  # everyday conversation
            "Hey, did you see {casual_thing} {time}?",
            "I'm gonna grab some {food}, do you want anything?",
            "Honestly, {casual_thing} was kind of {casual_adj}.",
            "Oh yeah, {name} told me about that, it was so {casual_adj}.",
            "Can you text me when you get to the {casual_place}?",
            "So I was at the {casual_place} {time}, and guess who I saw? {name}!",
            "Wanna get some {food} after {casual_thing}?",
            "Ugh, I totally forgot about {casual_thing}, was it any good?",
            "Are you still coming to {casual_thing}?",
            "I'll meet you at the {casual_place} in like ten minutes, okay?",
            "No worries, {name}, we can grab {food} another time.",
            "Wait, {name} is coming too? That's so {casual_adj}!",
            "I can't believe {casual_thing} was that {casual_adj}.",
            "Do you wanna come over later? We could order {food}.",
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
            "We did it, {name}, {good_news}!",
            "I have never been this happy, {good_news}!",
            "Best {good_thing} ever, thank you, thank you!",
            "Guess what? {good_news}, and I am over the moon!",
            "Oh, I love it, what a wonderful {good_thing}!",
        ),
        "sad": (
            "I miss {lost_one} so much, nothing is the same now.",
            "Nothing has felt right since {sad_event}.",
            "I tried my best, {name}, but {sad_event}.",
            "I keep thinking about {lost_one}, and I feel so alone.",
            "It is {season} again, and {sad_event}.",
            "I still set two plates at dinner, even though {sad_event}.",
            "Every {weekday} I walk past the old house, but {sad_event}.",
            "I wish I could tell {lost_one} how sorry I am.",
            "This old {noun} still reminds me of {lost_one}.",
            "It's over, {name}, {sad_event}, and there is nothing left.",
        ),
        "anger": (
            "How dare you {bad_act}!",
            "I told you a hundred times not to {bad_act}!",
            "This is unacceptable, {name}, you {bad_act_past} again!",
            "Stop it right now, I am sick of {annoyance}!",
            "Get out, {name}, I am done with {annoyance}!",
            "Don't you ever {bad_act} again, do you hear me?",
            "Unbelievable, {name}, you {bad_act_past} and you didn't even say sorry!",
            "I have had enough of {annoyance}!",
            "Who told you that you could {bad_act}?",
            "That's it, I am not putting up with {annoyance} any longer!",
        ),
        "fear": (
            "Please, somebody help me, {threat}!",
            "I think {threat}, what do we do now?",
            "Did you hear that, {name}? I think {threat}.",
            "I'm so scared, {threat} and the door won't open!",
            "Hide, quickly, {threat}!",
            "Don't make a sound, {threat}.",
            "Run, {name}, run, {threat}!",
            "Oh no, oh no, {threat}, what do I do?",
            "My hands are shaking, I'm sure {threat}.",
            "Call for help, quickly, {threat}!",
        ),
        "surprise": (
            "Wow, really? You mean {surprise_news}?",
            "No way, {surprise_news}!",
            "Oh my goodness, I never expected {surprise_thing}!",
            "What? {name}, {surprise_news}?",
            "I can't believe it, {surprise_thing}!",
            "Seriously, {surprise_news}?",
            "Whoa, I did not see that coming, {surprise_news}!",
            "Are you kidding me? {name}, {surprise_news}?",
            "Oh wow, {surprise_thing}, who would have thought!",
            "Wait a second, {surprise_news}? Since when?",
        ),
        "disgust": (
            "Ugh, that {gross_thing} smells absolutely awful.",
            "Eww, there is {gross_thing} in my {food}!",
            "That is disgusting, who left {gross_thing} {place}?",
            "Yuck, I can't believe you ate the {food} with {gross_thing} on it.",
            "Gross, {name}, there is {gross_thing} all over the {noun}.",
            "Oh gross, the {food} has {gross_thing} in it!",
            "Ugh, I think I'm going to be sick, there's {gross_thing} {place}.",
            "Eww, {name}, wash your hands, they smell like {gross_thing}!",
            "This plate of {food} looks revolting, is that {gross_thing} on top?",
            "Disgusting, the whole {noun} is covered in {gross_thing}.",
        ),
        "neutral": (
            "The {noun} is {place}.",
            "The meeting starts at {clock} on {weekday}.",
            "Please put the {adj} {noun} {place}.",
            "The train to {town} leaves at {clock}.",
            "{name} will call you back on {weekday}.",
            "The {person} left the {noun} {place} {time}.",
            "Please remember to bring the {noun} on {weekday}.",
            "The library opens at {clock} on {weekday}.",
            "{name} works as a {person} in {town}.",
            "The {noun} was moved {place} {time}.",
            "We will meet {place} at {clock}.",
            "The {person} from {town} arrived {time}.",
        ),
    }
)

# Emotional frames around a real sentence (``{real}``, a full declarative sentence from the real-text pool).
EMOTION_REAL_FRAMES = MappingProxyType(
    {
        "happy": ("Guess what? {real} I am so happy!", "{real} Oh, this is wonderful!", "Yes! {real}"),
        "sad": (
            "{real} And now it is all gone.",
            "{real} I miss those days so much.",
            "I keep thinking of it. {real}",
        ),
        "anger": (
            "{real} I am sick of hearing it!",
            "Oh, really? {real} That is ridiculous!",
            "{real} How dare you!",
        ),
        "fear": (
            "Listen! {real} Something is wrong.",
            "{real} Please, I am scared.",
            "Did you hear that? {real}",
        ),
        "surprise": ("No way! {real}", "{real} I can't believe it!", "Wait, what? {real}"),
        "disgust": ("{real} Ugh, that is revolting.", "Eww! {real}", "{real} That is absolutely disgusting."),
        "neutral": ("{real}",),
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
# A sentence with one of these is a clause, not a bare phrase like "a dying fire" (for the emotion frames).
_CLAUSE_WORDS = frozenset(
    "i you he she we they it is are was were has have had do does did will would can could should must may "
    "might i'm it's that's don't didn't can't won't isn't wasn't there's".split()
)
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


def _framed(frame: str, split: str, rng: np.random.Generator, min_words: int, max_words: int) -> str | None:
    """``frame`` with its ``{real}`` slot filled by a declarative pool sentence of ``split`` that fits."""
    extra = len(words_of(frame.replace("{real}", "")))
    for _ in range(8):
        real = corpus_text.sample_real(split, rng, max(min_words - extra, 4), min(max_words - extra, 12))
        if real is None:
            return None
        if real.endswith(".") and _CLAUSE_WORDS.intersection(normalize_sentence(real).split()):
            return frame.replace("{real}", real)
    return None


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

    ``general``: a real-text sentence of ``split`` with probability :data:`REAL_TEXT_SHARE` (when one that
    long exists), else a template sentence. Emotions: with probability :data:`EMOTION_REAL_SHARE` a real
    sentence in an emotional frame, else an emotion template. The result is a function of the rng state.
    Raises ConfigError when the real-text sources are not installed, and OsumError if no such sentence turns up in ``tries`` draws (e.g. ``holdout`` 0 with split "test").
    """
    if split not in SPLITS:
        raise OsumError(f"split must be one of {SPLITS}, got {split!r}")
    templates = templates_for(kind)
    if kind == "general" and rng.random() < REAL_TEXT_SHARE:
        text = corpus_text.sample_real(split, rng, min_words, max_words)
        if text is not None:
            return text
    label = kind.split(":", 1)[1] if kind.startswith("emotion:") else None
    frames = EMOTION_REAL_FRAMES.get(label, ()) if label else ()
    use_frame = bool(frames) and rng.random() < EMOTION_REAL_SHARE
    for _ in range(tries):
        text = _framed(pick(rng, frames), split, rng, min_words, max_words) if use_frame else None
        text = text or fill(pick(rng, templates), rng)
        n = len(words_of(text))
        if min_words <= n <= max_words and text_split(normalize_sentence(text), holdout) == split:
            return text
    raise OsumError(
        f"could not draw a {split} sentence of kind {kind!r} with {min_words}-{max_words} words in {tries} "
        f"tries (text holdout fraction {holdout})"
    )
