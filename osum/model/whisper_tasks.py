"""Stage 1 of OSUM: Whisper itself fine-tuned on the ASR+X tasks, each task a new decoder tag token.

Dimension legend: B batch, T mel frames, T1 encoder frames, L decoder tokens, D width, V vocabulary.

The encoder is osum's variable-length :class:`WhisperEncoder` (so the stage-1 encoder drops straight into stage 2);
the decoder is written here with HF ``WhisperDecoder`` parameter names, plus what HF's lacks: a key padding mask on
cross-attention (a padded batch equals single runs) and a plain KV cache. The decoder prompt of task ``t`` is
``<|startoftranscript|> <|osum:t|> <|notimestamps|>``; the target is the task's ASR+X text, then ``<|endoftext|>``.

With ``decoder.label_heads`` (not in OSUM) the decoder keeps Whisper's own prompt
``<|startoftranscript|> <|notimestamps|>`` for every task, so it transcribes exactly as the pretrained model does,
and ``label_tokens`` (classifiers on the pooled encoder frames) give the labels that follow the transcript.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from osum.config import DecoderConfig, ModelConfig
from osum.model.encoder import WhisperEncoder, encoder_frames, lengths_to_mask
from osum.model.label_tokens import LabelTokens
from osum.model.osum import IGNORE_INDEX, Batch, OsumOutput

TASK_TOKEN = "<|osum:{}|>"


class Attention(nn.Module):
    """Whisper attention (no k bias) over ``kv`` with a key mask; optional causal mask and K/V cache."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d, bias=False)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        kv: torch.Tensor | None,
        key_mask: torch.Tensor | None,
        causal: bool,
        cache: dict | None = None,
        name: str = "",
        probs: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x ``(B, L, D)``; kv ``(B, S, D)`` (None = self); key_mask ``(B, S_total)`` True = valid (None: every
        key is valid, which lets the fused kernel run without a mask) -> ``(B, L, D)``.
        ``probs``: a list that gets this call's attention weights ``(B, heads, L, S)`` appended."""
        q = self._split(self.q_proj(x))
        if kv is None:  # self-attention: append the new keys/values to the cache
            k, v = self._split(self.k_proj(x)), self._split(self.v_proj(x))
            if cache is not None:
                if name in cache:
                    k, v = torch.cat([cache[name][0], k], 2), torch.cat([cache[name][1], v], 2)
                cache[name] = (k, v)
        elif cache is not None and name in cache:  # cross-attention keys/values are computed once
            k, v = cache[name]
        else:
            k, v = self._split(self.k_proj(kv)), self._split(self.v_proj(kv))
            if cache is not None:
                cache[name] = (k, v)
        lq, lk = q.shape[2], k.shape[2]
        causal = causal and lq > 1  # one new query may see every key before it
        mask = key_mask[:, None, None, :] if key_mask is not None else None
        if causal and (mask is not None or lq != lk or probs is not None):
            tril = torch.ones(lq, lk, dtype=torch.bool, device=x.device).tril(lk - lq)
            mask, causal = (tril if mask is None else mask & tril), False
        if probs is not None:  # spelt out, to keep the weights (word timing); same result as the fused kernel
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            weights = (scores if mask is None else scores.masked_fill(~mask, -torch.inf)).softmax(-1)
            probs.append(weights)
            y = weights @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.out_proj(y.transpose(1, 2).reshape(x.shape))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.self_attn, self.self_attn_layer_norm = Attention(d, heads), nn.LayerNorm(d)
        self.encoder_attn, self.encoder_attn_layer_norm = Attention(d, heads), nn.LayerNorm(d)
        self.fc1, self.fc2, self.final_layer_norm = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.LayerNorm(d)

    def forward(self, x, enc, self_mask, enc_mask, cache, i, cross_probs=None):
        x = x + self.self_attn(self.self_attn_layer_norm(x), None, self_mask, True, cache, f"self{i}")
        x = x + self.encoder_attn(
            self.encoder_attn_layer_norm(x), enc, enc_mask, False, cache, f"cross{i}", cross_probs
        )
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperDecoder(nn.Module):
    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.embed_positions = nn.Embedding(config.max_positions, config.d_model)
        self.layers = nn.ModuleList(
            DecoderLayer(config.d_model, config.heads, config.ffn_dim) for _ in range(config.layers)
        )
        self.layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, ids, offset, enc, self_mask, enc_mask, cache=None, cross_probs=None) -> torch.Tensor:
        """ids ``(B, L)`` at positions ``offset..`` -> hidden ``(B, L, D)``; logits = hidden @ embed_tokens.T.
        ``cross_probs``: a list that gets each layer's cross-attention weights ``(B, heads, L, T1)``."""
        pos = torch.arange(offset, offset + ids.shape[1], device=ids.device)
        x = self.embed_tokens(ids) + self.embed_positions(pos)[None]
        for i, layer in enumerate(self.layers):
            x = layer(x, enc, self_mask, enc_mask, cache, i, cross_probs)
        return self.layer_norm(x)


