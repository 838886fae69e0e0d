"""Text normalisers applied to references and hypotheses before WER/CER (one copy, in the package).

``normalize_english`` follows Whisper's English normaliser in spirit: lower case, drop bracketed asides and
fillers, punctuation to spaces (keeping in-word apostrophes and decimal points), spelled-out cardinal numbers to
digits ("twenty one" -> "21"), and British to American spelling for common words. It is smaller than Whisper's
(no currencies, ordinals or times); the rules are fixed and documented so every run scores alike.
``normalize_chinese`` removes spaces and punctuation for character-level scoring.
"""

from __future__ import annotations

import re
import unicodedata

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_FILLERS = {"uh", "um", "hmm", "mm", "mhm", "er", "ah", "eh"}
_SPELLING = {  # British -> American, the most frequent pairs
    "colour": "color",
    "colours": "colors",
    "favourite": "favorite",
    "favour": "favor",
    "honour": "honor",
    "labour": "labor",
    "neighbour": "neighbor",
    "neighbours": "neighbors",
    "behaviour": "behavior",
    "centre": "center",
    "centres": "centers",
    "metre": "meter",
    "metres": "meters",
    "theatre": "theater",
    "organise": "organize",
    "organised": "organized",
    "realise": "realize",
    "realised": "realized",
    "recognise": "recognize",
    "analyse": "analyze",
    "travelling": "traveling",
    "travelled": "traveled",
    "grey": "gray",
    "programme": "program",
    "defence": "defense",
    "licence": "license",
    "catalogue": "catalog",
    "dialogue": "dialog",
    "mum": "mom",
    "okay": "ok",
}


def _numbers(words: list[str]) -> list[str]:
    """Replace runs of spelled cardinal numbers by digits ("one hundred and five" -> "105")."""
    out: list[str] = []
    total = current = 0
    active = False

    def flush() -> None:
        nonlocal total, current, active
        if active:
            out.append(str(total + current))
        total = current = 0
        active = False

    def room(tens: bool) -> bool:
        """Can the next unit (or tens) word continue the number being read?"""
        if not active:
            return True
        if current == 0:
            return total > 0  # "one thousand five"
        rest = current % 100
        return rest == 0 or (not tens and rest >= 20 and rest % 10 == 0)  # "one hundred five", "twenty one"

    for k, w in enumerate(words):
        if w in _UNITS or w in _TENS:
            if not room(w in _TENS):
                flush()  # "one two" is two numbers, not twelve
            current += _UNITS.get(w, 0) + _TENS.get(w, 0)
            active = True
        elif w in _SCALES and active:
            if w == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[w]
                current = 0
        elif (
            w == "and" and active and k + 1 < len(words) and (words[k + 1] in _UNITS or words[k + 1] in _TENS)
        ):
            continue
        else:
            flush()
            out.append(w)
    flush()
    return out


def normalize_english(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[<\[(][^>\])]*[>\])]", " ", text)  # tags, [noise], (asides)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # keep decimal points only
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)  # keep in-word apostrophes
    text = re.sub(r"[^\w\s'.]", " ", text)
    words = [_SPELLING.get(w, w) for w in text.split() if w not in _FILLERS]
    return " ".join(_numbers(words))


def normalize_chinese(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"<[^>]*>", "", text)
    return "".join(c for c in text if not c.isspace() and not unicodedata.category(c).startswith("P"))
