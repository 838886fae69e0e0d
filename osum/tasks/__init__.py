"""The task registry: OSUM's 8 tasks and its 4 combined tags, by our name.

Adding a task: write ``<name>.py`` defining a :class:`Task`, add ``prompts/<name>.yaml`` (``en:`` and ``zh:``
lists), and add one line to ``_ALL`` below.

>>> get_task("<TRANSCRIBE><GENDER>").target("Hello World", {"gender": "FEMALE"})
'hello world<female>'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from osum.errors import TaskError
from osum.tasks.asr import ASR
from osum.tasks.base import (
    LabelField,
    PromptTable,
    Segment,
    Task,
    TaskResult,
    Word,
    normalize_text,
    tidy_text,
)
from osum.tasks.combined import AGE_GENDER, ASR_AGE_GENDER, ASR_STYLE_AGE_GENDER, STYLE_AGE_GENDER
from osum.tasks.sap import SAP
from osum.tasks.ser import SER
from osum.tasks.sgc import SGC
from osum.tasks.srwt import SRWT
from osum.tasks.ssr import SSR
from osum.tasks.sttc import STTC
from osum.tasks.ved import VED
from osum.vocabulary import LABEL_FIELDS, SPEECH_FIELD, TASK_LABEL_FIELDS, TASK_NAMES

__all__ = [
    "LABEL_FIELDS",
    "OSUM_TASKS",
    "SPEECH_FIELD",
    "TASK_LABEL_FIELDS",
    "TASKS",
    "LabelField",
    "PromptTable",
    "Segment",
    "Task",
    "TaskError",
    "TaskResult",
    "Word",
    "attribute_classes",
    "default_prompts",
    "get_task",
    "load_prompts",
    "normalize_text",
    "parse_task_list",
    "tidy_text",
]

_ALL = (
    ASR,
    SRWT,
    VED,
    SER,
    SSR,
    SGC,
    SAP,
    STTC,
    ASR_AGE_GENDER,
    AGE_GENDER,
    ASR_STYLE_AGE_GENDER,
    STYLE_AGE_GENDER,
)

# Read-only so that no caller can change the registry for everyone else.
TASKS: Mapping[str, Task] = MappingProxyType({t.name: t for t in _ALL})
# The paper's eight tasks: what "all" means, what `osum tasks` and /v1/models offer. The combined tags
# (asr_age_gender, ...) exist in OSUM's data and parse here; a model answers them only if trained on them.
OSUM_TASKS: tuple[str, ...] = ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc")
_BY_TAG: Mapping[str, Task] = MappingProxyType({t.compact_tag: t for t in _ALL})
# the label vocabulary lives in osum.vocabulary (the model reads it too); the registry must agree with it
if tuple(TASKS) != TASK_NAMES:
    raise RuntimeError(f"osum.vocabulary.TASK_NAMES {TASK_NAMES} do not match the task registry {tuple(TASKS)}")
if {f.name: f for t in _ALL for f in t.label_fields} != dict(TASK_LABEL_FIELDS):
    raise RuntimeError("osum.vocabulary.TASK_LABEL_FIELDS do not match the tasks' label fields")


def attribute_classes(labels: Mapping[str, str] | None) -> list[int]:
    """``{"gender": "male"}`` -> one class index per field of :data:`LABEL_FIELDS` (in its order), -1 where the
    utterance has no label for that field or an unknown value (e.g. the targets of an auxiliary classifier)."""
    out = []
    for name, field in LABEL_FIELDS.items():
        value = field.canonical((labels or {}).get(name))
        out.append(-1 if value is None else field.values.index(value))
    return out


def get_task(name_or_tag: str | Task, prompts: PromptTable | None = None) -> Task:
    """A task by our name (``"ser"``, any case) or OSUM tag (``"<TRANSCRIBE> <EMOTION>"``, spaces optional).

    With ``prompts`` (e.g. a checkpoint's prompt table) the task uses those prompts. Raises TaskError
    listing the valid names for anything else.
    """
    task = name_or_tag if isinstance(name_or_tag, Task) else None
    if task is None and isinstance(name_or_tag, str):
        key = name_or_tag.strip()
        task = TASKS.get(key.lower()) or _BY_TAG.get("".join(key.split()).upper())
    if task is None:
        raise TaskError(
            f"unknown task {name_or_tag!r}; valid names: {', '.join(TASKS)} "
            "(or an OSUM tag such as '<TRANSCRIBE> <GENDER>')"
        )
    return prompts.apply(task) if prompts is not None else task


def parse_task_list(spec: str, prompts: PromptTable | None = None) -> list[Task]:
    """``"asr,ser"`` -> ``[ASR, SER]`` for command lines; ``"all"`` gives the paper's eight tasks
    (:data:`OSUM_TASKS`). Duplicates are dropped."""
    if not isinstance(spec, str):
        raise TaskError(f"task list must be a comma-separated string, got {spec!r}")
    if spec.strip().lower() == "all":
        return [get_task(t, prompts) for t in OSUM_TASKS]
    tasks: list[Task] = []
    for item in spec.split(","):
        if item.strip():
            task = get_task(item, prompts)
            if task.name not in {t.name for t in tasks}:
                tasks.append(task)
    if not tasks:
        raise TaskError(f"empty task list {spec!r}; valid names: {', '.join(TASKS)}")
    return tasks


def default_prompts() -> PromptTable:
    """The package prompts of every registered task (what a new checkpoint saves as ``prompts.yaml``)."""
    return PromptTable.from_tasks(TASKS.values())


def load_prompts(path: str | Path) -> PromptTable:
    """Read a prompt YAML ``{task_name: {en: [...], zh: [...]}}`` (e.g. a checkpoint's ``prompts.yaml``).

    Task keys may be our names or OSUM tags; an unknown task is a TaskError naming the file.
    """
    table = PromptTable.load(path)
    entries = {}
    for key, langs in table.entries.items():
        try:
            entries[get_task(key).name] = langs
        except TaskError as exc:
            raise TaskError(f"{path}: {exc}") from None
    return PromptTable(entries)
