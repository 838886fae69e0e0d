"""Text <-> token ids for each architecture: what the prompt and the target of a task become.

``osum`` (LLM) models read a natural-language instruction (a prompt of the task, or the user's own) and answer
with the ASR+X text ending in the LLM's end token. ``whisper`` (stage-1) models read a task tag token after
``<|startoftranscript|>`` and answer with the same ASR+X text ending in ``<|endoftext|>``; those with label heads
(``decoder.label_heads``) read Whisper's own prompt and answer with the transcript alone, as Whisper writes it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from osum.errors import ConfigError, TaskError
from osum.tasks import PromptTable, Task, Word, normalize_text
from osum.vocabulary import WHISPER_TASK_TOKEN

WHISPER_PREFIX = ("<|startoftranscript|>", None, "<|notimestamps|>")  # None = the task token


@dataclass(frozen=True)
class LLMCodec:
    tokenizer: PreTrainedTokenizerBase
    prompts: PromptTable
    eos_id: int
    language: str = "en"  # "en", "zh" or "mixed" (training draws either)
    random_prompt: bool = True

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _choices(self, task: Task, lang: str) -> tuple[str, ...]:
        return self.prompts.get(task, lang) if task.name in self.prompts.entries else task.prompts[lang]

    def languages(self) -> tuple[str, ...]:
        if self.language not in ("en", "zh", "mixed"):
            raise ConfigError(f"prompt language {self.language!r}: choose en, zh or mixed")
        return ("en", "zh") if self.language == "mixed" else (self.language,)

    def prompt_ids(
        self, task: Task, rng: random.Random | None = None, prompt: str | None = None
    ) -> list[int]:
        """The instruction's ids: ``prompt`` if given; else a random prompt (with ``rng``) or the first one."""
        if prompt is not None:
            return self.ids(prompt)
        if rng is None:
            return self.ids(self._choices(task, self.languages()[0])[0])
        choices = self._choices(task, rng.choice(self.languages()))
        return self.ids(rng.choice(choices) if self.random_prompt else choices[0])

    def max_prompt_tokens(self, task: Task) -> int:
        return max(len(self.ids(p)) for lang in self.languages() for p in self._choices(task, lang))

    def target_ids(
        self,
        task: Task,
        text: str | None,
        labels: Mapping[str, str] | None = None,
        words: Sequence[Word] | None = None,
        answer: str | None = None,
    ) -> list[int]:
        return self.ids(task.target(text, labels, words, answer)) + [self.eos_id]

    def label_token_mask(
        self,
        task: Task,
        text: str | None,
        labels: Mapping[str, str] | None = None,
        words: Sequence[Word] | None = None,
        answer: str | None = None,
    ) -> list[bool]:
        """One flag per id of :meth:`target_ids`: True where the token spells part of the label tags that end
        the ASR+X target (``<male>``; a token merging the transcript's last character with ``<`` counts too),
        False for the transcript, the answer and the end token. Used to weight the labels in the LM loss."""
        target = task.target(text, labels, words, answer)
        tags = "".join(f"<{v}>" for v in task.label_values(labels)) if task.label_fields else ""
        if not target.endswith(tags):
            raise TaskError(f"task {task.name!r}: its target does not end with its label tags {tags!r}")
        start = len(target) - len(tags)
        spans = self.tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        return [bool(tags) and end > start for _, end in spans] + [False]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


@dataclass(frozen=True)
class WhisperCodec:
    tokenizer: PreTrainedTokenizerBase
    eos_id: int
    label_heads: bool = False  # decoder.label_heads: Whisper's own prompt for every task, no task tag

    def prompt_ids(
        self, task: Task, rng: random.Random | None = None, prompt: str | None = None
    ) -> list[int]:
        if prompt is not None:
            raise TaskError("a Whisper (stage-1) model takes a task, not a free-text prompt")
        if self.label_heads:
            return [self.tokenizer.convert_tokens_to_ids(t) for t in WHISPER_PREFIX if t is not None]
        tag = self.tokenizer.convert_tokens_to_ids(WHISPER_TASK_TOKEN.format(task.name))
        if tag is None or tag == self.tokenizer.unk_token_id:
            raise TaskError(f"this Whisper model has no task token for {task.name!r}")
        return [tag if t is None else self.tokenizer.convert_tokens_to_ids(t) for t in WHISPER_PREFIX]

    def max_prompt_tokens(self, task: Task) -> int:
        return len(WHISPER_PREFIX) - self.label_heads

    def target_ids(
        self,
        task: Task,
        text: str | None,
        labels: Mapping[str, str] | None = None,
        words: Sequence[Word] | None = None,
        answer: str | None = None,
    ) -> list[int]:
        if self.label_heads:
            # the decoder writes the transcript alone, as Whisper does (the heads answer the labels): the text as
            # written (case, punctuation), nothing for a clip without speech, and no target (``[]``: the row
            # trains only the heads) for a task that carries no transcript
            if not task.has_transcript:
                return []
            spoken = "" if task.is_nonspeech(text, labels, words, answer) else (text or "").strip()
            body = " " + spoken if spoken else ""
        else:
            body = " " + task.target(text, labels, words, answer)
        # Whisper's BPE expects a leading space before the first word, as in its own transcripts.
        return self.tokenizer(body, add_special_tokens=False)["input_ids"] + [self.eos_id]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()


@dataclass(frozen=True)
class TranscriptCodec:
    """The CTC pre-stage's view of an example: no prompt, and the target is the transcript's LLM token ids alone
    (normalised as in ASR+X targets, no label tags, no end token). Tasks without a transcript give ``[]``."""

    base: LLMCodec

    @property
    def eos_id(self) -> int:
        return self.base.eos_id

    def prompt_ids(
        self, task: Task, rng: random.Random | None = None, prompt: str | None = None
    ) -> list[int]:
        return []

    def max_prompt_tokens(self, task: Task) -> int:
        return 0

    def target_ids(
        self,
        task: Task,
        text: str | None,
        labels: Mapping[str, str] | None = None,
        words: Sequence[Word] | None = None,
        answer: str | None = None,
    ) -> list[int]:
        if words:
            text = " ".join(w.word for w in words)
        if not task.has_transcript or not text:
            return []
        return self.base.ids(normalize_text(text))
