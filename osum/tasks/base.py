"""The task abstraction: prompts, ASR+X target text, and the parser from generated text to a result.

OSUM trains one model on many tasks by changing the text prompt. Every task writes its answer the same
way ("ASR+X"): the lower-cased transcript, then the label tag(s) glued on, e.g. ``hello world<adult><female>``
or ``你好<新闻科普>`` (OSUM_REFERENCE.md section 3.2). A :class:`Task` owns

- its OSUM tag (``"<TRANSCRIBE> <GENDER>"``), which names the task in OSUM's data and prompt file,
- its prompts, English (ours) and Chinese (OSUM's, verbatim), stored in ``prompts/<name>.yaml``,
- ``target()``: the supervised text for one example (the model appends ``<|endoftext|>`` itself),
- ``parse()``: generated text -> :class:`TaskResult`; it never raises, whatever text comes in.

Tasks whose output is not "transcript + tags" (SRWT word timings, STTC chat) subclass :class:`Task` and
override ``_target_body`` / ``parse``.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from osum.errors import TaskError
from osum.vocabulary import LabelField  # re-exported: osum.tasks.LabelField

# Scripts written without spaces between words. Hangul is left out on purpose: Korean separates words with
# spaces, and removing them would change the text. U+3000 (ideographic space) is whitespace, not a character.
_CJK = (
    "\u3001-\u303f"  # CJK punctuation (、。「」…)
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff00-\uffef"  # full-width forms (，！？ and full-width letters)
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
_SPACE_AROUND_CJK = re.compile(rf"\s*([{_CJK}])\s*")
_SPACE_AROUND_ANGLE = re.compile(r"\s*([<>])\s*")
_MULTI_SPACE = re.compile(r"\s+")
# One `<...>` tag; the content may not contain another bracket, so unbalanced text never matches.
_TAG = re.compile(r"<([^<>]*)>")


def normalize_text(text: str) -> str:
    """OSUM's ``process_text``: the text as it appears in a training target.

    Removes whitespace around every CJK character, lower-cases everything and removes whitespace around
    ``<`` and ``>``. We also collapse other whitespace runs to one space and strip the ends, so that equal
    transcripts give equal targets. ``"你 好 World <ADULT> <FEMALE>"`` -> ``"你好world<adult><female>"``.
    """
    # Collapsing whitespace first keeps the two substitutions linear in the text length.
    text = _SPACE_AROUND_CJK.sub(r"\1", _MULTI_SPACE.sub(" ", text))
    return _SPACE_AROUND_ANGLE.sub(r"\1", text.lower()).strip()


def tidy_text(text: str) -> str:
    """Whitespace clean-up for parsed text: collapse runs, strip, drop spaces around CJK. Case is kept."""
    return _SPACE_AROUND_CJK.sub(r"\1", _MULTI_SPACE.sub(" ", text)).strip()


@dataclass(frozen=True)
class Word:
    """One word (or one CJK character) with its time span in seconds, ``0 <= start <= end``."""

    word: str
    start: float
    end: float

    def __post_init__(self) -> None:
        if not valid_span(self.start, self.end):
            raise TaskError(
                f"word {self.word!r}: bad time span start={self.start!r}, end={self.end!r} "
                "(need finite times with 0 <= start <= end)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start": self.start, "end": self.end}


def valid_span(start: object, end: object) -> bool:
    """True when ``start``/``end`` are finite numbers with ``0 <= start <= end``."""
    if isinstance(start, bool) or isinstance(end, bool):
        return False
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
        return False
    return math.isfinite(start) and math.isfinite(end) and 0 <= start <= end


@dataclass(frozen=True)
class Segment:
    """A stretch of a long recording answered on its own: times in seconds from the recording's start, the piece's
    transcript (or reply) and labels. Long audio is cut at pauses (:mod:`osum.inference.long_audio`)."""

    start: float
    end: float
    text: str
    labels: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def __hash__(self) -> int:
        return hash((self.start, self.end, self.text))

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "labels": dict(self.labels)}


@dataclass(frozen=True)
class TaskResult:
    """What ``Task.parse`` read from generated text, plus what the engine measured about it. Fields a task does not
    produce are None. Equality compares the answer (task, raw text, fields, segments), not the scores."""

    task: str  # task name, e.g. "ser"
    raw: str  # the generated text, unchanged
    transcript: str | None  # None for tasks without a transcript (age_gender, style_age_gender)
    labels: Mapping[str, str | None]  # one entry per label field; None = missing or unknown tag
    words: tuple[Word, ...] | None = None  # SRWT only: words that came with a valid time span
    answer: str | None = None  # STTC only: the reply after <开始回答>; None if the separator is missing
    # long audio: the pieces it was cut into, in the recording's time (None: answered whole)
    segments: tuple[Segment, ...] | None = None
    # label field -> share of the speech (seconds) whose piece gave the clip-level label (long audio)
    label_share: Mapping[str, float] | None = field(default=None, compare=False)
    # label field -> {value: probability} over the field's whole vocabulary, given the transcript
    label_probs: Mapping[str, Mapping[str, float]] | None = field(default=None, compare=False)
    # 1 - the highest speech probability of the voice activity detector over the clip (None: not measured)
    no_speech_prob: float | None = field(default=None, compare=False)
    avg_logprob: float | None = field(default=None, compare=False)  # mean log-probability of the generated tokens
    compression_ratio: float | None = field(default=None, compare=False)  # text bytes / zlib-compressed bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        if self.words is not None:
            object.__setattr__(self, "words", tuple(self.words))
        if self.segments is not None:
            object.__setattr__(self, "segments", tuple(self.segments))
        if self.label_share is not None:
            object.__setattr__(self, "label_share", MappingProxyType(dict(self.label_share)))
        if self.label_probs is not None:
            probs = {f: MappingProxyType(dict(p)) for f, p in self.label_probs.items()}
            object.__setattr__(self, "label_probs", MappingProxyType(probs))

    def __hash__(self) -> int:
        return hash((self.task, self.raw))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out: dict[str, Any] = {
            "task": self.task,
            "raw": self.raw,
            "transcript": self.transcript,
            "labels": dict(self.labels),
            "words": None if self.words is None else [w.to_dict() for w in self.words],
            "answer": self.answer,
        }
        if self.segments is not None:
            out["segments"] = [s.to_dict() for s in self.segments]
        if self.label_share is not None:
            out["label_share"] = dict(self.label_share)
        if self.label_probs is not None:
            out["label_probs"] = {f: {v: round(x, 4) for v, x in p.items()} for f, p in self.label_probs.items()}
        for name in ("no_speech_prob", "avg_logprob", "compression_ratio"):
            value = getattr(self, name)
            if value is not None:
                out[name] = round(value, 4)
        return out


def _check_prompts(owner: str, prompts: object) -> Mapping[str, tuple[str, ...]]:
    """Validate ``{lang: [prompt, ...]}`` and freeze it. ``owner`` names the file/task in errors."""
    if not isinstance(prompts, Mapping) or not prompts:
        raise TaskError(f"{owner}: prompts must be a mapping {{lang: [prompt, ...]}}, got {prompts!r:.80}")
    out: dict[str, tuple[str, ...]] = {}
    for lang, items in prompts.items():
        if not isinstance(lang, str) or not lang.strip():
            raise TaskError(f"{owner}: language key must be a non-empty string, got {lang!r}")
        if isinstance(items, str) or not isinstance(items, Sequence) or not items:
            raise TaskError(f"{owner}: prompts for {lang!r} must be a non-empty list of strings")
        if not all(isinstance(p, str) and p.strip() for p in items):
            raise TaskError(f"{owner}: every prompt for {lang!r} must be a non-empty string")
        out[lang.strip().lower()] = tuple(items)
    return MappingProxyType(out)


@cache
def package_prompts(name: str) -> Mapping[str, tuple[str, ...]]:
    """The prompts shipped in ``osum/tasks/prompts/<name>.yaml`` as ``{lang: (prompt, ...)}`` (read-only)."""
    resource = resources.files("osum.tasks").joinpath("prompts", f"{name}.yaml")
    try:
        data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TaskError(f"cannot read prompt file osum/tasks/prompts/{name}.yaml: {exc}") from exc
    return _check_prompts(f"osum/tasks/prompts/{name}.yaml", data)


@dataclass(frozen=True)
class Task:
    """One OSUM task: prompts, target text and parser. Instances are immutable; see ``with_prompts``."""

    name: str  # our name, e.g. "ser"
    tag: str  # OSUM's task key, e.g. "<TRANSCRIBE> <EMOTION>"
    description: str
    label_fields: tuple[LabelField, ...] = ()
    has_transcript: bool = True
    # None = the package YAML prompts/<name>.yaml; set by with_prompts() (e.g. from a checkpoint's file).
    prompt_override: Mapping[str, tuple[str, ...]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_fields", tuple(self.label_fields))
        if self.prompt_override is not None:
            object.__setattr__(
                self, "prompt_override", _check_prompts(f"task {self.name!r}", self.prompt_override)
            )

    def __hash__(self) -> int:
        return hash((self.name, self.tag))

    @property
    def compact_tag(self) -> str:
        """The tag without spaces, as OSUM's ``infer.sh`` takes it: ``"<TRANSCRIBE><GENDER>"``."""
        return re.sub(r"\s+", "", self.tag)

    # ---- prompts -------------------------------------------------------------------------------------

    @property
    def prompts(self) -> Mapping[str, tuple[str, ...]]:
        """``{lang: (prompt, ...)}``, read-only."""
        if self.prompt_override is not None:
            return self.prompt_override
        return package_prompts(self.name)

    def prompt(self, lang: str = "en", index: int | None = 0, rng: random.Random | None = None) -> str:
        """One prompt in ``lang``: number ``index``, or (``index=None``) one drawn with ``rng`` as in training."""
        table = self.prompts
        key = lang.strip().lower() if isinstance(lang, str) else lang
        if key not in table:
            raise TaskError(
                f"task {self.name!r} has no prompts in language {lang!r}; available: {sorted(table)}"
            )
        options = table[key]
        if index is None:
            return (rng or random.Random()).choice(options)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options):
            raise TaskError(
                f"task {self.name!r}: prompt index {index!r} out of range; {lang!r} has {len(options)} prompts"
            )
        return options[index]

    def with_prompts(self, prompts: Mapping[str, Sequence[str]]) -> Task:
        """A copy of this task that uses ``prompts`` (``{lang: [prompt, ...]}``) instead of the package YAML."""
        return dataclasses.replace(self, prompt_override=prompts)  # validated in __post_init__

    # ---- target --------------------------------------------------------------------------------------

    def label_values(self, labels: Mapping[str, str] | None) -> tuple[str, ...]:
        """Canonical value of each label field, in the task's order. Raises TaskError if one is missing or bad.

        ``labels`` holding none of the task's fields gives ``()``: a clip without speech has no tags (``target``
        still demands every field of a clip with speech).
        """
        return self._label_values(labels) if self._any_label(labels) else ()

    def _any_label(self, labels: Mapping[str, str] | None) -> bool:
        return any((labels or {}).get(f.name) is not None for f in self.label_fields)

    def _label_values(self, labels: Mapping[str, str] | None) -> tuple[str, ...]:
        out = []
        for f in self.label_fields:
            value = labels.get(f.name) if labels is not None else None
            if value is None:
                raise TaskError(
                    f"task {self.name!r}: label {f.name!r} is missing; valid values: {f.describe()}"
                )
            canonical = f.canonical(value)
            if canonical is None:
                raise TaskError(
                    f"task {self.name!r}: label {f.name!r} has unknown value {value!r}; valid values: "
                    f"{f.describe()}" + (f"; aliases: {', '.join(f.aliases)}" if f.aliases else "")
                )
            out.append(canonical)
        return tuple(out)

    def target(
        self,
        transcript: str | None,
        labels: Mapping[str, str] | None = None,
        words: Sequence[Word] | None = None,
        answer: str | None = None,
    ) -> str:
        """The supervised text for one example, without ``<|endoftext|>`` (the model appends the eos token).

        ``normalize_text(transcript)`` followed by one ``<value>`` tag per label field, e.g.
        ``"hello world<adult><female>"``; tasks without a transcript give only the tags. Inputs the task does
        not use (a transcript for ``age_gender``, extra label keys, ``words``, ``answer``) are ignored, so the
        caller can pass the same example fields to every task. A clip without speech (see
        :meth:`is_nonspeech`) gives ``""`` for every task. Raises TaskError naming the missing/bad field.
        """
        if self.is_nonspeech(transcript, labels, words, answer):
            return ""
        tags = "".join(f"<{v}>" for v in self._label_values(labels))
        body = self._target_body(transcript, words, answer) if self.has_transcript else ""
        return body + tags

    def is_nonspeech(
        self,
        transcript: str | None,
        labels: Mapping[str, str] | None = None,
        words: Sequence[Word] | None = None,
        answer: str | None = None,
    ) -> bool:
        """True for an example without speech: an empty transcript (``""`` or only whitespace; None does not
        count), none of this task's labels, no words and no answer. Its target is ``""``: whatever the model is
        asked, no speech means an empty answer. (A vocal event alone in VED has its label, so it is not one of
        these: its target is the tag alone, ``"<cough>"``.)"""
        return (
            isinstance(transcript, str)
            and not normalize_text(transcript)
            and not self._any_label(labels)
            and not words
            and not (isinstance(answer, str) and answer.strip())
        )

    def _target_body(self, transcript: str | None, words: Sequence[Word] | None, answer: str | None) -> str:
        if not isinstance(transcript, str):
            raise TaskError(f"task {self.name!r} needs a transcript (str), got {transcript!r:.80}")
        return normalize_text(transcript)

    # ---- parse ---------------------------------------------------------------------------------------

    def parse(self, text: str) -> TaskResult:
        """Read generated text back into a :class:`TaskResult`. Never raises.

        Tags are matched case-insensitively and may carry spaces (``< FEMALE >``); aliases and English
        glosses map to canonical labels. The first recognised tag of each field wins; every recognised tag
        is removed from the transcript, other text (including unknown ``<...>``) is kept, whitespace tidied.
        """
        raw = text if isinstance(text, str) else ""
        labels, rest = self._read_labels(raw)
        return TaskResult(self.name, raw, tidy_text(rest) if self.has_transcript else None, labels)

    def _read_labels(self, text: str) -> tuple[Mapping[str, str | None], str]:
        """``({field: value or None}, text with the recognised tags cut out)``."""
        found: dict[str, str | None] = {f.name: None for f in self.label_fields}
        pieces, pos = [], 0
        for m in _TAG.finditer(text):
            hits = [(f.name, f.canonical(m.group(1))) for f in self.label_fields]
            hits = [(name, value) for name, value in hits if value is not None]
            if not hits:
                continue
            # A value could in principle belong to two fields; give it to the first one still empty.
            name, value = next(((n, v) for n, v in hits if found[n] is None), hits[0])
            if found[name] is None:
                found[name] = value
            pieces.append(text[pos : m.start()])
            pieces.append(" ")  # "hello<female>world" must not glue into "helloworld"
            pos = m.end()
        pieces.append(text[pos:])
        return MappingProxyType(found), "".join(pieces)


