"""How an osum model with a transcriber answers after the forced transcript (osum/inference/transcriber.py)."""

from __future__ import annotations

import pytest

import osum
from osum.inference.transcriber import answer_after, answer_prefix
from osum.tasks import get_task


@pytest.fixture(scope="module")
def codec():
    return osum.load("tiny", device="cpu").codec()


@pytest.mark.parametrize("task", ["sgc", "sap", "ser", "ssr", "ved", "sttc", "age_gender", "asr"])
@pytest.mark.parametrize("transcript", ["activated.", "agent logged in", "你好world"])
def test_the_forced_prefix_starts_every_valid_target(codec, task, transcript):
    t = get_task(task)
    prefix = answer_prefix(codec, t, transcript)
    if t.label_fields:
        answers = [
            t.target(transcript, {**{f.name: f.values[0] for f in t.label_fields}, t.label_fields[0].name: v})
            for v in t.label_fields[0].values
        ]
        body = transcript if t.has_transcript else ""
        # the transcript and, where no label's first letters merge with it, the tag's opening ("<")
        assert (body + "<").startswith(codec.decode(prefix))
        assert len(prefix) >= len(codec.ids(body)) - 1
    elif task == "sttc":
        answers = [t.target(transcript, answer="hello there")]
        assert codec.decode(prefix).endswith("<开始回答>")
    else:
        answers = [t.target(transcript)]
        assert len(prefix) == len(codec.ids(transcript)) - 1  # the last token stays the model's
    for a in answers:
        assert codec.ids(a)[: len(prefix)] == prefix


def test_the_answer_after_the_transcript(codec):
    text = "activated."
    prefix = answer_prefix(codec, get_task("sgc"), text)
    assert answer_after(codec, text, prefix, codec.ids("female>")) == "<female>"
    # a model that rewrote the transcript's end: its answer resumes at its first tag, or is nothing
    short = codec.ids("activated")
    assert answer_after(codec, text, short, codec.ids("!<male>")) == "<male>"
    assert answer_after(codec, text, short, codec.ids(" and more")) == ""
