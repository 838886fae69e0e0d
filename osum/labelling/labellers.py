"""Labellers for ``osum data agree``: each gives one label field (emotion, style, ...) per clip, or None.

The OSUM paper kept an emotion or style label only where two labellers agreed (section 3.4). A labeller here is
anything with ``name`` and ``label(utterances, field) -> [label or None]``; :func:`make_labeller` builds the
built-in ones from a spec string:

- ``file:PATH``: labels someone already has: JSONL lines with ``key`` and the label as ``labels.<field>`` (our
  manifests, ``osum label``'s records), ``<field>`` or ``label``; or a TSV/CSV file of ``key,label``.
- ``model:NAME_OR_DIR``: an osum model (a preset or an exported folder) answering the field's task (SER for
  emotion, SSR for style, ...) from the audio.
- ``chat:URL#MODEL``: an OpenAI-compatible chat-completions endpoint reading the transcript (the API key from the
  environment variable ``OSUM_CHAT_API_KEY``, if set).
- ``text-classifier:DIR``: a local transformers text-classification model reading the transcript; its class
  names are mapped onto the field's labels (names it cannot map give None).

Raw labels are made canonical with the field's spellings (:class:`osum.vocabulary.LabelField`); anything else is
None, never a guess.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from osum.data.manifest import Utterance, load_utterance_audio
from osum.errors import ConfigError, OsumError
from osum.evaluation.judge import ChatError, JudgeConfig, chat
from osum.vocabulary import LabelField

FIELD_TASKS = {"emotion": "ser", "style": "ssr", "gender": "sgc", "age": "sap", "event": "ved"}
API_KEY_ENV = "OSUM_CHAT_API_KEY"
KINDS = ("file", "model", "chat", "text-classifier")


class Labeller(Protocol):
    name: str

    def label(self, utterances: Sequence[Utterance], field: LabelField) -> list[str | None]: ...


def _raw(value: object) -> str | None:
    return value.strip().strip("<>").strip() if isinstance(value, str) else None


class FileLabeller:
    """Labels from a file (see the module doc); clips the file does not name get None."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path.name}"
        if not self.path.is_file():
            raise ConfigError(f"labeller file {self.path} does not exist")

    def _table(self, field: LabelField) -> dict[str, str | None]:
        table: dict[str, str | None] = {}
        text = self.path.read_text(encoding="utf-8")
        if self.path.suffix in (".jsonl", ".json"):
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    key = d["key"]
                except (ValueError, KeyError, TypeError):
                    raise ConfigError(f"{self.path}:{n}: not a JSON object with a key") from None
                raw = (d.get("labels") or {}).get(field.name, d.get(field.name, d.get("label")))
                table[str(key)] = field.canonical(_raw(raw))
            return table
        dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] else "excel"
        for n, row in enumerate(csv.reader(text.splitlines(), dialect=dialect), 1):
            if not row or (n == 1 and row[0].strip().lower() == "key"):
                continue
            if len(row) < 2:
                raise ConfigError(f"{self.path}:{n}: expected key and label, got {row!r}")
            table[row[0].strip()] = field.canonical(_raw(row[1]))
        return table

    def label(self, utterances: Sequence[Utterance], field: LabelField) -> list[str | None]:
        table = self._table(field)
        return [table.get(u.key) for u in utterances]


