"""The public test-set preparers (osum.data.corpora) on tiny fake copies laid out like the real releases."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from osum.cli.main import main
from osum.data.corpora import CORPORA, get_corpus, prepare_corpus
from osum.data.corpora.base import join_tokens, make_key
from osum.data.corpora.meld import fix_text
from osum.data.corpora.wenetspeech import JsonStream
from osum.data.manifest import read_manifest
from osum.errors import ConfigError, ManifestError


def audio(path: Path, seconds: float = 0.5, rate: int = 16000, **kwargs: str) -> Path:
    """A short tone at ``path`` (format from the suffix unless given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * rate)) / rate
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * 440 * t)).astype("float32"), rate, **kwargs)
    return path


def text(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode(encoding))
    return path


def by_key(manifest: Path) -> dict:
    return {u.key: u for u in read_manifest(manifest)}


# ---- LibriSpeech -------------------------------------------------------------------------------------


def librispeech(root: Path) -> Path:
    ls = root / "LibriSpeech"
    ch = ls / "test-clean" / "1089" / "134686"
    lines = "1089-134686-0000 HE HOPED THERE WOULD BE STEW\n1089-134686-0001 STUFF IT\n"
    text(ch / "1089-134686.trans.txt", lines)
    audio(ch / "1089-134686-0000.flac", 0.5)
    audio(ch / "1089-134686-0001.flac", 0.25)
    ch2 = ls / "test-clean" / "121" / "121726"
    text(ch2 / "121-121726.trans.txt", "121-121726-0000 ALSO A POPULAR CONTRIVANCE\n")  # its flac is missing
    other = ls / "test-other" / "1688" / "142285"
    text(other / "1688-142285.trans.txt", "1688-142285-0000 THERE'S IRON THEY SAY\n")
    audio(other / "1688-142285-0000.flac")
    return ls


def test_librispeech(tmp_path: Path) -> None:
    ls = librispeech(tmp_path / "data")
    out = tmp_path / "ls.jsonl"
    s = prepare_corpus("LibriSpeech", tmp_path / "data", out)
    assert (s.corpus, s.subset, s.tasks, s.total) == ("librispeech", "test-clean", ("asr",), 2)
    assert s.skipped_by_reason() == {"audio file not found": 1}
    got = by_key(out)
    u = got["librispeech-test-clean-1089-134686-0000"]
    assert (u.task, u.text, u.language, u.speaker) == ("asr", "HE HOPED THERE WOULD BE STEW", "en", "1089")
    assert u.duration == pytest.approx(0.5)
    assert got["librispeech-test-clean-1089-134686-0001"].duration == 0.25
    assert Path(u.audio).is_absolute() and u.audio.endswith("1089-134686-0000.flac")
    assert json.loads(out.read_text().splitlines()[0])["audio"] == u.audio  # written absolute
    assert s.seconds == pytest.approx(0.75)
    # SRC = the LibriSpeech folder or the subset folder itself (whose name picks the subset)
    assert prepare_corpus("librispeech", ls, out, subset="test-other").total == 1
    s2 = prepare_corpus("librispeech", ls / "test-other", out)
    assert s2.subset == "test-other" and list(by_key(out)) == ["librispeech-test-other-1688-142285-0000"]


def test_librispeech_errors(tmp_path: Path) -> None:
    ls = librispeech(tmp_path)
    out = tmp_path / "out.jsonl"
    with pytest.raises(ConfigError, match=r"does not exist.*\n.*LibriSpeech/"):
        prepare_corpus("librispeech", tmp_path / "nowhere", out)
    with pytest.raises(ConfigError, match=r"(?s)dev-clean not found; expected this layout:\n.*trans.txt"):
        prepare_corpus("librispeech", ls, out, subset="dev-clean")
    with pytest.raises(ConfigError, match="unknown subset 'test'.*test-clean"):
        prepare_corpus("librispeech", ls, out, subset="test")
    with pytest.raises(ConfigError, match="no labels for task 'ser'.*asr"):
        prepare_corpus("librispeech", ls, out, task="ser")
    with pytest.raises(ConfigError, match="unknown corpus 'libri'.*librispeech"):
        prepare_corpus("libri", ls, out)
    # A malformed line fails with file:line, and an existing manifest is left as it was (no temp file).
    out.write_text("old\n")
    bad = ls / "test-clean" / "121" / "121726" / "121-121726.trans.txt"
    bad.write_text("121-121726-0000 ALSO A POPULAR CONTRIVANCE\n1089-1-2 WRONG CHAPTER\n")
    with pytest.raises(ManifestError, match=rf"{bad}:2: expected '<121-121726-N> TEXT'"):
        prepare_corpus("librispeech", ls, out)
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "LibriSpeech",
        "out.jsonl",
    ]


