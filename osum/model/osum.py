"""OsumModel: Whisper encoder -> adaptor -> [prompt, speech BOS, speech, speech EOS, target] -> Qwen2 (+LoRA).

Dimension legend: B batch, T mel frames, M mel bins, T2 speech tokens, P prompt tokens, L target tokens,
S LLM sequence length, H LLM width, V vocabulary.

There is no chat template (as in OSUM): the LLM input is ``embed(prompt)``, a learned speech-BOS vector, the adaptor
output (followed by one soft token per label field when ``adaptor.label_tokens`` is set; not in OSUM), a learned
speech-EOS vector, then (training) ``embed(target)`` whose last token is the LLM's end token.
The loss covers the target tokens only. Each row is laid out contiguously and padded at one end (right for
training, left for generation), with position ids counting valid tokens only, so a padded batch gives every
utterance the result it gets alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from osum.config import ModelConfig
from osum.model.adaptor import Adaptor, num_speech_tokens
from osum.model.encoder import WhisperEncoder, encoder_frames
from osum.model.label_tokens import LabelTokens
from osum.model.llm import build_llm, causal_lm

IGNORE_INDEX = -100


@dataclass
class Batch:
    """A padded training/eval batch. ``target_ids`` rows already end with the LLM's end token."""

    feats: torch.Tensor  # (B, T, M) log-mel, zero padded
    feat_lengths: torch.Tensor  # (B,) valid mel frames
    prompt_ids: torch.Tensor  # (B, P) padded with anything
    prompt_lengths: torch.Tensor  # (B,)
    target_ids: torch.Tensor  # (B, L) padded with anything
    target_lengths: torch.Tensor  # (B,)
    speech_tokens: torch.Tensor | None = None  # (B,) from the collator; checked against the model's own count
    # (B, F) class index per field of osum.vocabulary.LABEL_FIELDS, -1 = no label (read by the auxiliary classifiers:
    # label tokens, CTC objectives)
    attributes: torch.Tensor | None = None
    # (B, L2) / (B,) the transcripts' LLM ids alone, for a CTC loss beside the LM one (train.ctc_aux_weight)
    transcript_ids: torch.Tensor | None = None
    transcript_lengths: torch.Tensor | None = None
    # (B, L) loss weight of each target token (train.label_loss_weight); None = every token weighs 1
    target_weights: torch.Tensor | None = None
    # (B, T1, D) a frozen encoder's cached output (data.encoder_cache), zero padded: the model skips its encoder,
    # and ``feats`` is then a ``(B, T, 0)`` placeholder that only carries the mel lengths
    encoder_frames: torch.Tensor | None = None
    # (B, 4) the clips' F0 statistics (osum/data/pitch.py), for label heads built with ModelConfig.label_pitch
    pitch: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return Batch(**moved)


@dataclass
class OsumOutput:
    loss: torch.Tensor | None  # () mean cross-entropy over target tokens (weighted by batch.target_weights)
    logits: torch.Tensor  # (B, S, V); (N, V) at the N scored positions when full_logits=False
    labels: torch.Tensor  # (B, S) IGNORE_INDEX outside targets (unshifted; HF shifts inside)
    attention_mask: torch.Tensor  # (B, S) 1 = valid
    position_ids: torch.Tensor  # (B, S)
    inputs_embeds: torch.Tensor  # (B, S, H)
    hidden_states: tuple[torch.Tensor, ...] | None = None  # per layer (B, S, H) when asked for
    lm_loss: torch.Tensor | None = None  # () the LM part of ``loss`` when an auxiliary loss is added to it
    label_loss: torch.Tensor | None = None  # () the label tokens' classifier loss (in ``loss``), if any


@dataclass
class SpeechEncoding:
    """What the speech path gives the LLM for a batch."""

    frames: torch.Tensor  # (B, T2, H) adaptor output
    lengths: torch.Tensor  # (B,) valid speech tokens
    label_logits: dict[str, torch.Tensor] | None = None  # {field: (B, C)} with adaptor.label_tokens
    label_tokens: torch.Tensor | None = None  # (B, F, H) the soft label tokens after the speech


