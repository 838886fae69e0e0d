"""SpecAugment on log-mel features (OSUM: 2 time masks <= 50 frames, 2 frequency masks <= 10 bins)."""

from __future__ import annotations

import random

import torch


def spec_augment(
    feats: torch.Tensor,
    rng: random.Random,
    time_masks: int = 2,
    max_time: int = 50,
    freq_masks: int = 2,
    max_freq: int = 10,
    frames: int | None = None,
) -> torch.Tensor:
    """feats ``(T, M)`` -> a masked copy (masked cells set to 0, as WeNet does). ``rng`` makes it reproducible.
    ``frames``: time masks fall within the first ``frames`` rows only (a cached encoder window: the clip's own
    frames), channel masks span all rows."""
    out = feats.clone()
    m = out.shape[1]
    t = out.shape[0] if frames is None else min(frames, out.shape[0])
    for _ in range(time_masks):
        width = rng.randint(0, min(max_time, max(t - 1, 0)))
        start = rng.randint(0, max(t - width, 0))
        out[start : start + width, :] = 0
    for _ in range(freq_masks):
        width = rng.randint(0, min(max_freq, m - 1))
        start = rng.randint(0, m - width)
        out[:, start : start + width] = 0
    return out
