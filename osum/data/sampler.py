"""Batch planning: weighted mixing, OSUM's filters, length bucketing and dynamic batch sizes.

The plan of an epoch (which utterances form which batch, in which order) is a pure function of the metadata,
the seed and the epoch number. Resuming a run is therefore "rebuild the plan, start at batch k": nothing about the
data position needs pickling, and every rank of a distributed run computes the same plan and takes its share.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from osum.config import DataConfig


@dataclass(frozen=True)
class ItemInfo:
    """What batching needs to know about one utterance (no audio)."""

    index: int  # position in the dataset's utterance list
    mel_frames: int  # 100 per second
    llm_tokens: int  # prompt (longest of its task) + speech tokens + 2 + label tokens
    label_tokens: int
    source: int = 0  # which manifest it came from (for weighted mixing)


def filter_items(items: Sequence[ItemInfo], cfg: DataConfig) -> tuple[list[ItemInfo], Counter]:
    """OSUM's filters: duration range, at most max label tokens, LLM sequence <= max. Returns kept items and reasons.
    (An empty target only comes from a label-heads Whisper's task without a transcript: the row trains the heads.)"""
    kept, dropped = [], Counter()
    for it in items:
        seconds = it.mel_frames / 100
        if not cfg.min_seconds <= seconds <= cfg.max_seconds:
            dropped["duration"] += 1
        elif it.label_tokens > cfg.max_label_tokens:
            dropped["label_tokens"] += 1
        elif it.llm_tokens > cfg.max_total_tokens:
            dropped["total_tokens"] += 1
        else:
            kept.append(it)
    return kept, dropped


def mix(items: Sequence[ItemInfo], weights: Sequence[float], rng: random.Random) -> list[ItemInfo]:
    """Repeat each source ``int(weight)`` times plus a random ``frac(weight)`` share of it (OSUM's mixing rule)."""
    by_source: dict[int, list[ItemInfo]] = {}
    for it in items:
        by_source.setdefault(it.source, []).append(it)
    out: list[ItemInfo] = []
    for source, group in sorted(by_source.items()):
        w = weights[source]
        whole, frac = int(w), w - int(w)
        out.extend(group * whole)
        if frac > 0:
            out.extend(rng.sample(group, round(frac * len(group))))
    return out


def plan_epoch(
    items: Sequence[ItemInfo], weights: Sequence[float], cfg: DataConfig, epoch: int
) -> list[list[int]]:
    """Batches (lists of utterance indices) for ``epoch``; deterministic in (items, weights, cfg, epoch)."""
    rng = random.Random(f"{cfg.seed}:{epoch}")
    pool = mix(items, weights, rng)
    rng.shuffle(pool)
    batches: list[list[int]] = []
    for start in range(0, len(pool), cfg.sort_buffer):
        chunk = sorted(pool[start : start + cfg.sort_buffer], key=lambda it: (it.mel_frames, it.llm_tokens))
        batches.extend(_dynamic_batches(chunk, cfg))
    rng.shuffle(batches)
    return batches


def _dynamic_batches(sorted_items: Sequence[ItemInfo], cfg: DataConfig) -> list[list[int]]:
    """Greedy packing of length-sorted items under the frame, token and size budgets (longest x count)."""
    out, cur, max_frames, max_tokens = [], [], 0, 0
    for it in sorted_items:
        frames, tokens = max(max_frames, it.mel_frames), max(max_tokens, it.llm_tokens)
        n = len(cur) + 1
        if cur and (
            frames * n > cfg.max_frames_in_batch
            or tokens * n > cfg.max_tokens_in_batch
            or n > cfg.max_batch_size
        ):
            out.append([x.index for x in cur])
            cur, frames, tokens = [], it.mel_frames, it.llm_tokens
        cur.append(it)
        max_frames, max_tokens = frames, tokens
    if cur:
        out.append([x.index for x in cur])
    return out


def shard_for_rank(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's batches: every ``world``-th, truncated so all ranks get the same count (no DDP hang)."""
    usable = (len(batches) // world) * world
    return batches[rank:usable:world]


def epoch_steps(n_batches: int, grad_accum: int) -> int:
    """Optimizer steps one epoch of ``n_batches`` micro-batches gives."""
    return math.ceil(n_batches / grad_accum)
