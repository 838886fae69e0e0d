"""SSR: transcript + speaking style. OSUM tag ``<TRANSCRIBE> <STYLE>``; target ``"transcript<新闻科普>"``.

The labels are OSUM's 8 Chinese style names; each has an English gloss (``news_science`` ...) for docs and
UIs, accepted as an alias. Raw corpus tags are remapped as OSUM's ``global_style_dict`` does.
"""

from __future__ import annotations

from osum.tasks.base import Task
from osum.vocabulary import STYLE

SSR = Task(
    name="ssr",
    tag="<TRANSCRIBE> <STYLE>",
    description="speaking style recognition: transcript, then a style tag",
    label_fields=(STYLE,),
)
