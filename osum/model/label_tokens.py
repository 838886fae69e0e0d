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
# ModelConfig.label_head: "trunk" (a per-frame layer, then mean and spread; the first mini models) or "linear" (mean
# and spread of the encoder frames themselves, standardised by batch statistics, one linear layer per field). On
# the synthetic test split's unseen voices a linear probe of that kind read emotion 90.8%, style 85.7%, age 81.7%
# where the trained trunk heads read 69 / 53 / 73% (bench/label_probe.py, RESULTS.md section 11). The speech field
# (does the clip hold words) keeps the trunk: read linearly it called 10% of recorded telephone speech silent.
# "linear+attention": as "linear", but the fields of ATTENTION_FIELDS (a short sound somewhere in the clip, not a
# property of the whole clip) read the frames through attention pooling (:class:`AttentionPool`). With 5.3 h more
# label clips the linear probe read events 74% on unseen voices, an attention-pooled probe 93%, while the linear
# one stayed as good or better for age, emotion and style (RESULTS.md section 13).
LABEL_HEADS = ("trunk", "linear", "linear+attention")
TRUNK_ONLY = ("speech",)
ATTENTION_FIELDS = ("event",)
ATTENTION_WIDTH = 128


class LabelTokens(nn.Module):
    """Encoder frames -> per-field class logits and the soft label tokens the LLM reads after the speech."""

    def __init__(
        self,
        encoder_dim: int,
        hidden: int = 0,
        fields: Sequence[str] = tuple(TASK_LABEL_FIELDS),
        pitch: bool = False,
        head: str = "trunk",
    ) -> None:
        """``hidden``: the LLM width of the soft tokens; 0 = classifiers only (a stage-1 Whisper's label heads).
        ``fields``: the label fields (``ModelConfig.label_fields``), kept in :data:`LABEL_FIELDS`' order.
        ``pitch`` (``ModelConfig.label_pitch``): the classifiers also read the clip's F0 statistics
        (:func:`osum.data.pitch.pitch_features`); those of :data:`PITCH_ONLY` read nothing else.
        ``head`` (``ModelConfig.label_head``): one of :data:`LABEL_HEADS`."""
        super().__init__()
        unknown = sorted(set(fields) - set(LABEL_FIELDS))
        if unknown:
            raise ValueError(f"label fields {unknown} do not exist; choose from {list(LABEL_FIELDS)}")
        if head not in LABEL_HEADS:
            raise ValueError(f"label_head {head!r}: choose one of {list(LABEL_HEADS)}")
        chosen = {n: f for n, f in LABEL_FIELDS.items() if n in fields}
        self.pitch, self.head = pitch, head
        extra = PITCH_FEATURES if pitch else 0
        self.trunk = nn.Sequential(nn.Linear(encoder_dim, TRUNK_WIDTH), nn.GELU())
        trunk_width = 2 * TRUNK_WIDTH + extra
        # "linear": the frames' own mean and spread, every feature standardised (running statistics of the training
        # batches, as a probe standardises with the training set's: they differ in scale by orders)
        linear_width = 2 * encoder_dim + extra
        linear = head in ("linear", "linear+attention")
        self.norm = nn.BatchNorm1d(linear_width, affine=False) if linear else None
        attend = [n for n in chosen if head == "linear+attention" and n in ATTENTION_FIELDS]

        def reads(name: str) -> int:
            return linear_width if linear and name not in TRUNK_ONLY else trunk_width

        def build(name: str, classes: int) -> nn.Module:
            if pitch and name in PITCH_ONLY:
                return nn.Sequential(nn.Linear(PITCH_FEATURES, PITCH_HIDDEN), nn.GELU(), nn.Linear(PITCH_HIDDEN, classes))
            if name in attend:
                return AttentionPool(encoder_dim, classes)
            return nn.Linear(reads(name), classes)

        self.heads = nn.ModuleDict({n: build(n, len(f.values)) for n, f in chosen.items()})
        # the attention heads' frames, every channel standardised over the valid frames of the training batches
        self.frame_norm = nn.BatchNorm1d(encoder_dim, affine=False) if attend else None
        # (C, H) per field: the LLM input vector of each class, set to its name's embedding by init_values
        self.values = nn.ParameterDict(
            {n: nn.Parameter(torch.randn(len(f.values), hidden) * 0.02) for n, f in chosen.items()}
            if hidden
            else {}
        )

    def train(self, mode: bool = True) -> LabelTokens:
        """As :meth:`nn.Module.train`, except that while none of the classifiers' parameters train (a stage that
        trains only the class vectors, or nothing here), their standardisation statistics stay as they were
        trained: in train mode BatchNorm would move them to each batch, and the frozen classifiers would then read
        inputs they never learnt (what happened to the committed ``mini`` in stage 3b, RESULTS.md section 15)."""
        super().train(mode)
        if mode and not any(p.requires_grad for n, p in self.named_parameters() if not n.startswith("values.")):
            for norm in (self.norm, self.frame_norm):
                if norm is not None:
                    norm.eval()
        return self

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
        enc = enc[:, : int(lengths.max())]  # a padded 30 s window: only the clips' own frames are read
        valid = lengths_to_mask(lengths, enc.shape[1])  # (B, T1)
        mask = valid[..., None].to(enc.dtype)  # (B, T1, 1)
        pitch = pitch.to(enc) if self.pitch else None  # type: ignore[union-attr]
        extra = [pitch] if pitch is not None else []
        sources: dict[str, torch.Tensor] = {}
        logits: dict[str, torch.Tensor] = {}
        for name, head in self.heads.items():
            if isinstance(head, AttentionPool):
                if "frames" not in sources:  # (B, T1, D), standardised over the valid frames
                    frames = torch.zeros_like(enc)
                    frames[valid] = _standardise(self.frame_norm, enc[valid])  # type: ignore[arg-type]
                    sources["frames"] = frames
                logits[name] = head(sources["frames"], valid)
                continue
            if pitch is not None and name in PITCH_ONLY:
                sources[name] = pitch
            elif self.norm is not None and name not in TRUNK_ONLY:
                if "linear" not in sources:  # (B, 2 * D [+ 4]), standardised
                    pooled = torch.cat([*_mean_and_spread(enc, mask), *extra], dim=-1)
                    sources["linear"] = _standardise(self.norm, pooled)
                sources[name] = sources["linear"]
            else:
                if "trunk" not in sources:  # (B, 2 * TRUNK_WIDTH [+ 4])
                    sources["trunk"] = torch.cat([*_mean_and_spread(self.trunk(enc), mask), *extra], dim=-1)
                sources[name] = sources["trunk"]
            logits[name] = head(sources[name])
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


