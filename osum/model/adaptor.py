"""OSUM's adaptor, exactly: 3 causal Conv1d (k3, strides 1/2/2, GELU) + 4-layer pre-LN Transformer + Linear.

Dimension legend: B batch, T1 encoder frames (50 Hz), T2 speech tokens (12.5 Hz), D adaptor width, H LLM width.

:func:`num_speech_tokens` is the single definition of how many speech tokens a clip becomes; the model checks its
own output against it and the data collator uses it, so the two can never disagree silently.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from osum.config import HOP_LENGTH, AdaptorConfig
from osum.model.encoder import SelfAttention, encoder_frames, lengths_to_mask, run_layers


def _halve(n: torch.Tensor | int) -> torch.Tensor | int:
    return (n + 1) // 2


def adaptor_frames(n_encoder_frames: torch.Tensor | int) -> torch.Tensor | int:
    """Speech tokens out of the adaptor for ``n_encoder_frames`` in: two stride-2 convs, ``ceil(ceil(T1/2)/2)``."""
    return _halve(_halve(n_encoder_frames))


def num_speech_tokens(n_mel_frames: torch.Tensor | int) -> torch.Tensor | int:
    """Speech tokens (without BOS/EOS) for a clip of ``n_mel_frames`` mel frames (= n_samples // 160)."""
    return adaptor_frames(encoder_frames(n_mel_frames))


def num_speech_tokens_for_samples(n_samples: int) -> int:
    """Speech tokens (without BOS/EOS) for a 16 kHz clip of ``n_samples`` samples."""
    return int(num_speech_tokens(n_samples // HOP_LENGTH))


def interleaved_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """WeNet's table ``(n_positions, D)``: sin on even, cos on odd columns, computed in float32 like OSUM."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table


class CausalConvDownsampler(nn.Module):
    """Three Conv1d(k=3) with left-only padding 2 and strides 1, 2, 2, each followed by exact GELU.

    Left padding makes the convs causal: right padding of a batch never leaks into valid frames.
    """

    strides = (1, 2, 2)

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(d_in if i == 0 else d_out, d_out, kernel_size=3, stride=s)
            for i, s in enumerate(self.strides)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``(B, T1, D_in)`` -> ``(B, ceil(ceil(T1/2)/2), D)``."""
        y = x.transpose(1, 2)
        for conv in self.convs:
            y = F.gelu(conv(F.pad(y, (2, 0))))
        return y.transpose(1, 2)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class AdaptorLayer(nn.Module):
    """WeNet pre-LN Transformer block (ReLU FFN, biased q/k/v, dropout on both residual branches)."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d_model, heads, key_bias=True)
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x ``(B, T2, D)``, mask ``(B, T2)`` -> ``(B, T2, D)``."""
        p = self.dropout.p if self.training else 0.0
        x = x + self.dropout(self.self_attn(self.norm1(x), mask, dropout=p))
        return x + self.dropout(self.ffn(self.norm2(x)))


class Adaptor(nn.Module):
    """Encoder frames ``(B, T1, D_enc)`` -> speech embeddings in the LLM's space ``(B, T2, H)``."""

    def __init__(self, config: AdaptorConfig, d_encoder: int, d_llm: int) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.downsample = CausalConvDownsampler(d_encoder, d)
        self.input_proj = nn.Linear(d, d)
        self.input_norm = nn.LayerNorm(d, eps=1e-5)
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("positions", interleaved_positions(config.max_positions, d), persistent=False)
        self.layers = nn.ModuleList(
            AdaptorLayer(d, config.heads, config.ffn_dim, config.dropout) for _ in range(config.layers)
        )
        self.final_norm = nn.LayerNorm(d, eps=1e-5)
        self.proj = nn.Linear(d, d_llm)
        self.gradient_checkpointing = False  # recompute layer activations in backward (saves memory)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x ``(B, T1, D_enc)``, lengths ``(B,)`` -> (speech ``(B, T2, H)``, speech lengths ``(B,)``)."""
        y = self.downsample(x)
        out_lengths = adaptor_frames(lengths)
        if y.shape[1] != adaptor_frames(x.shape[1]):
            raise RuntimeError(f"adaptor produced {y.shape[1]} frames for {x.shape[1]} inputs")
        if y.shape[1] > self.positions.shape[0]:
            raise ValueError(
                f"{y.shape[1]} speech tokens exceed the adaptor's {self.positions.shape[0]} positions"
            )
        y = self.dropout(self.input_norm(self.input_proj(y)))
        y = y * math.sqrt(self.config.d_model) + self.positions[: y.shape[1]].to(y.dtype)
        y = self.dropout(y)
        mask = lengths_to_mask(out_lengths, y.shape[1])
        attn_mask = None if bool(mask.all()) else mask
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        y = run_layers(self.layers, y, attn_mask, recompute)
        return self.proj(self.final_norm(y)), out_lengths
