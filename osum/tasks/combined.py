"""OSUM's combined tags: several labels in one answer, in the tag's order, with or without a transcript.

``asr_age_gender`` -> ``"transcript<adult><female>"``; ``age_gender`` -> ``"<adult><female>"``;
``asr_style_age_gender`` -> ``"transcript<有声书><adult><male>"``; ``style_age_gender`` -> ``"<有声书><adult><male>"``.
"""

from __future__ import annotations

from osum.tasks.base import Task
from osum.tasks.sap import AGE
from osum.tasks.sgc import GENDER
from osum.tasks.ssr import STYLE

ASR_AGE_GENDER = Task(
    name="asr_age_gender",
    tag="<TRANSCRIBE> <AGE> <GENDER>",
    description="transcript, then age and gender tags",
    label_fields=(AGE, GENDER),
)

AGE_GENDER = Task(
    name="age_gender",
    tag="<AGE> <GENDER>",
    description="age and gender tags only (no transcript)",
    label_fields=(AGE, GENDER),
    has_transcript=False,
)

ASR_STYLE_AGE_GENDER = Task(
    name="asr_style_age_gender",
    tag="<TRANSCRIBE> <STYLE> <AGE> <GENDER>",
    description="transcript, then style, age and gender tags",
    label_fields=(STYLE, AGE, GENDER),
)

STYLE_AGE_GENDER = Task(
    name="style_age_gender",
    tag="<STYLE> <AGE> <GENDER>",
    description="style, age and gender tags only (no transcript)",
    label_fields=(STYLE, AGE, GENDER),
    has_transcript=False,
)
