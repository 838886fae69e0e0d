"""The synthetic multi-task corpus (osum/data/synth, `osum data synth`): labels true by construction, splits
disjoint, audio as the manifest says, deterministic per seed. Needs Debian espeak-ng and flite."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from osum.cli.data import parse_weights
from osum.data.manifest import read_manifest
from osum.data.synth import PlanSettings, build_corpus, plan_corpus, render_clip
from osum.data.synth.acoustics import AcousticChain
from osum.data.synth.events import EVENT_GENERATORS, make_event
from osum.data.synth.plan import ClipSpec
from osum.data.synth.prosody import Delivery
from osum.data.synth.questions import number_words
from osum.data.synth.render import speech_of
from osum.data.synth.text import text_split
from osum.data.synth.voices import FEMALE_TRACT, split_voices
from osum.data.tts import synthesize_array
from osum.errors import ConfigError, OsumError
from osum.tasks import get_task

SR = 16000
BUILD = {"hours": 0.03, "seed": 7, "test_fraction": 0.3}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    build_corpus(out, BUILD["hours"], BUILD["seed"], test_fraction=BUILD["test_fraction"], jobs=2)
    return out


def _specs() -> dict:
    """The planned clips of the module's corpus by key (to render them again, e.g. before augmentation)."""
    return {s.key: s for s in plan_corpus(PlanSettings(**BUILD))}


def _records(corpus: Path, split: str | None = None) -> list[dict]:
    splits = [split] if split else ["train", "test"]
    return [json.loads(line) for s in splits for line in (corpus / f"{s}.jsonl").read_text().splitlines()]


