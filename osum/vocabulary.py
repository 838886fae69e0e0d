"""The task protocol's fixed vocabulary: the label fields and their values, and the task names.

A leaf module: the model (:mod:`osum.model`) reads the label fields from here (its classifiers have one output per
value, in this order), and the tasks (:mod:`osum.tasks`) build their targets and parsers on them, so neither needs
the other. The order of :data:`LABEL_FIELDS` is the column order of ``Batch.attributes`` and of every trained
model's label heads: append, never reorder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from osum.errors import TaskError


def _label_key(value: str) -> str:
    # "Throat_Clearing", "throat-clearing" and " throat  clearing " all mean the same label.
    return re.sub(r"[\s_\-]+", " ", value.strip().lower()).strip()


@dataclass(frozen=True)
class LabelField:
    """One classification output of a task, e.g. ``gender`` with values ``("female", "male")``.

    ``values`` are the canonical labels exactly as they appear in targets (``<female>``). ``aliases`` maps
    other spellings (raw corpus tags, older names) to a canonical value; ``gloss`` gives an English name
    for each value (for docs and UIs), which is accepted as an alias too. Matching ignores case and treats
    runs of spaces, ``_`` and ``-`` as one space.
    """

    name: str
    values: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    gloss: Mapping[str, str] = field(default_factory=dict)
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "aliases", MappingProxyType(dict(self.aliases)))
        object.__setattr__(self, "gloss", MappingProxyType(dict(self.gloss)))
        lookup: dict[str, str] = {}
        spellings = [(v, v) for v in self.values] + list(self.aliases.items())
        spellings += [(g, v) for v, g in self.gloss.items()]
        for spelling, canonical in spellings:
            if canonical not in self.values:
                raise TaskError(
                    f"label field {self.name!r}: {spelling!r} points to unknown value {canonical!r}"
                )
            key = _label_key(spelling)
            if lookup.setdefault(key, canonical) != canonical:
                raise TaskError(f"label field {self.name!r}: {spelling!r} is ambiguous")
        object.__setattr__(self, "_lookup", MappingProxyType(lookup))

    def __hash__(self) -> int:
        return hash((self.name, self.values))

    def canonical(self, value: object) -> str | None:
        """The canonical label for ``value`` (a value, alias or gloss, any case), or None if unknown."""
        if not isinstance(value, str):
            return None
        return self._lookup.get(_label_key(value))

    def describe(self) -> str:
        """``"female, male"``, with glosses when there are any: ``"新闻科普 (news_science), ..."``."""
        return ", ".join(f"{v} ({self.gloss[v]})" if v in self.gloss else v for v in self.values)


GENDER = LabelField(name="gender", values=("female", "male"))

# OSUM's source data used finer groups (<YOUTH>, <MIDDLE_AGE>, <MIDDLE>); OSUM maps them to adult, as we do.
AGE = LabelField(
    name="age",
    values=("child", "adult", "old"),
    aliases={"youth": "adult", "middle_age": "adult", "middle": "adult"},
)

# the 8 labels OSUM's prompts list; angry is accepted for anger (OSUM-EChat's spelling)
EMOTION = LabelField(
    name="emotion",
    values=("sad", "anger", "neutral", "happy", "surprise", "fear", "disgust", "other"),
    aliases={"angry": "anger"},
)

# OSUM's 8 Chinese style names, each with an English gloss; raw corpus tags remapped as OSUM's global_style_dict
STYLE = LabelField(
    name="style",
    values=("新闻科普", "恐怖故事", "童话故事", "客服", "诗歌散文", "有声书", "日常口语", "其他"),
    aliases={
        "朗读": "新闻科普",
        "科普百科": "新闻科普",
        "悬疑恐怖": "恐怖故事",
        "诗歌": "诗歌散文",
        "散文": "诗歌散文",
        "武侠评书": "有声书",
        "小说": "有声书",
        "历史": "有声书",
        "科幻": "有声书",
        "对话": "日常口语",
        "口语": "日常口语",
        "幽默": "其他",
    },
    gloss={
        "新闻科普": "news_science",
        "恐怖故事": "horror_story",
        "童话故事": "fairy_tale",
        "客服": "customer_service",
        "诗歌散文": "poetry_prose",
        "有声书": "audiobook",
        "日常口语": "daily_conversation",
        "其他": "other",
    },
)

# the 8 labels OSUM's prompts list; throat clearing keeps its space, as in the prompts
EVENT = LabelField(
    name="event",
    values=("laugh", "cough", "cry", "screaming", "sigh", "throat clearing", "sneeze", "other"),
    aliases={"scream": "screaming", "throat_clearing": "throat clearing"},
)

# Every classification field of the tasks, once, in the order of Batch.attributes' columns.
TASK_LABEL_FIELDS: Mapping[str, LabelField] = MappingProxyType(
    {f.name: f for f in (EVENT, EMOTION, STYLE, GENDER, AGE)}
)
# Not a task's label: whether a clip holds speech at all. "none": no words and no voice (silence, noise, tones);
# "vocal": no words, but a vocal event alone (a cough, a laugh), which VED names. Classifiers (label heads, label
# tokens) learn it from the transcripts and event labels, so a model can answer "no speech" instead of inventing
# words for silence or noise, and still name a lone cough. Last, so the task fields keep their Batch.attributes
# columns; "vocal" was added after the first two (osum.checkpoint.load_strict widens older two-class heads).
SPEECH_FIELD = LabelField(
    "speech",
    ("speech", "none", "vocal"),
    gloss={"speech": "words", "none": "no voice", "vocal": "a vocal sound without words"},
)
VOCAL_ANSWER_FIELDS = ("event",)  # what a "vocal" clip answers: a task asking only for these gets its labels
LABEL_FIELDS: Mapping[str, LabelField] = MappingProxyType({**TASK_LABEL_FIELDS, "speech": SPEECH_FIELD})

# The registered tasks in registry order (osum.tasks.TASKS must match): a stage-1 Whisper tokenizer has one tag
# token per task, in this order, so the order fixes the token ids of trained models: append, never reorder.
TASK_NAMES: tuple[str, ...] = (
    "asr",
    "srwt",
    "ved",
    "ser",
    "ssr",
    "sgc",
    "sap",
    "sttc",
    "asr_age_gender",
    "age_gender",
    "asr_style_age_gender",
    "style_age_gender",
)
WHISPER_TASK_TOKEN = "<|osum:{}|>"


def whisper_task_tokens() -> list[str]:
    """The task tag tokens a stage-1 Whisper tokenizer gets, one per registered task (registry order)."""
    return [WHISPER_TASK_TOKEN.format(name) for name in TASK_NAMES]
