"""The CTC pre-stage: train the adaptor to put the transcript's tokens into the LLM's embedding space, no LLM pass.

Trained directly, a randomly initialised adaptor in front of a small LLM stalls: the LLM learns to write fluent text
that ignores the audio (issue [4 of 5] measured loss ~2.4 and WER ~0.9 after 25 CPU minutes). This objective first
teaches the adaptor what the speech says: its output frames ``s_t`` (12.5 Hz, already in the LLM's width H) are
scored against every row of the LLM's own frozen input embedding table ``E`` (V, H), plus one learned blank vector:
``logits_t = exp(log_scale) * [s_t @ E^T, s_t . blank]``, trained with CTC on the transcript's LLM token ids. A frame
that CTC aligns to a token is pulled towards that token's embedding, which is exactly what the LLM can read
afterwards. Scoring ``s_t`` itself, CTC made the frames ~9x longer than any embedding (measured: norm 28 against
3.2), which the LLM then could not read; a penalty on the norm alone fought CTC and slowed it down. So CTC scores each
frame's direction (the frame rescaled to the table's mean norm), the learned ``log_scale`` sharpens the logits, and
the penalty ``(|s_t| / mean |e| - 1)^2``, which CTC no longer opposes, keeps the frames at the embedding scale.
It is an option for small models on small budgets (``train.objective: ctc``); the OSUM recipe does not use it.

CTC alone keeps the words and drops who speaks: a linear gender probe on the mean and spread of the adaptor's
frames fell from 96% (encoder output) to 60% (``bench/attribute_probe.py``), and an LLM stage on such frames did
not learn SGC.
With ``attribute_weight > 0`` each label field of the data (gender, age, emotion, style, event) also gets a
classifier on the mean of the utterance's frames, trained with cross-entropy where the utterance has that label.
Its class directions are unit vectors at a fixed scale (:data:`ATTRIBUTE_SCALE`), so the answer must take a
readable share of each frame rather than a tiny component that a large head weight amplifies. On the random tiny
preset this collapsed every clip's mean frame to one vector and stayed at chance; on the mini recipe's pretrained
encoder it kept gender readable (RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from osum.model.label_tokens import LabelTokens
from osum.model.osum import Batch, OsumModel, OsumOutput
from osum.vocabulary import LABEL_FIELDS

INITIAL_SCALE = 10.0  # logits = scale * (s_t . e): a learned scale, starting at 10
# attribute logits = ATTRIBUTE_SCALE * mean frame . unit class direction (+ bias): with frames of norm ~3, a
# confident answer (logit gap ~4) needs the mean frame to move ~0.8 along the class directions.
ATTRIBUTE_SCALE = 5.0


@dataclass
class CTCOutput:
    loss: torch.Tensor  # () CTC loss (mean of per-utterance loss / target length) + the norm penalty
    log_probs: torch.Tensor  # (B, T, K + 1) over the scored vocabulary; the last class is the blank
    lengths: torch.Tensor  # (B,) valid speech frames
    attribute_loss: torch.Tensor | None = None  # () the label classifiers' cross-entropy (unweighted), if any
    label_loss: torch.Tensor | None = (
        None  # () the model's label tokens' classifier loss (in ``loss``), if any
    )


class CTCObjective(nn.Module):
    """Wraps an :class:`OsumModel` for the pre-stage; ``blank``, ``log_scale`` and the attribute classifiers are
    its own parameters (saved beside the checkpoint, dropped when the LLM stage starts)."""

    def __init__(
        self,
        model: OsumModel,
        vocab: Sequence[int] | None = None,
        norm_weight: float = 1.0,
        cosine_scale: float = 0.0,
        attribute_weight: float = 0.0,
    ) -> None:
        """``vocab``: the token ids scored (e.g. every token of the training transcripts); None = all of them.
        Scoring only the tokens the data uses makes the output layer ~15x cheaper for SmolLM2's 49k vocabulary;
        a target token outside ``vocab`` is an error. ``attribute_weight``: weight of the label classifiers'
        loss (0: none)."""
        super().__init__()
        self.model = model
        self.norm_weight = norm_weight
        self.cosine_scale = cosine_scale
        self.attribute_weight = attribute_weight
        hidden = model.config.llm.hidden_size
        self.blank = nn.Parameter(torch.randn(hidden) * 0.02 if cosine_scale > 0 else torch.zeros(hidden))
        # Unpenalised CTC grew the frames ~9x instead; starting the scale there keeps the early learning as fast.
        self.log_scale = nn.Parameter(torch.tensor(math.log(INITIAL_SCALE)))
        # one classifier per label field, in LABEL_FIELDS order (Batch.attributes' columns)
        self.attribute_heads = nn.ModuleDict(
            {name: nn.Linear(hidden, len(f.values)) for name, f in LABEL_FIELDS.items()}
            if attribute_weight > 0
            else {}
        )
        table = model.lm.get_input_embeddings().weight
        n = table.shape[0]
        self.register_buffer("target_norm", table.detach().float().norm(dim=-1).mean(), persistent=False)
        ids = torch.arange(n) if vocab is None else torch.tensor(sorted(set(vocab)), dtype=torch.long)
        if len(ids) == 0 or ids.min() < 0 or ids.max() >= n:
            raise ValueError(f"CTC vocabulary must be token ids in [0, {n}), got {len(ids)} ids")
        index = torch.full((n,), -1, dtype=torch.long)
        index[ids] = torch.arange(len(ids))
        self.register_buffer("vocab", ids, persistent=False)  # (K,) scored token ids
        self.register_buffer("index", index, persistent=False)  # (V,) token id -> class, -1 = not scored

    def forward(self, batch: Batch, full_logits: bool = False) -> CTCOutput:
        """``batch.target_ids`` (B, L) are transcript ids (see :class:`osum.codec.TranscriptCodec`). A model
        with label tokens also trains their classifiers here (they read the encoder, not the adaptor)."""
        speech = self.model.encode(batch.feats, batch.feat_lengths, batch.encoder_frames, batch.pitch)
        out = self.score(
            speech.frames, speech.lengths, batch.target_ids, batch.target_lengths, batch.attributes
        )
        if speech.label_logits is not None and batch.attributes is not None:
            out.label_loss = LabelTokens.loss(speech.label_logits, batch.attributes)
            if out.label_loss is not None:
                out.loss = out.loss + out.label_loss
        return out

    def score(
        self,
        speech: torch.Tensor,
        lengths: torch.Tensor,
        target_ids: torch.Tensor,
        target_lengths: torch.Tensor,
        attributes: torch.Tensor | None = None,
    ) -> CTCOutput:
        """Adaptor frames ``(B, T, H)`` with valid ``lengths`` ``(B,)``, transcript ids ``(B, L)`` with
        ``target_lengths`` ``(B,)`` and label classes ``(B, F)`` -> the loss (CTC + norm penalty + labels)."""
        table = self.model.lm.get_input_embeddings().weight[self.vocab].float()  # (K, H), frozen
        s = speech.float()
        norms = s.norm(dim=-1, keepdim=True)  # (B, T, 1)
        # CTC scores the frames' directions only, so it cannot sharpen its logits by growing the frames; the scale
        # does that, and the penalty alone sets the norm.
        if self.cosine_scale > 0:  # cosines at a fixed scale
            unit, table = F.normalize(s, dim=-1), F.normalize(table, dim=-1)
            blank, scale = F.normalize(self.blank.float(), dim=0), self.cosine_scale
        else:  # each frame set to the table's mean norm, dot products with the table at the learned scale
            unit = s * (self.target_norm / norms.clamp_min(1e-6))
            blank, scale = self.blank.float(), self.log_scale.exp()
        logits = torch.cat([unit @ table.T, (unit @ blank)[..., None]], dim=-1) * scale
        log_probs = logits.log_softmax(-1)
        valid = torch.arange(target_ids.shape[1], device=lengths.device)[None] < target_lengths[:, None]
        targets = self.index[target_ids.long()].masked_fill(~valid, 0)
        if (targets[valid] < 0).any():
            raise ValueError("a target token is outside the CTC vocabulary given to CTCObjective")
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),
            targets,
            lengths,
            target_lengths,
            blank=table.shape[0],
            reduction="mean",
            zero_infinity=True,  # a target longer than its frames gives no gradient instead of inf
        )
        frames = torch.arange(s.shape[1], device=lengths.device)[None] < lengths[:, None]  # (B, T)
        norm_penalty = ((norms[..., 0][frames] / self.target_norm - 1) ** 2).mean()
        total = loss + self.norm_weight * norm_penalty
        attribute_loss = self._attribute_loss(s, frames, attributes)
        if attribute_loss is not None:
            total = total + self.attribute_weight * attribute_loss
        return CTCOutput(total, log_probs, lengths, attribute_loss)

    def head_parameters(self) -> dict[str, nn.Parameter]:
        """This objective's own parameters (blank, logit scale, attribute classifiers) by name, without the wrapped
        model's: what the pre-stage trains besides the adaptor and saves in its head file."""
        return {n: p for n, p in self.named_parameters() if not n.startswith("model.")}

    def attribute_logits(self, s: torch.Tensor, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frames ``(B, T, H)`` and their mask ``(B, T)`` -> ``{field: (B, C_field)}`` from the mean frame."""
        mean = (s * frames[..., None]).sum(1) / frames.sum(1, keepdim=True).clamp_min(1)  # (B, H)
        return {
            name: ATTRIBUTE_SCALE * mean @ F.normalize(head.weight, dim=-1).T + head.bias
            for name, head in self.attribute_heads.items()
        }

    def _attribute_loss(
        self, s: torch.Tensor, frames: torch.Tensor, attributes: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Mean cross-entropy over the fields labelled in this batch; None when there are none (or no heads)."""
        if not self.attribute_heads or attributes is None:
            return None
        losses = []
        for column, logits in enumerate(self.attribute_logits(s, frames).values()):
            known = attributes[:, column] >= 0
            if known.any():
                losses.append(F.cross_entropy(logits[known], attributes[known, column]))
        if not losses:  # keep the heads in the graph: DDP expects a gradient for every parameter
            return sum(p.sum() for p in self.attribute_heads.parameters()) * 0
        return torch.stack(losses).mean()

    @torch.inference_mode()
    def greedy(self, batch: Batch) -> list[list[int]]:
        """Best path per utterance: argmax per frame, repeats merged, blanks dropped -> token ids."""
        out = self.forward(batch)
        blank = out.log_probs.shape[-1] - 1
        result = []
        for row, n in zip(out.log_probs.argmax(-1), out.lengths, strict=True):
            classes = torch.unique_consecutive(row[: int(n)])
            result.append([int(self.vocab[c]) for c in classes if int(c) != blank])
        return result


class AuxiliaryCTC(nn.Module):
    """The LM objective plus ``weight`` x the CTC pre-stage's loss on the same adaptor frames
    (``train.ctc_aux_weight``).

    Trained through the LLM alone, the CTC adaptor lost its words within 100 steps (CTC-greedy WER 0.13 -> 1.02,
    RESULTS.md) before LoRA had learnt to read them, so the mini recipe had to freeze it, and a frozen adaptor
    cannot add what the LLM stage needs beyond the CTC's words and labels. The CTC term keeps the words (and with
    ``attribute_weight`` the labels) readable while the LM loss reshapes the frames. Batches need
    ``transcript_ids`` (``TrainingData(..., transcripts=TranscriptCodec(...))``).
    """

    def __init__(self, ctc: CTCObjective, weight: float) -> None:
        super().__init__()
        if weight <= 0:
            raise ValueError(f"AuxiliaryCTC weight must be > 0, got {weight}")
        self.ctc, self.weight = ctc, weight

    @property
    def model(self) -> OsumModel:
        return self.ctc.model

    def forward(self, batch: Batch, full_logits: bool = False) -> OsumOutput:
        """The LM pass's output with ``loss`` = LM loss + weight x CTC loss, and ``lm_loss`` the LM part."""
        if batch.transcript_ids is None or batch.transcript_lengths is None:
            raise ValueError("train.ctc_aux_weight needs batches with transcript_ids (see AuxiliaryCTC)")
        speech = self.model.encode(batch.feats, batch.feat_lengths, batch.encoder_frames, batch.pitch)
        out = self.model(batch, full_logits=full_logits, speech=speech)
        aux = self.ctc.score(
            speech.frames, speech.lengths, batch.transcript_ids, batch.transcript_lengths, batch.attributes
        )
        if out.lm_loss is None:
            out.lm_loss = out.loss
        out.loss = out.loss + self.weight * aux.loss
        return out
