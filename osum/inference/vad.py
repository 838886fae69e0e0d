"""Where is speech? Silero VAD (the ``silero-vad`` wheel's TorchScript model, offline, CPU, MIT licence).

Dimension legend: N samples at 16 kHz, F VAD frames of :data:`FRAME` samples (32 ms).

The engine asks two things of it: which stretches of a long recording hold speech (to cut it into pieces the
encoder's window takes, :mod:`osum.inference.long_audio`), and how likely it is that a clip holds no speech at all
(``no_speech_prob``, the no-speech guard). Silero's own ``get_speech_timestamps_from_probs`` turns the frame
probabilities into regions (threshold, minimum speech and silence durations, padding), so both answers come from one
pass over the audio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from osum.data.audio import SAMPLE_RATE

FRAME = 512  # samples per speech probability at 16 kHz (Silero's window)


@dataclass(frozen=True)
class SpeechMap:
    """One clip's speech: per-frame probabilities ``(F,)`` and speech regions ``[(start, end), ...]`` in samples."""

    probs: torch.Tensor
    regions: tuple[tuple[int, int], ...]
    n_samples: int

    def no_speech_prob(self, start: int = 0, end: int | None = None) -> float:
        """1 - the highest speech probability of a frame in samples ``[start, end)`` (1.0 when there is none)."""
        end = self.n_samples if end is None else end
        frames = self.probs[start // FRAME : max(start // FRAME + 1, -(-end // FRAME))]
        return 1.0 - float(frames.max()) if frames.numel() else 1.0


class SpeechDetector:
    """Silero VAD with the settings the engine uses. Thread-safe; the model loads on first use."""

    def __init__(
        self,
        threshold: float = 0.5,
        min_speech_ms: int = 250,
        min_silence_ms: int = 300,
        pad_ms: int = 100,
    ) -> None:
        self.threshold = threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.pad_ms = pad_ms
        self._model: torch.jit.ScriptModule | None = None
        self._lock = threading.Lock()

    def _load(self) -> torch.jit.ScriptModule:
        if self._model is None:
            self._model = _silero().load_silero_vad()
        return self._model

    @torch.inference_mode()
    def __call__(self, wave: torch.Tensor) -> SpeechMap:
        """A 16 kHz mono waveform ``(N,)`` -> its :class:`SpeechMap`."""
        get_speech_timestamps_from_probs = _silero().get_speech_timestamps_from_probs
        wave = wave.detach().float().cpu().reshape(-1)
        n = int(wave.shape[0])
        if n < FRAME:
            return SpeechMap(torch.zeros(0), (), n)
        with self._lock:
            model = self._load()
            model.reset_states()
            probs = model.audio_forward(wave[None], SAMPLE_RATE)[0, : n // FRAME].clone()
            model.reset_states()
        found = get_speech_timestamps_from_probs(
            probs.tolist(),
            sampling_rate=SAMPLE_RATE,
            threshold=self.threshold,
            min_speech_duration_ms=self.min_speech_ms,
            min_silence_duration_ms=self.min_silence_ms,
            speech_pad_ms=self.pad_ms,
            audio_length_samples=n,
        )
        return SpeechMap(probs, tuple((int(r["start"]), int(r["end"])) for r in found), n)


def _silero():
    """The ``silero_vad`` module. Importing it sets torch's thread count to 1 for the whole process (its
    ``model.py`` calls ``torch.set_num_threads(1)``); the count the process had is put back."""
    threads = torch.get_num_threads()
    try:
        import silero_vad
    finally:
        torch.set_num_threads(threads)
    return silero_vad


_DEFAULT: SpeechDetector | None = None


def default_detector() -> SpeechDetector:
    """The process-wide detector (one model in memory)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = SpeechDetector()
    return _DEFAULT
