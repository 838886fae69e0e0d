"""`osum data agree` (osum/labelling/agreement.py, labellers.py): labels kept where every labeller agrees, with the
rate and confusion table; each kind of labeller on local stand-ins (a stub HTTP server for the chat endpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from osum.cli.main import main
from osum.data.reader import read_any
from osum.errors import ConfigError, OsumError
from osum.labelling.agreement import agree
from osum.labelling.labellers import (
    ChatLabeller,
    FileLabeller,
    ModelLabeller,
    TextClassifierLabeller,
    make_labeller,
    parse_label,
)
from osum.testing.stub_server import StubHandler, stub_server
from osum.testing.tiny import write_toy_corpus
from osum.vocabulary import EMOTION, STYLE

TEXTS = {
    "u0": "what a great day",
    "u1": "i lost my keys again",
    "u2": "the bus leaves at nine",
    "u3": "oh no",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Four toy clips with transcripts (chirps: only the text and keys matter here)."""
    folder = tmp_path_factory.mktemp("agree")
    manifest = write_toy_corpus(folder / "toy", n=4)
    lines = []
    for line in manifest.read_text().splitlines():
        d = json.loads(line)
        d.update(task="asr", text=TEXTS[d["key"]], labels={})
        lines.append(json.dumps(d))
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _files(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a.jsonl"  # our manifest / osum label records: labels.<field>
    a.write_text(
        "\n".join(
            json.dumps({"key": k, "labels": {"emotion": v}})
            for k, v in [("u0", "<happy>"), ("u1", "sad"), ("u2", "neutral"), ("u3", "surprise")]
        )
        + "\n"
    )
    b = tmp_path / "b.tsv"  # key<TAB>label, another spelling
    b.write_text("key\tlabel\nu0\tHappy\nu1\tangry\nu2\tneutral\n")
    return a, b


def test_file_labellers_agree_and_report(corpus, tmp_path):
    a, b = _files(tmp_path)
    report = agree(corpus, tmp_path / "out", "emotion", [FileLabeller(a), FileLabeller(b)])
    assert (report.clips, report.by_all, report.agreed) == (4, 3, 2)
    assert report.labelled == {"file:a.jsonl": 4, "file:b.tsv": 3}
    assert report.agreement_rate == pytest.approx(2 / 3)
    assert report.confusion == {"happy": {"happy": 1}, "neutral": {"neutral": 1}, "sad": {"anger": 1}}
    kept = list(read_any(tmp_path / "out" / "agreed.jsonl"))
    assert [(u.key, u.task, u.labels["emotion"]) for u in kept] == [
        ("u0", "ser", "happy"),
        ("u2", "ser", "neutral"),
    ]
    assert kept[0].text == TEXTS["u0"] and kept[0].extra["labellers"] == {
        "file:a.jsonl": "happy",
        "file:b.tsv": "happy",
    }
    saved = json.loads((tmp_path / "out" / "agreement.json").read_text())
    assert saved["agreed"] == 2 and saved["agreed_labels"] == {"happy": 1, "neutral": 1}
    assert "| sad | 1 | 0 | 0 |" in (tmp_path / "out" / "agreement.md").read_text()


def test_replies_are_read_as_labels_or_none():
    assert parse_label("Happy.", EMOTION) == "happy"
    assert parse_label("The speaker sounds angry to me", EMOTION) == "anger"
    assert parse_label("either sad or happy", EMOTION) is None  # two labels: no guess
    assert parse_label("no idea", EMOTION) is None
    assert parse_label("customer service", STYLE) == "客服"
    assert parse_label("<恐怖故事>", STYLE) == "恐怖故事"


class _Chat(StubHandler):
    replies = {"what a great day": "Happy.", "i lost my keys again": "I would say sad", "oh no": "hmm"}

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        if self.headers.get("Authorization") == "Bearer wrong":
            return self.reply(401)
        text = body["messages"][-1]["content"]
        if text not in self.replies:
            return self.reply(400)
        self.reply(200, json.dumps({"choices": [{"message": {"content": self.replies[text]}}]}).encode())


@pytest.fixture
def chat_url() -> Iterator[tuple[str, ThreadingHTTPServer]]:
    with stub_server(_Chat) as served:
        yield served


def test_a_chat_endpoint_labels_the_transcripts(corpus, chat_url, tmp_path, monkeypatch):
    url, server = chat_url
    labeller = make_labeller(f"chat:{url}#judge-7b")
    assert isinstance(labeller, ChatLabeller) and labeller.name == "chat:judge-7b"
    utterances = list(read_any(corpus))
    assert labeller.label(utterances, EMOTION) == ["happy", "sad", None, None]  # u2: HTTP 400; u3: no label
    first = server.bodies[0]
    assert first["model"] == "judge-7b" and first["temperature"] == 0
    assert "sad, anger, neutral" in first["messages"][0]["content"]
    a, _ = _files(tmp_path)
    report = agree(corpus, tmp_path / "out", "emotion", [FileLabeller(a), labeller])
    assert (report.by_all, report.agreed) == (2, 2)
    with pytest.raises(OsumError, match="every request failed; the last: cannot reach labeller endpoint"):
        make_labeller("chat:http://127.0.0.1:9/v1#m").label(utterances[:1], EMOTION)
    monkeypatch.setenv("OSUM_CHAT_API_KEY", "wrong")
    with pytest.raises(ConfigError, match="labeller endpoint refused the API key"):
        make_labeller(f"chat:{url}#judge-7b").label(utterances, EMOTION)


def test_a_local_text_classifier_and_an_osum_model(corpus, tmp_path):
    """Stand-ins with random weights: a tiny transformers classifier whose classes are HAPPY, Sad and bored (the
    last maps to no emotion), and the tiny osum preset answering SER from the audio."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from osum.model.assets import load_tokenizer

    tokenizer = load_tokenizer("packaged:smollm2-135m")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        id2label={0: "HAPPY", 1: "Sad", 2: "bored"},
        label2id={"HAPPY": 0, "Sad": 1, "bored": 2},
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
    )
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    tokenizer.save_pretrained(tmp_path / "clf")
    utterances = list(read_any(corpus))
    classifier = make_labeller(f"text-classifier:{tmp_path / 'clf'}")
    assert isinstance(classifier, TextClassifierLabeller)
    answers = classifier.label(utterances, EMOTION)
    assert len(answers) == 4 and set(answers) <= {"happy", "sad", None}
    assert classifier.label(utterances, EMOTION) == answers  # deterministic
    model = make_labeller("model:tiny")
    assert isinstance(model, ModelLabeller)
    labels = model.label(utterances, EMOTION)
    assert len(labels) == 4 and set(labels) <= set(EMOTION.values) | {None}


def test_bad_input_is_named(corpus, tmp_path):
    a, _ = _files(tmp_path)
    with pytest.raises(ConfigError, match="write one of"):
        make_labeller("llm:foo")
    with pytest.raises(ConfigError, match="chat:URL#MODEL"):
        make_labeller("chat:http://localhost:8000/v1")
    with pytest.raises(ConfigError, match="does not exist"):
        make_labeller("file:/nowhere.tsv")
    with pytest.raises(ConfigError, match="at least two labellers"):
        agree(corpus, tmp_path / "o", "emotion", [FileLabeller(a)])
    with pytest.raises(ConfigError, match="field 'mood'"):
        agree(corpus, tmp_path / "o", "mood", [FileLabeller(a), FileLabeller(a)])


def test_cli(corpus, tmp_path, capsys):
    a, b = _files(tmp_path)
    argv = ["data", "agree", str(corpus), str(tmp_path / "o"), "--field", "emotion"]
    assert main([*argv, "--labeller", f"file:{a}", "--labeller", f"file:{b}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreed"] == 2
    assert main([*argv, "--labeller", f"file:{a}"]) == 2
    assert "at least two labellers" in capsys.readouterr().err
