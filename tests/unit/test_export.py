"""Exported model folders: only changed tensors (whole or by rows) over the packaged bases, loaded strictly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

import osum
from osum.errors import CheckpointError
from osum.export import DELTA_FILE, export_delta, is_delta_dir


@pytest.fixture(scope="module")
def trained_stage1(tmp_path_factory):
    """mini-stage1 with a few changed embedding rows (the task tags) and one changed decoder layer weight."""
    model = osum.load("mini-stage1-base", device="cpu")
    sd = model.model.state_dict()
    with torch.no_grad():
        sd["decoder.embed_tokens.weight"][51864:] += 0.5
        sd["decoder.layers.0.fc1.weight"].mul_(1.01)
    model.model.config.trained = True
    folder = tmp_path_factory.mktemp("ckpt") / "stage1"
    model.save(folder)
    return folder, {k: v.clone() for k, v in sd.items()}


def test_export_keeps_only_the_changes_and_loads_back(trained_stage1, tmp_path):
    folder, expected = trained_stage1
    summary = export_delta(folder, tmp_path / "out", dtype=torch.float32)
    assert summary.rows == {"decoder.embed_tokens.weight": 12}
    # the label heads start random (not from the packaged Whisper), so they are always stored whole
    heads = [k for k in summary.whole if k.startswith("label_tokens.")]
    assert heads and [k for k in summary.whole if k not in heads] == ["decoder.layers.0.fc1.weight"]
    assert summary.bytes < 3_500_000  # 1536 x 384 floats + 12 rows + the heads (0.7 MB), not the 150 MB checkpoint
    assert is_delta_dir(tmp_path / "out") and not is_delta_dir(folder)
    loaded = osum.load(tmp_path / "out", device="cpu")
    assert loaded.config.trained
    got = loaded.model.state_dict()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []


def test_float16_export_is_close(trained_stage1, tmp_path):
    folder, expected = trained_stage1
    export_delta(folder, tmp_path / "half")
    got = osum.load(tmp_path / "half", device="cpu").model.state_dict()
    diff = (got["decoder.layers.0.fc1.weight"] - expected["decoder.layers.0.fc1.weight"]).abs().max()
    assert 0 < diff < 1e-3


def test_a_bad_delta_is_refused_with_its_name(trained_stage1, tmp_path):
    folder, _ = trained_stage1
    export_delta(folder, tmp_path / "bad", dtype=torch.float32)
    path = tmp_path / "bad" / DELTA_FILE
    tensors = load_file(str(path))
    tensors["decoder.nonsense.weight"] = torch.zeros(2)
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError, match="'decoder.nonsense.weight' is not a tensor"):
        osum.load(tmp_path / "bad", device="cpu")
    tensors.pop("decoder.nonsense.weight")
    tensors["decoder.layers.0.fc1.weight"] = torch.zeros(3, 3)
    save_file(tensors, str(path))
    with pytest.raises(CheckpointError, match=r"has shape \(3, 3\)"):
        osum.load(tmp_path / "bad", device="cpu")


def test_a_model_without_sources_cannot_be_exported(tmp_path):
    osum.load("tiny", device="cpu").save(tmp_path / "tiny")
    with pytest.raises(CheckpointError, match="names no pretrained sources"):
        export_delta(tmp_path / "tiny", tmp_path / "out")


def test_a_preset_loads_its_trained_release_and_base_stays_reachable(trained_stage1, tmp_path, monkeypatch):
    folder, expected = trained_stage1
    export_delta(folder, tmp_path / "models" / "mini-stage1", dtype=torch.float32)
    monkeypatch.setenv("OSUM_MODELS_DIR", str(tmp_path / "models"))
    release = osum.load("mini-stage1", device="cpu")
    assert release.config.trained and release.source == str(tmp_path / "models" / "mini-stage1")
    assert torch.equal(
        release.model.state_dict()["decoder.layers.0.fc1.weight"], expected["decoder.layers.0.fc1.weight"]
    )
    base = osum.load("mini-stage1-base", device="cpu")
    assert not base.config.trained and base.source == "mini-stage1"
