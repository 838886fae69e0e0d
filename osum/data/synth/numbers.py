"""Numbers in words, for text that is spoken (questions, numbers in corpus sentences)."""

from __future__ import annotations

from osum.errors import OsumError

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """0..999 in words, American style without "and": 144 -> ``"one hundred forty four"``."""
    if not 0 <= n <= 999:
        raise OsumError(f"number_words covers 0..999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
