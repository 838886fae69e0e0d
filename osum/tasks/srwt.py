"""SRWT: speech recognition with word timestamps. OSUM tag ``<TRANSCRIBE> <ALIGN>``.

OSUM does not publish the exact SRWT target format (its prompts only say: time spans in ``<>``, 0.1 s
resolution). This is **our** format:

    hello<0.20,0.61> world<0.70,1.12>
    你<0.00,0.21> 好<0.21,0.40>

Each word (an English word, or one Chinese character) is followed directly by ``<start,end>`` in seconds
with two decimals, and words are separated by one space. Word text is normalised like any transcript
(lower-case); ``0 <= start <= end`` is enforced. OSUM's ``process_text`` is *not* run over the whole string,
since it would delete the spaces between words.

The parser is lenient: ``word< 0.2 , 0.61 >``, a full-width comma, missing spaces between spans, and words
without a span are all accepted. A word without a (valid) span stays in the transcript but gets no
:class:`Word` entry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from osum.errors import TaskError
from osum.tasks.base import Task, TaskResult, Word, normalize_text, tidy_text, valid_span

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_SPAN = re.compile(rf"<\s*({_NUM})\s*[,，]\s*({_NUM})\s*>")


def format_words(words: Sequence[Word]) -> str:
    """``[Word("hello", 0.2, 0.61), ...]`` -> ``"hello<0.20,0.61> ..."`` (word text normalised)."""
    parts = []
    for i, w in enumerate(words):
        if not isinstance(w, Word):
            raise TaskError(f"task 'srwt': words[{i}] must be a Word(word, start, end), got {w!r:.80}")
        text = normalize_text(w.word)
        if not text or re.search(r"[\s<>]", text):
            raise TaskError(
                f"task 'srwt': words[{i}] = {w.word!r} must be one non-empty token without spaces or <>"
            )
        parts.append(f"{text}<{w.start:.2f},{w.end:.2f}>")
    return " ".join(parts)


class AlignTask(Task):
    """A task whose answer is a transcript with a time span after every word (see module docstring)."""

    def _target_body(self, transcript: str | None, words: Sequence[Word] | None, answer: str | None) -> str:
        # The words carry the transcript; a separate transcript argument is ignored.
        if not words:
            raise TaskError("task 'srwt' needs words: a non-empty sequence of Word(word, start, end)")
        return format_words(words)

    def parse(self, text: str) -> TaskResult:
        raw = text if isinstance(text, str) else ""
        tokens: list[str] = []
        words: list[Word] = []
        pos = 0
        for m in _SPAN.finditer(raw):
            chunk = raw[pos : m.start()].split()
            pos = m.end()
            if not chunk:
                continue  # a span with no word before it: nothing to attach it to
            tokens.extend(chunk)
            start, end = float(m.group(1)), float(m.group(2))
            if valid_span(start, end):
                words.append(Word(chunk[-1], start, end))
        tokens.extend(raw[pos:].split())
        return TaskResult(self.name, raw, tidy_text(" ".join(tokens)), {}, words=tuple(words))


SRWT = AlignTask(
    name="srwt",
    tag="<TRANSCRIBE> <ALIGN>",
    description="speech recognition with word timestamps: word<start,end> in seconds",
)
