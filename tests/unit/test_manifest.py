"""Tests of the manifest record, our JSONL and OSUM's raw JSONL, format detection, errors and segment audio."""

from __future__ import annotations

import dataclasses
import gzip
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.manifest import (
    ManifestIterator,
    Utterance,
    detect_format,
    load_utterance_audio,
    read_manifest,
    utterance_from_dict,
    validate_utterance,
    write_manifest,
)
from osum.data.osum_raw import read_osum_raw, write_osum_raw
from osum.data.reader import read_any
from osum.errors import AudioError, ConfigError, ManifestError
from osum.tasks import Word, get_task


def _noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, size=(n, channels)).astype(np.float32)
    return x[:, 0] if channels == 1 else x


@pytest.fixture()
def wavs(tmp_path: Path) -> dict[str, Path]:
    """A 2 s 16 kHz mono file and a 1.5 s 44.1 kHz stereo file (with a Chinese file name)."""
    a, b = tmp_path / "audio" / "a.wav", tmp_path / "audio" / "语音b.wav"
    a.parent.mkdir()
    sf.write(a, _noise(2 * SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    sf.write(b, _noise(66150, channels=2, seed=1), 44100, subtype="FLOAT")
    return {"a": a, "b": b}


def every_task(wavs: dict[str, Path]) -> list[Utterance]:
    """One utterance per task, with Unicode text, labels, words, answers, segments and extra fields."""
    a, b = str(wavs["a"]), str(wavs["b"])
    return [
        Utterance("asr1", a, "asr", "Hello, World!", language="en", speaker="spk:en-us+f3", duration=2.0),
        Utterance("sgc1", b, "sgc", "你好 世界", {"gender": "female"}, language="zh", start=0.25, end=1.0),
        Utterance("ser1", a, "ser", "I am so happy", {"emotion": "happy", "gender": "male"}, start=0.5),
        Utterance("ssr1", b, "ssr", "今天的新闻", {"style": "新闻科普"}, end=1.2, duration=1.2),
        Utterance("sap1", a, "sap", "old man talking", {"age": "old"}),
        Utterance("ved1", a, "ved", "ahem", {"event": "throat clearing"}),
        Utterance(
            "srwt1", a, "srwt", "hello world", words=(Word("hello", 0.1, 0.5), Word("world", 0.6, 1.04))
        ),
        Utterance(
            "sttc1", a, "sttc", "今天天气怎么样", answer="今天天气晴朗。", extra={"question": "请回答"}
        ),
        Utterance("aag1", a, "asr_age_gender", "a child speaks", {"age": "child", "gender": "female"}),
        Utterance("ag1", b, "age_gender", labels={"age": "adult", "gender": "male"}),
        Utterance(
            "asag1",
            b,
            "asr_style_age_gender",
            "从前有座山",
            {"style": "有声书", "age": "old", "gender": "male"},
        ),
        Utterance(
            "sag1", a, "style_age_gender", labels={"style": "客服", "age": "adult", "gender": "female"}
        ),
    ]


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---- the record --------------------------------------------------------------------------------------


def test_utterance_is_immutable_hashable_and_picklable(wavs):
    u = every_task(wavs)[7]
    assert u.target() == "今天天气怎么样<开始回答>今天天气晴朗。"
    with pytest.raises(TypeError):
        u.extra["question"] = "x"  # read-only mapping
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.key = "other"
    assert len({u, dataclasses.replace(u)}) == 1
    back = pickle.loads(pickle.dumps(u))  # DataLoader workers pickle utterances
    assert back == u and back.extra["question"] == "请回答"
    assert dataclasses.replace(u, audio_bytes=b"xx") != u


def test_to_dict_omits_empty_fields(wavs):
    d = every_task(wavs)[6].to_dict()
    assert set(d) == {"key", "audio", "task", "text", "words"}
    assert d["words"][1] == {"word": "world", "start": 0.6, "end": 1.04}
    assert utterance_from_dict(d) == every_task(wavs)[6]


def test_validation_makes_task_and_labels_canonical(wavs):
    u = Utterance("x", str(wavs["a"]), "<TRANSCRIBE><STYLE>", "hi", {"style": "朗读", "gender": "FEMALE"})
    v = validate_utterance(u)
    assert v.task == "ssr" and dict(v.labels) == {"style": "新闻科普", "gender": "female"}
    assert v.target() == "hi<新闻科普>"


# ---- our JSONL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["manifest.jsonl", "manifest.jsonl.gz"])
def test_jsonl_round_trip_is_exact(wavs, tmp_path, name):
    utts = every_task(wavs)
    path = tmp_path / name
    assert write_manifest(path, utts) == len(utts)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    assert lines[0]["audio"] == "audio/a.wav"  # relative to the manifest's folder
    assert lines[3]["labels"] == {"style": "新闻科普"}  # UTF-8, not \u escapes
    reader = read_manifest(path)
    assert list(reader) == utts  # absolute paths again, every field equal
    assert reader.count == len(utts) and reader.skipped == []
    assert list(read_any(path)) == utts


def test_jsonl_absolute_paths_and_relative_off(wavs, tmp_path):
    elsewhere = tmp_path / "sub" / "m.jsonl"
    write_manifest(elsewhere, every_task(wavs)[:2], relative=False)
    first = json.loads(elsewhere.read_text(encoding="utf-8").splitlines()[0])
    assert first["audio"] == str(wavs["a"])
    assert [u.audio for u in read_manifest(elsewhere)] == [str(wavs["a"]), str(wavs["b"])]


def test_write_manifest_rejects_a_bad_utterance_and_leaves_no_file(wavs, tmp_path):
    utts = every_task(wavs)[:2] + [Utterance("bad", str(wavs["a"]), "sgc", "hi", {"gender": "robot"})]
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: label gender='robot' is not in the vocabulary"):
        write_manifest(tmp_path / "m.jsonl", utts)
    assert not (tmp_path / "m.jsonl").exists() and not (tmp_path / "m.jsonl.tmp").exists()


# ---- OSUM raw JSONL ----------------------------------------------------------------------------------


def test_osum_raw_round_trip(wavs, tmp_path):
    utts = every_task(wavs)
    write_osum_raw(tmp_path / "raw.jsonl", utts)
    raw = [json.loads(line) for line in (tmp_path / "raw.jsonl").read_text(encoding="utf-8").splitlines()]
    assert raw[1] == {
        "key": "sgc1",
        "wav": str(wavs["b"]),
        "txt": "你好世界<female>",
        "task": "<TRANSCRIBE> <GENDER>",
        "lang": "zh",
        "speaker": None,
        "emotion": None,
        "gender": "female",
        "extra": {"duration": 0.75},
        "start": 0.25,
        "end": 1.0,
    }
    assert raw[2]["start"] == 0.5 and raw[2]["end"] == 2.0  # OSUM needs both: the end comes from the header
    assert raw[6]["txt"] == "hello<0.10,0.50> world<0.60,1.04>"
    assert raw[10]["txt"] == "从前有座山<有声书><old><male>"

    back = list(read_osum_raw(tmp_path / "raw.jsonl"))
    assert [u.target() for u in back] == [u.target() for u in utts]
    for before, after in zip(utts, back, strict=True):
        assert after.key == before.key and after.task == before.task and after.audio == before.audio
        assert after.words == before.words and after.answer == before.answer
        assert after.language == before.language and dict(after.extra) == dict(before.extra)
        used = {f.name for f in get_task(before.task).label_fields} | {"gender", "emotion"}
        assert dict(after.labels) == {k: v for k, v in before.labels.items() if k in used}
    assert back[0].text == "hello, world!"  # OSUM's txt is the normalised target: case is lost
    assert back[1].text == "你好世界" and (back[1].start, back[1].end, back[1].duration) == (0.25, 1.0, 0.75)
    assert back[9].text is None  # age_gender has no transcript


def test_read_foreign_osum_raw(wavs, tmp_path):
    lines = [
        {"key": "k1", "wav": "audio/a.wav", "txt": "Hello World<FEMALE>", "task": "<TRANSCRIBE><GENDER>"},
        {"key": "k2", "wav": "audio/a.wav", "txt": "plain asr"},  # no task: ASR, as in OSUM
        {
            "key": "k3",
            "wav": str(wavs["b"]),
            "txt": "欢迎收听<朗读>",
            "task": "<TRANSCRIBE> <STYLE>",
            "lang": "zh",
            "speaker": "None",
            "gender": "None",
            "emotion": "<HAPPY>",
            "extra": {"question": "风格？", "duration": 1.5},
            "corpus": "x",
        },
    ]
    path = _write_lines(tmp_path / "data.list", [json.dumps(d, ensure_ascii=False) for d in lines])
    assert detect_format(path) == "osum_raw"
    got = list(read_any(path, check_audio=False))
    assert [u.task for u in got] == ["sgc", "asr", "ssr"]
    assert got[0].text == "Hello World" and dict(got[0].labels) == {"gender": "female"}
    assert got[0].audio == str(Path.cwd() / "audio/a.wav")  # relative to the current directory, as in OSUM
    assert list(read_osum_raw(path, base_dir=tmp_path))[0].audio == str(wavs["a"])
    assert dict(got[2].labels) == {"style": "新闻科普", "emotion": "happy"}
    assert got[2].speaker is None and got[2].language == "zh" and got[2].duration == 1.5
    assert dict(got[2].extra) == {"question": "风格？", "corpus": "x"}


# ---- errors ------------------------------------------------------------------------------------------


def _bad_manifest(tmp_path: Path, wavs) -> Path:
    a = str(wavs["a"])
    lines = [
        json.dumps({"key": "ok1", "audio": a, "text": "fine"}),
        '{"key": "broken", "audio": ',
        json.dumps({"key": "noaudio", "text": "x"}),
        json.dumps({"key": "badtask", "audio": a, "task": "dance", "text": "x"}),
        json.dumps(
            {"key": "badlabel", "audio": a, "task": "ser", "text": "x", "labels": {"emotion": "bored"}}
        ),
        json.dumps({"key": "missing", "audio": "nowhere.wav", "text": "x"}),
        "",
        json.dumps({"key": "nolabel", "audio": a, "task": "sgc", "text": "x"}),
        json.dumps({"key": "typo", "audio": a, "txt": "x"}),
        json.dumps({"key": "span", "audio": a, "text": "x", "start": 2.0, "end": 1.0}),
        json.dumps({"key": "ok2", "audio": a, "text": "好", "task": "sgc", "labels": {"gender": "male"}}),
        "[1, 2]",
    ]
    return _write_lines(tmp_path / "bad.jsonl", lines)


EXPECTED_ERRORS = [
    (2, "invalid JSON"),
    (3, "missing or empty required field 'audio'"),
    (4, "unknown task 'dance'"),
    (5, "label emotion='bored' is not in the vocabulary"),
    (6, "audio file not found: "),
    (8, "label 'gender' is missing"),
    (9, "unknown field(s) ['txt']"),
    (10, "end (1.0) must be after start (2.0)"),
    (12, "expected a JSON object, got list"),
]


def test_each_bad_record_names_file_and_line(wavs, tmp_path):
    path = _bad_manifest(tmp_path, wavs)
    reader = read_manifest(path, on_error="skip")
    assert [u.key for u in reader] == ["ok1", "ok2"]
    assert [where for where, _ in reader.skipped] == [f"{path}:{n}" for n, _ in EXPECTED_ERRORS]
    for (_, reason), (_, expected) in zip(reader.skipped, EXPECTED_ERRORS, strict=True):
        assert expected in reason
    # Raise mode stops at the first bad line with `file:line:` at the front of the message.
    reader = read_manifest(path)
    assert next(reader).key == "ok1"
    with pytest.raises(ManifestError) as info:
        next(reader)
    assert str(info.value).startswith(f"{path}:2: invalid JSON")
    assert info.value.where == f"{path}:2"
    assert pickle.loads(pickle.dumps(info.value)).where == info.value.where


def test_check_audio_can_be_turned_off(wavs, tmp_path):
    path = _write_lines(tmp_path / "m.jsonl", [json.dumps({"key": "k", "audio": "gone.wav", "text": "x"})])
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: audio file not found"):
        list(read_manifest(path))
    assert [u.audio for u in read_manifest(path, check_audio=False)] == [str(tmp_path / "gone.wav")]


def test_require_target_off_accepts_unlabelled_records(wavs, tmp_path):
    path = _write_lines(
        tmp_path / "m.jsonl", [json.dumps({"key": "k", "audio": str(wavs["a"]), "task": "ser"})]
    )
    with pytest.raises(
        ManifestError, match=r"m\.jsonl:1: no target text: task .ser.: label .emotion. is missing"
    ):
        list(read_manifest(path))
    assert [u.task for u in read_manifest(path, require_target=False)] == ["ser"]


def test_file_level_errors(tmp_path):
    with pytest.raises(ManifestError, match="nothing.jsonl: not found"):
        read_any(tmp_path / "nothing.jsonl")
    with pytest.raises(ConfigError, match="on_error"):
        read_any(tmp_path / "nothing.jsonl", on_error="ignore")
    weird = _write_lines(tmp_path / "w.jsonl", [json.dumps({"id": 1, "path": "x"})])
    with pytest.raises(ManifestError, match=r"w\.jsonl:1: cannot tell the manifest format"):
        read_any(weird)
    assert isinstance(read_any(_write_lines(tmp_path / "empty.jsonl", [])), ManifestIterator)
    assert list(read_any(tmp_path / "empty.jsonl")) == []


def test_osum_raw_errors(wavs, tmp_path):
    a = str(wavs["a"])
    lines = [
        json.dumps({"key": "k1", "wav": a, "txt": "hello<robot>", "task": "<TRANSCRIBE> <GENDER>"}),
        json.dumps({"key": "k2", "wav": a, "txt": "hello", "task": "<SING>"}),
        json.dumps({"key": "k3", "wav": a, "task": "<TRANSCRIBE>", "txt": 5}),
        json.dumps({"key": "k4", "wav": a, "txt": "fine"}),
    ]
    path = _write_lines(tmp_path / "raw.jsonl", lines)
    reader = read_osum_raw(path, on_error="skip")
    assert [u.key for u in reader] == ["k4"]
    reasons = [f"{w}: {r}" for w, r in reader.skipped]
    assert reasons[0].startswith(f"{path}:1: txt 'hello<robot>' has no valid <gender> tag")
    assert reasons[1].startswith(f"{path}:2: unknown task '<SING>'")
    assert reasons[2].startswith(f"{path}:3: missing required field 'txt'")


# ---- audio -------------------------------------------------------------------------------------------


def test_crop_is_sample_exact_at_16k(wavs):
    full = torch.from_numpy(sf.read(wavs["a"], dtype="float32")[0])
    u = Utterance("k", str(wavs["a"]), start=0.25, end=1.0)
    assert torch.equal(load_utterance_audio(u), full[4000:16000])
    assert torch.equal(load_utterance_audio(dataclasses.replace(u, end=None)), full[4000:])
    assert torch.equal(load_utterance_audio(dataclasses.replace(u, start=None, end=0.5)), full[:8000])
    assert torch.equal(load_utterance_audio(Utterance("k", str(wavs["a"]))), full)
    # The same crop from in-memory bytes.
    data = wavs["a"].read_bytes()
    assert torch.equal(load_utterance_audio(dataclasses.replace(u, audio_bytes=data)), full[4000:16000])


def test_crop_of_a_44k_stereo_file_matches_resampling_the_whole_file(wavs):
    full = load_audio(wavs["b"])  # mono mean, resampled to 16 kHz
    assert full.shape[0] == 24000
    for start, end in [(0.25, 1.0), (0.0, 0.3), (0.777, None), (1.2, 1.6)]:
        got = load_utterance_audio(Utterance("k", str(wavs["b"]), start=start, end=end))
        i0, i1 = round(start * SAMPLE_RATE), min(round((end or 9) * SAMPLE_RATE), full.shape[0])
        assert got.shape[0] == i1 - i0  # end past the file is cut to it
        torch.testing.assert_close(got, full[i0:i1], atol=1e-6, rtol=0)


def test_audio_errors(wavs):
    a = str(wavs["a"])
    with pytest.raises(AudioError, match="after the end of the audio"):
        load_utterance_audio(Utterance("k", a, start=3.0, end=4.0))
    with pytest.raises(AudioError, match="longer than the 0.5 s"):
        load_utterance_audio(Utterance("k", a, start=0.0, end=1.0), max_seconds=0.5)
    with pytest.raises(AudioError, match="longer than"):
        load_utterance_audio(Utterance("k", a), max_seconds=1.0)
    with pytest.raises(AudioError, match=r"gone\.wav \(utterance 'k'\): file not found"):
        load_utterance_audio(Utterance("k", "/nowhere/gone.wav", start=0.1))
    with pytest.raises(AudioError, match="cannot read audio"):
        load_utterance_audio(Utterance("k", "x.tar:k.wav", audio_bytes=b"not audio at all"))


def test_the_speech_field_of_a_clip_comes_from_its_transcript_and_event():
    from osum.data.dataset import speech_label

    assert speech_label(Utterance("a", "a.wav", text="hello there")) == "speech"
    assert speech_label(Utterance("b", "b.wav", text="")) == "none"  # silence, noise, tones
    # a vocal event alone: labelled (VED), or only named in extra (the same sound under another task)
    assert speech_label(Utterance("d", "d.wav", task="ved", text="", labels={"event": "cough"})) == "vocal"
    assert speech_label(Utterance("e", "e.wav", task="ser", text="", extra={"event": "laugh"})) == "vocal"
    # an event inside speech is speech; no transcript: unknown
    assert speech_label(Utterance("f", "f.wav", task="ved", text="oh no", labels={"event": "cry"})) == "speech"
    assert speech_label(Utterance("g", "g.wav", labels={"event": "cry"})) is None