# ---- AISHELL-1 and AISHELL-2 -------------------------------------------------------------------------


def aishell1(root: Path) -> Path:
    wav = root / "data_aishell" / "wav"
    text(
        root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt",
        "BAC009S0764W0121 甚至 出现 交易 几乎 停滞 的 情况\nBAC009S0764W0122 一二 线 城市 虽然 也 处于 调整 中\n"
        "BAC009S0901W0400 但 因为 聚集 了 过多 公共 资源\nBAC009S0002W0122 而 对 楼市 成交 抑制 作用 最 大 的 限 购\n"
        "BAC009S0905W0100 我 爱 NBA TV\n",
    )
    for rel in ("S0764/BAC009S0764W0121", "S0764/BAC009S0764W0122", "S0901/BAC009S0901W0400"):
        audio(wav / "test" / f"{rel}.wav")
    audio(wav / "test" / "S0901" / "BAC009S0901W0999.wav")  # no transcript line
    audio(wav / "test" / "S0905" / "BAC009S0905W0100.wav")  # speaker missing from speaker.info
    audio(wav / "train" / "S0002" / "BAC009S0002W0122.wav")
    text(root / "resource_aishell" / "speaker.info", "0002 F\n0764 M\n0901 F\n")
    return root


def test_aishell1(tmp_path: Path) -> None:
    root = aishell1(tmp_path / "aishell")
    out = tmp_path / "a1.jsonl"
    s = prepare_corpus("aishell-1", root, out)
    assert (s.subset, s.counts["asr"], s.skipped_by_reason()) == ("test", 4, {"no transcript": 1})
    got = by_key(out)
    u = got["aishell1-test-BAC009S0764W0121"]
    assert (u.text, u.speaker, u.language, u.duration) == ("甚至出现交易几乎停滞的情况", "S0764", "zh", 0.5)
    assert got["aishell1-test-BAC009S0905W0100"].text == "我爱NBA TV"
    s = prepare_corpus("aishell1", root / "data_aishell", out, task="sgc")  # SRC = data_aishell/ works too
    assert s.labels == {"sgc": {"gender": {"male": 2, "female": 1}}}
    assert s.skipped_by_reason() == {"no transcript": 1, "speaker S0905 not in speaker.info": 1}
    got = by_key(out)
    assert got["aishell1-test-BAC009S0901W0400"].labels == {"gender": "female"}
    assert got["aishell1-test-BAC009S0764W0122"].target() == "一二线城市虽然也处于调整中<male>"
    s = prepare_corpus("aishell1", root, out, subset="train", task="sgc")
    assert s.labels["sgc"] == {"gender": {"female": 1}}


def test_aishell1_errors(tmp_path: Path) -> None:
    root = tmp_path / "a"
    text(root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt", "BAC009S0764W0121 甚至\n")
    (root / "data_aishell" / "wav").mkdir()
    (root / "data_aishell" / "wav" / "S0764.tar.gz").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"(?s)1 \.tar\.gz archives.*extract them first.*tar xzf"):
        prepare_corpus("aishell1", root, tmp_path / "o.jsonl")
    audio(root / "data_aishell" / "wav" / "test" / "S0764" / "BAC009S0764W0121.wav")
    with pytest.raises(ConfigError, match=r"(?s)resource_aishell/speaker.info not found.*_aishell.tgz"):
        prepare_corpus("aishell1", root, tmp_path / "o.jsonl", task="sgc")
    text(root / "resource_aishell" / "speaker.info", "0764 M\n0765\n")
    with pytest.raises(ManifestError, match=r"speaker.info:2: expected '<speaker> <M\|F>'"):
        prepare_corpus("aishell1", root, tmp_path / "o.jsonl", task="sgc")
    with pytest.raises(ConfigError, match=r"data_aishell not found; expected this layout"):
        prepare_corpus("aishell1", tmp_path / "a" / "resource_aishell", tmp_path / "o.jsonl")


