"""Pure parts of the server: transcription formats, segments, chat request parsing and task choice."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from osum.serving import chat, formats
from osum.serving.errors import APIError
from osum.tasks import TASKS, Segment, Word, get_task

WORDS = [Word("hello", 0.1, 0.5), Word("there", 0.6, 1.0), Word("again", 2.2, 2.7)]


def test_segments_split_at_pauses_and_length():
    segs = formats.segments("hello there again", WORDS, 3.0)
    assert [(s.start, s.end, s.text) for s in segs] == [(0.1, 1.0, "hello there"), (2.2, 2.7, "again")]
    many = [Word(f"w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(40)]  # 20 s of speech, no pause
    assert all(s.end - s.start <= formats.MAX_SEGMENT for s in formats.segments("", many, 20.0))
    assert formats.segments("你好", [Word("你", 0.0, 0.2), Word("好", 0.2, 0.4)], 1.0)[0].text == "你好"
    assert formats.segments("just text", None, 2.5) == [formats.Segment(0.0, 2.5, "just text")]
    assert formats.segments("", None, 2.5) == []


def test_srt_and_vtt():
    srt = formats.subtitles("", WORDS, 3.0, "srt")
    assert srt == "1\n00:00:00,100 --> 00:00:01,000\nhello there\n\n2\n00:00:02,200 --> 00:00:02,700\nagain\n"
    vtt = formats.subtitles("hi", None, 3661.5, "vtt")
    assert vtt == "WEBVTT\n\n00:00:00.000 --> 01:01:01.500\nhi\n"
    with pytest.raises(ValueError, match="srt or vtt"):
        formats.subtitles("hi", None, 1.0, "ass")


def test_verbose_json_has_no_made_up_scores():
    body = formats.verbose_json("hello there again", WORDS, 3.0, "en", with_words=True)
    assert body["language"] == "english" and body["duration"] == 3.0
    assert body["words"][0] == {"word": "hello", "start": 0.1, "end": 0.5}
    assert "avg_logprob" not in body["segments"][0] and len(body["segments"]) == 2
    assert "words" not in formats.verbose_json("x", None, 1.0, "zh", with_words=False)
    # the model's own scores and a long clip's pieces, when there are any
    asr = get_task("asr")
    result = dataclasses.replace(
        asr.parse("one two"),
        segments=(Segment(0.5, 20.0, "one"), Segment(31.0, 40.0, "two")),
        avg_logprob=-0.25,
        no_speech_prob=0.01,
    )
    body = formats.verbose_json("one two", None, 45.0, "en", with_words=False, result=result)
    assert [(s["start"], s["end"], s["text"]) for s in body["segments"]] == [(0.5, 20.0, "one"), (31.0, 40.0, "two")]
    assert body["segments"][1]["avg_logprob"] == -0.25 and body["segments"][1]["no_speech_prob"] == 0.01
    assert "compression_ratio" not in body["segments"][0]
    srt = formats.subtitles("one two", None, 45.0, "srt", result.segments)
    assert "00:00:31,000 --> 00:00:40,000\ntwo" in srt


def _audio_part(data: bytes = b"RIFF....", fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def test_parse_chat_takes_the_last_user_text_and_the_audio():
    body = {
        "model": "m",
        "max_tokens": 50,
        "messages": [
            {"role": "system", "content": "you are helpful"},
            {"role": "user", "content": [{"type": "text", "text": " ser "}, _audio_part(b"abc")]},
        ],
    }
    req = chat.parse_chat(body)
    assert (req.audio, req.audio_format, req.text, req.max_tokens, req.model) == (
        b"abc",
        "wav",
        "ser",
        50,
        "m",
    )


@pytest.mark.parametrize(
    "body, param, needle",
    [
        ([], None, "JSON object"),
        ({"messages": []}, "messages", "non-empty"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "exactly one input_audio"),
        ({"messages": [{"role": "user", "content": [_audio_part(), _audio_part()]}]}, "messages", "hold 2"),
        ({"messages": [{"role": "user", "content": [_audio_part()]}], "n": 2}, "n", "n=1"),
        (
            {"messages": [{"role": "user", "content": [_audio_part()]}], "max_tokens": 0},
            "max_tokens",
            "positive",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "audio_url", "url": "/etc/passwd"}]}]},
            "messages[0].content[0]",
            "audio_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "/etc/passwd"}}],
                    }
                ]
            },
            "messages[0].content[0].input_audio.data",
            "base64",
        ),
    ],
)
def test_parse_chat_errors_name_the_field(body, param, needle):
    with pytest.raises(APIError) as err:
        chat.parse_chat(body)
    assert err.value.status == 400 and err.value.param == param and needle in err.value.message


def test_unsupported_audio_format_is_415():
    with pytest.raises(APIError) as err:
        chat.parse_chat({"messages": [{"role": "user", "content": [_audio_part(fmt="m4a")]}]})
    assert err.value.status == 415 and "m4a" in err.value.message


def test_resolve_task():
    tasks = list(TASKS.values())
    ser_prompt = get_task("ser").prompt("en")
    assert chat.resolve_task("", None, tasks, True) == (TASKS["asr"], None)
    assert chat.resolve_task("SER", None, tasks, True) == (TASKS["ser"], None)
    assert chat.resolve_task("<TRANSCRIBE><GENDER>", None, tasks, True) == (TASKS["sgc"], None)
    assert chat.resolve_task(ser_prompt, None, tasks, True) == (TASKS["ser"], ser_prompt)
    assert chat.resolve_task(ser_prompt, None, tasks, False) == (TASKS["ser"], None)
    assert chat.resolve_task("tell me a joke", None, tasks, True) == (TASKS["sttc"], "tell me a joke")
    assert chat.resolve_task("say it slowly", "asr", tasks, True) == (TASKS["asr"], "say it slowly")
    with pytest.raises(APIError, match="takes a task, not a free instruction"):
        chat.resolve_task("tell me a joke", None, tasks, False)
    # an explicit task field wins over the text; a task-token model does not read the text
    assert chat.resolve_task("what is said?", "ser", tasks, False) == (TASKS["ser"], None)
    with pytest.raises(APIError, match="cannot do task 'sttc'"):
        chat.resolve_task("sttc", None, [TASKS["asr"]], False)
    with pytest.raises(APIError, match="unknown task 'nope'"):
        chat.resolve_task("", "nope", tasks, True)
