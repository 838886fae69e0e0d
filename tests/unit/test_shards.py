"""Tests of OSUM-compatible tar shards: lossless round trip, OSUM-member fallback, audio, layout and errors."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.manifest import Utterance, detect_format, load_utterance_audio, write_manifest
from osum.data.reader import read_any
from osum.data.shards import read_shards, write_shards
from osum.errors import AudioError, ConfigError, ManifestError
from osum.tasks import Word

SEGMENT_FIELDS = ("audio", "start", "end", "duration", "audio_bytes")  # what a shard changes by design


@pytest.fixture()
def wavs(tmp_path: Path) -> dict[str, Path]:
    """A 2 s 16 kHz mono file and a 1.5 s 22.05 kHz stereo file."""
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    sf.write(a, rng.uniform(-0.5, 0.5, 2 * SAMPLE_RATE).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    sf.write(b, rng.uniform(-0.5, 0.5, (33075, 2)).astype(np.float32), 22050, subtype="FLOAT")
    return {"a": a, "b": b}


def utterances(wavs: dict[str, Path]) -> list[Utterance]:
    a, b = str(wavs["a"]), str(wavs["b"])
    return [
        Utterance("u1", a, "sgc", "Hello World", {"gender": "female"}, language="en", speaker="spk1"),
        Utterance("u2", b, "ssr", "今天的新闻", {"style": "新闻科普", "age": "adult"}, start=0.25, end=1.0),
        Utterance(
            "u3",
            a,
            "srwt",
            "hello world",
            words=(Word("hello", 0.1, 0.5), Word("world", 0.6, 1.0)),
            start=0.5,
        ),
        Utterance(
            "u4", a, "sttc", "今天天气怎么样", answer="晴朗。", extra={"question": "请回答", "n": [1, 2]}
        ),
        Utterance("u5", b, "ser", "so sad", {"emotion": "sad", "gender": "male"}, end=0.5),
        Utterance("u6", a, "age_gender", labels={"age": "child", "gender": "female"}, duration=2.0),
        Utterance("u7", a, "asr", "plain 文本", language="zh"),
    ]


def _without(u: Utterance, names=SEGMENT_FIELDS) -> dict:
    return {f.name: getattr(u, f.name) for f in dataclasses.fields(u) if f.name not in names}


def test_round_trip_is_lossless(wavs, tmp_path):
    utts = utterances(wavs)
    paths = write_shards(utts, tmp_path / "shards", shard_size=3)
    assert [p.name for p in paths] == ["shard_000000.tar", "shard_000001.tar", "shard_000002.tar"]
    listed = (tmp_path / "shards" / "shards.list").read_text(encoding="utf-8").splitlines()
    assert listed == [str(p) for p in paths]
    assert detect_format(tmp_path / "shards" / "shards.list") == "shard_list"

    reader = read_any(tmp_path / "shards" / "shards.list")
    back = list(reader)
    assert reader.skipped == [] and len(back) == len(utts)
    for before, after in zip(utts, back, strict=True):
        assert _without(after) == _without(before)
        assert after.audio == f"{paths[utts.index(before) // 3]}:{before.key}.wav"
        assert after.start is None and after.end is None  # the audio is already cropped
        assert after.duration == load_utterance_audio(before).shape[0] / SAMPLE_RATE
    assert back[1].duration == 0.75 and back[4].duration == 0.5
    # A single tar and the folder (its shards.list) read the same way.
    assert [u.key for u in read_any(paths[0])] == ["u1", "u2", "u3"]
    assert len(list(read_any(tmp_path / "shards"))) == len(utts)


def test_shard_audio_is_the_int16_quantised_segment(wavs, tmp_path):
    utts = utterances(wavs)
    write_shards(utts, tmp_path / "s")
    back = list(read_shards(tmp_path / "s" / "shard_000000.tar"))
    for before, after in zip(utts, back, strict=True):
        source = load_utterance_audio(before)
        expected = torch.clamp(torch.round(source.double() * 32768), -32768, 32767) / 32768
        got = load_utterance_audio(after)
        assert got.dtype == torch.float32 and torch.equal(got.double(), expected)
        info = sf.info(io.BytesIO(after.audio_bytes))
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    # 16 kHz source: the shard holds exactly the cropped samples, quantised.
    full = load_audio(wavs["a"])
    assert torch.equal(
        load_utterance_audio(back[2]).double(), torch.round(full[8000:].double() * 32768) / 32768
    )


def test_members_are_osum_compatible(wavs, tmp_path):
    (path,) = write_shards(utterances(wavs)[:2], tmp_path / "s")
    with tarfile.open(path) as tar:
        names = tar.getnames()
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert names[:9] == [
        f"u1.{s}" for s in ("wav", "txt", "task", "lang", "speaker", "gender", "duration", "osum")
    ] + ["u2.wav"]
    assert members["u1.txt"].decode() == "hello world<female>"
    assert members["u1.task"].decode() == "<TRANSCRIBE> <GENDER>"
    assert members["u2.txt"].decode("utf-8") == "今天的新闻<新闻科普>"  # size in bytes: nothing truncated
    assert members["u2.duration"].decode() == "0.75"
    # OSUM/WeNet group members by the name up to the last dot: exactly one group per utterance.
    groups = []
    for name in names:
        prefix = name[: name.rfind(".")]
        if not groups or groups[-1] != prefix:
            groups.append(prefix)
    assert groups == ["u1", "u2"]


def _strip_osum_records(src: Path, dst: Path) -> None:
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            if not m.name.endswith(".osum"):
                tout.addfile(m, tin.extractfile(m))


def test_fallback_to_osum_members(wavs, tmp_path):
    utts = utterances(wavs)
    (path,) = write_shards(utts, tmp_path / "s")
    _strip_osum_records(path, tmp_path / "osum_only.tar")
    back = list(read_shards(tmp_path / "osum_only.tar"))
    assert [u.target() for u in back] == [u.target() for u in utts]
    assert [u.task for u in back] == [u.task for u in utts]
    assert back[0].text == "hello world" and dict(back[0].labels) == {"gender": "female"}  # text normalised
    assert back[0].language == "en" and back[0].speaker == "spk1"
    assert dict(back[1].labels) == {"style": "新闻科普"}  # age is not in an SSR target
    assert back[2].words == utts[2].words and back[2].text == "hello world"
    assert back[3].answer == "晴朗。" and dict(back[3].extra) == {"question": "请回答", "n": [1, 2]}
    assert dict(back[4].labels) == {"emotion": "sad", "gender": "male"}  # from txt and the .gender member
    assert back[5].text is None and dict(back[5].labels) == {"age": "child", "gender": "female"}
    assert back[6].text == "plain文本"
    assert [u.duration for u in back] == [u.duration for u in read_shards(path)]
    assert torch.equal(load_utterance_audio(back[1]), load_utterance_audio(list(read_shards(path))[1]))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _wav_bytes(seconds: float = 0.2) -> bytes:
    buf = io.BytesIO()
    sf.write(
        buf, np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16), SAMPLE_RATE, format="WAV", subtype="PCM_16"
    )
    return buf.getvalue()


def test_reads_a_shard_written_the_osum_way(tmp_path):
    """What OSUM's make_shard_list_osum.py writes: 'None' for unknown fields, duration 0, JSON extra."""
    path = tmp_path / "osum.tar"
    with tarfile.open(path, "w") as tar:
        for key, txt, task in [("a", "你好<男>", None), ("b", "Good Morning<MALE>", "<TRANSCRIBE> <GENDER>")]:
            _add(tar, f"{key}.txt", txt.encode())
            _add(tar, f"{key}.wav", _wav_bytes())
            for name, value in {
                "task": task,
                "lang": "zh",
                "speaker": "None",
                "emotion": "None",
                "gender": "None",
            }.items():
                if value is not None:
                    _add(tar, f"{key}.{name}", value.encode())
            _add(tar, f"{key}.duration", b"0")
            _add(tar, f"{key}.extra", json.dumps({"question": "说什么"}, ensure_ascii=False).encode())
    a, b = read_shards(path)
    assert (a.task, a.text, dict(a.labels), a.speaker, a.duration) == ("asr", "你好<男>", {}, None, None)
    assert (b.task, b.text, dict(b.labels)) == ("sgc", "Good Morning", {"gender": "male"})
    assert b.language == "zh" and dict(b.extra) == {"question": "说什么"} and b.audio == f"{path}:b.wav"


