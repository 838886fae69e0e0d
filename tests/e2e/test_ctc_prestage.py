"""The CTC pre-stage (train.objective=ctc) on the tiny preset: only the adaptor learns, the loss falls, the blank is
saved and resumed exactly, and the LLM stage starts from its checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from osum.config import RunConfig, from_dict
from osum.errors import ConfigError, OsumError
from osum.tasks import LABEL_FIELDS
from osum.testing.tiny import write_toy_corpus
from osum.training.state import latest_checkpoint
from osum.training.trainer import CTC_HEAD_FILE, Trainer

TRAIN = {
    "init": "tiny",
    "objective": "ctc",
    "train_modules": ["adaptor"],
    "lr": 1e-2,
    "warmup_steps": 0,
    "scheduler": "constant",
    "grad_accum": 1,
    "log_every": 1,
    "max_epochs": 50,
}
DATA = {"max_frames_in_batch": 800, "max_tokens_in_batch": 4000, "num_workers": 0, "sort_buffer": 8}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("toy"), n=16)


def run_config(corpus, out, **train) -> RunConfig:
    return from_dict(
        RunConfig,
        {
            "data": {**DATA, "train": [{"path": str(corpus)}]},
            "train": {**TRAIN, "out_dir": str(out), **train},
        },
    )


def changed_modules(before: dict, after: dict) -> set[str]:
    """The top-level modules whose tensors differ between two state dicts."""
    return {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}


def lm_stage(corpus, out, ckpt, modules: list[str]) -> Trainer:
    """One LM-stage step's trainer, starting from a pre-stage checkpoint."""
    return Trainer(
        run_config(
            corpus, out, init=str(ckpt), objective="lm", train_modules=modules, max_steps=1, save_every=100
        )
    )


