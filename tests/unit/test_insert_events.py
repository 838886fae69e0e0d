"""VED clips by insertion (osum/data/insert_events.py, `osum data insert-events`): the event is where the record
says, at the SNR it says, the transcript and word times move with the speech, and bad input is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from osum.cli.main import main
from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.insert_events import InsertSettings, event_bank, insert_events, mix_event
from osum.data.reader import read_any
from osum.data.synth.dsp import active_power
from osum.data.tts import synthesize
from osum.errors import ConfigError
from osum.tasks.base import Word

SENTENCES = ["the orange kite drifted over the harbor", "please call me back tomorrow", "it is raining again"]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """Three espeak-ng sentences as an ASR manifest, the first with word times."""
    folder = tmp_path_factory.mktemp("speech")
    lines = []
    for i, text in enumerate(SENTENCES):
        wav = synthesize(text, folder / f"s{i}.wav")
        record = {"key": f"s{i}", "audio": str(wav), "task": "asr", "text": text, "speaker": "espeak"}
        if i == 0:
            record["task"] = "srwt"
            record["words"] = [
                {"word": "the", "start": 0.1, "end": 0.2},
                {"word": "orange", "start": 0.2, "end": 0.6},
            ]
        lines.append(json.dumps(record))
    lines.append(json.dumps({"key": "silent", "audio": str(folder / "s0.wav"), "task": "asr", "text": ""}))
    (folder / "in.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "in.jsonl"


def test_each_clip_gets_one_event_where_the_record_says(speech, tmp_path):
    summary = insert_events(
        speech, tmp_path / "out", InsertSettings(snr_db=(5.0, 5.0), seed=3), progress=False
    )
    assert summary.clips == 3 and summary.skipped == {"no transcript": 1}
    records = list(read_any(tmp_path / "out" / "ved.jsonl"))
    assert [r.extra["source_key"] for r in records] == ["s0", "s1", "s2"]
    assert len({r.labels["event"] for r in records}) == 3  # the classes in turn
    sources = {f"s{i}": load_audio(str(speech.parent / f"s{i}.wav")).numpy() for i in range(3)}
    for r in records:
        assert (
            r.task == "ved" and r.text == SENTENCES[int(r.extra["source_key"][1])] and r.speaker == "espeak"
        )
        assert r.extra["event"] == r.labels["event"] and r.extra["event_snr_db"] == 5.0
        mixed = load_audio(r.audio).numpy()
        clean = sources[r.extra["source_key"]]
        at = round(r.extra["speech_onset"] * SAMPLE_RATE)
        e0, e1 = (round(r.extra[k] * SAMPLE_RATE) for k in ("event_onset", "event_offset"))
        assert r.duration == pytest.approx(len(mixed) / SAMPLE_RATE, abs=1e-3)
        placed = np.zeros_like(mixed)
        placed[at : at + len(clean)] = clean
        outside = np.ones(len(mixed), bool)
        outside[e0:e1] = False
        scale = float(mixed[outside] @ placed[outside] / (placed[outside] @ placed[outside]))
        assert 0.3 < scale <= 1.0 + 1e-4  # the mixture was at most scaled down as a whole
        residual = mixed - scale * placed
        assert np.abs(residual[outside]).max() < 2e-3  # outside the event: the speech alone (16-bit rounding)
        ratio = 10 * np.log10(active_power(scale * clean) / active_power(residual[e0:e1]))
        assert ratio == pytest.approx(5.0, abs=1.0)
    words = records[0].words
    shift = records[0].extra["speech_onset"]
    assert words == (
        Word("the", round(0.1 + shift, 4), round(0.2 + shift, 4)),
        Word("orange", round(0.2 + shift, 4), round(0.6 + shift, 4)),
    )
    again = insert_events(
        speech, tmp_path / "again", InsertSettings(snr_db=(5.0, 5.0), seed=3), progress=False
    )
    assert again.events == summary.events
    for r in records:  # the same seed: the same files
        name = Path(r.audio).name
        assert np.array_equal(sf.read(tmp_path / "again" / "wavs" / name)[0], sf.read(r.audio)[0])


def test_placements_and_the_mixing_level():
    rng = np.random.default_rng(0)
    speech = 0.1 * rng.standard_normal(16000)
    event = 0.1 * rng.standard_normal(4000)
    for placement, expected_speech, expected_event in [("before", 4000 + 800, 0), ("after", 0, 16000 + 800)]:
        out, s, e = mix_event(speech, event, placement, 10.0, 800, 0.5)
        assert (s, e) == (expected_speech, expected_event) and len(out) == 16000 + 4000 + 800
        assert 10 * np.log10(
            active_power(out[s : s + 16000]) / active_power(out[e : e + 4000])
        ) == pytest.approx(10.0, abs=0.2)
    out, s, e = mix_event(speech, event, "inside", 0.0, 800, 0.5)
    assert s == 0 and e == 6000 and len(out) == 16000
    loud, _, _ = mix_event(speech * 20, event, "inside", -10.0, 0, 0.0)
    assert np.abs(loud).max() == pytest.approx(0.98)


def test_event_recordings_from_a_folder(speech, tmp_path):
    bank = tmp_path / "events"
    for name in ("cough", "throat_clearing"):
        (bank / name).mkdir(parents=True)
        t = np.arange(8000) / SAMPLE_RATE
        sf.write(bank / name / "a.wav", 0.3 * np.sin(2 * np.pi * 300 * t), SAMPLE_RATE)
    assert sorted(event_bank(bank)) == ["cough", "throat clearing"]
    summary = insert_events(
        speech,
        tmp_path / "out",
        InsertSettings(timbre=(1.2, 1.2)),
        events=bank,
        classes=["throat_clearing"],
        progress=False,
    )
    records = list(read_any(tmp_path / "out" / "ved.jsonl"))
    assert summary.events == {"throat clearing": 3}
    assert all(r.extra["event_source"].endswith("throat_clearing/a.wav") for r in records)
    # the 0.5 s event, its spectrum shifted 1.2x: 1/1.2 as long
    assert all(
        r.extra["event_offset"] - r.extra["event_onset"] == pytest.approx(0.5 / 1.2, abs=0.01)
        for r in records
    )
    (bank / "applause").mkdir()
    with pytest.raises(ConfigError, match="'applause' is not a vocal event class"):
        event_bank(bank)
    with pytest.raises(ConfigError, match="does not exist"):
        event_bank(tmp_path / "nowhere")


def test_bad_settings_are_named(speech, tmp_path):
    with pytest.raises(ConfigError, match="placements"):
        InsertSettings(placements=("middle",))
    with pytest.raises(ConfigError, match="timbre"):
        InsertSettings(timbre=(1.2, 1.0))
    with pytest.raises(ConfigError, match=r"event classes \['applause'\]"):
        insert_events(speech, tmp_path / "o", classes=["applause"], progress=False)


def test_cli(speech, tmp_path, capsys):
    assert main(["data", "insert-events", str(speech), str(tmp_path / "o"), "--snr", "3,9", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["clips"] == 3 and summary["skipped"] == {"no transcript": 1}
    assert main(["data", "insert-events", str(speech), str(tmp_path / "o"), "--snr", "3"]) == 2
    assert "--snr: write LOW,HIGH" in capsys.readouterr().err