class OsumModel(nn.Module):
    """The composition ``encoder -> adaptor -> llm`` plus the two learned speech marker vectors."""

    def __init__(self, config: ModelConfig, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = config
        self.encoder = WhisperEncoder(config.encoder)
        self.adaptor = Adaptor(config.adaptor, config.encoder.d_model, config.llm.hidden_size)
        self.speech_bos = nn.Parameter(torch.randn(config.llm.hidden_size) * 0.02)
        self.speech_eos = nn.Parameter(torch.randn(config.llm.hidden_size) * 0.02)
        self.label_tokens: LabelTokens | None = None
        if config.adaptor.label_tokens:
            self.label_tokens = LabelTokens(
                config.encoder.d_model,
                config.llm.hidden_size,
                config.label_fields,
                config.label_pitch,
                config.label_head,
            )
        self.llm = build_llm(config.llm, config.lora, dtype)

    def add_label_tokens(self) -> LabelTokens:
        """Give a model built without them its label tokens (untrained, on the adaptor's device) and record
        that in its config, so the checkpoints it saves build them again."""
        if self.label_tokens is None:
            device = self.speech_bos.device
            self.label_tokens = LabelTokens(
                self.config.encoder.d_model,
                self.config.llm.hidden_size,
                self.config.label_fields,
                self.config.label_pitch,
                self.config.label_head,
            ).to(device)
            self.config.adaptor.label_tokens = True
        return self.label_tokens

    def after_meta_load(self) -> None:
        """After ``load_state_dict(assign=True)`` into a meta-device build: rebuild fixed tables, re-tie weights."""
        from osum.model.adaptor import interleaved_positions

        cfg = self.config.adaptor
        self.adaptor.positions = interleaved_positions(cfg.max_positions, cfg.d_model)
        for parent in list(self.modules()):
            for name, child in parent.named_children():
                if any(b.is_meta for b in child.buffers(recurse=False)) and hasattr(child, "config"):
                    setattr(parent, name, type(child)(config=child.config))  # e.g. the LLM's rotary embedding
        left = [n for n, b in self.named_buffers() if b.is_meta]
        if left:
            raise RuntimeError(f"cannot rebuild fixed buffers {left} after loading")
        if self.config.llm.tie_word_embeddings:  # assign=True gave lm_head its own Parameter; share it again
            self.lm.tie_weights()

    def place(self, device: torch.device | str, llm_dtype: torch.dtype | None = None) -> None:
        """Encoder, adaptor and speech markers in float32 (as OSUM); the LLM in ``llm_dtype`` (default: as is)."""
        self.llm.to(device=device, dtype=llm_dtype or self.llm_dtype)
        self.encoder.to(device=device, dtype=torch.float32)
        self.adaptor.to(device=device, dtype=torch.float32)
        if self.label_tokens is not None:
            self.label_tokens.to(device=device, dtype=torch.float32)
        for marker in (self.speech_bos, self.speech_eos):
            marker.data = marker.data.to(device=device, dtype=torch.float32)

    @property
    def lm(self) -> nn.Module:
        """The ``Qwen2ForCausalLM`` (with LoRA layers injected when enabled)."""
        return causal_lm(self.llm)

    @property
    def llm_dtype(self) -> torch.dtype:
        return self.lm.get_input_embeddings().weight.dtype

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """ids ``(...,)`` -> ``(..., H)``."""
        return self.lm.get_input_embeddings()(ids)

    def encode(
        self,
        feats: torch.Tensor,
        feat_lengths: torch.Tensor,
        frames: torch.Tensor | None = None,
        pitch: torch.Tensor | None = None,
    ) -> SpeechEncoding:
        """feats ``(B, T, M)``, lengths ``(B,)`` -> the adaptor's frames (and the label tokens, if any).
        ``frames`` ``(B, T1, D)``: the encoder's output when it is cached (``Batch.encoder_frames``); ``pitch``
        ``(B, 4)``: F0 statistics for label tokens built with ``label_pitch`` (``Batch.pitch``)."""
        if frames is not None:  # a cached window (pad_to_window) is cut to the batch's own frames
            enc_lengths = encoder_frames(feat_lengths)
            enc = frames[:, : int(enc_lengths.max())]
        else:
            enc, enc_lengths = self.encoder(feats, feat_lengths)
        speech, speech_lengths = self.adaptor(enc, enc_lengths)
        expected = num_speech_tokens(feat_lengths)
        if not torch.equal(speech_lengths, expected):
            raise RuntimeError(
                f"speech token count {speech_lengths.tolist()} != num_speech_tokens {expected.tolist()}"
            )
        if self.label_tokens is None:
            return SpeechEncoding(speech, speech_lengths)
        logits, tokens = self.label_tokens(enc.float(), enc_lengths, pitch)
        return SpeechEncoding(speech, speech_lengths, logits, tokens)

    def encode_speech(
        self, feats: torch.Tensor, feat_lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats ``(B, T, M)``, lengths ``(B,)`` -> (speech ``(B, T2, H)``, speech lengths ``(B,)``)."""
        enc = self.encode(feats, feat_lengths)
        return enc.frames, enc.lengths

    def _rows(
        self,
        batch: Batch,
        speech: SpeechEncoding,
        with_targets: bool,
        answer_prefix: list[list[int]] | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-row embeddings ``(S_i, H)`` and labels ``(S_i,)`` of [prompt, BOS, speech, (label tokens), EOS,
        (target)]; generation rows end with their ``answer_prefix`` ids instead of a target."""
        dtype = self.llm_dtype
        bos, eos = self.speech_bos.to(dtype)[None], self.speech_eos.to(dtype)[None]
        # One embedding call per batch, not per row: ZeRO-3 gathers weights on every module call, so ranks
        # holding batches of different sizes must still make the same calls.
        prompt_emb = self.embed_tokens(batch.prompt_ids)
        target_emb = self.embed_tokens(batch.target_ids) if with_targets else None
        if answer_prefix is not None:
            if with_targets or len(answer_prefix) != speech.frames.shape[0]:
                raise ValueError("answer_prefix: one id list per row, and only when generating")
            width = max([len(p) for p in answer_prefix] + [1])
            padded = torch.zeros(len(answer_prefix), width, dtype=torch.long, device=bos.device)
            for i, p in enumerate(answer_prefix):
                padded[i, : len(p)] = torch.tensor(p, dtype=torch.long)
            prefix_emb = self.embed_tokens(padded)
        rows, labels = [], []
        for i in range(speech.frames.shape[0]):
            p = int(batch.prompt_lengths[i])
            parts = [prompt_emb[i, :p], bos, speech.frames[i, : int(speech.lengths[i])].to(dtype)]
            if speech.label_tokens is not None:
                parts.append(speech.label_tokens[i].to(dtype))
            parts.append(eos)
            n_prefix = sum(x.shape[0] for x in parts)
            label = [torch.full((n_prefix,), IGNORE_INDEX, dtype=torch.long, device=bos.device)]
            if target_emb is not None:
                t = int(batch.target_lengths[i])
                parts.append(target_emb[i, :t])
                label.append(batch.target_ids[i, :t].long())
            elif answer_prefix is not None:
                n = len(answer_prefix[i])
                parts.append(prefix_emb[i, :n])
                label.append(torch.full((n,), IGNORE_INDEX, dtype=torch.long, device=bos.device))
            rows.append(torch.cat(parts))
            labels.append(torch.cat(label))
        return rows, labels

    @staticmethod
    def _pad(
        rows: list[torch.Tensor], labels: list[torch.Tensor], left: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stack rows, padding at the left or right -> (embeds, labels, attention_mask, position_ids)."""
        s = max(r.shape[0] for r in rows)
        b, h = len(rows), rows[0].shape[1]
        ref = rows[0]
        embeds = ref.new_zeros(b, s, h)
        out_labels = torch.full((b, s), IGNORE_INDEX, dtype=torch.long, device=ref.device)
        mask = torch.zeros(b, s, dtype=torch.long, device=ref.device)
        for i, (row, lab) in enumerate(zip(rows, labels, strict=True)):
            sl = slice(s - row.shape[0], s) if left else slice(0, row.shape[0])
            embeds[i, sl], out_labels[i, sl], mask[i, sl] = row, lab, 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return embeds, out_labels, mask, position_ids

    def _check_speech_tokens(self, batch: Batch, speech_lengths: torch.Tensor) -> None:
        if batch.speech_tokens is not None and not torch.equal(
            batch.speech_tokens.to(speech_lengths), speech_lengths
        ):
            raise ValueError(
                f"collator speech token counts {batch.speech_tokens.tolist()} do not match the model's "
                f"{speech_lengths.tolist()}: build batches with osum.model.adaptor.num_speech_tokens"
            )

    def forward(
        self,
        batch: Batch,
        output_hidden_states: bool = False,
        full_logits: bool = True,
        speech: SpeechEncoding | None = None,
    ) -> OsumOutput:
        """Teacher-forced pass over [prompt, BOS, speech, EOS, target]; loss on target tokens only.

        With ``full_logits=False`` (training) the LM head runs only where a target token is predicted, which
        saves a ``(B, S, V)`` tensor (V = 152k for Qwen2) and most of the step time of small models;
        ``logits`` is then ``(N, V)`` for those N positions. ``speech``: :meth:`encode`'s output when the
        caller has it already (e.g. an auxiliary loss on the same frames). With label tokens and
        ``batch.attributes``, ``loss`` also holds their classifiers' cross-entropy (``label_loss``; ``lm_loss``
        is then the LM part).
        """
        speech = speech or self.encode(batch.feats, batch.feat_lengths, batch.encoder_frames, batch.pitch)
        self._check_speech_tokens(batch, speech.lengths)
        rows, labels = self._rows(batch, speech, with_targets=True)
        embeds, labels_t, mask, position_ids = self._pad(rows, labels, left=False)
        common = dict(
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=position_ids,
            output_hidden_states=output_hidden_states,
            use_cache=False,
        )
        if full_logits and batch.target_weights is None:
            out = self.llm(labels=labels_t, **common)
            loss, logits, hidden = out.loss, out.logits, out.hidden_states
        else:
            lm = self.lm
            out = lm.model(**common)
            scored = labels_t[:, 1:] != IGNORE_INDEX  # position t predicts token t + 1
            if full_logits:
                logits = lm.lm_head(out.last_hidden_state)
                picked = logits[:, :-1][scored]
            else:
                picked = logits = lm.lm_head(out.last_hidden_state[:, :-1][scored])
            losses = F.cross_entropy(picked.float(), labels_t[:, 1:][scored], reduction="none")  # (N,)
            if batch.target_weights is None:
                loss = losses.mean()
            else:  # the scored positions are every row's target tokens, row by row, in order
                w = torch.cat([batch.target_weights[i, : int(n)] for i, n in enumerate(batch.target_lengths)])
                w = w.to(losses)
                loss = (losses * w).sum() / w.sum()
            hidden = out.hidden_states
        label_loss = None
        if speech.label_logits is not None and batch.attributes is not None:
            label_loss = LabelTokens.loss(speech.label_logits, batch.attributes.to(loss.device))
        return OsumOutput(
            loss=loss if label_loss is None else loss + label_loss,
            logits=logits,
            labels=labels_t,
            attention_mask=mask,
            position_ids=position_ids,
            inputs_embeds=embeds,
            hidden_states=hidden,
            lm_loss=None if label_loss is None else loss,
            label_loss=label_loss,
        )

    def prefix_embeddings(
        self, batch: Batch, answer_prefix: list[list[int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded [prompt, BOS, speech, EOS, (answer prefix)] -> (embeds ``(B, S, H)``, attention_mask
        ``(B, S)``). ``answer_prefix``: per row, the ids its answer is forced to start with (may be empty)."""
        speech = self.encode(batch.feats, batch.feat_lengths, batch.encoder_frames, batch.pitch)
        self._check_speech_tokens(batch, speech.lengths)
        rows, labels = self._rows(batch, speech, with_targets=False, answer_prefix=answer_prefix)
        embeds, _, mask, _ = self._pad(rows, labels, left=True)
        return embeds, mask
