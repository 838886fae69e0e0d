"""What trains: named parts, submodule paths, and stage 1's task-token rows (only they get a gradient)."""

from __future__ import annotations

import pytest
import torch

from osum.data.collate import collate
from osum.errors import ConfigError
from osum.tasks import get_task
from osum.testing.tiny import stage1_with_task_tags
from osum.training.optim import set_trainable
from osum.vocabulary import whisper_task_tokens


@pytest.fixture(scope="module")
def stage1():
    return stage1_with_task_tags()


def _loss(m) -> torch.Tensor:
    codec = m.codec()
    task = get_task("sgc")
    feats = [torch.randn(120, 80)]
    batch = collate(feats, [codec.prompt_ids(task)], [codec.target_ids(task, "hello", {"gender": "female"})])
    return m.model(batch).loss


def test_task_tokens_train_only_their_rows(stage1):
    params = set_trainable(stage1.model, ["decoder_layers", "task_tokens"])
    table = stage1.model.decoder.embed_tokens.weight
    assert any(p is table for p in params)
    assert not stage1.model.encoder.layers[0].fc1.weight.requires_grad
    _loss(stage1).backward()
    n = len(whisper_task_tokens())
    assert table.grad[:-n].abs().sum() == 0  # pretrained rows (incl. the tied output projection) stay put
    assert table.grad[-n:].abs().sum() > 0
    assert stage1.model.decoder.layers[0].fc1.weight.grad is not None
    stage1.model.zero_grad(set_to_none=True)


def test_submodule_paths_and_errors(stage1):
    params = set_trainable(stage1.model, ["encoder.layers.3"])
    assert {id(p) for p in params} == {id(p) for p in stage1.model.encoder.layers[3].parameters()}
    with pytest.raises(ConfigError, match="no submodule 'encoder.layers.9'"):
        set_trainable(stage1.model, ["encoder.layers.9"])
    with pytest.raises(ConfigError, match="drop 'task_tokens'"):
        set_trainable(stage1.model, ["decoder", "task_tokens"])
    with pytest.raises(ConfigError, match=r"\['adaptor'\] do not exist in a Whisper"):
        set_trainable(stage1.model, ["adaptor"])
