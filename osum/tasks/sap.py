"""SAP: transcript + speaker age group. OSUM tag ``<TRANSCRIBE> <AGE>``; target ``"transcript<adult>"``.

OSUM's source data used finer groups (``<YOUTH>``, ``<MIDDLE_AGE>``, ``<MIDDLE>``); OSUM maps them to
``adult``, and so do we, when building targets and when parsing.
"""

from __future__ import annotations

from osum.tasks.base import Task
from osum.vocabulary import AGE

SAP = Task(
    name="sap",
    tag="<TRANSCRIBE> <AGE>",
    description="speaker age prediction: transcript, then an age tag",
    label_fields=(AGE,),
)
