"""VED: transcript + vocal event. OSUM tag ``<TRANSCRIBE> <CAPTION>``; target ``"transcript<laugh>"``.

The 8 labels are the ones OSUM's prompts list; ``throat clearing`` keeps its space, as in the prompts
(``throat_clearing`` and ``scream`` are accepted as aliases).
"""

from __future__ import annotations

from osum.tasks.base import Task
from osum.vocabulary import EVENT

VED = Task(
    name="ved",
    tag="<TRANSCRIBE> <CAPTION>",
    description="vocal event detection: transcript, then an audio-event tag",
    label_fields=(EVENT,),
)
