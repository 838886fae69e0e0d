"""Synthetic multi-task corpus for OSUM's eight tasks, built offline from espeak-ng/flite speech.

``build_corpus(out_dir, hours, seed)`` writes ``train.jsonl``/``test.jsonl`` manifests, 16 kHz wavs and a data
card. Transcripts, word times, speaker gender, vocal events and STTC answers are true of the audio by
construction; emotion, style and age are procedural proxies (a controlled delivery). See ``card.py``.
"""

from osum.data.synth.builder import CorpusSummary, build_corpus
from osum.data.synth.plan import TASK_LABELS, TASK_NAMES, ClipSpec, PlanSettings, plan_corpus
from osum.data.synth.render import Rendered, render_clip

__all__ = [
    "TASK_LABELS",
    "TASK_NAMES",
    "ClipSpec",
    "CorpusSummary",
    "PlanSettings",
    "Rendered",
    "build_corpus",
    "plan_corpus",
    "render_clip",
]