class ModelLabeller:
    """An osum model answering the field's task from each clip's audio."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 8) -> None:
        self.model, self.device, self.batch_size = model, device, batch_size
        self.name = f"model:{Path(model).name or model}"

    def label(self, utterances: Sequence[Utterance], field: LabelField) -> list[str | None]:
        import osum
        from osum.inference.decoding import DecodingOptions
        from osum.inference.engine import Query

        task = FIELD_TASKS.get(field.name)
        if task is None:
            raise ConfigError(f"no task answers the field {field.name!r}")
        m = osum.load(self.model, device=self.device)
        out: list[str | None] = []
        for i in range(0, len(utterances), self.batch_size):
            chunk = utterances[i : i + self.batch_size]
            queries = [Query(load_utterance_audio(u), task) for u in chunk]
            results = m.answer(queries, DecodingOptions(batch_size=self.batch_size))
            out += [r.labels.get(field.name) for r in results]
        return out


def parse_label(reply: str, field: LabelField) -> str | None:
    """A chat or classifier reply -> the field's label: the whole reply when it is one (any spelling), else the one
    label named in it as a word (none or several: None)."""
    whole = field.canonical(_raw(reply.strip().strip(".\"'`")))
    if whole is not None:
        return whole
    spellings = {s for s in [*field.values, *field.aliases, *field.gloss.values()]}
    found = {
        field.canonical(s)
        for s in spellings
        if re.search(
            rf"(?<![\w]){re.escape(s.replace('_', ' '))}(?![\w])", reply.replace("_", " "), re.IGNORECASE
        )
    }
    found.discard(None)
    return found.pop() if len(found) == 1 else None


class ChatLabeller:
    """An OpenAI-compatible chat endpoint reading each clip's transcript. A request that fails gives None for its
    clip; when every request fails the endpoint is at fault and the run stops with its error."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.name = f"chat:{config.model}"

    @staticmethod
    def messages(text: str, field: LabelField) -> list[dict[str, str]]:
        system = (
            f"You label the {field.name} of a spoken sentence from its transcript. Reply with exactly one label "
            f"from this list and nothing else: {field.describe()}."
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    def label(self, utterances: Sequence[Utterance], field: LabelField) -> list[str | None]:
        out: list[str | None] = []
        answered, failure = 0, ""
        for u in utterances:
            if not (u.text or "").strip():
                out.append(None)
                continue
            try:
                reply = chat(self.config, self.messages(u.text or "", field), max_tokens=16)
            except ChatError as exc:
                out.append(None)
                failure = str(exc)
                continue
            answered += 1
            out.append(parse_label(reply, field))
        if failure and not answered:  # not one answer: the endpoint is down or wrong, not the clips
            raise OsumError(f"labeller {self.name}: every request failed; the last: {failure}")
        return out


class TextClassifierLabeller:
    """A local transformers text-classification model reading each clip's transcript."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = f"text-classifier:{self.path.name}"
        if not self.path.is_dir():
            raise ConfigError(f"text classifier {self.path}: not a folder with a transformers model")

    def label(self, utterances: Sequence[Utterance], field: LabelField) -> list[str | None]:
        from transformers import pipeline

        try:
            classify = pipeline("text-classification", model=str(self.path), device="cpu")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"text classifier {self.path}: {exc}") from None
        texts = [(u.text or "").strip() for u in utterances]
        scored = {i: t for i, t in enumerate(texts) if t}
        answers = classify(list(scored.values()), truncation=True) if scored else []
        out: list[str | None] = [None] * len(texts)
        for i, answer in zip(scored, answers, strict=True):
            out[i] = parse_label(str(answer["label"]), field)
        return out


def make_labeller(spec: str, device: str = "cpu") -> Labeller:
    """A labeller from ``KIND:ARGUMENT`` (see the module doc); ConfigError naming the spec otherwise."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg.strip() or kind not in KINDS:
        raise ConfigError(f"labeller {spec!r}: write one of {[k + ':...' for k in KINDS]}")
    if kind == "file":
        return FileLabeller(arg)
    if kind == "model":
        return ModelLabeller(arg, device=device)
    if kind == "text-classifier":
        return TextClassifierLabeller(arg)
    url, _, model = arg.rpartition("#")
    if not url or not model:
        raise ConfigError(
            f"labeller {spec!r}: write chat:URL#MODEL, e.g. chat:http://localhost:8000/v1#qwen2.5"
        )
    try:
        return ChatLabeller(JudgeConfig(url, model, api_key=os.environ.get(API_KEY_ENV), role="labeller"))
    except OsumError as exc:
        raise ConfigError(f"labeller {spec!r}: {exc}") from None