def test_read_errors_name_the_tar_and_key(tmp_path):
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        _add(tar, "nowav.txt", b"hello")
        _add(tar, "badlabel.wav", _wav_bytes())
        _add(tar, "badlabel.txt", b"hello<robot>")
        _add(tar, "badlabel.task", b"<TRANSCRIBE> <GENDER>")
        _add(tar, "badjson.wav", _wav_bytes())
        _add(tar, "badjson.osum", b"{not json")
        _add(tar, "good.wav", _wav_bytes())
        _add(tar, "good.txt", "好".encode())
    listing = tmp_path / "shards.list"
    listing.write_text(f"{path}\n{tmp_path / 'missing.tar'}\n", encoding="utf-8")
    reader = read_shards(listing, on_error="skip")
    assert [u.key for u in reader] == ["good"]
    where = [w for w, _ in reader.skipped]
    assert where == [f"{path}:nowav", f"{path}:badlabel", f"{path}:badjson", f"{listing}:2"]
    reasons = [r for _, r in reader.skipped]
    assert reasons[0].startswith("no audio member") and "no valid <gender> tag" in reasons[1]
    assert "invalid JSON" in reasons[2] and reasons[3].startswith("shard not found")
    with pytest.raises(ManifestError, match=rf"^{path}:nowav: no audio member"):
        list(read_shards(listing))


def test_corrupt_tar_is_reported(tmp_path):
    path = tmp_path / "cut.tar"
    (path).write_bytes(b"\x00" * 100 + b"garbage" * 50)
    with pytest.raises(ManifestError, match="cannot read the tar"):
        list(read_shards(path))


def test_write_errors_and_skipping(wavs, tmp_path):
    utts = utterances(wavs)[:2]
    gone = Utterance("gone", str(tmp_path / "gone.wav"), "asr", "x")
    dup = dataclasses.replace(utts[0], text="again")
    with pytest.raises(ManifestError, match="duplicate key"):
        write_shards([*utts, dup], tmp_path / "d")
    assert not list((tmp_path / "d").glob("*.tmp"))  # no half-written shard left behind
    with pytest.raises(AudioError, match="gone.wav"):
        write_shards([gone], tmp_path / "e")
    paths = write_shards([utts[0], gone, dup, utts[1]], tmp_path / "f", on_error="skip")
    assert [u.key for u in read_shards(paths[0])] == ["u1", "u2"]
    with pytest.raises(ConfigError, match="shard_size"):
        write_shards(utts, tmp_path / "g", shard_size=0)


def test_shard_utterances_survive_pickling_and_jsonl(wavs, tmp_path):
    import pickle

    (path,) = write_shards(utterances(wavs)[:1], tmp_path / "s")
    (u,) = read_shards(path)
    assert pickle.loads(pickle.dumps(u)) == u
    write_manifest(tmp_path / "m.jsonl", [u])  # metadata only: audio_bytes is not written
    assert "audio_bytes" not in (tmp_path / "m.jsonl").read_text()
