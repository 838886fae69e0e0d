"""The config schema: strict keys, typed overrides, YAML round trip."""

from __future__ import annotations

import pytest

from osum.config import ModelConfig, RunConfig, from_dict, load_yaml, save_yaml, to_dict
from osum.errors import ConfigError
from osum.presets import PRESETS, preset_config


def test_defaults_are_the_paper_sizes():
    c = ModelConfig()
    assert (c.encoder.d_model, c.encoder.layers, c.encoder.heads) == (1024, 24, 16)
    assert (c.adaptor.d_model, c.adaptor.layers, c.adaptor.heads, c.adaptor.ffn_dim) == (1024, 4, 4, 2560)
    assert (c.llm.hidden_size, c.llm.layers, c.llm.vocab_size, c.llm.eos_token_id) == (
        3584,
        28,
        152064,
        151643,
    )
    assert (c.lora.r, c.lora.alpha, c.lora.dropout) == (8, 32, 0.1)
    assert "up_proj" not in c.lora.target_modules
    assert c.max_audio_seconds == 30.0


def test_overrides_are_typed_and_strict():
    c = from_dict(ModelConfig, {"llm": {"layers": 2}}, ["encoder.d_model=64", "lora.enabled=false"])
    assert (c.llm.layers, c.encoder.d_model, c.lora.enabled) == (2, 64, False)
    with pytest.raises(ConfigError, match=r"unknown config key 'llm.layer'.*'layers'"):
        from_dict(ModelConfig, {"llm": {"layer": 2}})
    with pytest.raises(ConfigError, match="unknown config key 'encoder.dmodel'"):
        from_dict(ModelConfig, {}, ["encoder.dmodel=3"])
    with pytest.raises(ConfigError, match="key=value"):
        from_dict(ModelConfig, {}, ["encoder.d_model"])
    with pytest.raises(ConfigError, match="invalid config value for 'encoder.d_model'"):
        from_dict(ModelConfig, {}, ["encoder.d_model=big"])
    # a value of the wrong type in a file names its key too
    with pytest.raises(ConfigError, match="invalid config value for 'llm.layers': Value 'many'"):
        from_dict(ModelConfig, {"llm": {"layers": "many"}})
    with pytest.raises(ConfigError, match="invalid config value for 'data.train'"):
        from_dict(RunConfig, {"data": {"train": "x.jsonl"}})


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_round_trip(tmp_path, name):
    c = preset_config(name)
    save_yaml(c, tmp_path / "c.yaml")
    assert to_dict(load_yaml(ModelConfig, tmp_path / "c.yaml")) == to_dict(c)


def test_bad_yaml_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(ModelConfig, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("llm: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_yaml(ModelConfig, tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("huge")


def test_a_list_override_by_index_is_named():
    with pytest.raises(ConfigError, match=r"override 'data.train.0.path=x.jsonl'.*a list is set whole"):
        from_dict(RunConfig, {"data": {"train": [{"path": "a.jsonl"}]}}, ["data.train.0.path=x.jsonl"])
