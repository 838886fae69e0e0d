"""Pauses in a clip's audio: the level of each 10 ms frame, and word boundaries moved onto the sound
(``osum data align``'s ``refine``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from osum.data.audio import SAMPLE_RATE
from osum.tasks.base import Word

SILENCE_DB = 35.0  # a 10 ms frame this far below the clip's loudest counts as a pause (refine)
FRAME_S = 0.01


def frame_levels(wave: np.ndarray) -> np.ndarray:
    """16 kHz samples -> the level of each 10 ms frame in dB below the clip's loudest frame ``(F,)`` (<= 0)."""
    hop = int(FRAME_S * SAMPLE_RATE)
    n = len(wave) // hop
    if n == 0:
        return np.zeros(0)
    power = np.square(wave[: n * hop].astype(np.float64)).reshape(n, hop).mean(1) + 1e-12
    db = 10 * np.log10(power)
    return db - db.max()


def refine_words(words: Sequence[Word], levels: np.ndarray, silence_db: float = SILENCE_DB) -> list[Word]:
    """Each word's start moved forward to its first frame louder than ``-silence_db``, its end back to just after
    its last such frame, both within the word's own span (``levels`` from :func:`frame_levels`). A word with no
    loud frame in its span keeps its times."""
    out = []
    loud = levels > -silence_db
    for w in words:
        a, b = int(round(w.start / FRAME_S)), int(round(w.end / FRAME_S))
        inside = np.flatnonzero(loud[a:b]) if b > a else np.zeros(0, int)
        if inside.size == 0:
            out.append(w)
            continue
        start, end = (a + inside[0]) * FRAME_S, (a + inside[-1] + 1) * FRAME_S
        out.append(Word(w.word, round(start, 3), round(max(end, start), 3)))
    return out
