"""`osum data sttc` (osum/data/sttc_data.py): dialogues become spoken questions with replies; the built-in TTS
and a stub OpenAI-compatible server (speech and chat) stand in for the engines users plug in."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from osum.cli.main import main
from osum.data.audio import SAMPLE_RATE, load_audio
from osum.data.reader import read_any
from osum.data.sttc_data import Voice, answer_endpoint, build_sttc, read_dialogues
from osum.errors import ConfigError
from osum.testing.stub_server import StubHandler, stub_server

DIALOGUES = [
    {"id": "d1", "question": "What is the capital of France?", "answer": "Paris."},
    {"id": "d2", "question": "How many legs does a spider have?"},
    {
        "id": "d3",
        "messages": [
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "Hello, who are you?"},
            {"role": "assistant", "content": "I am a voice assistant."},
            {"role": "user", "content": "Thanks, bye."},
        ],
    },
]


@pytest.fixture
def dialogues(tmp_path):
    path = tmp_path / "dialogues.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in DIALOGUES) + "\n")
    return path


class _Api(StubHandler):
    """/v1/audio/speech: a 24 kHz tone as wav (its length follows the text); /v1/chat/completions: a reply."""

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append((self.path, body))  # type: ignore[attr-defined]
        if self.path.endswith("/audio/speech"):
            t = np.arange(int(24000 * 0.05 * len(body["input"]))) / 24000
            buf = io.BytesIO()
            sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), 24000, format="WAV", subtype="PCM_16")
            payload, kind = buf.getvalue(), "audio/wav"
        else:
            question = body["messages"][-1]["content"]
            reply = "Eight." if "spider" in question else f"You said: {question}"
            payload, kind = (
                json.dumps({"choices": [{"message": {"content": reply}}]}).encode(),
                "application/json",
            )
        self.reply(200, payload, kind)


@pytest.fixture
def api() -> Iterator[tuple[str, ThreadingHTTPServer]]:
    with stub_server(_Api) as served:
        yield served


def test_dialogues_are_read_turn_by_turn(dialogues):
    turns = read_dialogues(dialogues)
    assert [(t.dialogue, t.turn, t.question, t.answer) for t in turns] == [
        ("d1", 0, "What is the capital of France?", "Paris."),
        ("d2", 0, "How many legs does a spider have?", None),
        ("d3", 1, "Hello, who are you?", "I am a voice assistant."),
        ("d3", 3, "Thanks, bye.", None),
    ]


def test_built_in_voices_speak_the_dialogues_replies(dialogues, tmp_path):
    voices = [Voice.parse("espeak-ng:en-us"), Voice.parse("flite:slt")]
    summary = build_sttc(dialogues, tmp_path / "out", voices, progress=False)
    assert summary.clips == 2 and summary.skipped == {"no answer": 2}  # no reply and no endpoint
    records = list(read_any(tmp_path / "out" / "sttc.jsonl"))
    assert [(r.key, r.task, r.text, r.answer) for r in records] == [
        ("d1-0", "sttc", "What is the capital of France?", "Paris."),
        ("d3-1", "sttc", "Hello, who are you?", "I am a voice assistant."),
    ]
    assert [r.extra["voice"] for r in records] == ["espeak-ng:en-us", "flite:slt"]  # in turn
    for r in records:
        info = sf.info(r.audio)
        assert info.samplerate == SAMPLE_RATE and info.duration > 1.0
        assert r.duration == pytest.approx(info.duration, abs=1e-3)


def test_a_speech_endpoint_and_an_answer_endpoint(dialogues, tmp_path, api):
    url, server = api
    voice = Voice.parse(f"speech:{url}#tts-1@alloy")
    assert (voice.url, voice.model, voice.voice) == (url, "tts-1", "alloy")
    summary = build_sttc(
        dialogues, tmp_path / "out", [voice], answer_endpoint(f"{url}#chat-7b"), progress=False
    )
    assert summary.clips == 4 and summary.answers == {"dialogue": 2, "chat:chat-7b": 2}
    records = {r.key: r for r in read_any(tmp_path / "out" / "sttc.jsonl")}
    assert records["d2-0"].answer == "Eight." and records["d3-3"].answer == "You said: Thanks, bye."
    assert records["d1-0"].answer == "Paris."  # the dialogue's own reply is kept
    wave = load_audio(records["d1-0"].audio).numpy()  # resampled from 24 kHz
    assert len(wave) == pytest.approx(0.05 * len("What is the capital of France?") * SAMPLE_RATE, abs=2)
    speech = [b for p, b in server.bodies if p.endswith("/audio/speech")]
    assert speech[0] == {
        "model": "tts-1",
        "input": "What is the capital of France?",
        "voice": "alloy",
        "response_format": "wav",
    }
    replaced = build_sttc(
        dialogues,
        tmp_path / "all",
        [voice],
        answer_endpoint(f"{url}#chat-7b"),
        replace_answers=True,
        progress=False,
    )
    assert replaced.answers == {"chat:chat-7b": 4}


def test_bad_input_is_named(dialogues, tmp_path):
    with pytest.raises(ConfigError, match="unknown engine 'say'"):
        Voice.parse("say:alex")
    with pytest.raises(ConfigError, match="speech:URL#MODEL@VOICE"):
        Voice.parse("speech:http://host/v1#tts-1")
    with pytest.raises(ConfigError, match="URL#MODEL"):
        answer_endpoint("http://host/v1")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "fine"}\n{"text": "no question here"}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:2: give 'question'"):
        read_dialogues(bad)
    with pytest.raises(ConfigError, match="needs an answer endpoint"):
        build_sttc(dialogues, tmp_path / "o", [Voice.parse("espeak-ng:en-us")], replace_answers=True)


def test_cli(dialogues, tmp_path, capsys):
    argv = ["data", "sttc", str(dialogues), str(tmp_path / "o"), "--tts", "espeak-ng:en-us+f3", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 2
    assert main(["data", "sttc", str(dialogues), str(tmp_path / "o"), "--tts", "say:alex"]) == 2
    assert "unknown engine" in capsys.readouterr().err
