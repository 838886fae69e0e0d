"""STTC: speech-to-text chat. OSUM tag ``<TRANSCRIBE> <S2TCHAT>``.

The target is the transcript, the separator ``<开始回答>`` ("start answering"), then the reply:
``"今天天气怎么样<开始回答>今天天气晴朗。"``. As in OSUM, ``process_text`` runs over the whole label, so the
reply is lower-cased too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from osum.errors import TaskError
from osum.tasks.base import Task, TaskResult, Word, normalize_text, tidy_text

SEPARATOR = "<开始回答>"
_SEPARATOR = re.compile(r"<\s*开始回答\s*>")


class ChatTask(Task):
    """A task whose answer is ``transcript<开始回答>reply``."""

    def _target_body(self, transcript: str | None, words: Sequence[Word] | None, answer: str | None) -> str:
        body = super()._target_body(transcript, words, answer)
        if _SEPARATOR.search(body):
            raise TaskError(f"task 'sttc': the transcript must not contain {SEPARATOR}: {transcript!r:.80}")
        if not isinstance(answer, str) or not answer.strip():
            raise TaskError(f"task 'sttc' needs an answer (the reply text), got {answer!r:.80}")
        return body + SEPARATOR + normalize_text(answer)

    def parse(self, text: str) -> TaskResult:
        raw = text if isinstance(text, str) else ""
        parts = _SEPARATOR.split(raw, maxsplit=1)
        if len(parts) == 1:
            return TaskResult(self.name, raw, tidy_text(raw), {}, answer=None)
        return TaskResult(self.name, raw, tidy_text(parts[0]), {}, answer=parts[1].strip())


STTC = ChatTask(
    name="sttc",
    tag="<TRANSCRIBE> <S2TCHAT>",
    description="speech-to-text chat: transcript, <开始回答>, then a reply",
)