def test_aishell2(tmp_path: Path) -> None:
    split = tmp_path / "AISHELL-DEV-TEST-SET" / "iOS" / "test"
    text(
        split / "wav.scp",
        "IT0011W0001\twav/T0011/IT0011W0001.wav\nIT0011W0002\twav/T0011/IT0011W0002.wav\n"
        "IT0012W0001\twav/T0012/IT0012W0001.wav\nIT0012W0002\twav/T0012/IT0012W0002.wav\n"
        "IT0011W0001\twav/T0011/IT0011W0001.wav\n",  # listed twice
    )
    text(split / "trans.txt", "IT0011W0001\t换一首歌\nIT0011W0002\t打开 NBA 直播\nIT0012W0002\t几点了\n")
    for uid in ("T0011/IT0011W0001", "T0011/IT0011W0002", "T0012/IT0012W0001"):
        audio(split / "wav" / f"{uid}.wav")
    out = tmp_path / "a2.jsonl"
    s = prepare_corpus("aishell2", tmp_path, out, subset="iOS-test")
    assert s.subset == "ios-test" and s.total == 2
    assert s.skipped_by_reason() == {"no transcript": 1, "audio file not found": 1, "duplicate key": 1}
    got = by_key(out)
    assert got["aishell2-ios-test-IT0011W0001"].text == "换一首歌"
    assert got["aishell2-ios-test-IT0011W0002"].text == "打开NBA直播"
    assert got["aishell2-ios-test-IT0011W0001"].speaker == "T0011"
    s = prepare_corpus("aishell2", split, out)  # SRC = the split folder: its path names the subset
    assert (s.subset, s.total) == ("ios-test", 2)
    android = split.parent.parent / "Android" / "test"
    text(android / "wav.scp", "AT0011W0001 wav/T0011/AT0011W0001.wav\n")
    text(android / "trans.txt", "AT0011W0001 打开空调\n")
    audio(android / "wav" / "T0011" / "AT0011W0001.wav")
    assert list(by_key(prepare_corpus("aishell2", android, out).manifest)) == [
        "aishell2-android-test-AT0011W0001"
    ]
    with pytest.raises(ConfigError, match=r"one split folder but the subset asked for is 'ios-test'"):
        prepare_corpus("aishell2", android, out, subset="ios-test")
    with pytest.raises(ConfigError, match=r"Mic/dev/wav.scp.*not found; expected this layout"):
        prepare_corpus("aishell2", tmp_path, out, subset="mic-dev")
    text(split / "wav.scp", "IT0011W0001\n")
    with pytest.raises(ManifestError, match=r"wav.scp:1: expected '<utt-id> <wav path>'"):
        prepare_corpus("aishell2", tmp_path / "AISHELL-DEV-TEST-SET", out)


def test_join_tokens_and_keys() -> None:
    assert join_tokens(["我", "爱", "NBA", "TV", "3", "号"]) == "我爱NBA TV 3号"
    assert make_key("esc50", "vocal", "1-100038-A-14.wav") == "esc50-vocal-1-100038-A-14_wav"


# ---- WenetSpeech -------------------------------------------------------------------------------------


def segment(sid: str, begin: float, end: float, words: str, subset: str = "TEST_NET") -> dict:
    return {
        "sid": sid,
        "begin_time": begin,
        "end_time": end,
        "text": words,
        "subsets": [subset],
        "confidence": 1,
    }