def _audio(corpus: Path, record: dict) -> np.ndarray:
    x, sr = sf.read(corpus / record["audio"], dtype="float32")
    assert sr == SR and x.ndim == 1
    return x


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _autocorr_f0(x: np.ndarray) -> float:
    """Median F0 by plain normalised autocorrelation (independent of the builder's YIN), 60-400 Hz."""
    n, hop = 640, 160
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[::hop]
    energy = (frames**2).mean(axis=1)
    f0s = []
    for frame, e in zip(frames, energy, strict=True):
        if e < energy.max() * 0.01:
            continue
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        lags = np.arange(SR // 400, SR // 60)
        norm = ac[lags] / (ac[0] * (n - lags) / n)
        if norm.max() > 0.6:
            f0s.append(SR / lags[int(np.argmax(norm))])
    return float(np.median(f0s))


def test_every_task_in_both_splits_with_valid_targets(corpus):
    for split in ("train", "test"):
        utts = list(read_manifest(corpus / f"{split}.jsonl"))
        assert {u.task for u in utts} == {"asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc"}
        for u in utts:
            task = get_task(u.task)
            # every record builds its ASR+X target, and its labels are canonical members of the vocabularies
            target = task.target(u.text, u.labels, u.words, u.answer)
            if u.extra.get("nonspeech"):  # no speech: empty target (a lone vocal event in VED: its tag alone)
                assert target == "".join(f"<{v}>" for v in u.labels.values()) and not u.text
                continue
            assert target and "<none>" not in target
            assert task.label_values(u.labels) == tuple(u.labels[f.name] for f in task.label_fields)
            assert set(u.labels) == {f.name for f in task.label_fields}
            assert "other" not in u.labels.values()


def test_audio_is_16k_mono_and_matches_duration(corpus):
    for r in _records(corpus):
        info = sf.info(corpus / r["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
        assert abs(info.frames / SR - r["duration"]) < 1e-3
        assert 1.0 <= r["duration"] <= 12.0
        x = _audio(corpus, r)
        if r["extra"].get("nonspeech"):
            continue
        # Peak-normalised: -3 dBFS minus at most 12 dB of delivery offset, plus the augmentation's level change
        # (never above -1 dBFS). (Before augmentation the peak was always in 0.15..0.71.)
        level = -3.0 + r["extra"]["delivery"]["level_db"] + r["extra"]["acoustics"].get("gain_db", 0.0)
        assert np.isclose(np.abs(x).max(), 10 ** (min(-1.0, level) / 20), rtol=2e-3, atol=1e-4), r
        assert r["speaker"] == f"{r['extra']['engine']}:{r['extra']['voice']}"


def test_word_times_are_exact(corpus):
    srwt = [r for r in _records(corpus) if r["task"] == "srwt" and r.get("words")]
    assert len(srwt) >= 4
    specs = _specs()
    for r in srwt:
        words = r["words"]
        assert [w["word"] for w in words] == re.findall(r"[A-Za-z']+", r["text"])
        # Measured on the clip before its acoustic augmentation (noise and reverberation fill the pauses on
        # purpose); augmentation keeps every sample where it was, and speed perturbation comes before the times.
        rendered = render_clip(specs[r["key"]])
        assert np.array_equal(rendered.audio, _audio(corpus, r))
        x = rendered.dry
        starts, ends = np.array([w["start"] for w in words]), np.array([w["end"] for w in words])
        assert starts[0] >= 0 and ends[-1] <= r["duration"]
        assert np.all(ends > starts) and np.all(starts[1:] >= ends[:-1])  # increasing, non-overlapping
        word_rms = [_rms(x[int(s * SR) : int(e * SR)]) for s, e in zip(starts, ends, strict=True)]
        gaps = [x[int(e * SR) + 16 : int(s * SR) - 16] for e, s in zip(ends[:-1], starts[1:], strict=True)]
        gap_rms = [_rms(g) for g in gaps if len(g) > 160]
        assert gap_rms, "expected pauses between words"
        assert min(word_rms) > 10 * max(gap_rms)


def test_gender_from_voice_is_audible_in_f0(corpus):
    sgc = [r for r in _records(corpus) if r["task"] == "sgc" and not r["extra"].get("nonspeech")]
    f0 = {"female": [], "male": []}
    specs = _specs()
    for r in sgc:
        assert r["labels"]["gender"] == r["extra"]["voice_gender"]
        a, b = (int(t * SR) for t in (r["extra"]["speech_onset"], r["extra"]["speech_offset"]))
        # The voice's F0, before noise and codecs (the data card's F0 table is measured the same way).
        f0[r["labels"]["gender"]].append(_autocorr_f0(render_clip(specs[r["key"]]).dry[a:b]))
    assert len(f0["female"]) >= 2 and len(f0["male"]) >= 2
    assert np.median(f0["female"]) > 1.4 * np.median(f0["male"]), f0


def test_child_voices_are_higher_than_old_voices(corpus):
    by_age = {"child": [], "old": []}
    for r in _records(corpus):
        if r["task"] == "sap" and r["labels"]["age"] in by_age:
            by_age[r["labels"]["age"]].append(r["extra"]["f0_median_hz"])
    assert by_age["child"] and by_age["old"]
    assert np.median(by_age["child"]) > 1.5 * np.median(by_age["old"]), by_age
    assert min(by_age["child"]) > max(by_age["old"]), by_age


def test_events_are_where_the_manifest_says(corpus):
    specs = {
        s.key: s
        for s in plan_corpus(
            PlanSettings(BUILD["hours"], BUILD["seed"], test_fraction=BUILD["test_fraction"])
        )
        if s.task == "ved"
    }
    ved = [r for r in _records(corpus) if r["task"] == "ved" and not r["extra"].get("nonspeech")]
    assert len(ved) >= 4 and {r["key"] for r in ved} == set(specs)
    for r in ved:
        e = r["extra"]
        assert r["labels"]["event"] in EVENT_GENERATORS and e["event_placement"] in (
            "before",
            "after",
            "inside",
        )
        assert 0 <= e["event_onset"] < e["event_offset"] <= r["duration"]
        assert -5.0 <= e["event_snr_db"] <= 10.0
        a, b = int(e["event_onset"] * SR), int(e["event_offset"] * SR)
        # The same clip rendered without its event: same layout; the difference is the event, and only there.
        # Compared before the acoustic augmentation, whose reverberation carries the event past its offset.
        rendered = render_clip(specs[r["key"]])
        assert np.array_equal(rendered.audio, _audio(corpus, r))
        x = rendered.dry.astype(np.float64)
        clean = render_clip(specs[r["key"]], with_event=False).dry.astype(np.float64)
        assert len(clean) == len(x)
        outside = np.ones(len(x), bool)
        outside[a:b] = False
        scale = np.dot(x[outside], clean[outside]) / np.dot(clean[outside], clean[outside])
        residual = x - scale * clean
        assert _rms(residual[a:b]) > 20 * _rms(residual[outside])
        if e["event_placement"] != "inside":  # spliced next to the speech: louder than the silence around it
            around = x[: max(a - 16, 0)] if e["event_placement"] == "before" else x[b + 16 :]
            assert _rms(x[a:b]) > 10 * _rms(around)


_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}


def _parse_number(words: list[str]) -> int:
    total = 0
    for w in words:
        if w == "hundred":
            total *= 100
        elif w in _TENS:
            total += _TENS[w]
        else:
            total += _NUMBERS[w]  # KeyError = not a number word
    return total


def test_sttc_arithmetic_answers_are_correct(corpus):
    plan = plan_corpus(PlanSettings(2.0, 3, test_fraction=0.5, task_weights={"sttc": 1.0}))
    records = [{"text": s.text, "answer": s.answer} for s in plan] + _records(corpus)
    checked = 0
    for r in records:
        m = re.match(
            r"(?:What is|How much is) ([a-z ]+?) (plus|minus|times|multiplied by) ([a-z ]+)\?$", r["text"]
        )
        if not m or "answer" not in r:
            continue
        a, b = _parse_number(m.group(1).split()), _parse_number(m.group(3).split())
        expected = {"plus": a + b, "minus": a - b, "times": a * b, "multiplied by": a * b}[m.group(2)]
        assert _parse_number(r["answer"].split()) == expected, r
        checked += 1
    assert checked >= 50
    assert number_words(144) == "one hundred forty four" and number_words(40) == "forty"


def test_train_and_test_share_no_voice_and_no_sentence(corpus):
    def norm(text: str) -> str:
        return " ".join(re.findall(r"[a-z']+", text.lower()))

    train, test = _records(corpus, "train"), _records(corpus, "test")
    train, test = ([r for r in rs if not r["extra"].get("nonspeech")] for rs in (train, test))
    assert not {r["speaker"] for r in train} & {r["speaker"] for r in test}
    assert not {norm(r["text"]) for r in train} & {norm(r["text"]) for r in test}
    assert any(r["extra"]["engine"] == "flite" for r in test)
    assert all(r["extra"]["engine"] == "espeak-ng" for r in train)
    voices = split_voices(("espeak-ng", "flite"))
    for split in ("train", "test"):
        assert {v.gender for v in voices[split]} >= {"female", "male"}
    assert not {v.id for v in voices["train"]} & {v.id for v in voices["test"]}
    keys = [f"sentence {i}" for i in range(4000)]
    assert 0.17 < np.mean([text_split(k, 0.2) == "test" for k in keys]) < 0.23


def test_converted_female_flite_voices_train_only_and_sound_female():
    """flite's training voices are all male; each also speaks as a woman (F0 and spectrum raised), in training
    only, so that a flite-like voice does not mean "man"."""
    voices = split_voices(("espeak-ng", "flite"), "split")
    train = {v.id: v for v in voices["train"] if v.engine == "flite"}
    assert set(train) == {"flite:awb", "flite:kal16", "flite:awb~female", "flite:kal16~female"}
    assert [v.id for v in voices["test"] if v.engine == "flite"] == ["flite:slt", "flite:rms"]
    assert not any(v.converted for v in split_voices(("espeak-ng", "flite"), "test")["train"])
    converted = train["flite:awb~female"]
    assert converted.gender == "female" and converted.tract == FEMALE_TRACT and converted.name == "awb"
    rng = np.random.default_rng(0)
    f0 = {}
    for vid in ("flite:awb", "flite:awb~female"):
        clip = ClipSpec(
            key="k", split="train", task="asr", text="the quick brown fox jumps over the lazy dog",
            voice=train[vid], delivery=Delivery(), seed=0,
        )
        f0[vid] = _autocorr_f0(speech_of(clip, 1.0, rng)[0])
    # awb speaks at about 130 Hz; converted, at about 200 Hz (F0 x 1.54)
    assert f0["flite:awb"] < 150 < 180 < f0["flite:awb~female"] < 230, f0
    with pytest.raises(OsumError, match="flite voices only"):
        synthesize_array("hello", "en-us+f2", "espeak-ng", f0_scale=1.5)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_corpus_whatever_the_jobs(corpus, tmp_path):
    again = tmp_path / "again"
    summary = build_corpus(again, BUILD["hours"], BUILD["seed"], test_fraction=BUILD["test_fraction"], jobs=1)
    assert _digest(again) == _digest(corpus)
    assert summary.counts["train"]["sgc"] >= 2 and summary.hours > 0.02
    other = plan_corpus(PlanSettings(BUILD["hours"], BUILD["seed"] + 1, test_fraction=BUILD["test_fraction"]))
    assert [s.text for s in other] != [s.text for s in plan_corpus(PlanSettings(**BUILD))]
    with pytest.raises(ConfigError, match="overwrite"):
        build_corpus(again, 0.01, 1)


def test_data_card_separates_acoustic_truths_from_proxies(corpus):
    card = (corpus / "README.md").read_text(encoding="utf-8")
    truths, proxies = card.split("### ACOUSTIC TRUTHS")[1].split("### PROCEDURAL PROXIES")
    for item in ("transcript", "word times", "speaker gender", "vocal event", "STTC answers"):
        assert item in truths
    for item in ("emotion (SER)", "style (SSR)", "age (SAP)"):
        assert item in proxies and item not in truths
    for task in ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc"):
        assert f"| {task} (`" in card
    assert "--seed 7" in card and "train" in card and "flite:" in card


def test_events_and_tts_building_blocks():
    rng = np.random.default_rng(0)
    for name in EVENT_GENERATORS:
        clip = make_event(name, rng)
        assert 0.1 < len(clip) / SR < 2.5 and np.isfinite(clip).all() and np.abs(clip).max() > 0.5
    assert set(EVENT_GENERATORS) == set(get_task("ved").label_fields[0].values) - {"other"}
    for voice, engine in (("en-us+f2", "espeak-ng"), ("slt", "flite")):
        wave = synthesize_array("hello there", voice, engine, pitch=70, speed=200, pitch_range="high")
        assert wave.dtype == np.float32 and 0.3 < len(wave) / SR < 3


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="hours"):
        build_corpus(tmp_path / "a", 0, 1)
    with pytest.raises(ConfigError, match="unknown task"):
        build_corpus(tmp_path / "b", 0.01, 1, task_weights={"asr": 1, "nope": 1})
    with pytest.raises(ConfigError, match="engines"):
        build_corpus(tmp_path / "c", 0.01, 1, engines=["festival"])
    with pytest.raises(ConfigError, match="jobs"):
        build_corpus(tmp_path / "d", 0.01, 1, jobs=0)
    assert parse_weights("asr=2, ser") == {"asr": 2.0, "ser": 1.0}
    with pytest.raises(ConfigError, match="bad weight"):
        parse_weights("asr=lots")


def test_card_rebuild_command_plans_the_same_corpus():
    import argparse
    import shlex

    from osum.cli.data import add_parser, parse_weights
    from osum.data.synth.card import rebuild_command

    settings = PlanSettings(
        hours=0.03,
        seed=5,
        test_fraction=0.3,
        flite_split="split",
        flite_share=0.5,
        clean_share=1.0,
        task_weights={"asr": 2, "sgc": 1},
    )
    parser = argparse.ArgumentParser()
    add_parser(parser)
    args = parser.parse_args(shlex.split(rebuild_command(settings))[2:])  # after "osum data"
    again = PlanSettings(
        hours=args.hours,
        seed=args.seed,
        test_fraction=args.test_fraction,
        engines=tuple(args.engines.split(",")),
        task_weights=parse_weights(args.tasks),
        flite_split=args.flite_split,
        flite_share=args.flite_share,
        clean_share=args.clean_share,
    )
    assert plan_corpus(again) == plan_corpus(settings)


def test_clean_share_one_gives_the_same_clips_without_augmentation():
    """``--clean-share 1`` plans the corpus of the default share clip for clip (texts, voices, deliveries and
    labels come from their own random streams), only without acoustic chains: the recipe's clean copy of its test
    split, which measures the labels on unseen voices with and without noise, codecs and reverb. The clips without
    speech draw their kind and chain from one stream, so they stay in place but may be of other kinds."""
    settings = PlanSettings(hours=0.05, seed=3, test_fraction=0.5, task_weights={"sgc": 1, "ser": 1, "asr": 1})
    augmented = {s.key: s for s in plan_corpus(settings)}
    clean = {s.key: s for s in plan_corpus(replace(settings, clean_share=1.0))}
    # a task's budget counts planned seconds, and speed perturbation changes them: the last clip or two may differ
    common = sorted(set(augmented) & set(clean))
    assert len(common) >= 0.9 * max(len(augmented), len(clean))
    speech = [k for k in common if augmented[k].voice is not None]
    assert 0 < len(speech) < len(common)
    assert any(augmented[k].acoustics != AcousticChain() for k in speech)
    assert all(s.acoustics == AcousticChain() for s in clean.values())
    assert [replace(augmented[k], acoustics=AcousticChain()) for k in speech] == [clean[k] for k in speech]
