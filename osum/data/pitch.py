"""Pitch (F0) statistics of a clip, read by the label heads beside the encoder frames (``ModelConfig.label_pitch``).

Why: a gender classifier on the pooled Whisper tiny.en frames learnt the synthesizer's voices, not voices: 100%
on its training clips, 80-85% on unseen synthetic voices and 19-21% on a recorded woman (Asterisk's prompts), while a
logistic regression on these four numbers alone scored 92% / 100% / 100% on the same clips (RESULTS.md section 10).
F0 comes from Praat's autocorrelation tracker (praat-parselmouth).
"""

from __future__ import annotations

import math

import numpy as np
import parselmouth
import torch

from osum.data.audio import SAMPLE_RATE

PITCH_FEATURES = 4  # log2(F0 / 150 Hz) at the 10th, 50th and 90th percentile of voiced frames; voiced share
FLOOR_HZ, CEILING_HZ = 60.0, 500.0  # covers men's, women's and children's voices
STEP_S = 0.01


def pitch_features(wave: torch.Tensor) -> torch.Tensor:
    """16 kHz samples ``(N,)`` -> ``(PITCH_FEATURES,)`` float32: ``log2(F0 / 150)`` at the 10th, 50th and 90th
    percentile over voiced frames, then the share of voiced frames. No voiced frame (silence, noise): zeros."""
    samples = wave.detach().to(torch.float64).cpu().numpy()
    if samples.shape[0] < int(3 / FLOOR_HZ * SAMPLE_RATE) + 1:  # shorter than Praat's analysis window
        return torch.zeros(PITCH_FEATURES)
    pitch = parselmouth.Sound(samples, SAMPLE_RATE).to_pitch(
        time_step=STEP_S, pitch_floor=FLOOR_HZ, pitch_ceiling=CEILING_HZ
    )
    f0 = pitch.selected_array["frequency"]
    voiced = f0[f0 > 0]
    if voiced.size == 0:
        return torch.zeros(PITCH_FEATURES)
    p10, p50, p90 = (math.log2(float(v) / 150.0) for v in np.percentile(voiced, [10, 50, 90]))
    return torch.tensor([p10, p50, p90, voiced.size / max(f0.size, 1)], dtype=torch.float32)