def wenetspeech(root: Path) -> Path:
    audio(root / "audio" / "test" / "net" / "TEST_NET_Y0000000000.opus", 3.0, format="OGG", subtype="OPUS")
    first = [
        segment("TEST_NET_Y0000000000_S00000", 0.25, 1.5, "你好"),
        segment("TEST_NET_Y0000000000_S00001", 1.5, 2.75, "世界"),
        segment("X_S1", 0, 1, "开会", "TEST_MEETING"),
        segment("X_S2", 1, 2, "训练", "S"),
    ]
    missing = [segment("Y1_S0", 0, 1, "缺")]  # its audio file is not there
    meta = {
        "dataset": "WenetSpeech",
        "description": 'has "audios" in a string',
        "audios": [
            {"aid": "TEST_NET_Y0", "path": "audio/test/net/TEST_NET_Y0000000000.opus", "segments": first},
            {"aid": "TEST_NET_Y1", "path": "audio/test/net/TEST_NET_Y0000000001.opus", "segments": missing},
        ],
        "version": "1.0",
    }
    text(root / "WenetSpeech.json", json.dumps(meta, ensure_ascii=False, indent=2))
    return root


def test_wenetspeech(tmp_path: Path) -> None:
    root = wenetspeech(tmp_path / "WenetSpeech")
    out = tmp_path / "w.jsonl"
    s = prepare_corpus("wenetspeech", tmp_path, out, subset="TEST-NET")  # SRC = the folder holding it
    assert (s.subset, s.total, s.skipped_by_reason()) == ("test_net", 2, {"audio file not found": 1})
    got = list(read_manifest(out))
    assert [u.key for u in got] == [
        "wenetspeech-test_net-TEST_NET_Y0000000000_S00000",
        "wenetspeech-test_net-TEST_NET_Y0000000000_S00001",
    ]
    assert [(u.start, u.end, u.duration, u.text) for u in got] == [
        (0.25, 1.5, 1.25, "你好"),
        (1.5, 2.75, 1.25, "世界"),
    ]
    assert s.seconds == pytest.approx(2.5)
    assert prepare_corpus("wenetspeech", root, out, subset="test_meeting").total == 1
    assert list(by_key(prepare_corpus("wenetspeech", root, out, subset="train_s").manifest)) == [
        "wenetspeech-train_s-X_S2"
    ]
    # a broken line is reported with its line number
    lines = (root / "WenetSpeech.json").read_text().splitlines()
    n = next(i for i, line in enumerate(lines) if '"世界"' in line)
    lines[n] = lines[n].replace('"世界"', "世界")
    (root / "WenetSpeech.json").write_text("\n".join(lines))
    with pytest.raises(ManifestError, match=rf"WenetSpeech.json:{n + 1}: invalid JSON"):
        prepare_corpus("wenetspeech", root, out)
    with pytest.raises(ConfigError, match=r"WenetSpeech.json not found; expected this layout"):
        prepare_corpus("wenetspeech", tmp_path / "WenetSpeech" / "audio", out)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_json_stream_matches_json_load(chunk: int) -> None:
    doc = {
        "a": [1, {"b": "}]"}],
        "n": 12345.5,
        "audios": [{"x": i * 1.25, "s": "é" * i} for i in range(20)],
        "z": 1,
    }
    raw = json.dumps(doc, indent=1)
    items = list(JsonStream(io.StringIO(raw), "doc.json", chunk=chunk).array_items("audios"))
    assert [v for _, v in items] == doc["audios"]
    first = raw.splitlines().index(' "audios": [')
    assert [line for line, _ in items] == [
        i for i, s in enumerate(raw.splitlines(), 1) if s == "  {" and i > first
    ]
    with pytest.raises(ManifestError, match=r"doc.json:1: the top-level object has no 'audios' array"):
        list(JsonStream(io.StringIO('{"a": 1}'), "doc.json", chunk=chunk).array_items("audios"))


# ---- MELD --------------------------------------------------------------------------------------------

MELD_HEADER = (
    "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
)