class AttentionPool(nn.Module):
    """Standardised frames ``(B, T1, D)`` and their validity ``(B, T1)`` -> class logits ``(B, C)``.

    Each frame goes through one layer (``ATTENTION_WIDTH``, GELU, dropout 0.2); a learned score per frame, softmaxed
    over the clip's valid frames, weighs them into one vector, and a linear layer gives the logits. A laugh or a
    cough fills a few of a clip's frames: their mean and spread dilute it, attention can pick those frames out."""

    def __init__(self, encoder_dim: int, classes: int) -> None:
        super().__init__()
        self.frame = nn.Sequential(nn.Linear(encoder_dim, ATTENTION_WIDTH), nn.GELU(), nn.Dropout(0.2))
        self.score = nn.Linear(ATTENTION_WIDTH, 1)
        self.out = nn.Linear(ATTENTION_WIDTH, classes)

    def forward(self, frames: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h = self.frame(frames)  # (B, T1, W)
        weights = self.score(h).squeeze(-1).float().masked_fill(~valid, float("-inf")).softmax(dim=1)
        return self.out((weights.to(h.dtype)[..., None] * h).sum(1))


def _standardise(norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` for ``x`` ``(N, C)``; in training with a single row (a batch of one clip), the running
    statistics instead of the batch's (a batch of one has no spread to standardise by)."""
    if norm.training and x.shape[0] < 2:
        return F.batch_norm(x, norm.running_mean, norm.running_var, training=False, eps=norm.eps)
    return norm(x)


def _mean_and_spread(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``(B, T, C)`` and their validity ``(B, T, 1)`` -> mean and standard deviation ``(B, C)`` each."""
    n = mask.sum(1).clamp_min(1)
    mean = (x * mask).sum(1) / n
    std = (((x - mean[:, None]) ** 2 * mask).sum(1) / n).clamp_min(1e-6).sqrt()
    return mean, std
