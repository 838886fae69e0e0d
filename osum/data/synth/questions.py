"""Spoken questions with known answers for STTC: arithmetic in words, and facts from a small built-in table.

Answers are written in words, never digits (``"what is seven plus five"`` -> ``"twelve"``), because that is
what a speech model hears and what a TTS engine reads. Facts and sums are held out for the test split as a
whole (by fact id, or by the ``(a, op, b)`` triple), so a test question is never a rephrasing of a training one.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth.numbers import number_words
from osum.data.synth.text import pick, text_split
from osum.errors import OsumError


@dataclass(frozen=True)
class Question:
    """A spoken question, its reply, and how it was made (``extra`` goes into the manifest record)."""

    text: str
    answer: str
    extra: dict[str, Any] = field(default_factory=dict)


# operator word -> (largest operand, function); small operands keep the answers short and speakable.
_OPS = MappingProxyType(
    {"plus": (20, operator.add), "minus": (20, operator.sub), "times": (12, operator.mul)}
)
_ARITH_TEMPLATES = MappingProxyType(
    {
        "plus": (
            "What is {a} plus {b}?",
            "How much is {a} plus {b}?",
            "What do you get if you add {a} and {b}?",
        ),
        "minus": ("What is {a} minus {b}?", "How much is {a} minus {b}?", "What is {b} subtracted from {a}?"),
        "times": ("What is {a} times {b}?", "How much is {a} times {b}?", "What is {a} multiplied by {b}?"),
    }
)


def arithmetic_question(rng: np.random.Generator, split: str, holdout: float, tries: int = 1000) -> Question:
    """A sum, difference (never negative) or product of small numbers, from the given split."""
    for _ in range(tries):
        op = pick(rng, tuple(_OPS))
        limit, fn = _OPS[op]
        a, b = int(rng.integers(limit + 1)), int(rng.integers(limit + 1))
        if op == "minus" and b > a:
            a, b = b, a
        if text_split(f"arith:{a} {op} {b}", holdout) != split:
            continue
        value = fn(a, b)
        text = pick(rng, _ARITH_TEMPLATES[op]).format(a=number_words(a), b=number_words(b))
        extra = {"kind": "arithmetic", "a": a, "op": op, "b": b, "value": value}
        return Question(text, number_words(value), extra)
    raise OsumError(f"no {split} arithmetic question found (text holdout fraction {holdout})")


def _facts() -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """``(fact_id, question phrasings, answer)`` for every built-in fact."""
    out: list[tuple[str, tuple[str, ...], str]] = []
    capitals = (
        "France:Paris|Germany:Berlin|Italy:Rome|Spain:Madrid|Japan:Tokyo|China:Beijing|Egypt:Cairo|"
        "Canada:Ottawa|Russia:Moscow|Greece:Athens|Portugal:Lisbon|Norway:Oslo|Sweden:Stockholm|"
        "Finland:Helsinki|Ireland:Dublin|Austria:Vienna|Poland:Warsaw|Hungary:Budapest|Kenya:Nairobi|"
        "Peru:Lima|Chile:Santiago|Cuba:Havana|Thailand:Bangkok|South Korea:Seoul|Indonesia:Jakarta|"
        "Australia:Canberra|England:London|Turkey:Ankara|Belgium:Brussels|the Netherlands:Amsterdam|"
        "Denmark:Copenhagen|Iran:Tehran|Vietnam:Hanoi|the Philippines:Manila|Scotland:Edinburgh|"
        "Wales:Cardiff|Argentina:Buenos Aires|Mexico:Mexico City|India:New Delhi|Brazil:Brasilia"
    )
    for item in capitals.split("|"):
        country, city = item.split(":")
        out.append(
            (
                f"capital:{country}",
                (f"What is the capital of {country}?", f"Which city is the capital of {country}?"),
                city,
            )
        )
    colours = (
        "the sky:blue|grass:green|snow:white|coal:black|a banana:yellow|a ripe tomato:red|chocolate:brown|"
        "a lemon:yellow|milk:white|a cherry:red|a carrot:orange|a crow:black|a lime:green|a plum:purple|"
        "a pumpkin:orange|a strawberry:red|a polar bear:white|a frog:green|the sea:blue|an orange:orange"
    )
    for item in colours.split("|"):
        thing, colour = item.split(":")
        out.append(
            (f"colour:{thing}", (f"What colour is {thing}?", f"What color is {thing} usually?"), colour)
        )
    for unit, names in (
        ("day", "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
        ("month", "January February March April May June July August September October November December"),
    ):
        seq = names.split()
        for i, name in enumerate(seq):
            nxt, prev = seq[(i + 1) % len(seq)], seq[i - 1]
            out.append(
                (
                    f"{unit}-after:{name}",
                    (f"What {unit} comes after {name}?", f"Which {unit} follows {name}?"),
                    nxt,
                )
            )
            out.append(
                (
                    f"{unit}-before:{name}",
                    (f"What {unit} comes before {name}?", f"Which {unit} is just before {name}?"),
                    prev,
                )
            )
    counts = (
        "days are there in a week:7|months are there in a year:12|hours are there in a day:24|"
        "minutes are there in an hour:60|legs does a spider have:8|legs does a dog have:4|"
        "legs does a bird have:2|legs does an insect have:6|sides does a triangle have:3|"
        "sides does a square have:4|sides does a hexagon have:6|sides does an octagon have:8|"
        "wheels does a bicycle have:2|wheels does a tricycle have:3|players are on a football team:11|"
        "strings does a violin have:4|planets are in the solar system:8|continents are there:7|"
        "letters are in the English alphabet:26|days are there in a leap year:366|"
        "seconds are there in a minute:60|days are there in the month of June:30"
    )
    for item in counts.split("|"):
        what, n = item.split(":")
        out.append(
            (f"count:{what}", (f"How many {what}?", f"Tell me, how many {what}?"), number_words(int(n)))
        )
    opposites = (
        "hot:cold|up:down|big:small|fast:slow|light:dark|open:closed|early:late|full:empty|young:old|"
        "wet:dry|hard:soft|loud:quiet|rich:poor|thick:thin|strong:weak|near:far|first:last|win:lose|"
        "push:pull|happy:sad"
    )
    for item in opposites.split("|"):
        word, opposite = item.split(":")
        out.append(
            (
                f"opposite:{word}",
                (f"What is the opposite of {word}?", f"Tell me the opposite of the word {word}."),
                opposite,
            )
        )
    sounds = "cow:moo|dog:woof|cat:meow|duck:quack|sheep:baa|owl:hoot|pig:oink|lion:roar|snake:hiss|bee:buzz"
    for item in sounds.split("|"):
        animal, sound = item.split(":")
        out.append(
            (f"sound:{animal}", (f"What sound does a {animal} make?", f"What does a {animal} say?"), sound)
        )
    return tuple(out)


FACTS = _facts()


def fact_question(rng: np.random.Generator, split: str, holdout: float, tries: int = 1000) -> Question:
    """A question about a built-in fact (capitals, colours, day/month order, counts, opposites, sounds)."""
    for _ in range(tries):
        fact_id, phrasings, answer = pick(rng, FACTS)
        if text_split(f"fact:{fact_id}", holdout) == split:
            return Question(pick(rng, phrasings), answer, {"kind": "fact", "fact": fact_id})
    raise OsumError(f"no {split} fact question found (text holdout fraction {holdout})")


def sample_question(
    rng: np.random.Generator, split: str, holdout: float, arithmetic_share: float = 0.5
) -> Question:
    """Arithmetic with probability ``arithmetic_share``, else a fact question."""
    if rng.random() < arithmetic_share:
        return arithmetic_question(rng, split, holdout)
    return fact_question(rng, split, holdout)
