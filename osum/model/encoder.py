"""Variable-length Whisper encoder.

Dimension legend: B batch, T mel frames, T1 = ceil(T/2) encoder frames, D model width, M mel bins.

Parameter names equal ``transformers.WhisperEncoder``'s (``conv1``, ``layers.{i}.self_attn.q_proj`` ...), so HF and
converted CTranslate2 weights load with a plain prefix strip. Unlike HF's encoder it never pads to 30 s: the position
table is sliced to the input length and padded frames of a batch are masked, so every utterance of a padded batch
gives the same output as when it runs alone (OSUM's WeNet port does not; see the reference fixtures README, 7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from osum.config import EncoderConfig


def encoder_frames(n_mel_frames: torch.Tensor | int) -> torch.Tensor | int:
    """Encoder output frames for ``n_mel_frames`` input frames: ``ceil(T / 2)`` (conv2 has stride 2)."""
    return (n_mel_frames + 1) // 2


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, max_len)`` bool mask, True on valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class SelfAttention(nn.Module):
    """Multi-head self-attention with an optional key padding mask (Whisper: no bias on k_proj)."""

    def __init__(self, d_model: int, heads: int, key_bias: bool = False) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=key_bias)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, dropout: float = 0.0) -> torch.Tensor:
        """x ``(B, T, D)``, mask ``(B, T)`` True = valid key -> ``(B, T, D)``."""
        b, t, d = x.shape
        q, k, v = (
            p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class WhisperEncoderLayer(nn.Module):
    """Pre-LN block: x + attn(LN(x)); x + fc2(gelu(fc1(LN(x))))."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d_model, heads, key_bias=False)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x ``(B, T1, D)``, mask ``(B, T1)`` -> ``(B, T1, D)``."""
        x = x + self.self_attn(self.self_attn_layer_norm(x), mask)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


def run_layers(
    layers: nn.ModuleList, x: torch.Tensor, mask: torch.Tensor | None, recompute: bool
) -> torch.Tensor:
    """Apply ``layer(x, mask)`` in turn; with ``recompute`` (training) activations are rebuilt in backward."""
    for layer in layers:
        x = checkpoint(layer, x, mask, use_reentrant=False) if recompute else layer(x, mask)
    return x


def pad_with_silence(feats: torch.Tensor, lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """feats ``(B, T, M)`` (Whisper-normalised log-mel), lengths ``(B,)`` -> ``(B, frames, M)``: each row continued
    past its length with the log-mel of digital silence, as if its waveform had been zero-padded to ``frames``.

    Whisper's log-mel is ``(max(log10 P, peak - 8) + 4) / 4`` with ``peak`` the clip's largest ``log10 P``; silence
    (``log10 P = -10``) therefore becomes ``max(-1.5, top - 2)``, ``top`` the row's largest normalised value.
    """
    b, t, m = feats.shape
    valid = lengths_to_mask(lengths, t)[:, :, None]
    top = feats.masked_fill(~valid, -torch.inf).amax(dim=(1, 2))
    floor = torch.clamp(top - 2.0, min=-1.5).nan_to_num(-1.5, neginf=-1.5)  # an empty row gets pure silence
    out = floor.to(feats.dtype)[:, None, None].expand(b, frames, m).clone()
    keep = min(t, frames)
    out[:, :keep] = torch.where(valid[:, :keep], feats[:, :keep], out[:, :keep])
    return out


def whisper_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """Whisper's sinusoid table ``(n_positions, D)``: [sin | cos] concatenated, computed in float32 like OSUM."""
    half = d_model // 2
    inv = torch.exp(-torch.log(torch.tensor(10000.0)) / (half - 1) * torch.arange(half, dtype=torch.float32))
    angles = torch.arange(n_positions, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class WhisperEncoder(nn.Module):
    """conv1 -> GELU -> conv2(stride 2) -> GELU -> + positions -> pre-LN layers -> layer_norm."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.n_mels, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_positions, d)
        self.embed_positions.requires_grad_(False)  # a fixed sinusoid in Whisper, stored with the weights
        with torch.no_grad():
            self.embed_positions.weight.copy_(whisper_positions(config.max_positions, d))
        self.layers = nn.ModuleList(
            WhisperEncoderLayer(d, config.heads, config.ffn_dim) for _ in range(config.layers)
        )
        self.layer_norm = nn.LayerNorm(d)
        self.gradient_checkpointing = False  # recompute layer activations in backward (saves memory)

    @property
    def max_mel_frames(self) -> int:
        return self.config.max_positions * 2

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor, keep_window: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats ``(B, T, M)`` zero-padded, lengths ``(B,)`` -> (out ``(B, T1, D)``, out_lengths ``(B,)``).

        With ``pad_to_window`` and ``keep_window`` the output keeps the whole window ``(B, max_positions, D)``
        (the lengths stay the clips' own): Whisper's decoder ends a transcript by seeing the silence after it."""
        if feats.shape[1] > self.max_mel_frames:
            raise ValueError(
                f"{feats.shape[1]} mel frames exceed the encoder's {self.max_mel_frames} "
                f"({self.max_mel_frames / 100:.1f} s)"
            )
        if self.config.pad_to_window:
            t1 = int(encoder_frames(feats.shape[1]))
            out, _ = self._forward(
                pad_with_silence(feats, lengths, self.max_mel_frames),
                torch.full_like(lengths, self.max_mel_frames),
            )
            return (out if keep_window else out[:, :t1]), encoder_frames(lengths)
        return self._forward(feats, lengths)

    def _forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.gelu(self.conv1(feats.transpose(1, 2).to(self.conv1.weight.dtype)))  # (B, D, T)
        # A padded row's conv1 output beyond its length is not zero (bias + left neighbour); zero it so conv2's
        # last window sees exactly the zero padding it sees when the utterance runs alone.
        x = x * lengths_to_mask(lengths, x.shape[-1])[:, None, :].to(x.dtype)
        x = F.gelu(self.conv2(x)).transpose(1, 2)  # (B, T1, D)
        out_lengths = encoder_frames(lengths)
        x = x + self.embed_positions.weight[: x.shape[1]].to(x.dtype)
        mask = lengths_to_mask(out_lengths, x.shape[1])
        attn_mask = None if bool(mask.all()) else mask
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        x = run_layers(self.layers, x, attn_mask, recompute)
        return self.layer_norm(x), out_lengths
