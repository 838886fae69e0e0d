"""Checkpoint directories: exact save/load round trip, strict loading, and convert-osum's refusals."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import osum
from osum.checkpoint import WEIGHTS_FILE, read_config
from osum.config import to_dict
from osum.convert.osum_pt import convert_osum, read_state_dict
from osum.errors import CheckpointError
from osum.testing.tiny import chirp


@pytest.fixture(scope="module")
def tiny():
    m = osum.load("tiny", device="cpu")
    with torch.no_grad():
        for name, p in m.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return m


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    return tiny.save(tmp_path_factory.mktemp("ckpt") / "tiny")


def test_round_trip_is_exact(tiny, saved):
    assert {p.name for p in saved.iterdir()} == {
        "config.yaml",
        "model.safetensors",
        "tokenizer",
        "prompts.yaml",
    }
    back = osum.load(saved, device="cpu")
    assert to_dict(back.config) == to_dict(tiny.config)
    a, b = tiny.model.state_dict(), back.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert back.prompts.to_dict() == tiny.prompts.to_dict()
    assert (
        back.tokenizer("转录 hello <female>")["input_ids"]
        == tiny.tokenizer("转录 hello <female>")["input_ids"]
    )
    opts = osum.DecodingOptions(max_new_tokens=5)
    clip = chirp(1.2)
    r1 = tiny.run([clip], tasks=["asr", "sgc"], sample_rate=16000, options=opts)
    r2 = back.run([clip], tasks=["asr", "sgc"], sample_rate=16000, options=opts)
    assert [x["asr"].raw for x in r1] == [x["asr"].raw for x in r2]


def test_missing_and_unexpected_keys_are_listed(saved, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    sd = load_file(str(bad / WEIGHTS_FILE))
    sd.pop("adaptor.proj.weight")
    sd["adaptor.extra.weight"] = torch.zeros(2)
    save_file(sd, str(bad / WEIGHTS_FILE))
    with pytest.raises(
        CheckpointError, match=r"missing \['adaptor.proj.weight'\].*unexpected \['adaptor.extra.weight'\]"
    ):
        osum.load(bad, device="cpu")


def test_shape_mismatch_and_corrupt_files_are_checkpoint_errors(saved, tmp_path):
    bad = tmp_path / "shape"
    shutil.copytree(saved, bad)
    sd = load_file(str(bad / WEIGHTS_FILE))
    sd["speech_bos"] = torch.zeros(7)
    save_file(sd, str(bad / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="speech_bos"):
        osum.load(bad, device="cpu")
    (bad / WEIGHTS_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        osum.load(bad, device="cpu")
    (bad / "config.yaml").write_text("encoder:\n  d_modle: 3\n")
    with pytest.raises(osum.ConfigError, match="d_modle"):
        osum.load(bad, device="cpu")


def test_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(osum.OsumError, match="neither a checkpoint directory nor a preset"):
        osum.load(tmp_path / "nope")
    with pytest.raises(osum.ConfigError, match="convert-osum"):
        osum.load("osum-7b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not an osum checkpoint"):
        read_config(tmp_path / "empty")


def test_convert_osum_refuses_foreign_and_unsafe_files(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        convert_osum(tmp_path / "missing.pt", tmp_path / "out")
    torch.save({"encoder.embed.conv.0.weight": torch.zeros(4, 80, 3)}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="not an OSUM state dict"):
        convert_osum(tmp_path / "partial.pt", tmp_path / "out")

    class Evil:  # a pickle that would run code: weights_only=True must refuse it
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="Python objects besides tensors; refused"):
        convert_osum(tmp_path / "evil.pt", tmp_path / "out")
    (tmp_path / "notes.pt").write_text("garbage")  # not a checkpoint at all: say what it is
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint \\(it is text, starting 'garbage'\\)"):
        convert_osum(tmp_path / "notes.pt", tmp_path / "out")
    torch.save({"a": torch.zeros(2)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(read_state_dict(tmp_path / "old.pt")["a"], torch.zeros(2))  # the pre-1.6 format loads
    assert not (tmp_path / "out").exists()


def test_tied_embeddings_stay_tied_and_dtypes_follow_the_request(tiny, tmp_path):
    from osum.api import Osum
    from osum.config import from_dict, to_dict
    from osum.model.osum import OsumModel

    config = from_dict(type(tiny.config), to_dict(tiny.config), ["llm.tie_word_embeddings=true"])
    tied = Osum(OsumModel(config), tiny.tokenizer)
    lm = tied.model.lm
    assert lm.lm_head.weight is lm.model.embed_tokens.weight
    out = tied.save(tmp_path / "tied")
    back = osum.load(out, device="cpu", dtype="bf16")
    lm = back.model.lm
    assert lm.lm_head.weight is lm.model.embed_tokens.weight
    assert back.model.llm_dtype == torch.bfloat16
    assert back.model.encoder.conv1.weight.dtype == torch.float32
    assert back.model.speech_bos.dtype == torch.float32
    res = back.run(
        [chirp(0.7)], tasks=["asr"], sample_rate=16000, options=osum.DecodingOptions(max_new_tokens=3)
    )
    assert isinstance(res[0]["asr"].raw, str)


def test_init_encoder_source_may_be_anything_osum_load_reads(tmp_path):
    """train.init_encoder: a checkpoint directory, or an export / preset through osum.load (stage 2 can start from
    the committed models/mini-stage1 without its training folder)."""
    from osum.training.warm_start import load_encoder_from

    other = osum.load("tiny", device="cpu", seed=1).model
    target = osum.load("tiny", device="cpu", seed=2).model
    assert not torch.equal(other.encoder.conv1.weight, target.encoder.conv1.weight)
    saved = osum.Osum(other, osum.load("tiny", device="cpu").tokenizer).save(tmp_path / "ckpt")
    load_encoder_from(target, saved)  # a checkpoint directory
    assert all(torch.equal(v, other.encoder.state_dict()[k]) for k, v in target.encoder.state_dict().items())
    load_encoder_from(target, "tiny")  # a preset, built by osum.load (seed 0)
    seed0 = osum.load("tiny", device="cpu").model.encoder.state_dict()
    assert all(torch.equal(v, seed0[k]) for k, v in target.encoder.state_dict().items())
    with pytest.raises(osum.OsumError, match="neither a checkpoint directory nor a preset"):
        load_encoder_from(target, tmp_path / "missing")


def test_init_label_heads_takes_the_classifiers_and_keeps_the_class_vectors(tmp_path):
    """train.init_label_heads: stage 1's classifiers (here with pitch) replace an LM-stage model's; the class vectors
    its LLM reads stay its own, and a model without label tokens, or other fields, is refused by name."""
    from osum.data.pitch import PITCH_FEATURES
    from osum.training.warm_start import load_label_heads_from

    tokenizer = osum.load("tiny", device="cpu").tokenizer
    source = osum.load("tiny", device="cpu", seed=1).model
    source.config.label_pitch = True
    source.add_label_tokens()
    saved = osum.Osum(source, tokenizer).save(tmp_path / "stage1")
    target = osum.load("tiny", device="cpu", seed=2).model
    with pytest.raises(osum.OsumError, match="no label tokens"):
        load_label_heads_from(target, saved)
    target.add_label_tokens()
    values = {k: v.clone() for k, v in target.label_tokens.values.items()}
    load_label_heads_from(target, saved)
    assert target.config.label_pitch and target.label_tokens.pitch
    mine, theirs = target.label_tokens.state_dict(), source.label_tokens.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs if not k.startswith("values."))
    assert all(torch.equal(target.label_tokens.values[k], v) for k, v in values.items())
    enc, lengths = torch.randn(1, 4, target.config.encoder.d_model), torch.tensor([4])
    logits, tokens = target.label_tokens(enc, lengths, torch.zeros(1, PITCH_FEATURES))
    assert tokens.shape == (1, len(target.label_tokens.fields), target.config.llm.hidden_size)


def test_a_checkpoint_from_before_the_vocal_class_loads_and_answers_as_before(tmp_path):
    """A two-class speech classifier (speech, none), saved before "vocal" was added to the speech field, loads
    into today's three-class head with a class it never chooses; its other logits are unchanged."""
    from osum.vocabulary import LABEL_FIELDS

    source = osum.load("tiny", device="cpu", seed=1)
    source.model.config.label_fields = list(LABEL_FIELDS)
    tokens = source.model.add_label_tokens().eval()
    assert tokens.heads["speech"].out_features == 3
    folder = source.save(tmp_path / "old")
    weights = load_file(str(folder / WEIGHTS_FILE))
    for key in ("label_tokens.heads.speech.weight", "label_tokens.heads.speech.bias", "label_tokens.values.speech"):
        weights[key] = weights[key][:2].clone()  # the old layout
    save_file(weights, str(folder / WEIGHTS_FILE))
    loaded = osum.load(folder, device="cpu").model
    enc, lengths = torch.randn(5, 7, loaded.config.encoder.d_model), torch.full((5,), 7)
    with torch.no_grad():
        old, _ = tokens(enc, lengths)
        new, _ = loaded.label_tokens(enc, lengths)
    torch.testing.assert_close(new["speech"][:, :2], old["speech"][:, :2])
    assert (new["speech"][:, 2] < -1e3).all() and (new["speech"].argmax(-1) < 2).all()
    torch.testing.assert_close(new["gender"], old["gender"])
    bad = {**weights, "label_tokens.heads.speech.bias": torch.zeros(4)}  # not the old layout: a clear error
    save_file(bad, str(folder / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="heads.speech.bias"):
        osum.load(folder, device="cpu")


def test_saved_weights_get_the_usual_file_mode(tiny, tmp_path):
    """safetensors writes 0600; a saved model must be readable by whoever may read the folder (0666 - umask)."""
    import os

    from osum.checkpoint import usual_file_mode

    umask = os.umask(0o022)
    try:
        saved = tiny.save(tmp_path / "ckpt")
        assert (saved / WEIGHTS_FILE).stat().st_mode & 0o777 == 0o644
        save_file({"x": torch.zeros(1)}, str(tmp_path / "delta.safetensors"))  # what osum export writes with
        usual_file_mode(tmp_path / "delta.safetensors")
        assert (tmp_path / "delta.safetensors").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
