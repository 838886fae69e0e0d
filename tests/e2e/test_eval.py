"""`osum eval` end to end on the synthetic corpus' test split: every output, determinism, resume, OSUM decode files,
other manifest formats and --compare."""

from __future__ import annotations

import json
import shutil

import pytest

from osum.cli.main import main
from osum.data.manifest import read_manifest
from osum.data.osum_raw import write_osum_raw
from osum.data.synth import build_corpus
from osum.evaluation.run import evaluate
from osum.inference.decoding import DecodingOptions

FAST = ["--max-new-tokens", "12", "--batch-size", "4"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    build_corpus(out, 0.03, 1, jobs=2)
    return out


@pytest.fixture(scope="module")
def tiny_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "tiny"
    rc = main(["eval", "--model", "tiny", "--manifest", str(corpus / "test.jsonl"), "--out", str(out), *FAST])
    assert rc == 0
    return out


def lines(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_eval_writes_every_output(corpus, tiny_run):
    utts = list(read_manifest(corpus / "test.jsonl"))
    for name in ("eval.json", "hyps.jsonl", "alignments.jsonl", "metrics.json", "report.md"):
        assert (tiny_run / name).is_file(), name
    hyps = lines(tiny_run / "hyps.jsonl")
    assert [(h["key"], h["task"]) for h in hyps] == [(u.key, u.task) for u in utts]  # each on its own task
    metrics = json.loads((tiny_run / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["tasks"]) == {u.task for u in utts} == {
        "asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc"
    }  # fmt: skip
    assert metrics["model"] == "tiny" and metrics["decoding"]["max_new_tokens"] == 12
    for entry in metrics["tasks"].values():
        assert entry["primary"] in entry["metrics"]
    pngs = {p.name for p in (tiny_run / "plots").glob("*.png")}
    assert "ser_emotion_confusion.png" in pngs and "sgc_gender_confusion.png" in pngs
    report = (tiny_run / "report.md").read_text(encoding="utf-8")
    assert "plots/ser_emotion_confusion.png" in report
    with_transcript = [u for u in utts if u.text is not None or u.words]
    assert len(lines(tiny_run / "alignments.jsonl")) == len(with_transcript)


def test_eval_is_deterministic_and_resumes(corpus, tiny_run, tmp_path):
    import osum

    again = tmp_path / "again"
    model = osum.load("tiny")
    options = DecodingOptions(max_new_tokens=12, batch_size=4)
    # an interrupted run: eval.json written, 5 lines done, the 6th cut in the middle
    again.mkdir()
    shutil.copy(tiny_run / "eval.json", again / "eval.json")
    done = (tiny_run / "hyps.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (again / "hyps.jsonl").write_text("".join(done[:5]) + done[5][:40], encoding="utf-8")
    result = evaluate(corpus / "test.jsonl", again, model=model, options=options)
    assert (result.reused, result.decoded) == (5, len(done) - 5)
    by_id = {(h["key"], h["task"]): h for h in lines(again / "hyps.jsonl")}
    assert by_id == {(h["key"], h["task"]): h for h in lines(tiny_run / "hyps.jsonl")}  # same answers
    first = json.loads((tiny_run / "metrics.json").read_text(encoding="utf-8"))
    assert result.metrics["tasks"] == first["tasks"]
    # a finished run is not decoded again
    assert evaluate(corpus / "test.jsonl", again, model=model, options=options).decoded == 0


def test_eval_refuses_to_mix_settings(corpus, tiny_run, capsys):
    args = ["eval", "--model", "tiny", "--manifest", str(corpus / "test.jsonl"), "--out", str(tiny_run)]
    assert main([*args, "--max-new-tokens", "13", "--batch-size", "4"]) == 2
    err = capsys.readouterr().err
    assert "holds an evaluation with other settings" in err and "--overwrite" in err


def osum_decode_file(utts, path, drop=()):
    """What OSUM's decode script writes: key<TAB>hypothesis; here the references' own targets."""
    path.write_text("".join(f"{u.key}\t{u.target()}\n" for u in utts if u.key not in drop), encoding="utf-8")
    return path


def test_perfect_decode_file_scores_perfectly(corpus, tmp_path):
    utts = list(read_manifest(corpus / "test.jsonl"))
    text = osum_decode_file(utts, tmp_path / "text")
    out = tmp_path / "perfect"
    assert (
        main(
            ["eval", "--decode-file", str(text), "--manifest", str(corpus / "test.jsonl"), "--out", str(out)]
        )
        == 0
    )
    tasks = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["tasks"]
    for name, entry in tasks.items():
        for metric, value in entry["metrics"].items():
            if metric == "aas_ms":
                assert value <= 5.0  # targets write times with 2 decimals: at most 5 ms of rounding
            elif metric in ("wer", "cer") or metric.endswith("_invalid"):
                assert value == 0, (name, metric)
            else:
                assert value == 1, (name, metric)
    # the same data as OSUM raw JSONL, with one hypothesis missing: scored as a failure, not dropped
    raw = tmp_path / "data.list"
    write_osum_raw(raw, utts)
    missing = utts[0]
    text2 = osum_decode_file(utts, tmp_path / "text2", drop={missing.key})
    res = evaluate(raw, tmp_path / "raw", decode_file=text2)
    entry = res.metrics["tasks"][missing.task]
    assert entry["failed"] == 1 and entry["metrics"][entry["primary"]] < 1


def test_compare_prints_one_table(tiny_run, tmp_path, corpus, capsys):
    utts = list(read_manifest(corpus / "test.jsonl"))
    perfect = tmp_path / "perfect"
    evaluate(corpus / "test.jsonl", perfect, decode_file=osum_decode_file(utts, tmp_path / "text"))
    capsys.readouterr()
    assert main(["eval", "--compare", str(tiny_run), str(perfect), "--names", "tiny,oracle"]) == 0
    table = capsys.readouterr().out
    assert "tiny" in table and "oracle" in table and "emotion_accuracy" in table
    assert main(["eval", "--compare", str(tmp_path / "nothing")]) == 2
    assert "osum eval" in capsys.readouterr().err


def test_sttc_judge_through_an_openai_compatible_endpoint(corpus, tmp_path, monkeypatch):
    """A real HTTP endpoint on loopback answers like a chat-completions server; the key never reaches the files."""
    import http.server
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body["model"]))
            reply = {
                "choices": [{"message": {"role": "assistant", "content": '{"score": 7, "reason": "ok"}'}}]
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        utts = [u for u in read_manifest(corpus / "test.jsonl") if u.task == "sttc"]
        text = osum_decode_file(utts, tmp_path / "text")
        monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        args = [
            "eval",
            "--decode-file",
            str(text),
            "--manifest",
            str(corpus / "test.jsonl"),
            "--tasks",
            "sttc",
        ]
        args += ["--out", str(tmp_path / "judged"), "--judge-url", url, "--judge-model", "judge-1"]
        assert main([*args, "--judge-key-env", "JUDGE_KEY"]) == 0
    finally:
        server.shutdown()
    assert len(seen) == len(utts) and all(
        s == ("/v1/chat/completions", "Bearer sk-secret-123", "judge-1") for s in seen
    )
    metrics = json.loads((tmp_path / "judged" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["tasks"]["sttc"]["metrics"]["judge_score"] == 7
    for name in ("metrics.json", "eval.json", "report.md", "hyps.jsonl"):
        assert "sk-secret" not in (tmp_path / "judged" / name).read_text(encoding="utf-8")
