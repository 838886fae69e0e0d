"""The LLM codec's view of a target beyond its ids: which tokens spell the label tags (train.label_loss_weight)."""

from __future__ import annotations

import pytest

import osum
from osum.tasks import get_task


@pytest.fixture(scope="module")
def tiny():
    return osum.load("tiny", device="cpu")


def test_label_token_mask_marks_the_tags_that_end_the_target(tiny):
    """train.label_loss_weight weights these tokens: the tags of an ASR+X target, not its transcript or end."""
    codec = tiny.codec("en", False)
    sgc = get_task("sgc")
    ids = codec.target_ids(sgc, "Hello world", {"gender": "male"})
    mask = codec.label_token_mask(sgc, "Hello world", {"gender": "male"})
    assert len(mask) == len(ids) and mask[-1] is False  # the end token
    tagged = [i for i, m in zip(ids, mask, strict=True) if m]
    assert codec.ids("hello world") + tagged + [codec.eos_id] == ids
    assert codec.tokenizer.decode(tagged) == "<male>"
    assert not any(codec.label_token_mask(get_task("asr"), "Hello world"))
    both = codec.label_token_mask(get_task("age_gender"), None, {"age": "old", "gender": "female"})
    assert all(both[:-1]) and not both[-1]