def test_meld(tmp_path: Path) -> None:
    raw = tmp_path / "MELD.Raw"
    rows = [
        '1,"Why do all you\u2019re coffee mugs have numbers on the bottom?",Mark,surprise,positive,0,0,3,19,'
        '"00:14:38,127","00:14:40,378"\n',
        "2,Oh. That\u2019s so Monica can keep track.,Rachel,joy,positive,0,1,3,19,0,1\n",
        "3,Yeah.,Ross,sadness,negative,0,2,3,19,0,1\n",
        "4,Hmm.,Joey,boredom,neutral,1,0,3,19,0,1\n",  # not a MELD emotion: shows the skip
        "5,No audio here.,Joey,neutral,neutral,1,1,3,19,0,1\n",
    ]
    text(raw / "test_sent_emo.csv", MELD_HEADER + "".join(rows), encoding="cp1252")
    clips = raw / "output_repeated_splits_test"
    for name in ("dia0_utt0", "dia0_utt1", "dia1_utt0"):
        (clips / f"{name}.mp4").parent.mkdir(parents=True, exist_ok=True)
        (clips / f"{name}.mp4").write_bytes(b"")
    out = tmp_path / "meld.jsonl"
    with pytest.raises(ConfigError, match=r"\.mp4 video clips but no audio.*\n.*ffmpeg .* -ac 1 -ar 16000"):
        prepare_corpus("meld", tmp_path, out)
    audio(clips / "dia0_utt0.wav")
    audio(clips / "dia1_utt0.wav")
    audio(raw / "audio" / "test" / "dia0_utt1.flac")
    audio(raw / "audio" / "test" / "dia0_utt2.mp3")
    s = prepare_corpus("meld", tmp_path, out)
    assert s.labels == {"ser": {"emotion": {"surprise": 1, "happy": 1, "sad": 1}}}
    assert s.skipped_by_reason() == {"emotion 'boredom' has no SER label": 1, "audio file not found": 1}
    got = by_key(out)
    u = got["meld-test-dia0_utt0"]
    assert u.text == "Why do all you're coffee mugs have numbers on the bottom?"
    assert (u.speaker, u.language, dict(u.extra)) == ("Mark", "en", {"sentiment": "positive"})
    assert got["meld-test-dia0_utt1"].audio.endswith("audio/test/dia0_utt1.flac")
    assert got["meld-test-dia0_utt1"].target() == "oh. that's so monica can keep track.<happy>"
    assert got["meld-test-dia0_utt2"].duration is None  # mp3: not read just for its duration
    # a UTF-8 CSV with double-encoded quotes, and a bad row
    text(raw / "dev_sent_emo.csv", MELD_HEADER + "1,Iâ\x80\x99m fine.,Ross,anger,negative,0,0,1,1,0,1\n")
    audio(raw / "dev_splits_complete" / "dia0_utt0.wav")
    prepare_corpus("meld", raw, out, subset="dev")
    assert [(u.text, u.labels["emotion"]) for u in read_manifest(out)] == [("I'm fine.", "anger")]
    text(raw / "dev_sent_emo.csv", MELD_HEADER + "1,Hi,Ross,anger,negative,zero,0,1,1,0,1\n")
    with pytest.raises(ManifestError, match=r"dev_sent_emo.csv:2: Dialogue_ID must be an integer"):
        prepare_corpus("meld", raw, out, subset="dev")
    rows = (
        "1,Hi,Ross,anger,negative,0,0,1,1,0,1,\n2,Oh, no,Ross,fear,x,0,1,0,1,1,1\n"  # a trailing comma is ok
    )
    text(raw / "dev_sent_emo.csv", MELD_HEADER + rows)
    with pytest.raises(ManifestError, match=r"dev_sent_emo.csv:3: expected 11 columns"):
        prepare_corpus("meld", raw, out, subset="dev")
    with pytest.raises(ConfigError, match=r"train_sent_emo.csv not found"):
        prepare_corpus("meld", raw, out, subset="train")


def test_fix_text() -> None:
    assert fix_text("Iâ\x80\x99m") == "I'm" and fix_text("Iâ€™m") == "I'm"
    assert fix_text("caf\xe9 \u2026") == "caf\xe9 ..."


# ---- VocalSound and ESC-50 ---------------------------------------------------------------------------