class WhisperTaskModel(nn.Module):
    """Encoder + decoder; ``forward(batch)`` is teacher forcing over [task prefix, target], loss on the target."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = WhisperEncoder(config.encoder)
        self.decoder = WhisperDecoder(config.decoder)
        self.label_tokens = (
            LabelTokens(
                config.encoder.d_model,
                fields=config.label_fields,
                pitch=config.label_pitch,
                head=config.label_head,
            )
            if config.decoder.label_heads
            else None
        )

    def after_meta_load(self) -> None:
        """Nothing to rebuild: every tensor of this model is in its state dict."""

    def place(self, device: torch.device | str, dtype: torch.dtype | None = None) -> None:
        self.to(device=device, dtype=dtype or torch.float32)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.decoder.embed_tokens.weight.T  # the output projection is tied, as in Whisper

    def _layout(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per row: ids = prefix + target[:-1] (contiguous, right padded), labels, mask."""
        rows, labels = [], []
        for i in range(batch.prompt_ids.shape[0]):
            p = batch.prompt_ids[i, : int(batch.prompt_lengths[i])]
            t = batch.target_ids[i, : int(batch.target_lengths[i])]
            rows.append(torch.cat([p, t])[:-1])
            labels.append(torch.cat([torch.full((p.shape[0] - 1,), IGNORE_INDEX, device=t.device), t]))
        width = max(r.shape[0] for r in rows)
        ids = torch.full((len(rows), width), self.config.decoder.eot_token_id, device=rows[0].device)
        lab = torch.full_like(ids, IGNORE_INDEX)
        for i, (r, lb) in enumerate(zip(rows, labels, strict=True)):
            ids[i, : r.shape[0]], lab[i, : lb.shape[0]] = r, lb
        return ids, lab, ids.new_tensor([r.shape[0] for r in rows])

    @torch.inference_mode()
    def alignment_weights(self, prompt: list[int], tokens: list[int], enc: torch.Tensor) -> torch.Tensor:
        """The cross-attention of ``decoder.alignment_heads`` over one clip's window ``enc`` ``(1, T1, D)`` while
        reading ``prompt + tokens + [<|endoftext|>]`` -> ``(heads, len(tokens) + 1, T1)``: row ``k`` is where the
        decoder looks while it emits token ``k`` (the last row: the end token). Whisper's heads that follow the
        speech, for word times."""
        heads = self.config.decoder.alignment_heads
        if not heads:
            raise ValueError("this Whisper model names no alignment heads (decoder.alignment_heads)")
        ids = torch.tensor([prompt + tokens + [self.config.decoder.eot_token_id]], device=enc.device)
        probs: list[torch.Tensor] = []
        mask = torch.ones(1, ids.shape[1], dtype=torch.bool, device=enc.device)
        self.decoder(ids, 0, enc, mask, self.cross_mask(enc, torch.tensor([enc.shape[1]])), None, probs)
        return torch.stack([probs[layer][0, head, len(prompt) - 1 : -1] for layer, head in heads])

    def label_logits(
        self, enc: torch.Tensor, enc_lengths: torch.Tensor, pitch: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Encoder frames ``(B, T1, D)`` (+ F0 statistics ``(B, 4)`` with ``label_pitch``) -> ``{field: (B, C)}``
        from the label heads (``decoder.label_heads``)."""
        if self.label_tokens is None:
            raise ValueError("this Whisper model has no label heads (decoder.label_heads is false)")
        return self.label_tokens(enc.float(), enc_lengths, pitch)[0]

    def encode(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder output ``(B, T1, D)`` and the clips' own frame counts ``(B,)``. An encoder with
        ``pad_to_window`` keeps the whole window (``T1`` = its positions): the decoder attends to all of it, as
        in Whisper, while the label heads pool the clips' own frames."""
        return self.encoder(batch.feats, batch.feat_lengths, keep_window=True)

    def cross_mask(self, enc: torch.Tensor, enc_lengths: torch.Tensor) -> torch.Tensor | None:
        """``(B, T1)`` the encoder frames the decoder attends to: the clip's own; None (every frame) for a padded
        window, as in Whisper."""
        if self.config.encoder.pad_to_window:
            return None
        return lengths_to_mask(enc_lengths, enc.shape[1])

    def forward(
        self, batch: Batch, output_hidden_states: bool = False, full_logits: bool = True
    ) -> OsumOutput:
        # the transcript's loss is needed when the decoder or the encoder learns from it (an encoder adapted
        # under a frozen decoder); otherwise only the label heads train and the decoder is not run
        transcript_loss = any(p.requires_grad for p in self.decoder.parameters()) or any(
            p.requires_grad for p in self.encoder.parameters()
        )
        heads = self.label_tokens is not None and (
            not transcript_loss or any(p.requires_grad for p in self.label_tokens.parameters())
        )
        if batch.encoder_frames is not None:
            enc, enc_lengths = batch.encoder_frames, encoder_frames(batch.feat_lengths)
            window = self.config.encoder.max_positions
            if transcript_loss and not (self.config.encoder.pad_to_window and enc.shape[1] == window):
                raise ValueError(
                    f"data.encoder_cache holds {enc.shape[1]} frames per clip, but the decoder reads the encoder's "
                    f"whole {window}-frame window: train the decoder on a cache of an encoder with "
                    "encoder.pad_to_window (which stores the window), or without the cache"
                )
        else:
            enc, enc_lengths = self.encode(batch)
        heads_loss = None
        if heads:  # the label classifiers on the clip's own frames
            if batch.attributes is None:
                raise ValueError(
                    "training the label heads needs the batch's label classes (Batch.attributes)"
                )
            logits = self.label_logits(enc, enc_lengths, batch.pitch)
            heads_loss = LabelTokens.loss(logits, batch.attributes.to(enc.device))
            if heads_loss is None:  # a batch without any label: nothing to learn, but a loss to report
                heads_loss = enc.sum() * 0.0
        if heads and not transcript_loss:  # a frozen decoder is not run: the heads' loss is the whole loss
            return OsumOutput(
                loss=heads_loss,
                logits=None,
                labels=None,
                attention_mask=None,
                position_ids=None,
                inputs_embeds=None,
            )
        ids, labels, lengths = self._layout(batch)
        mask = lengths_to_mask(lengths, ids.shape[1])
        hidden = self.decoder(ids, 0, enc, mask, self.cross_mask(enc, enc_lengths))
        scored = labels != IGNORE_INDEX
        logits = self.logits(hidden) if full_logits else self.logits(hidden[scored])
        if bool(scored.any()):
            loss = F.cross_entropy((logits[scored] if full_logits else logits).float(), labels[scored])
        else:  # no row with a decoder target (e.g. label-only rows of a label-heads model): nothing to learn
            loss = hidden.sum() * 0.0
        if heads_loss is not None:  # decoder and heads learn together: the sum of both losses
            loss = loss + heads_loss
        return OsumOutput(
            loss,
            logits,
            labels,
            mask.long(),
            torch.arange(ids.shape[1]).expand_as(ids),
            self.decoder.embed_tokens(ids),
            None,
        )

    @torch.inference_mode()
    def decode(
        self,
        batch: Batch,
        max_new_tokens: int,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int = 0,
        encoded: tuple[torch.Tensor, torch.Tensor] | None = None,
        caps: Sequence[int] | None = None,
        loop_start: Callable[[list[int]], int | None] | None = None,
    ) -> tuple[list[list[int]], list[float | None]]:
        """Greedy (or sampled) KV-cached decoding; every row's prefix must have the same length -> (token ids per
        row without the end token, each row's mean log-probability per token, end token included; None for an
        answer cut by a guard). ``encoded``: the batch's :meth:`encode` output when the caller has it already.
        ``caps``: per row, the most tokens it may generate; ``loop_start``: given a row's ids, where a loop at its
        end begins (None: no loop); the row then stops and is cut there (:func:`osum.inference.guards.loop_start`)."""
        if len(set(batch.prompt_lengths.tolist())) != 1:
            raise ValueError("the whisper architecture decodes rows with equal-length task prefixes only")
        enc, enc_lengths = encoded or self.encode(batch)
        enc_mask = self.cross_mask(enc, enc_lengths)
        ids = batch.prompt_ids[:, : int(batch.prompt_lengths[0])]
        eot, b = self.config.decoder.eot_token_id, ids.shape[0]
        limit = min(max_new_tokens, self.config.decoder.max_positions - ids.shape[1])
        row_caps = [min(limit, c) for c in caps] if caps is not None else [limit] * b
        cache: dict = {}
        rows: list[list[int]] = [[] for _ in range(b)]
        logprob = [0.0] * b
        cut = [False] * b
        done = torch.zeros(b, dtype=torch.bool, device=ids.device)
        step_ids, offset = ids, 0  # equal-length prefixes: no padding, every earlier token is seen
        suppress = self.config.decoder.suppress_tokens
        begin_suppress = self.config.decoder.begin_suppress_tokens
        for step in range(limit):
            hidden = self.decoder(step_ids, offset, enc, None, enc_mask, cache)
            scores = self.logits(hidden[:, -1]).float()
            if suppress:
                scores[:, suppress] = -torch.inf
            if step == 0 and begin_suppress:  # Whisper never starts with a blank or the end token
                scores[:, begin_suppress] = -torch.inf
            if do_sample:
                scores = scores / temperature
                if top_k:
                    scores[scores < scores.topk(top_k, -1).values[:, -1:]] = -float("inf")
                nxt = torch.multinomial(scores.softmax(-1), 1)[:, 0]
            else:
                nxt = scores.argmax(-1)
            chosen = scores.log_softmax(-1).gather(-1, nxt[:, None])[:, 0].tolist()
            for r, token in enumerate(nxt.tolist()):
                if bool(done[r]):
                    continue
                logprob[r] += chosen[r]
                if token == eot:
                    done[r] = True
                    continue
                rows[r].append(token)
                start = loop_start(rows[r]) if loop_start is not None else None
                if start is not None:
                    rows[r], cut[r], done[r] = rows[r][:start], True, True
                elif len(rows[r]) >= row_caps[r]:
                    cut[r], done[r] = True, True
            if bool(done.all()):
                break
            nxt = torch.where(done, torch.full_like(nxt, eot), nxt)
            offset += step_ids.shape[1]
            step_ids = nxt[:, None]
        # a row that stopped at the end token scored it; one cut by a guard or the limit did not
        means = [None if cut[r] else logprob[r] / (len(rows[r]) + bool(done[r])) for r in range(b)]
        return rows, means
