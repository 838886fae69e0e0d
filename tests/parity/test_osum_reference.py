"""Parity with the original OSUM code, through the real ``convert-osum`` path.

The fixture folder (``OSUM_REFERENCE_FIXTURE``, default ``../shared/fixtures/osum_reference``) holds tensors computed
by ASLP-lab/OSUM's own ``LLMASR_Model``. We rebuild its weights from the README formula, save them as an OSUM
``infer.pt``, convert, load, and compare every stage utterance by utterance. A missing folder FAILS these tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from osum.checkpoint import load_checkpoint
from osum.convert.osum_pt import convert_osum
from osum.data.audio import log_mel_spectrogram
from osum.errors import CheckpointError
from osum.testing.reference import padded_batch, reference_llm_config, single_batch, write_reference_infer_pt

DEFAULT_FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "osum_reference"
FIXTURE = Path(os.environ.get("OSUM_REFERENCE_FIXTURE") or DEFAULT_FIXTURE)
SINGLES = ("single.npz", "single_short.npz")


def _require_fixture() -> Path:
    if not (FIXTURE / "keys.json").is_file():
        pytest.fail(f"OSUM reference fixture not found at {FIXTURE} (set OSUM_REFERENCE_FIXTURE)")
    return FIXTURE


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = _require_fixture()
    tmp = tmp_path_factory.mktemp("osum_ref")
    infer_pt = write_reference_infer_pt(folder, tmp / "infer.pt")
    out = convert_osum(infer_pt, tmp / "ckpt", llm_config=reference_llm_config(folder))
    m, _, _ = load_checkpoint(out)
    return m


def _load(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(_require_fixture() / name))


def _close(
    actual: torch.Tensor, expected: np.ndarray, atol: float, rtol: float = 1e-4, what: str = ""
) -> None:
    np.testing.assert_allclose(actual.detach().float().numpy(), expected, atol=atol, rtol=rtol, err_msg=what)


def _check_llm(out, ref: dict[str, np.ndarray], row: int, n_layers: int) -> None:
    """Compare LLM inputs and outputs of batch row ``row`` with a single-utterance reference."""
    s = ref["inputs_embeds"].shape[1]
    _close(out.inputs_embeds[row, :s], ref["inputs_embeds"][0], 1e-4, what="inputs_embeds")
    assert out.attention_mask[row, :s].bool().tolist() == ref["attention_mask"][0].astype(bool).tolist()
    assert out.position_ids[row, :s].tolist() == ref["position_ids"][0].tolist()
    assert out.labels[row, :s].tolist() == ref["llm_labels"][0].tolist()
    for i in range(n_layers - 1):  # HF's last hidden state is after the final norm
        _close(out.hidden_states[i + 1][row, :s], ref[f"llm_layer{i}_out"][0], 5e-4, what=f"llm layer {i}")
    _close(out.hidden_states[-1][row, :s], ref["llm_final_hidden"][0], 2e-4, what="llm_final_hidden")
    logits = out.logits[row, :s]
    cols = torch.from_numpy(ref["logits_cols"]).long()
    _close(logits[:, cols], ref["logits_sel"][0], 2e-4, what="logits_sel")
    _close(torch.logsumexp(logits.double(), -1), ref["logits_logsumexp"][0], 2e-4, what="logsumexp")
    assert logits.argmax(-1).tolist() == ref["logits_argmax"][0].tolist()


@pytest.mark.parametrize("name", SINGLES)
def test_features_match(name):
    ref = _load(name)
    _close(log_mel_spectrogram(torch.from_numpy(ref["wave"])), ref["mel"], 1e-4)


@pytest.mark.parametrize("name", SINGLES)
def test_single_utterance_matches_every_stage(model, name):
    ref = _load(name)
    batch = single_batch(ref)
    with torch.no_grad():
        enc, enc_len = model.encoder(batch.feats, batch.feat_lengths)
        _close(enc[0], ref["encoder_out"][0], 1e-4, what="encoder_out")
        assert enc_len.tolist() == [int(ref["encoder_mask"][0].sum())]
        speech, speech_len = model.adaptor(enc, enc_len)
        _close(speech[0], ref["speech_proj_out"][0], 1e-4, what="adaptor output")
        _close(model.speech_bos, ref["speech_embeds"][0, 0], 1e-6, what="speech BOS")
        _close(model.speech_eos, ref["speech_embeds"][0, -1], 1e-6, what="speech EOS")
        out = model(batch, output_hidden_states=True)
    _check_llm(out, ref, 0, model.config.llm.layers)
    assert abs(out.loss.item() - float(ref["loss"])) < 1e-5


def test_full_logit_rows_and_lora_disabled(model):
    ref = _load("single.npz")
    batch = single_batch(ref)
    with torch.no_grad():
        out = model(batch, output_hidden_states=True)
        pos = torch.from_numpy(ref["logits_full_positions"]).long()
        _close(out.logits[0, pos], ref["logits_full"], 2e-4, what="full logit rows")
        with model.llm.disable_adapter():
            plain = model(batch, output_hidden_states=True)
    assert abs(plain.loss.item() - float(ref["loss_lora_disabled"])) < 1e-5
    _close(plain.hidden_states[-1][0], ref["llm_final_hidden_lora_disabled"][0], 2e-4)
    assert abs(out.loss.item() - plain.loss.item()) > 1e-3  # LoRA really is applied


def test_padded_batch_equals_each_utterance_alone(model):
    """The fixture's batch (A, B) padded together: every row must equal that utterance's single run.

    The original code fails this for B (its encoder mask quirk, fixture README 7); we must not.
    """
    b = _load("batch.npz")
    refs = [_load(n) for n in SINGLES]
    batch = padded_batch(b)
    with torch.no_grad():
        enc, enc_len = model.encoder(batch.feats, batch.feat_lengths)
        out = model(batch, output_hidden_states=True)
    for row, ref in enumerate(refs):
        n = int(ref["encoder_mask"][0].sum())
        _close(enc[row, :n], ref["encoder_out"][0], 1e-4, what=f"row {row} encoder")
        _check_llm(out, ref, row, model.config.llm.layers)
    # Row A is the longest in every dimension, so the original's batch row equals ours too.
    _close(enc[0], b["encoder_out"][0], 1e-4, what="batch row A encoder")
    n_tok = [int((r["llm_labels"][0] != -100).sum()) for r in refs]  # tokens scored per row
    expected = sum(float(r["loss"]) * n for r, n in zip(refs, n_tok, strict=True)) / sum(n_tok)
    assert abs(out.loss.item() - expected) < 1e-5


def test_a_checkpoint_saved_in_bf16_converts_with_its_weights_at_that_precision(tmp_path):
    """A half-precision infer.pt (e.g. saved from a bf16 training run): its position tables are checked at that
    precision, not refused, and every weight arrives as saved."""
    from osum.testing.reference import reference_state_dict

    folder = _require_fixture()
    sd = {k: v.bfloat16() for k, v in reference_state_dict(folder).items()}
    torch.save(sd, tmp_path / "infer.pt")
    out = convert_osum(tmp_path / "infer.pt", tmp_path / "ckpt", llm_config=reference_llm_config(folder))
    m, _, _ = load_checkpoint(out)
    ours = m.state_dict()
    assert torch.equal(ours["adaptor.proj.weight"].bfloat16(), sd["speech_llama_proj.weight"])
    assert torch.equal(ours["speech_bos"].bfloat16(), sd["speech_token_emded.weight"][4097])
    bad = dict(sd, **{"speech_transformer.embed.pos_enc.pe": sd["speech_transformer.embed.pos_enc.pe"] + 0.05})
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not the sinusoid table"):
        convert_osum(tmp_path / "bad.pt", tmp_path / "bad", llm_config=reference_llm_config(folder))
