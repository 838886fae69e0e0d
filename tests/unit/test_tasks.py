"""Task registry, prompts, ASR+X targets and the parser (osum/tasks)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osum.errors import TaskError
from osum.tasks import (
    TASKS,
    PromptTable,
    Task,
    TaskResult,
    Word,
    default_prompts,
    get_task,
    load_prompts,
    normalize_text,
    parse_task_list,
)

EXPECTED_TAGS = {
    "asr": "<TRANSCRIBE>",
    "srwt": "<TRANSCRIBE> <ALIGN>",
    "ved": "<TRANSCRIBE> <CAPTION>",
    "ser": "<TRANSCRIBE> <EMOTION>",
    "ssr": "<TRANSCRIBE> <STYLE>",
    "sgc": "<TRANSCRIBE> <GENDER>",
    "sap": "<TRANSCRIBE> <AGE>",
    "sttc": "<TRANSCRIBE> <S2TCHAT>",
    "asr_age_gender": "<TRANSCRIBE> <AGE> <GENDER>",
    "age_gender": "<AGE> <GENDER>",
    "asr_style_age_gender": "<TRANSCRIBE> <STYLE> <AGE> <GENDER>",
    "style_age_gender": "<STYLE> <AGE> <GENDER>",
}

# Copied by hand from OSUM_REFERENCE.md 3.1 (OSUM conf/prompt_config.yaml): (task, index, text).
OSUM_ZH = [
    (
        "ser",
        0,
        "请将以下音频内容进行转录，并在结尾处给出<情感>标签，情感共分为8类：sad，anger，neutral，happy，"
        "surprise，fear，disgust，以及other。",
    ),
    (
        "asr_age_gender",
        4,
        '请将音频内容转换成文字形式，并在转换后的文字末尾添加"<年龄> <性别>"标签，用以指示说话者的'
        "年龄阶段（child、adult、old）以及性别（female、male）。",
    ),
    (
        "srwt",
        0,
        "请将以下音频进行转录，同时标记出每个英文单词及对应中文字符的起始与结束时间，时间单位精确到0.1秒，"
        "并用<>来表示这些时间范围。",
    ),
    (
        "style_age_gender",
        3,
        "请对以下音频进行分析，识别说话风格、说话者年龄和性别。风格类型有8种，包括新闻科普、恐怖故事、"
        "童话故事、客服、诗歌散文、有声书、日常口语、其他。年龄阶段为child、adult、old三种，性别为MALE或FEMALE。",
    ),
    ("sttc", 0, "首先将语音转录为文字，然后对语音内容进行回复，转录和文字之间使用<开始回答>分割。"),
    ("asr", 4, "执行语音识别任务，将音频转换为文字。"),
]

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "OSUM_REFERENCE.md"

# One full set of labels; each task takes the fields it needs and ignores the rest.
LABELS = {"emotion": "happy", "gender": "female", "age": "adult", "style": "新闻科普", "event": "laugh"}
WORDS = [Word("Hello", 0.2, 0.61), Word("world", 0.7, 1.12)]

TARGETS = {
    "asr": "hello world",
    "srwt": "hello<0.20,0.61> world<0.70,1.12>",
    "ved": "hello world<laugh>",
    "ser": "hello world<happy>",
    "ssr": "hello world<新闻科普>",
    "sgc": "hello world<female>",
    "sap": "hello world<adult>",
    "sttc": "hello world<开始回答>hi there!",
    "asr_age_gender": "hello world<adult><female>",
    "age_gender": "<adult><female>",
    "asr_style_age_gender": "hello world<新闻科普><adult><female>",
    "style_age_gender": "<新闻科普><adult><female>",
}


# ---- registry --------------------------------------------------------------------------------------------


def test_registry_has_exactly_the_twelve_tasks_with_osum_tags():
    assert {name: t.tag for name, t in TASKS.items()} == EXPECTED_TAGS
    assert all(isinstance(t, Task) and t.name == name for name, t in TASKS.items())


def test_registry_is_read_only():
    with pytest.raises(TypeError):
        TASKS["x"] = TASKS["asr"]  # type: ignore[index]


@pytest.mark.parametrize("name,tag", sorted(EXPECTED_TAGS.items()))
def test_get_task_by_name_tag_and_compact_tag(name, tag):
    task = TASKS[name]
    assert get_task(name) is task
    assert get_task(name.upper()) is task
    assert get_task(f"  {name} ") is task
    assert get_task(tag) is task
    assert get_task(tag.replace(" ", "")) is task
    assert get_task(tag.lower()) is task
    assert task.compact_tag == tag.replace(" ", "")


@pytest.mark.parametrize("bad", ["", "nope", "<TRANSCRIBE> <NOPE>", "<GENDER>", "asr,ser"])
def test_get_task_unknown_lists_valid_names(bad):
    with pytest.raises(TaskError) as err:
        get_task(bad)
    for name in EXPECTED_TAGS:
        assert name in str(err.value)


def test_parse_task_list():
    assert [t.name for t in parse_task_list("asr,ser")] == ["asr", "ser"]
    assert [t.name for t in parse_task_list(" SGC , <TRANSCRIBE><AGE>,sgc,")] == ["sgc", "sap"]
    assert [t.name for t in parse_task_list("all")] == list(EXPECTED_TAGS)[:8]  # the paper's eight, not the combined
    with pytest.raises(TaskError, match="empty task list"):
        parse_task_list(" , ")
    with pytest.raises(TaskError, match="unknown task 'bogus'"):
        parse_task_list("asr,bogus")


def test_label_fields_and_has_transcript():
    fields = {name: tuple(f.name for f in t.label_fields) for name, t in TASKS.items()}
    assert fields == {
        "asr": (), "srwt": (), "sttc": (), "ved": ("event",), "ser": ("emotion",), "ssr": ("style",),
        "sgc": ("gender",), "sap": ("age",), "asr_age_gender": ("age", "gender"), "age_gender": ("age", "gender"),
        "asr_style_age_gender": ("style", "age", "gender"), "style_age_gender": ("style", "age", "gender"),
    }  # fmt: skip
    no_transcript = {name for name, t in TASKS.items() if not t.has_transcript}
    assert no_transcript == {"age_gender", "style_age_gender"}


def test_label_vocabularies_match_osum():
    assert TASKS["ser"].label_fields[0].values == (
        "sad", "anger", "neutral", "happy", "surprise", "fear", "disgust", "other")  # fmt: skip
    assert TASKS["sgc"].label_fields[0].values == ("female", "male")
    assert TASKS["sap"].label_fields[0].values == ("child", "adult", "old")
    assert TASKS["ssr"].label_fields[0].values == (
        "新闻科普", "恐怖故事", "童话故事", "客服", "诗歌散文", "有声书", "日常口语", "其他")  # fmt: skip
    assert TASKS["ved"].label_fields[0].values == (
        "laugh", "cough", "cry", "screaming", "sigh", "throat clearing", "sneeze", "other")  # fmt: skip
    style = TASKS["ssr"].label_fields[0]
    assert dict(style.gloss) == {
        "新闻科普": "news_science", "恐怖故事": "horror_story", "童话故事": "fairy_tale", "客服": "customer_service",
        "诗歌散文": "poetry_prose", "有声书": "audiobook", "日常口语": "daily_conversation", "其他": "other",
    }  # fmt: skip


# ---- prompts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_TAGS))
def test_five_english_and_five_chinese_prompts(name):
    prompts = TASKS[name].prompts
    assert set(prompts) == {"en", "zh"}
    assert len(prompts["en"]) == 5 and len(prompts["zh"]) == 5
    assert len(set(prompts["en"])) == 5
    assert all(p.isascii() or "<开始回答>" in p or "<新闻科普>" in p for p in prompts["en"])
    assert all(re.search(r"[\u4e00-\u9fff]", p) for p in prompts["zh"])
    for field in TASKS[name].label_fields:  # English prompts name every label as a tag
        for value in field.values:
            assert all(f"<{value}>" in p for p in prompts["en"]), (name, value)


@pytest.mark.parametrize("name,index,text", OSUM_ZH)
def test_chinese_prompts_are_osum_verbatim(name, index, text):
    assert TASKS[name].prompt("zh", index) == text


@pytest.mark.skipif(not REFERENCE.exists(), reason="OSUM_REFERENCE.md not on this machine")
def test_all_chinese_prompts_match_reference_file():
    section = REFERENCE.read_text(encoding="utf-8").split("### 3.1", 1)[1].split("### 3.2", 1)[0]
    table: dict[str, list[str]] = {}
    tag = None
    for line in section.splitlines():
        if m := re.match(r"^- `([^`]+)`", line):
            tag = m.group(1)
            table[tag] = []
        elif (m := re.match(r"^  \d\. (.*)$", line)) and tag:
            table[tag].append(m.group(1))
    assert len(table) == 12
    for task in TASKS.values():
        assert list(task.prompts["zh"]) == table[task.tag], task.name


def test_prompt_files_carry_attribution():
    from importlib import resources

    for name in TASKS:
        text = resources.files("osum.tasks").joinpath("prompts", f"{name}.yaml").read_text(encoding="utf-8")
        assert "zh prompts: ASLP-lab/OSUM conf/prompt_config.yaml (Apache-2.0)" in text


def test_prompt_selection():
    sgc = TASKS["sgc"]
    assert sgc.prompt() == "Transcribe the audio, then add a gender tag at the end: <female> or <male>."
    assert sgc.prompt("ZH", 2) == "请将音频转录为文本，并在文本结尾处标注<性别>标签，性别为female或male。"
    drawn = [sgc.prompt("zh", None, random.Random(0)) for _ in range(3)]
    assert drawn == [sgc.prompt("zh", None, random.Random(0))] * 3  # same seed, same draw
    rng = random.Random(1)
    seen = {sgc.prompt("en", None, rng) for _ in range(200)}
    assert seen == set(sgc.prompts["en"])  # sampling covers all five
    with pytest.raises(TaskError, match="no prompts in language 'fr'"):
        sgc.prompt("fr")
    with pytest.raises(TaskError, match="out of range"):
        sgc.prompt("en", 5)


def test_prompts_are_immutable():
    prompts = TASKS["ser"].prompts
    with pytest.raises(TypeError):
        prompts["en"] = ("x",)  # type: ignore[index]
    assert isinstance(prompts["en"], tuple)


def test_prompt_table_roundtrip_and_apply(tmp_path):
    table = default_prompts()
    assert set(table.entries) == set(TASKS)
    assert table.get("ser", "zh") == TASKS["ser"].prompts["zh"]
    path = tmp_path / "prompts.yaml"
    table.save(path)
    assert "请将以下音频内容进行转录" in path.read_text(encoding="utf-8")  # Chinese stays readable
    assert load_prompts(path) == table
    assert PromptTable.from_dict(table.to_dict()) == table

    # A checkpoint's own prompt file: keys may be names or OSUM tags; missing languages keep package prompts.
    path.write_text(
        "'<TRANSCRIBE> <GENDER>':\n  en: [Say it and tag <female> or <male>.]\n", encoding="utf-8"
    )
    custom = load_prompts(path)
    sgc = get_task("sgc", prompts=custom)
    assert sgc.prompts["en"] == ("Say it and tag <female> or <male>.",)
    assert sgc.prompts["zh"] == TASKS["sgc"].prompts["zh"]
    assert get_task("ser", prompts=custom) is TASKS["ser"]
    assert TASKS["sgc"].prompt() != sgc.prompt()  # the registry is untouched
    assert sgc.with_prompts({"en": ["A"]}).prompt() == "A"


@pytest.mark.parametrize(
    "content,match",
    [
        ("nope: {en: [a]}\n", "unknown task 'nope'"),
        ("asr: {en: []}\n", "non-empty list"),
        ("asr: [a, b]\n", "mapping"),
        ("asr: {en: [a, 3]}\n", "non-empty string"),
        ("- a\n", "expected a mapping"),
        ("asr: {en: [a\n", "cannot read prompt file"),
    ],
)
def test_load_prompts_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "p.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskError, match=match):
        load_prompts(path)


def test_load_prompts_missing_file(tmp_path):
    with pytest.raises(TaskError, match="missing.yaml"):
        load_prompts(tmp_path / "missing.yaml")


# ---- targets ---------------------------------------------------------------------------------------------


def test_normalize_text():
    assert normalize_text("你 好 World <ADULT> <FEMALE>") == "你好world<adult><female>"
    assert normalize_text("  Hello \t  WORLD  ") == "hello world"
    assert normalize_text("今天 天气 , 很 好 。 OK") == "今天天气,很好。ok"
    assert normalize_text("안녕 하세요") == "안녕 하세요"  # Korean keeps its word spaces
    assert normalize_text("") == ""


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_examples(name):
    target = TASKS[name].target("  Hello   World ", LABELS, words=WORDS, answer="Hi there!")
    assert target == TARGETS[name]
    assert "<|endoftext|>" not in target


def test_target_label_aliases_and_case():
    assert TASKS["sap"].target("x", {"age": "MIDDLE_AGE"}) == "x<adult>"
    assert TASKS["sap"].target("x", {"age": "youth"}) == "x<adult>"
    assert TASKS["ved"].target("x", {"event": "throat_clearing"}) == "x<throat clearing>"
    assert TASKS["ved"].target("x", {"event": "Scream"}) == "x<screaming>"
    assert TASKS["ssr"].target("x", {"style": "audiobook"}) == "x<有声书>"
    assert TASKS["ssr"].target("x", {"style": "武侠评书"}) == "x<有声书>"
    assert TASKS["ssr"].target("x", {"style": "科普百科"}) == "x<新闻科普>"
    assert TASKS["ssr"].target("x", {"style": "Daily Conversation"}) == "x<日常口语>"
    assert TASKS["sgc"].target("你 好", {"gender": "FEMALE"}) == "你好<female>"
    assert (
        TASKS["style_age_gender"].target(None, {"style": "幽默", "age": "old", "gender": "male"})
        == "<其他><old><male>"
    )


def test_target_errors_name_field_and_values():
    with pytest.raises(TaskError, match=r"label 'gender' is missing; valid values: female, male"):
        TASKS["sgc"].target("x", {})
    with pytest.raises(TaskError, match=r"label 'emotion' has unknown value 'bored'.*sad, anger"):
        TASKS["ser"].target("x", {"emotion": "bored"})
    with pytest.raises(TaskError, match="label 'age' is missing"):
        TASKS["asr_age_gender"].target("x", {"gender": "male"})
    with pytest.raises(TaskError, match="needs a transcript"):
        TASKS["asr"].target(None)
    with pytest.raises(TaskError, match="needs an answer"):
        TASKS["sttc"].target("x")
    with pytest.raises(TaskError, match="must not contain <开始回答>"):
        TASKS["sttc"].target("a < 开始回答 > b", answer="c")
    with pytest.raises(TaskError, match="needs words"):
        TASKS["srwt"].target("hello")
    with pytest.raises(TaskError, match=r"words\[0\]"):
        TASKS["srwt"].target(None, words=[Word("two words", 0.0, 1.0)])
    with pytest.raises(TaskError, match="0 <= start <= end"):
        Word("x", 1.0, 0.5)
    with pytest.raises(TaskError, match="0 <= start <= end"):
        Word("x", float("nan"), 0.5)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_nonspeech_example_has_the_empty_target(name):
    # A clip without speech: empty transcript, no labels (no words, no answer) -> "" whatever the task.
    task = TASKS[name]
    for transcript, labels in (("", {}), ("", None), ("  \t ", {}), ("", {"unrelated": "x"})):
        assert task.target(transcript, labels) == ""
        assert task.target(transcript, labels, words=[], answer="") == ""
    assert task.label_values({}) == () and task.label_values(None) == ()
    # ...and the parser reads an empty answer as an empty transcript with no labels.
    r = task.parse("")
    assert r.transcript == ("" if task.has_transcript else None)
    assert dict(r.labels) == {f.name: None for f in task.label_fields}
    assert r.words == (() if name == "srwt" else None) and r.answer is None


def test_nonspeech_does_not_hide_missing_fields_of_speech():
    assert TASKS["ved"].target("", {"event": "Cough"}) == "<cough>"  # a vocal event alone keeps its tag
    assert TASKS["ved"].parse("<cough>").labels["event"] == "cough"
    assert TASKS["ved"].parse("<cough>").transcript == ""
    with pytest.raises(TaskError, match="label 'gender' is missing"):
        TASKS["sgc"].target("hello", {})  # speech still needs its label
    with pytest.raises(TaskError, match="label 'age' is missing"):
        TASKS["asr_age_gender"].target("", {"gender": "male"})  # one label given: all are needed
    with pytest.raises(TaskError, match="needs words"):
        TASKS["srwt"].target("hello")
    with pytest.raises(TaskError, match="needs a transcript"):
        TASKS["asr"].target(None)  # None is "unknown", not "no speech"
    with pytest.raises(TaskError, match="label 'age' is missing"):
        TASKS["age_gender"].target(None, {})
    assert TASKS["sttc"].target("", answer="hi") == "<开始回答>hi"  # an answer makes it a chat example
    assert TASKS["sgc"].is_nonspeech("", {}) and not TASKS["sgc"].is_nonspeech("", {"gender": "male"})
    assert not TASKS["srwt"].is_nonspeech("", words=[Word("x", 0.0, 0.1)])


# ---- parser ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parse_roundtrips_target(name):
    task = TASKS[name]
    result = task.parse(task.target("Hello World", LABELS, words=WORDS, answer="Hi there!"))
    assert isinstance(result, TaskResult) and result.task == name
    assert result.transcript == ("hello world" if task.has_transcript else None)
    assert dict(result.labels) == {f.name: LABELS[f.name] for f in task.label_fields}
    if name == "srwt":
        assert result.words == (Word("hello", 0.2, 0.61), Word("world", 0.7, 1.12))
    else:
        assert result.words is None
    assert result.answer == ("hi there!" if name == "sttc" else None)
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_parse_case_spaces_order_aliases():
    aag = TASKS["asr_age_gender"]
    r = aag.parse("Hello  World < FEMALE >  <Middle_Age> ")
    assert r.transcript == "Hello World"
    assert dict(r.labels) == {"age": "adult", "gender": "female"}
    assert TASKS["ssr"].parse("你好<News_Science>").labels["style"] == "新闻科普"
    assert TASKS["ssr"].parse("你好<散文>").labels["style"] == "诗歌散文"
    assert TASKS["ved"].parse("ha <THROAT CLEARING>").labels["event"] == "throat clearing"
    assert TASKS["ser"].parse("grr<ANGRY>").labels["emotion"] == "anger"
    r = TASKS["sgc"].parse("你<female>好")  # a tag in the middle is still read and cut out
    assert (r.transcript, r.labels["gender"]) == ("你好", "female")
    r = TASKS["sgc"].parse("hi<male><female><male>")  # looping output: the first tag wins
    assert (r.transcript, r.labels["gender"]) == ("hi", "male")


def test_parse_unknown_or_missing_tags_are_none():
    r = TASKS["ser"].parse("hello <bored>")
    assert r.labels == {"emotion": None}
    assert r.transcript == "hello <bored>"  # unknown tags are kept as text
    assert TASKS["sgc"].parse("hello world").labels == {"gender": None}
    assert TASKS["sgc"].parse("hello <female").labels == {"gender": None}
    r = TASKS["asr_style_age_gender"].parse("x<有声书><male>")
    assert dict(r.labels) == {"style": "有声书", "age": None, "gender": "male"}
    assert TASKS["age_gender"].parse("").labels == {"age": None, "gender": None}
    assert TASKS["age_gender"].parse("").transcript is None
    assert TASKS["asr"].parse("hello <female>").transcript == "hello <female>"  # ASR has no label tags


def test_parse_srwt_is_lenient():
    srwt = TASKS["srwt"]
    r = srwt.parse("hello< 0.2 , 0.61 >world<0.7，1.12> foo <3,1> bar baz<1.5,2>")
    assert r.transcript == "hello world foo bar baz"
    assert r.words == (Word("hello", 0.2, 0.61), Word("world", 0.7, 1.12), Word("baz", 1.5, 2.0))
    r = srwt.parse("你<0.00,0.21> 好<0.21,0.40>")
    assert r.transcript == "你好"
    assert [w.word for w in r.words] == ["你", "好"]
    assert srwt.parse("no spans at all").words == ()
    assert srwt.parse("<1,2> x<9" + "9" * 400 + ",1e3>").transcript == "x<9" + "9" * 400 + ",1e3>"


def test_parse_sttc():
    sttc = TASKS["sttc"]
    r = sttc.parse("今天天气怎么样 < 开始回答 > 今天是晴天。")
    assert (r.transcript, r.answer) == ("今天天气怎么样", "今天是晴天。")
    r = sttc.parse("no separator here")
    assert (r.transcript, r.answer) == ("no separator here", None)
    assert sttc.parse("a<开始回答>b<开始回答>c").answer == "b<开始回答>c"


GARBAGE = [
    "",
    "<",
    ">",
    "<<>>",
    "<<female>",
    "<开始回答",
    "<1,2>",
    "<0.5,>",
    "\x00\ud7ff",
    "\u3000" * 5,
    "🙂<🙂>",
]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_parse_garbage_never_raises(name):
    task = TASKS[name]
    rng = random.Random(name)
    alphabet = "<>,.0123456789 -\t\n_abcFEMALEmale开始回答新闻科普你好\u3000\U00020000"
    samples = GARBAGE + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(60))) for _ in range(300)]
    for text in samples:
        _check_result(task, task.parse(text), text)
    _check_result(task, task.parse(None), "")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(TASKS)), text=st.text())
def test_parse_any_unicode_never_raises(name, text):
    _check_result(TASKS[name], TASKS[name].parse(text), text)


def _check_result(task: Task, result: TaskResult, raw: str) -> None:
    assert result.raw == raw
    assert set(result.labels) == {f.name for f in task.label_fields}
    for f in task.label_fields:
        assert result.labels[f.name] is None or result.labels[f.name] in f.values
    assert (result.transcript is None) == (not task.has_transcript)
    assert (result.words is None) == (task.name != "srwt")
    json.dumps(result.to_dict())


_TEXT = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(set(TASKS) - {"srwt"})), transcript=_TEXT, answer=_TEXT, data=st.data())
def test_target_parse_roundtrip_property(name, transcript, answer, data):
    task = TASKS[name]
    labels = {f.name: data.draw(st.sampled_from(f.values)) for f in task.label_fields}
    if name == "sttc" and not answer.strip():
        answer = "ok"
    result = task.parse(task.target(transcript, labels, answer=answer))
    assert dict(result.labels) == labels
    if task.has_transcript:
        assert result.transcript == normalize_text(transcript)
    if name == "sttc":
        assert result.answer == normalize_text(answer)


_TOKEN = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")),
                 min_size=1, max_size=6).filter(lambda s: not any(c.isspace() for c in s))  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_TOKEN, st.floats(0, 1000), st.floats(0, 100)), min_size=1, max_size=8))
def test_srwt_roundtrip_property(items):
    words = [Word(w, start, start + dur) for w, start, dur in items]
    result = TASKS["srwt"].parse(TASKS["srwt"].target(None, words=words))
    assert [w.word for w in result.words] == [normalize_text(w.word) for w in words]
    for got, want in zip(result.words, words, strict=True):
        assert got.start == pytest.approx(want.start, abs=0.0051)
        assert got.end == pytest.approx(want.end, abs=0.0051)


def test_normalize_text_is_idempotent():
    rng = random.Random(0)
    alphabet = "aB 你好。<>\t,Ｚ"
    for _ in range(500):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(20)))
        assert normalize_text(normalize_text(s)) == normalize_text(s)
