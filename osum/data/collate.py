"""Collate prepared utterances into a padded :class:`~osum.model.osum.Batch` (and nothing else)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from osum.model.adaptor import num_speech_tokens
from osum.model.osum import Batch


def _pad_ids(rows: Sequence[Sequence[int]], fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return ids, torch.tensor([len(r) for r in rows], dtype=torch.long)


def collate(
    feats: Sequence[torch.Tensor],
    prompt_ids: Sequence[Sequence[int]],
    target_ids: Sequence[Sequence[int]],
    pad_id: int = 0,
    attributes: Sequence[Sequence[int]] | None = None,
    transcripts: Sequence[Sequence[int]] | None = None,
    target_weights: Sequence[Sequence[float]] | None = None,
    encoder_frames: Sequence[torch.Tensor] | None = None,
    pitch: Sequence[torch.Tensor] | None = None,
) -> Batch:
    """feats: per utterance ``(T_i, M)``; ids: per utterance lists (targets already end with the end token);
    ``attributes``: per utterance class indices (:func:`osum.tasks.attribute_classes`), giving ``(B, F)``;
    ``transcripts``: per utterance transcript ids (:class:`osum.codec.TranscriptCodec`) for a CTC loss;
    ``target_weights``: per utterance one loss weight per target id (``Batch.target_weights``, padded with 0);
    ``encoder_frames``: per utterance its cached encoder output ``(T1_i, D)`` (``Batch.encoder_frames``);
    ``pitch``: per utterance its F0 statistics ``(4,)`` (``Batch.pitch``).

    ``speech_tokens`` is filled from :func:`num_speech_tokens`, which the model checks against its own output.
    """
    if not (len(feats) == len(prompt_ids) == len(target_ids)) or not feats:
        raise ValueError("collate needs the same, non-zero number of features, prompts and targets")
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    out = feats[0].new_zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        out[i, : f.shape[0]] = f
    prompts, prompt_lengths = _pad_ids(prompt_ids, pad_id)
    targets, target_lengths = _pad_ids(target_ids, pad_id)
    attrs = None
    if attributes is not None:
        if len(attributes) != len(feats):
            raise ValueError("collate needs one attribute row per utterance")
        attrs = torch.tensor([list(a) for a in attributes], dtype=torch.long)
    trans, trans_lengths = None, None
    if transcripts is not None:
        if len(transcripts) != len(feats):
            raise ValueError("collate needs one transcript per utterance")
        trans, trans_lengths = _pad_ids(transcripts, pad_id)
    weights = None
    if target_weights is not None:
        if [len(w) for w in target_weights] != [len(t) for t in target_ids]:
            raise ValueError("collate needs one weight per target id")
        weights = torch.zeros(targets.shape, dtype=torch.float32)
        for i, w in enumerate(target_weights):
            weights[i, : len(w)] = torch.tensor(list(w), dtype=torch.float32)
    frames = None
    if encoder_frames is not None:
        if len(encoder_frames) != len(feats):
            raise ValueError("collate needs one encoder output per utterance")
        frames = pad_frames(encoder_frames)
    return Batch(
        out,
        lengths,
        prompts,
        prompt_lengths,
        targets,
        target_lengths,
        num_speech_tokens(lengths),
        attrs,
        trans,
        trans_lengths,
        weights,
        frames,
        _stack_pitch(pitch, len(feats)),
    )


def pad_frames(frames: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per utterance ``(T_i, D)`` -> zero-padded ``(B, max T_i, D)``."""
    out = frames[0].new_zeros(len(frames), max(f.shape[0] for f in frames), frames[0].shape[1])
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out


def _stack_pitch(pitch: Sequence[torch.Tensor] | None, n: int) -> torch.Tensor | None:
    if pitch is None:
        return None
    if len(pitch) != n:
        raise ValueError("collate needs one pitch vector per utterance")
    return torch.stack([p.float() for p in pitch])
