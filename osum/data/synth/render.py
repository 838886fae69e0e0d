"""Rendering one planned clip: synthesis, delivery effects, word-by-word assembly, event mixing, levels, and
the acoustic chain (``osum.data.synth.acoustics``: speed, reverberation, noise, channel, gain); and the clips
without speech.

``render_clip(spec)`` depends only on ``spec`` (its seed drives every random choice), so any process renders
the same samples for the same spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from osum.data.synth.acoustics import AcousticChain, apply_chain, speed_perturb
from osum.data.synth.dsp import SAMPLE_RATE, active_power, colored_noise, normalize_peak, trim_bounds
from osum.data.synth.events import event_gain, layout, make_event, nonspeech_sound
from osum.data.synth.plan import MAX_SECONDS, MIN_SECONDS, ClipSpec
from osum.data.synth.prosody import apply_effects
from osum.data.synth.text import words_of
from osum.data.tts import synthesize_array
from osum.errors import OsumError

PEAK_DB = -3.0  # default peak level of every clip before its delivery's level offset
MAX_PEAK_DB = -1.0  # a gain change never takes a clip's peak above this
_SPEEDUPS = (1.0, 1.2, 1.45, 1.75)  # rate factors tried when a clip comes out longer than MAX_SECONDS


@dataclass(frozen=True)
class Rendered:
    """A rendered clip: 16 kHz float32 samples ``(N,)`` and what is known about where things are in it."""

    audio: np.ndarray
    words: tuple[tuple[str, float, float], ...] | None = None  # (word, start s, end s)
    speech_span: tuple[float, float] = (0.0, 0.0)
    event_span: tuple[float, float] | None = None
    snr_db: float | None = None
    speed_factor: float = 1.0
    dry: np.ndarray | None = None  # float32 ``(N,)``: the clip before the acoustic chain (same timing)
    acoustics: Mapping[str, Any] = field(default_factory=dict)  # what the chain applied (to_dict)
    nonspeech: Mapping[str, Any] | None = None  # facts about the sound of a clip without speech

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _speak(spec: ClipSpec, text: str, speed_factor: float, rng: np.random.Generator) -> np.ndarray:
    voice = spec.voice
    # a converted voice's vocal tract multiplies the delivery's own spectrum shift
    d = replace(spec.delivery, shift=spec.delivery.shift * voice.tract) if voice.tract != 1.0 else spec.delivery
    wave = synthesize_array(
        text,
        voice.name,
        voice.engine,
        pitch=d.pitch,
        speed=min(450.0, d.engine_speed() * speed_factor),
        amplitude=d.amplitude,
        word_gap=d.word_gap if voice.engine == "espeak-ng" else None,
        pitch_range=d.pitch_range,
        f0_scale=voice.f0_scale,
    )
    return apply_effects(wave, d, rng)


def speech_of(
    spec: ClipSpec, speed_factor: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[str, int, int]] | None]:
    """The trimmed speech ``(N,)`` and, word by word, ``[(word, start sample, end sample)]`` (else None).

    Word mode speaks each word alone, trims its silence (-35 dB re. its loudest 10 ms frame) and joins the
    words with 30-150 ms pauses, so every word boundary is known to the sample.
    """
    if not spec.word_by_word:
        wave = _speak(spec, spec.text, speed_factor, rng)
        start, end = trim_bounds(wave, threshold_db=-40.0)
        if end <= start:
            raise OsumError(f"{spec.key}: the synthesizer produced silence for {spec.text!r}")
        return wave[start:end], None
    pieces: list[np.ndarray] = []
    spans: list[tuple[str, int, int]] = []
    pos = 0
    for i, word in enumerate(words_of(spec.text)):
        wave = _speak(spec, word, speed_factor, rng)
        start, end = trim_bounds(wave, threshold_db=-35.0)
        if end <= start:
            raise OsumError(f"{spec.key}: the synthesizer produced silence for the word {word!r}")
        if i:
            gap = int(rng.uniform(0.03, 0.15) * SAMPLE_RATE)
            pieces.append(np.zeros(gap, np.float32))
            pos += gap
        pieces.append(wave[start:end])
        spans.append((word, pos, pos + end - start))
        pos += end - start
    return np.concatenate(pieces), spans


def _perturb(
    speech: np.ndarray, spans: list[tuple[str, int, int]] | None, speed: float
) -> tuple[np.ndarray, list[tuple[str, int, int]] | None]:
    """Speed perturbation of the trimmed speech; word spans are moved with it (to within one sample)."""
    if speed == 1.0:
        return speech, spans
    out = speed_perturb(speech, speed)
    scale = len(out) / max(len(speech), 1)
    if spans is not None:
        spans = [(w, min(len(out), round(a * scale)), min(len(out), round(b * scale))) for w, a, b in spans]
    return out, spans


def _finish(
    dry: np.ndarray, chain: AcousticChain, rng: np.random.Generator, speech_power: float, peak_db: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """The acoustic chain on the peak-normalised ``dry`` clip, then the final peak level (``peak_db`` plus the
    chain's gain, at most MAX_PEAK_DB) and 16-bit quantisation."""
    if chain.clean:
        audio, applied = dry, {}
    else:
        wet, applied = apply_chain(dry, chain, rng, speech_power)
        audio = normalize_peak(wet, min(MAX_PEAK_DB, peak_db + chain.gain_db))
    return _quantise(audio), applied


def _quantise(audio: np.ndarray) -> np.ndarray:
    # Quantise as the 16-bit wav will, so the returned samples are exactly what a reader gets back.
    # (soundfile maps int16 to float by 1/32768.)
    return (np.clip(np.round(np.asarray(audio) * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)


def _peak_gain(x: np.ndarray, peak_db: float) -> float:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 10 ** (peak_db / 20) / peak if peak > 1e-12 else 1.0


def render_clip(spec: ClipSpec, with_event: bool = True) -> Rendered:
    """Render ``spec``. ``with_event=False`` gives the same clip without its event (same layout and level
    reference), which is how tests prove that the event is where the manifest says."""
    if spec.nonspeech is not None:
        return _render_nonspeech(spec, with_event)
    seeds = np.random.SeedSequence(spec.seed).spawn(5)
    chain = spec.acoustics
    for factor in _SPEEDUPS:
        fx_rng, lay_rng, ev_rng, noise_rng, chain_rng = (np.random.default_rng(s) for s in seeds)
        speech, spans = _perturb(*speech_of(spec, factor, fx_rng), chain.speed)
        lead = int(lay_rng.uniform(0.1, 0.4) * SAMPLE_RATE)
        tail = int(lay_rng.uniform(0.1, 0.4) * SAMPLE_RATE)
        event = make_event(spec.event, ev_rng) if spec.event else np.zeros(0, np.float32)
        gap = int(lay_rng.uniform(0.1, 0.3) * SAMPLE_RATE)
        lay = layout(
            len(speech), len(event), spec.placement or "after", lead, tail, gap, lay_rng.uniform(0.15, 0.85)
        )
        if lay.length <= MAX_SECONDS * SAMPLE_RATE:
            break
    else:
        raise OsumError(
            f"{spec.key}: clip is {lay.length / SAMPLE_RATE:.1f} s even at {_SPEEDUPS[-1]}x speed "
            f"(limit {MAX_SECONDS} s); text {spec.text!r}"
        )
    length = max(lay.length, int(MIN_SECONDS * SAMPLE_RATE))
    canvas = np.zeros(length, np.float64)
    canvas[lay.speech_at : lay.speech_at + len(speech)] += speech
    speech_power = active_power(speech)
    if spec.event and with_event:
        canvas[lay.event_at : lay.event_at + len(event)] += event * event_gain(speech, event, spec.snr_db)
    # A faint noise floor (45-60 dB below the speech) so that pauses are not digital silence.
    floor_db = noise_rng.uniform(45.0, 60.0)
    canvas += np.sqrt(speech_power) * 10 ** (-floor_db / 20) * colored_noise(length, noise_rng, 50.0, 7500.0)
    peak_db = PEAK_DB + spec.delivery.level_db
    gain = _peak_gain(canvas, peak_db)
    dry = canvas * gain
    audio, applied = _finish(dry, chain, chain_rng, speech_power * gain**2, peak_db)
    sec = 1.0 / SAMPLE_RATE
    words = None
    if spans is not None:
        words = tuple(
            (w, round((lay.speech_at + a) * sec, 4), round((lay.speech_at + b) * sec, 4)) for w, a, b in spans
        )
    event_span = None
    if spec.event:
        event_span = (round(lay.event_at * sec, 4), round((lay.event_at + lay.event_len) * sec, 4))
    return Rendered(
        audio=audio,
        words=words,
        speech_span=(round(lay.speech_at * sec, 4), round((lay.speech_at + len(speech)) * sec, 4)),
        event_span=event_span,
        snr_db=spec.snr_db,
        speed_factor=factor,
        dry=dry.astype(np.float32),
        acoustics=applied,
    )


def _render_nonspeech(spec: ClipSpec, with_event: bool) -> Rendered:
    """A clip without speech: a vocal event alone (peak-normalised like speech, then the chain), or a
    non-speech sound at its own absolute level (then reverberation and channel only)."""
    sound_rng, lay_rng, ev_rng, noise_rng, chain_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(5)
    )
    n = max(int((spec.seconds or MIN_SECONDS) * SAMPLE_RATE), int(MIN_SECONDS * SAMPLE_RATE))
    sec = 1.0 / SAMPLE_RATE
    if spec.nonspeech != "event":
        sound, info = nonspeech_sound(spec.nonspeech, n, sound_rng)
        dry = sound.astype(np.float64)
        applied: dict[str, Any] = {}
        audio = dry
        if not spec.acoustics.clean:
            audio, applied = apply_chain(dry, spec.acoustics, chain_rng)
        return Rendered(
            audio=_quantise(np.clip(audio, -1.0, 1.0)),
            dry=sound,
            acoustics=applied,
            nonspeech={"kind": spec.nonspeech, **info},
        )
    event = make_event(spec.event, ev_rng)
    lead = int(lay_rng.uniform(0.1, 0.6) * SAMPLE_RATE)
    tail = int(lay_rng.uniform(0.1, 0.6) * SAMPLE_RATE)
    length = min(max(n, lead + len(event) + tail), int(MAX_SECONDS * SAMPLE_RATE))
    at = lead + int(lay_rng.uniform(0.0, 1.0) * max(0, length - tail - lead - len(event)))
    event = event[: max(0, length - at)]
    power = active_power(event)
    floor_db = noise_rng.uniform(45.0, 60.0)
    canvas = np.sqrt(power) * 10 ** (-floor_db / 20) * colored_noise(length, noise_rng, 50.0, 7500.0)
    placed = np.zeros(length, np.float64)
    placed[at : at + len(event)] = event
    # The level reference is the clip with its event, even when it is rendered without.
    gain = _peak_gain(canvas + placed, PEAK_DB)
    dry = (canvas + placed if with_event else canvas) * gain
    audio, applied = _finish(dry, spec.acoustics, chain_rng, power * gain**2, PEAK_DB)
    return Rendered(
        audio=audio,
        event_span=(round(at * sec, 4), round((at + len(event)) * sec, 4)),
        dry=dry.astype(np.float32),
        acoustics=applied,
        nonspeech={"kind": "event"},
    )
