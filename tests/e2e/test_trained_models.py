"""The committed trained models (``models/mini-stage1``, ``models/mini``) listen: held-out synthetic clips, recorded
human speech that Debian packages ship, and non-speech, beside the untouched Whisper tiny.en on the same clips.

Every clip is made here (synthetic: seed 2026, test split, voices and text sources never used in training; recorded
and non-speech: ``osum data offgen``), so a broken loader, a wrong or truncated file, or a model that writes its
training material instead of what was said cannot pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import osum
from osum.data.offgen import build_offgen
from osum.data.reader import read_any
from osum.data.synth.builder import build_corpus
from osum.evaluation.metrics import word_errors
from osum.evaluation.normalize import normalize_english
from osum.runtime import trained_models_dir

pytestmark = pytest.mark.slow
OPTIONS = osum.DecodingOptions(max_new_tokens=80)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, list]:
    folder = tmp_path_factory.mktemp("heldout")
    build_corpus(folder, hours=0.04, seed=2026, test_fraction=0.5, flite_split="split")
    by_task: dict[str, list] = {}
    for utt in read_any(folder / "test.jsonl"):
        if utt.text is None or utt.text.strip() or utt.task == "sttc":
            by_task.setdefault(utt.task, []).append(utt)
    return by_task


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, list]:
    summary = build_offgen(tmp_path_factory.mktemp("offgen"), asterisk_limit=20)
    return {group: list(read_any(path)) for group, path in summary.manifests.items()}


def _wer(model: osum.Osum, utts: list, task: str = "asr") -> tuple[float, list]:
    results = model.run([u.audio for u in utts], tasks=[task], options=OPTIONS)
    hyps = [r[task].transcript or "" for r in results]
    return word_errors([u.text for u in utts], hyps, normalize_english).rate, results


@pytest.fixture(scope="module")
def recorded_all(tmp_path_factory) -> dict[str, list]:
    """All 168 recorded clips (``osum data offgen``'s default), for bounds finer than the 38 clips above resolve."""
    summary = build_offgen(tmp_path_factory.mktemp("offgen_all"))
    return {group: list(read_any(path)) for group, path in summary.manifests.items()}


@pytest.fixture(scope="module")
def baseline_wer(recorded) -> float:
    """The untouched Whisper tiny.en (mini-stage1-base transcribes exactly as it does) on the recorded clips."""
    return _wer(osum.load("mini-stage1-base", device="cpu"), recorded["real"])[0]


# Measured (recipes/mini/RESULTS.md sections 10-19; the models are recipes/mini/run.sh's exports, section 19). Both
# models transcribe with Whisper tiny.en's own decoder on an encoder adapted to the synthetic voices (recipe stage
# 1a; mini's transcript part comes from that decoder on its own encoder, sources.transcriber), so they write the
# same transcripts. Issue 19's bounds: recorded speech within 1.5x the untouched model's WER (section 14: 7.62%
# against 6.75% on 168 clips), new sentences in held-out voices at most 12% (section 19: 10.3%; untouched 27.6%).
# Gender reads the clips' pitch: 100% on the held-out plain voices and on the recorded female speaker (bound 90%);
# on the synthetic test split (unseen espeak-ng variants, robotic ones among them, speed-perturbed, noisy and codec
# clips) 96.1% for both over 76 SGC clips (sections 18-19). The other label tasks on the same clips together: 11
# answers here; section 13's mini-stage1 gets 11, its mini 8 (section 12's: 6 and 5; chance is 14-33% per task),
# so the bound is 60%; per task on the 330 label clips of the 593-clip test split, RESULTS.md sections 13-19 (since
# section 15 mini's labels follow its classifiers, which equal mini-stage1's heads; section 19, both: gender / age /
# emotion / style / event 96.1 / 93.0 / 90.8 / 95.9 / 91.3%).
MAX_WER_RATIO = 1.5
MAX_HELDOUT_WER = 0.12
MIN_GENDER = 0.9
MIN_GENDER_SYNTHETIC = 0.65
MIN_OTHER_LABELS = 0.6
MIN_NONSPEECH_EMPTY = 0.95


def _gender_accuracy(model: osum.Osum, utts: list) -> tuple[float, list]:
    results = model.run([u.audio for u in utts], tasks=["sgc"], options=OPTIONS)
    pairs = [
        ((u.labels or {}).get("gender") or u.extra.get("voice_gender"), r["sgc"].labels.get("gender"))
        for u, r in zip(utts, results, strict=True)
    ]
    pairs = [(ref, hyp) for ref, hyp in pairs if ref is not None]
    return sum(ref == hyp for ref, hyp in pairs) / len(pairs), pairs


def _no_loops(results: list, task: str) -> None:
    for r in results:  # no looping answer: nothing repeats a 3-word phrase 3 times
        words = normalize_english(r[task].transcript or "").split()
        grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
        assert all(grams.count(g) < 3 for g in grams), r[task].raw


@pytest.mark.parametrize("name", ["mini-stage1", "mini"])
def test_trained_model_on_recorded_speech_new_text_and_non_speech(name, recorded, baseline_wer):
    model = osum.load(name, device="cpu")
    assert Path(model.source) == trained_models_dir() / name  # the committed export, not the base
    assert model.config.trained
    wer, results = _wer(model, recorded["real"])
    assert wer <= MAX_WER_RATIO * baseline_wer, (wer, baseline_wer)  # what the pretrained model knows, kept
    _no_loops(results, "asr")
    heldout, results = _wer(model, recorded["heldout"])
    assert heldout <= MAX_HELDOUT_WER, heldout  # the untouched model: 27.6%
    _no_loops(results, "asr")
    # non-speech: the model itself (the no-speech guard off), then with the guard
    clips = [u.audio for u in recorded["nonspeech"]]
    for options, share in (
        (dataclasses.replace(OPTIONS, skip_silence=False), MIN_NONSPEECH_EMPTY),
        (OPTIONS, 1.0),
    ):
        silent = model.run(clips, tasks=["asr", "sgc"], options=options)
        empty = [
            not normalize_english(r["asr"].transcript or "") and r["sgc"].labels["gender"] is None
            for r in silent
        ]
        assert sum(empty) >= share * len(silent), [r["asr"].raw for r in silent]
    # the recorded speaker's documented gender, and the held-out voices'
    for group in ("real_gender", "heldout_gender"):
        accuracy, pairs = _gender_accuracy(model, recorded[group])
        assert accuracy >= MIN_GENDER, (group, pairs)


@pytest.mark.parametrize("name", ["mini-stage1", "mini"])
def test_trained_model_labels_held_out_synthetic_clips(name, clips):
    model = osum.load(name, device="cpu")
    accuracy, pairs = _gender_accuracy(model, clips["asr"] + clips["sgc"] + clips["sap"])
    assert accuracy >= MIN_GENDER_SYNTHETIC, pairs
    # the other label tasks together (a few clips each here; chance is 14-33%)
    pairs = []
    for task, field in (("ser", "emotion"), ("ssr", "style"), ("ved", "event"), ("sap", "age")):
        answers = model.run([u.audio for u in clips[task]], tasks=[task], options=OPTIONS)
        pairs += [
            (u.labels.get(field), a[task].labels.get(field))
            for u, a in zip(clips[task], answers, strict=True)
        ]
    pairs = [(ref, hyp) for ref, hyp in pairs if ref is not None]
    assert sum(ref == hyp for ref, hyp in pairs) >= MIN_OTHER_LABELS * len(pairs), pairs


def test_mini_answers_every_task_after_the_same_transcript(clips):
    """mini's LLM writes what follows the transcript: the transcript inside every task's answer is the ASR answer,
    and a chat question gets a reply."""
    model = osum.load("mini", device="cpu")
    utts = clips["sttc"][:3] + clips["asr"][:3]
    tasks = ["asr", "sgc", "ser", "sttc"]
    for r in model.run([u.audio for u in utts], tasks=tasks, options=OPTIONS):
        assert r["asr"].transcript
        assert all(r[t].transcript == r["asr"].transcript for t in tasks)
    chats = model.run([u.audio for u in clips["sttc"][:3]], tasks=["sttc"], options=OPTIONS)
    assert all(r["sttc"].answer for r in chats), [r["sttc"].raw for r in chats]


# int8 weights (osum.load(..., dtype="int8")) on the 168 recorded clips (919 words): 7.73% against float32's 7.62%
# (RESULTS.md section 19; README "Speed"). On the 38 clips of `recorded` one word is 0.5 points, and there the
# same model lost 2 words (8.21% against 7.18%): too coarse for a one-point bound.
MAX_INT8_WER_INCREASE = 0.01


def test_int8_weights_keep_what_mini_hears(recorded_all):
    """mini with int8 weights in every linear layer (its transcriber's too): the recorded clips' WER within one
    point of float32's, the recorded woman still heard as one, non-speech still empty."""
    fp32_wer, _ = _wer(osum.load("mini", device="cpu"), recorded_all["real"])
    model = osum.load("mini", device="cpu", dtype="int8")
    assert model.int8 and model.transcriber is not None
    wer, results = _wer(model, recorded_all["real"])
    assert wer <= fp32_wer + MAX_INT8_WER_INCREASE, (wer, fp32_wer)
    _no_loops(results, "asr")
    accuracy, pairs = _gender_accuracy(model, recorded_all["real_gender"])
    assert accuracy >= MIN_GENDER, pairs
    silent = model.run([u.audio for u in recorded_all["nonspeech"]], tasks=["asr"], options=OPTIONS)
    assert all(not r["asr"].transcript for r in silent), [r["asr"].raw for r in silent]


@pytest.mark.parametrize("name", ["mini-stage1", "mini"])
def test_a_lone_vocal_sound_is_named_with_the_silence_guard_on(name):
    """The voice activity detector hears no speech in a lone cough; the model's speech classifier does hear a vocal
    sound, so VED names it while ASR stays empty, and plain noise stays empty for both (RESULTS.md section 17:
    with the detector alone deciding, VED answered 3 of the test split's 14 lone events)."""
    import numpy as np
    import torch

    from osum.data.synth.events import EVENT_GENERATORS, make_event

    rng = np.random.default_rng(7)
    names, clips = list(EVENT_GENERATORS), []
    for event in names:
        sound = make_event(event, rng)
        x = np.concatenate([np.zeros(4000), 0.7 * sound / np.abs(sound).max(), np.zeros(4000)])
        clips.append(torch.tensor(x + 0.0005 * rng.standard_normal(len(x)), dtype=torch.float32))
    clips.append(torch.tensor(0.05 * rng.standard_normal(32000), dtype=torch.float32))  # noise
    model = osum.load(trained_models_dir() / name, device="cpu")
    results = model.run(clips, tasks=["ved", "asr"], sample_rate=16000, options=OPTIONS)
    said = [r["ved"].labels.get("event") for r in results[:-1]]
    assert sum(s == n for s, n in zip(said, names, strict=True)) >= 5, list(zip(names, said, strict=True))
    assert all(s in (None, n) for s, n in zip(said, names, strict=True)), list(zip(names, said, strict=True))
    assert results[-1]["ved"].labels.get("event") is None
    assert all(not r["asr"].transcript for r in results)
