"""ASR: plain speech recognition. OSUM tag ``<TRANSCRIBE>``; the target is the normalised transcript."""

from __future__ import annotations

from osum.tasks.base import Task

ASR = Task(
    name="asr",
    tag="<TRANSCRIBE>",
    description="automatic speech recognition: transcript only",
)