def test_vocalsound(tmp_path: Path) -> None:
    for name in "f0003_0_cough f0003_1_sniff m0105_0_laughter m0105_1_throatclearing f0200_0_sigh".split():
        audio(tmp_path / "audio_16k" / f"{name}.wav", 0.5)
    audio(tmp_path / "audio_16k" / "notes.wav")
    text(tmp_path / "meta" / "te_meta.csv", "f0003,female,25\nm0105,male,31\n")
    text(tmp_path / "meta" / "tr_meta.csv", "spk_id,gender\nf0200,female\n")
    out = tmp_path / "vs.jsonl"
    s = prepare_corpus("vocalsound", tmp_path, out)
    assert s.labels == {"ved": {"event": {"cough": 1, "other": 1, "laugh": 1, "throat clearing": 1}}}
    assert s.skipped_by_reason() == {"file name is not <speaker>_<n>_<class>.wav": 1}
    got = by_key(out)
    u = got["vocalsound-test-f0003_1_sniff"]
    assert (u.text, u.labels["event"], u.extra["source_label"], u.speaker) == ("", "other", "sniff", "f0003")
    assert got["vocalsound-test-m0105_1_throatclearing"].target() == "<throat clearing>"
    s = prepare_corpus("vocalsound", tmp_path, out, subset="train")
    assert s.labels == {"ved": {"event": {"sigh": 1}}}
    with pytest.raises(ConfigError, match=r"meta/val_meta.csv not found"):
        prepare_corpus("vocalsound", tmp_path, out, subset="val")


