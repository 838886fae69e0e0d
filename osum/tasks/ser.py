"""SER: transcript + speech emotion tag. OSUM tag ``<TRANSCRIBE> <EMOTION>``; target ``"transcript<happy>"``.

The 8 labels are the ones OSUM's prompts list. ``angry`` is accepted for ``anger`` (OSUM-EChat's spelling).
"""

from __future__ import annotations

from osum.tasks.base import Task
from osum.vocabulary import EMOTION

SER = Task(
    name="ser",
    tag="<TRANSCRIBE> <EMOTION>",
    description="speech emotion recognition: transcript, then an emotion tag",
    label_fields=(EMOTION,),
)
