"""Label tokens: one soft token per label field, after the speech frames (``adaptor.label_tokens``; not in OSUM).

Dimension legend: B batch, T1 encoder frames, D encoder width, F label fields, C a field's classes, H LLM width.

Why: in the mini recipe the LLM stage never learnt to read who speaks from the adaptor's frames. The committed
``mini`` scored gender 49% teacher-forced (chance), and 60 more steps on 1545 gender-labelled clips left it at 51%,
although a linear probe on the pooled encoder frames reads the voice's gender at 98% (RESULTS.md section 7). The
frames are shaped by CTC to look like the words' token embeddings, which the LLM copies; the speaker is at best a
small component beside them. This module gives each label field (gender, age, emotion, style, event) a classifier
on the mean and spread of the encoder frames, and hands the LLM its answer as a token it can copy: the class
probabilities times one learned vector per class, which start as the LLM's own embedding of the class name.
So the LLM reads ``<male>`` from a token that looks like ``male``, exactly as it reads the words. The classifiers
are trained with cross-entropy wherever a clip has that label (``OsumModel.forward`` adds it to the LM loss),
and the LM loss trains them too, through the soft tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from osum.data.pitch import PITCH_FEATURES
from osum.model.encoder import lengths_to_mask
from osum.vocabulary import LABEL_FIELDS, TASK_LABEL_FIELDS

TRUNK_WIDTH = 256  # per-frame features before pooling
# with pitch features: fields whose classifier reads them alone. On the pooled frames the gender classifier learnt
# the training voices (100% on them, 80-85% on unseen synthetic voices, 19-21% on a recorded woman); on F0 alone
# 92-100% on all three (osum/data/pitch.py, RESULTS.md section 10)
PITCH_ONLY = ("gender",)
PITCH_HIDDEN = 16


class LabelTokens(nn.Module):
    """Encoder frames -> per-field class logits and the soft label tokens the LLM reads after the speech."""

    def __init__(
        self,
        encoder_dim: int,
        hidden: int = 0,
        fields: Sequence[str] = tuple(TASK_LABEL_FIELDS),
        pitch: bool = False,
    ) -> None:
        """``hidden``: the LLM width of the soft tokens; 0 = classifiers only (a stage-1 Whisper's label heads).
        ``fields``: the label fields (``ModelConfig.label_fields``), kept in :data:`LABEL_FIELDS`' order.
        ``pitch`` (``ModelConfig.label_pitch``): the classifiers also read the clip's F0 statistics
        (:func:`osum.data.pitch.pitch_features`); those of :data:`PITCH_ONLY` read nothing else."""
        super().__init__()
        unknown = sorted(set(fields) - set(LABEL_FIELDS))
        if unknown:
            raise ValueError(f"label fields {unknown} do not exist; choose from {list(LABEL_FIELDS)}")
        chosen = {n: f for n, f in LABEL_FIELDS.items() if n in fields}
        self.pitch = pitch
        self.trunk = nn.Sequential(nn.Linear(encoder_dim, TRUNK_WIDTH), nn.GELU())
        width = 2 * TRUNK_WIDTH + (PITCH_FEATURES if pitch else 0)
        self.heads = nn.ModuleDict(
            {
                n: (
                    nn.Sequential(
                        nn.Linear(PITCH_FEATURES, PITCH_HIDDEN),
                        nn.GELU(),
                        nn.Linear(PITCH_HIDDEN, len(f.values)),
                    )
                    if pitch and n in PITCH_ONLY
                    else nn.Linear(width, len(f.values))
                )
                for n, f in chosen.items()
            }
        )
        # (C, H) per field: the LLM input vector of each class, set to its name's embedding by init_values
        self.values = nn.ParameterDict(
            {n: nn.Parameter(torch.randn(len(f.values), hidden) * 0.02) for n, f in chosen.items()}
            if hidden
            else {}
        )

    @property
    def fields(self) -> tuple[str, ...]:
        """The label fields in token order (:data:`osum.vocabulary.LABEL_FIELDS`' order, ``Batch.attributes`` columns)."""
        return tuple(self.heads)

    def forward(
        self, enc: torch.Tensor, lengths: torch.Tensor, pitch: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Encoder frames ``(B, T1, D)`` with valid ``lengths`` ``(B,)`` (and, for heads built with ``pitch``,
        the clips' ``(B, PITCH_FEATURES)`` F0 statistics) -> (``{field: logits (B, C)}``, tokens ``(B, F, H)``,
        None for classifiers only)."""
        if self.pitch and pitch is None:
            raise ValueError(
                "these label heads read the clips' pitch features (Batch.pitch): none were given"
            )
        mask = lengths_to_mask(lengths, enc.shape[1])[..., None].to(enc.dtype)  # (B, T1, 1)
        x = self.trunk(enc)
        n = mask.sum(1).clamp_min(1)
        mean = (x * mask).sum(1) / n
        std = (((x - mean[:, None]) ** 2 * mask).sum(1) / n).clamp_min(1e-6).sqrt()
        pooled = torch.cat([mean, std], dim=-1)  # (B, 2 * TRUNK_WIDTH)
        if self.pitch:
            pitch = pitch.to(pooled)  # type: ignore[union-attr]
            pooled = torch.cat([pooled, pitch], dim=-1)
        logits = {
            name: head(pitch if self.pitch and name in PITCH_ONLY else pooled)
            for name, head in self.heads.items()
        }
        if not self.values:
            return logits, None
        tokens = torch.stack([logits[n].softmax(-1) @ self.values[n] for n in self.fields], dim=1)
        return logits, tokens

    @torch.no_grad()
    def init_values(self, table: torch.Tensor, class_ids: Mapping[str, Sequence[Sequence[int]]]) -> None:
        """Set each class vector to the mean LLM embedding (``table`` ``(V, H)``) of its name's token ids."""
        for name, ids in class_ids.items():
            values = self.values[name]
            if len(ids) != values.shape[0] or any(len(i) == 0 for i in ids):
                raise ValueError(f"label tokens: {name!r} needs token ids for its {values.shape[0]} classes")
            values.copy_(torch.stack([table[list(i)].float().mean(0) for i in ids]).to(values))

    @staticmethod
    def loss(logits: Mapping[str, torch.Tensor], attributes: torch.Tensor) -> torch.Tensor | None:
        """Mean cross-entropy over the fields labelled in the batch (``attributes`` ``(B, F)`` in
        :data:`LABEL_FIELDS`' columns, -1 = none); None when no clip has a label."""
        columns = list(LABEL_FIELDS)
        losses = []
        for name, field_logits in logits.items():
            column = columns.index(name)
            known = attributes[:, column] >= 0
            if known.any():
                losses.append(F.cross_entropy(field_logits[known].float(), attributes[known, column]))
        return torch.stack(losses).mean() if losses else None