@dataclass(frozen=True)
class PromptTable:
    """Prompts of several tasks, ``{task_name: {lang: (prompt, ...)}}``; what a checkpoint saves as prompts.yaml.

    Tasks or languages missing from the table keep the package prompts when the table is applied.
    """

    entries: Mapping[str, Mapping[str, tuple[str, ...]]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))

    def __hash__(self) -> int:
        return hash(tuple(self.entries))

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task]) -> PromptTable:
        """The prompts the given tasks use now."""
        return cls({t.name: t.prompts for t in tasks})

    @classmethod
    def from_dict(cls, data: object, source: str = "prompt table") -> PromptTable:
        """Validate ``{task_name: {lang: [prompt, ...]}}``; ``source`` names the file in error messages."""
        if not isinstance(data, Mapping):
            raise TaskError(f"{source}: expected a mapping {{task_name: {{lang: [prompt, ...]}}}}")
        entries: dict[str, Mapping[str, tuple[str, ...]]] = {}
        for name, prompts in data.items():
            if not isinstance(name, str) or not name.strip():
                raise TaskError(f"{source}: task name must be a non-empty string, got {name!r}")
            entries[name.strip().lower()] = _check_prompts(f"{source}, task {name!r}", prompts)
        return cls(entries)

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        """Plain dict/list form (for YAML/JSON)."""
        return {name: {lang: list(ps) for lang, ps in langs.items()} for name, langs in self.entries.items()}

    @classmethod
    def load(cls, path: str | Path) -> PromptTable:
        """Read a YAML prompt file written by :meth:`save`."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise TaskError(f"cannot read prompt file {path}: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    def save(self, path: str | Path) -> None:
        """Write the table as UTF-8 YAML (Chinese kept readable)."""
        text = yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False, width=1000)
        Path(path).write_text(text, encoding="utf-8")

    def updated(self, other: PromptTable) -> PromptTable:
        """This table with ``other``'s prompts replacing the same task and language (the rest kept)."""
        entries = {name: dict(langs) for name, langs in self.entries.items()}
        for name, langs in other.entries.items():
            entries.setdefault(name, {}).update(langs)
        return PromptTable(entries)

    def get(self, task: str | Task, lang: str = "en") -> tuple[str, ...]:
        """Prompts of ``task`` (name or Task) in ``lang``; TaskError if the table lacks them."""
        name = task.name if isinstance(task, Task) else str(task).strip().lower()
        if name not in self.entries:
            raise TaskError(f"prompt table has no task {name!r}; it has: {sorted(self.entries)}")
        langs = self.entries[name]
        if lang.strip().lower() not in langs:
            raise TaskError(f"prompt table has no {lang!r} prompts for {name!r}; it has: {sorted(langs)}")
        return langs[lang.strip().lower()]

    def apply(self, task: Task) -> Task:
        """``task`` with this table's prompts (per language); unchanged if the table does not list it."""
        if task.name not in self.entries:
            return task
        return task.with_prompts({**task.prompts, **self.entries[task.name]})
