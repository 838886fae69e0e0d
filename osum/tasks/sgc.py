"""SGC: transcript + speaker gender. OSUM tag ``<TRANSCRIBE> <GENDER>``; target ``"transcript<female>"``."""

from __future__ import annotations

from osum.tasks.base import Task
from osum.vocabulary import GENDER

SGC = Task(
    name="sgc",
    tag="<TRANSCRIBE> <GENDER>",
    description="speaker gender classification: transcript, then a gender tag",
    label_fields=(GENDER,),
)