def test_ctc_trains_the_adaptor_only_and_the_lm_stage_continues(corpus, tmp_path):
    trainer = Trainer(run_config(corpus, tmp_path / "ctc", max_steps=30, save_every=100))
    before = {k: v.clone() for k, v in trainer.osum.model.state_dict().items()}
    trainer.fit()
    logs = [json.loads(x) for x in (tmp_path / "ctc" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses
    after = trainer.osum.model.state_dict()
    assert changed_modules(before, after) == {"adaptor"}
    ckpt = latest_checkpoint(tmp_path / "ctc")
    head = load_file(str(ckpt / CTC_HEAD_FILE))
    blank = head["blank"]
    assert blank.shape == (trainer.osum.config.llm.hidden_size,) and blank.abs().sum() > 0
    assert float(head["cosine_scale"]) == trainer.run.train.ctc_cosine_scale  # how to score it again
    # the LLM stage starts from the pre-stage checkpoint (an ordinary osum checkpoint)
    lm = lm_stage(corpus, tmp_path / "lm", ckpt, ["adaptor", "llm"])
    adaptor = {k: v for k, v in lm.osum.model.state_dict().items() if k.startswith("adaptor.")}
    assert all(torch.equal(v, after[k]) for k, v in adaptor.items())
    lm.fit()


@pytest.mark.parametrize("attribute_weight", [0.0, 1.0])
def test_ctc_resume_is_exact(corpus, tmp_path, attribute_weight):
    extra = {"ctc_attribute_weight": attribute_weight}
    Trainer(run_config(corpus, tmp_path / "straight", max_steps=4, save_every=2, **extra)).fit()
    Trainer(run_config(corpus, tmp_path / "cut", max_steps=2, save_every=2, **extra)).fit()
    Trainer(run_config(corpus, tmp_path / "cut", max_steps=4, save_every=2, **extra), resume=True).fit()
    for name in ("model.safetensors", CTC_HEAD_FILE):
        a = load_file(str(latest_checkpoint(tmp_path / "straight") / name))
        b = load_file(str(latest_checkpoint(tmp_path / "cut") / name))
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], name
    heads = {k for k in a if k.startswith("attribute_heads.")}
    fields = LABEL_FIELDS if attribute_weight else {}
    assert heads == {f"attribute_heads.{n}.{p}" for n in fields for p in ("weight", "bias")}


def test_resume_with_other_ctc_settings_names_the_missing_head_parameters(corpus, tmp_path):
    Trainer(run_config(corpus, tmp_path / "cut", max_steps=2, save_every=2)).fit()
    changed = run_config(corpus, tmp_path / "cut", max_steps=4, save_every=2, ctc_attribute_weight=1.0)
    with pytest.raises(ConfigError, match=r"ctc_head.safetensors has no attribute_heads\.age\.bias"):
        Trainer(changed, resume=True)


def test_bad_objective_is_named(corpus, tmp_path):
    with pytest.raises(ConfigError, match="train.objective 'ctx'"):
        Trainer(run_config(corpus, tmp_path / "x", objective="ctx", max_steps=1))


def test_lm_stage_with_auxiliary_ctc_continues_the_pre_stage_head(corpus, tmp_path):
    """train.ctc_aux_weight: the LM stage starts the CTC head from the pre-stage's file (parts it lacks untrained),
    trains the adaptor through
    both losses at its own learning rate (lr_scales), logs the LM part as the validation loss, saves the head and
    resumes exactly."""
    Trainer(run_config(corpus, tmp_path / "ctc", max_steps=4, save_every=4)).fit()  # no label classifiers
    pre = latest_checkpoint(tmp_path / "ctc")
    pre_head = load_file(str(pre / CTC_HEAD_FILE))
    extra = {
        "ctc_attribute_weight": 1.0
    }  # switched on now: the classifiers start untrained, the blank is kept
    lm = {
        "init": str(pre),
        "objective": "lm",
        "ctc_aux_weight": 0.5,
        "train_modules": ["adaptor", "speech_markers", "lora"],
        "lr_scales": {"adaptor": 0.1},
        "save_every": 2,
        **extra,
    }

    def lm_config(out, steps):
        cfg = run_config(corpus, out, max_steps=steps, **lm)
        cfg.data.valid = cfg.data.train
        return cfg

    trainer = Trainer(lm_config(tmp_path / "straight", 4))
    own = trainer.objective.ctc.head_parameters()
    assert {n for n in own if n not in pre_head} == {
        f"attribute_heads.{n}.{p}" for n in LABEL_FIELDS for p in ("weight", "bias")
    }
    assert all(torch.equal(p.detach(), pre_head[n]) for n, p in own.items() if n in pre_head)
    lrs = sorted(g["lr"] for g in trainer.optimizer.param_groups)
    assert lrs == pytest.approx(sorted([1e-2, 1e-3, 1e-2])), lrs  # LoRA + markers, adaptor, CTC head
    before = {k: v.clone() for k, v in trainer.osum.model.state_dict().items()}
    trainer.fit()
    after = trainer.osum.model.state_dict()
    changed = changed_modules(before, after)
    assert {"adaptor", "speech_bos", "llm"} <= changed and "encoder" not in changed
    logs = [json.loads(x) for x in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    valid = [r["valid_loss"] for r in logs if "valid_loss" in r]
    # the LM part alone: what the plain LM objective gives for the same model on the same data
    batch, _ = trainer.valid.batch_set(trainer.valid.plan(0), epoch=0, train=False)[0]
    trainer.objective.eval()
    with torch.no_grad():
        out = trainer.objective(batch, full_logits=False)
        plain = trainer.osum.model(batch, full_logits=False).loss
    assert torch.allclose(out.lm_loss, plain)
    assert out.loss > out.lm_loss  # the CTC term is added on top
    assert len(valid) == 2 and all(v > 0 for v in valid)
    Trainer(lm_config(tmp_path / "cut", 2)).fit()
    Trainer(lm_config(tmp_path / "cut", 4), resume=True).fit()
    for name in ("model.safetensors", CTC_HEAD_FILE):
        a = load_file(str(latest_checkpoint(tmp_path / "straight") / name))
        b = load_file(str(latest_checkpoint(tmp_path / "cut") / name))
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], name
    assert not torch.equal(a["blank"], pre_head["blank"])  # the head trained on


def test_auxiliary_ctc_needs_an_osum_model_and_names_a_bad_lr_scale(corpus, tmp_path):
    with pytest.raises(ConfigError, match="lr_scales: 'encoder' has no trained parameter"):
        Trainer(run_config(corpus, tmp_path / "x", objective="lm", lr_scales={"encoder": 0.5}, max_steps=1))
    with pytest.raises(ConfigError, match="lr_scales: the model has no submodule 'adapter'"):
        Trainer(run_config(corpus, tmp_path / "x", objective="lm", lr_scales={"adapter": 0.5}, max_steps=1))
    with pytest.raises(ConfigError, match=r"lr_scales\.adaptor must be > 0"):
        Trainer(run_config(corpus, tmp_path / "x", objective="lm", lr_scales={"adaptor": 0}, max_steps=1))


def test_label_loss_weight_weights_the_tags_of_training_batches_only(corpus, tmp_path):
    """train.label_loss_weight: training batches weight the label tags' tokens, validation batches stay plain (so
    the valid loss compares across runs), and a CTC run, which has no LM targets, refuses it."""
    cfg = run_config(
        corpus, tmp_path / "lm", objective="lm", label_loss_weight=4.0, max_steps=2, save_every=2
    )
    cfg.data.valid = cfg.data.train
    trainer = Trainer(cfg)
    codec = trainer.osum.codec("en", False)
    batch, _ = trainer.data.batch_set(trainer.data.plan(0), epoch=0)[0]
    tagged = set()
    for ids, w, n in zip(batch.target_ids, batch.target_weights, batch.target_lengths, strict=True):
        heavy = [int(i) for i, x in zip(ids[: int(n)], w[: int(n)], strict=True) if x == 4.0]
        assert set(w[: int(n)].tolist()) <= {1.0, 4.0}
        tagged.add(codec.tokenizer.decode(heavy))
    assert tagged & {"<male>", "<female>"} and "" in tagged, tagged  # gender clips and ASR clips
    valid, _ = trainer.valid.batch_set(trainer.valid.plan(0), epoch=0, train=False)[0]
    assert valid.target_weights is None
    trainer.fit()
    with pytest.raises(ConfigError, match="label_loss_weight weights the LM targets"):
        Trainer(run_config(corpus, tmp_path / "ctc", label_loss_weight=4.0, max_steps=1))
    with pytest.raises(ConfigError, match="label_loss_weight must be > 0"):
        Trainer(run_config(corpus, tmp_path / "lm2", objective="lm", label_loss_weight=0.0, max_steps=1))


def test_label_tokens_train_in_the_ctc_prestage_and_the_lm_stage_reads_them(corpus, tmp_path):
    """train.label_tokens adds them to the init model (class vectors at the class names' embeddings); the CTC
    pre-stage trains their classifiers beside CTC, on data.extra_labels where a clip has no label of its own, and
    saves a checkpoint that the LM stage loads strictly and keeps training."""
    lines = [json.loads(x) for x in corpus.read_text().splitlines()]
    for i, d in enumerate(lines):  # every clip's voice gender in extra, as the synthesizer writes it
        d["audio"] = str(corpus.parent / d["audio"])
        d["extra"] = {"voice_gender": "female" if i % 2 == 0 else "male"}
    manifest = tmp_path / "with_extra.jsonl"
    manifest.write_text("".join(json.dumps(d) + "\n" for d in lines))
    cfg = run_config(
        manifest,
        tmp_path / "ctc",
        label_tokens=True,
        train_modules=["adaptor", "label_tokens"],
        max_steps=20,
        save_every=20,
    )
    cfg.data.extra_labels = {"gender": "voice_gender"}
    cfg.data.valid = cfg.data.train
    trainer = Trainer(cfg)
    model = trainer.osum.model
    codec = trainer.osum.codec("en", False)
    table = model.lm.get_input_embeddings().weight
    torch.testing.assert_close(model.label_tokens.values["gender"][1], table[codec.ids("male")].mean(0))
    batch, _ = trainer.data.batch_set(trainer.data.plan(0), epoch=0)[0]
    gender = list(LABEL_FIELDS).index("gender")
    assert (batch.attributes[:, gender] >= 0).all()  # ASR clips get their extra voice gender
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.fit()
    after = model.state_dict()
    assert changed_modules(before, after) == {"adaptor", "label_tokens"}
    logs = [json.loads(x) for x in (tmp_path / "ctc" / "train_log.jsonl").read_text().splitlines()]
    assert any("valid_label_loss" in r for r in logs)
    ckpt = latest_checkpoint(tmp_path / "ctc")
    lm = lm_stage(manifest, tmp_path / "lm", ckpt, ["lora", "label_tokens"])
    saved = lm.osum.model.label_tokens.state_dict()
    assert all(torch.equal(v, after[f"label_tokens.{k}"]) for k, v in saved.items())
    lm.fit()


def test_extra_labels_and_label_tokens_name_their_errors(corpus, tmp_path):
    cfg = run_config(corpus, tmp_path / "a", max_steps=1)
    cfg.data.extra_labels = {"sex": "voice_gender"}
    with pytest.raises(ConfigError, match=r"data.extra_labels: \['sex'\] are not label fields"):
        Trainer(cfg)
    lines = [json.loads(x) for x in corpus.read_text().splitlines()]
    for d in lines:
        d["audio"] = str(corpus.parent / d["audio"])
    lines[3]["extra"] = {"voice_gender": "robot"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(d) + "\n" for d in lines))
    cfg = run_config(bad, tmp_path / "b", max_steps=1)
    cfg.data.extra_labels = {"gender": "voice_gender"}
    with pytest.raises(OsumError, match=r"u3: extra.voice_gender = 'robot' .* is not a gender label"):
        Trainer(cfg)
    with pytest.raises(ConfigError, match="has 'label_tokens' but the model has none"):
        Trainer(run_config(corpus, tmp_path / "c", train_modules=["adaptor", "label_tokens"], max_steps=1))