def test_esc50(tmp_path: Path) -> None:
    root = tmp_path / "ESC-50-master"
    rows = [
        "1-100032-A-0.wav,1,0,dog,True,100032,A",
        "1-115545-A-26.wav,1,26,laughing,False,115545,A",
        "2-109505-A-24.wav,2,24,coughing,False,109505,A",
        "3-151080-A-20.wav,3,20,crying_baby,True,151080,A",
        "4-156843-A-21.wav,4,21,sneezing,False,156843,A",
        "5-200334-A-23.wav,5,23,breathing,False,200334,A",
    ]
    text(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n" + "\n".join(rows))
    for row in rows[:-2] + rows[-1:]:  # the sneezing clip is missing
        audio(root / "audio" / row.split(",")[0], 0.2, rate=44100)
    out = tmp_path / "esc.jsonl"
    s = prepare_corpus("esc-50", tmp_path, out)
    assert s.labels == {"ved": {"event": {"laugh": 1, "cough": 1, "cry": 1}}}
    assert s.skipped_by_reason() == {"audio file not found": 1}
    u = by_key(out)["esc50-vocal-2-109505-A-24"]
    assert (u.text, dict(u.extra)) == ("", {"source_label": "coughing", "fold": 2})
    assert u.duration == pytest.approx(0.2)
    s = prepare_corpus("esc50", root, out, subset="all")
    assert s.labels["ved"]["event"] == {"other": 2, "laugh": 1, "cough": 1, "cry": 1}
    assert by_key(out)["esc50-all-1-100032-A-0"].extra["source_label"] == "dog"
    text(root / "meta" / "esc50.csv", "filename,fold,target\n1-100032-A-0.wav,1,0\n")
    with pytest.raises(ManifestError, match=r"esc50.csv:1: missing column\(s\) \['category'\]"):
        prepare_corpus("esc50", root, out)


# ---- Kaggle Common Voice -----------------------------------------------------------------------------

CV_HEADER = "filename,text,up_votes,down_votes,age,gender,accent,duration\n"


def commonvoice(root: Path) -> Path:
    rows = [
        "cv-valid-test/sample-000000.mp3,without the dataset the article is useless,1,0,twenties,female,us,",
        "cv-valid-test/sample-000001.mp3,i've got to go to him,1,0,sixties,male,england,",
        "cv-valid-test/sample-000002.mp3,and you know it,2,0,teens,other,,",
        "cv-valid-test/sample-000003.mp3,down below in the darkness,1,0,,,,",
        "cv-valid-test/sample-000004.mp3,this clip was not downloaded,1,0,fourties,male,,",
    ]
    text(root / "cv-valid-test.csv", CV_HEADER + "\n".join(rows) + "\n")
    for i in range(4):  # Kaggle's double nesting
        audio(root / "cv-valid-test" / "cv-valid-test" / f"sample-00000{i}.mp3", 0.3, format="MP3")
    return root


def test_commonvoice(tmp_path: Path) -> None:
    root = commonvoice(tmp_path / "cv")
    out = tmp_path / "cv.jsonl"
    s = prepare_corpus("commonvoice", root, out)  # default task: sgc
    assert s.labels == {"sgc": {"gender": {"female": 1, "male": 1}}}
    reasons = {"audio file not found": 1, "gender 'other' has no SGC label": 1, "no gender label": 1}
    assert s.skipped_by_reason() == reasons
    u = by_key(out)["commonvoice-valid-test-sample-000000"]
    assert (u.text, u.language) == ("without the dataset the article is useless", "en")
    assert u.labels == {"gender": "female"}
    assert u.extra == {"accent": "us"} and u.duration is None
    assert u.audio.endswith("cv-valid-test/cv-valid-test/sample-000000.mp3") and Path(u.audio).is_file()
    s = prepare_corpus("commonvoice", root, out, task="sap")
    assert s.labels == {"sap": {"age": {"adult": 1, "old": 1, "child": 1}}}
    s = prepare_corpus("commonvoice", root, out, task="age_gender,asr")
    assert s.counts == {"age_gender": 2, "asr": 4}
    assert s.skipped_by_reason() == {
        "age_gender: audio file not found": 1,
        "age_gender: gender 'other' has no SGC label": 1,
        "age_gender: no age label": 1,
        "asr: audio file not found": 1,
    }
    got = by_key(out)
    assert got["commonvoice-valid-test-sample-000001-age_gender"].target() == "<old><male>"
    assert got["commonvoice-valid-test-sample-000003-asr"].text == "down below in the darkness"
    assert prepare_corpus("commonvoice", root, out, task="all").tasks == CORPORA["commonvoice"].tasks
    # one level of nesting works too; a subset whose CSV is missing names it
    text(root / "cv-valid-dev.csv", CV_HEADER + "cv-valid-dev/sample-000000.mp3,hello,1,0,thirties,male,,\n")
    audio(root / "cv-valid-dev" / "sample-000000.mp3", 0.3, format="MP3")
    assert prepare_corpus("commonvoice", root, out, subset="valid-dev").total == 1
    with pytest.raises(ConfigError, match=r"cv-other-test.csv.*not found; expected this layout"):
        prepare_corpus("commonvoice", root, out, subset="other-test")


def test_nothing_usable_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cv"
    text(root / "cv-valid-test.csv", CV_HEADER + "cv-valid-test/sample-000000.mp3,hi,1,0,,,,\n")
    audio(root / "cv-valid-test" / "sample-000000.mp3", 0.3, format="MP3")
    out = tmp_path / "cv.jsonl"
    with pytest.raises(ConfigError, match=r"no usable valid-test example for sap.*skipped 1: no age label"):
        prepare_corpus("commonvoice", root, out, task="sap")
    assert not out.exists() and not (tmp_path / "cv.jsonl.tmp").exists()


# ---- registry and CLI --------------------------------------------------------------------------------


def test_registry() -> None:
    names = "librispeech aishell1 aishell2 wenetspeech meld vocalsound esc50 commonvoice"
    assert list(CORPORA) == names.split()
    assert get_corpus("AISHELL_2") is CORPORA["aishell2"] and get_corpus("Common-Voice").name == "commonvoice"
    for c in CORPORA.values():
        assert c.default_subset in c.subsets and c.tasks and "SRC =" in c.layout


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "prepare", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(f"{name}:" in listing for name in CORPORA) and "test-clean*" in listing
    librispeech(tmp_path)
    out = tmp_path / "m" / "ls.jsonl"
    assert main(["data", "prepare", "librispeech", str(tmp_path), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"librispeech test-clean: 2 utterances -> {out}" in printed
    assert "asr: 2" in printed and "skipped 1: audio file not found 1" in printed
    assert len(list(read_manifest(out))) == 2
    root = commonvoice(tmp_path / "cv")
    assert main(["data", "prepare", "commonvoice", str(root), str(out), "--task", "sap", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"sap": 3}
    assert summary["skipped"] == {"audio file not found": 1, "no age label": 1}
    assert main(["data", "prepare", "librispeech", str(tmp_path / "nope"), str(out)]) == 2
    assert "osum data: error: librispeech: SRC" in capsys.readouterr().err
    assert main(["data", "prepare", "librispeech"]) == 2
    assert "needs NAME SRC OUT" in capsys.readouterr().err
    assert main(["data", "prepare", "timit", str(tmp_path), str(out)]) == 2
    assert "unknown corpus 'timit'" in capsys.readouterr().err
