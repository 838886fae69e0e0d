"""Word times from a Whisper decoder's cross-attention (SRWT for a stage-1 model that transcribes as pretrained).

Dimension legend: H alignment heads, N emitted tokens (the transcript's, then the end token), T1 encoder frames
(50 per second).

Whisper's alignment heads look at the audio frames of the token being written. Dynamic time warping finds the
monotonic token -> frame path through their (standardised, smoothed) attention, and a word lasts from the frame
where its first token starts to the one where the next word (or the end token) starts. This is the procedure of
the Whisper paper's word-level timestamps, written here for our decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from osum.tasks.base import Word

FRAMES_PER_SECOND = 50.0  # Whisper encoder frames
MEDIAN_WIDTH = 7


def _median_filter(x: torch.Tensor, width: int) -> torch.Tensor:
    """Median over the last axis in windows of ``width`` (odd), edges reflected: ``(..., T)`` -> ``(..., T)``."""
    if x.shape[-1] <= width // 2:
        return x
    flat = x.reshape(-1, 1, x.shape[-1])  # reflect padding wants (N, C, T)
    padded = F.pad(flat, (width // 2, width // 2), mode="reflect")
    return padded.unfold(-1, width, 1).median(-1).values.reshape(x.shape)


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The monotonic path of least total ``cost`` ``(N, M)`` from ``(0, 0)`` to ``(N-1, M-1)`` (steps: next row,
    next column, or both) -> (row indices, column indices), in order."""
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    step = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diagonal, 1 from above (next row), 2 from the left
    for i in range(1, n + 1):
        row, above, here = cost[i - 1], total[i - 1], total[i]
        for j in range(1, m + 1):
            options = (above[j - 1], above[j], here[j - 1])
            k = int(np.argmin(options))
            here[j] = row[j - 1] + options[k]
            step[i, j] = k
    rows, cols = [], []
    i, j = n, m
    while i > 0 and j > 0:
        rows.append(i - 1)
        cols.append(j - 1)
        k = step[i, j]
        if k == 0:
            i, j = i - 1, j - 1
        elif k == 1:
            i -= 1
        else:
            j -= 1
    return np.array(rows[::-1]), np.array(cols[::-1])


def token_starts(weights: torch.Tensor, frames: int) -> np.ndarray:
    """Alignment-head attention ``(H, N, T1)`` over a clip of ``frames`` valid frames -> each token's start in
    seconds ``(N,)`` (the last entry: where the end token starts, i.e. the end of the speech)."""
    w = weights[:, :, :frames].float()
    w = (w - w.mean(dim=1, keepdim=True)) / w.std(dim=1, keepdim=True).clamp_min(1e-6)
    matrix = _median_filter(w, MEDIAN_WIDTH).mean(0)  # (N, frames)
    rows, cols = dtw_path(-matrix.double().cpu().numpy())
    first = np.searchsorted(rows, np.arange(matrix.shape[0]))  # the path's first step on each row
    return cols[first] / FRAMES_PER_SECOND


def group_words(pieces: Sequence[str]) -> list[tuple[str, int, int]]:
    """Decoded text of each token -> ``[(word, first token, one past its last token)]``: a word starts at a token
    that begins with a space; punctuation-only tokens join the word before them."""
    words: list[tuple[str, int, int]] = []
    for k, piece in enumerate(pieces):
        letters = any(c.isalnum() for c in piece)
        if words and (not piece.startswith(" ") or not letters):
            text, start, _ = words[-1]
            words[-1] = (text + piece, start, k + 1)
        elif letters or words:
            words.append((piece.strip(), k, k + 1))
    return words


def word_times(weights: torch.Tensor, frames: int, pieces: Sequence[str]) -> list[Word]:
    """Words with their start and end (seconds) from the alignment heads' attention ``(H, len(pieces) + 1, T1)``
    (token rows, then the end token's) and each token's decoded text ``pieces``."""
    starts = token_starts(weights, frames)
    out = []
    for text, first, last in group_words(pieces):
        start, end = float(starts[first]), float(starts[last])
        out.append(Word(text, round(start, 2), round(max(end, start), 2)))
    return out
