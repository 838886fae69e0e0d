"""Guards against answers that run away: a decode that repeats itself, or writes more than the audio can hold.

Both are checked per row while decoding (:func:`osum.inference.decoding.generate_ids`, and the Whisper decoder's
loop), so a looping row stops at once instead of filling ``max_new_tokens``, and the rest of its batch goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import StoppingCriteria

MAX_NGRAM = 16  # longest repeated token n-gram looked for
TOKENS_PER_SECOND = 12.0  # generous: fast English speech is ~3 words (~4-5 tokens) per second
TIMED_TOKENS_PER_SECOND = 48.0  # SRWT answers spell each word's start and end time
BASE_TOKENS = 16


def repeats(n: int) -> int:
    """How many back-to-back copies of an ``n``-token sequence count as a loop: 12 of one token, 6 of two,
    4 of three, 3 of anything longer ("ha ha ha" is speech; "Center Center Center ..." twelve times is not)."""
    return max(3, math.ceil(12 / n))


def loop_start(ids: Sequence[int]) -> int | None:
    """Where the repetition at the end of ``ids`` begins to be a loop: the index after the first copy of the
    repeated n-gram (so cutting there keeps one copy), or None when the end does not loop."""
    for n in range(1, MAX_NGRAM + 1):
        k = repeats(n)
        if len(ids) < n * k:
            continue
        unit = list(ids[-n:])
        copies = 1
        while len(ids) >= n * (copies + 1) and list(ids[-n * (copies + 1) : -n * copies]) == unit:
            copies += 1
        if copies >= k:
            return len(ids) - n * (copies - 1)
    return None


def trim_loop(ids: list[int]) -> list[int]:
    """``ids`` without the repeated copies of a loop at its end (one copy stays)."""
    cut = loop_start(ids)
    return ids if cut is None else ids[:cut]


def token_cap(seconds: float, timed: bool = False) -> int:
    """The most tokens an answer about ``seconds`` of audio may have: :data:`BASE_TOKENS` plus a rate per second
    of audio (a higher one for answers with word times)."""
    rate = TIMED_TOKENS_PER_SECOND if timed else TOKENS_PER_SECOND
    return BASE_TOKENS + math.ceil(rate * seconds)


class StopRunaways(StoppingCriteria):
    """Transformers stopping criterion: a row ends when its new tokens loop or reach its cap."""

    def __init__(self, start: int, caps: Sequence[int] | None, stop_loops: bool) -> None:
        self.start = start  # length of the input (0 when generating from inputs_embeds)
        self.caps = list(caps) if caps is not None else None
        self.stop_loops = stop_loops

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.start :]
        stop = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            if self.caps is not None and new.shape[1] >= self.caps[row]:
                stop[row] = True
            elif self.stop_loops and loop_start(new[row].tolist()) is not None:
                stop[row] = True
        return stop
