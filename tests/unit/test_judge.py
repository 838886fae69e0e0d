"""The STTC judge against a real local HTTP server speaking the chat-completions protocol.

The server decides from the request: score 9 when the answer equals the reference, 2 otherwise, and special
behaviours for marked questions (a 500 or 429 first, always 503, slow, malformed or out-of-range replies, fenced
JSON, prose, an error page echoing the Authorization header). It records every request for inspection.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from osum.errors import ConfigError
from osum.evaluation.judge import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    JudgeConfig,
    Verdict,
    judge_answer,
    judge_answers,
    parse_reply,
    summarize,
)

KEY = "sk-test-SECRET-0123456789"
_SECTIONS = re.compile(
    r"\[Question\]\n(.*?)\n\n\[Reference answer\]\n(.*?)\n\n\[Assistant answer\]\n(.*?)\n\n", re.DOTALL
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, expected_key: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.expected_key = expected_key
        self.requests: list[dict] = []  # {"path", "auth", "body"}
        self.seen: dict[str, int] = {}  # question -> number of requests
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, body: str | dict, headers: dict[str, str] | None = None) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, content: str) -> None:
        self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization")
        srv = self.server
        with srv.lock:
            srv.requests.append({"path": self.path, "auth": auth, "body": body})
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "no such route"}})
        if srv.expected_key is not None and auth != f"Bearer {srv.expected_key}":
            return self._send(401, {"error": {"message": f"invalid key {auth}"}})
        question, reference, answer = _SECTIONS.search(body["messages"][1]["content"]).groups()
        with srv.lock:
            srv.seen[question] = count = srv.seen.get(question, 0) + 1
        if question == "flaky" and count == 1:
            return self._send(500, "internal error")
        if question == "rate limited" and count == 1:
            return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
        if question == "down":
            return self._send(503, "unavailable")
        if question == "echo":
            return self._send(400, f"bad request; you sent Authorization: {auth}")
        if question == "slow":
            time.sleep(0.5)
        if question.startswith("order"):
            time.sleep(0.02 * (10 - int(question.split()[1])))  # early items finish last
        special = {
            "malformed": "I cannot decide.",
            "too high": '{"score": 11, "reason": "excellent"}',
            "fenced": 'Here you go:\n```json\n{"score": 7, "reason": "mostly right"}\n```\nThanks!',
            "prose": "Score: 6/10 - partly correct.",
        }
        if question == "not json":
            return self._send(200, "<html>proxy error</html>")
        if question in special:
            return self._reply(special[question])
        score = 9 if answer == reference else 2
        return self._reply(json.dumps({"score": score, "reason": f"q={question}"}))


def _serve(expected_key: str | None) -> Iterator[_Server]:
    server = _Server(expected_key)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _serve(expected_key=None)


@pytest.fixture
def keyed_server() -> Iterator[_Server]:
    yield from _serve(expected_key=KEY)


def _config(server: _Server, suffix: str = "/v1", **kwargs: object) -> JudgeConfig:
    kwargs = {"timeout": 2.0, "retries": 2, "backoff": 0.0, **kwargs}
    return JudgeConfig(f"http://127.0.0.1:{server.server_address[1]}{suffix}", "judge-model", **kwargs)


def test_scores_and_request_body(server: _Server) -> None:
    cfg = _config(server)
    assert judge_answer(cfg, "capital of France?", "Paris.", "Paris.") == Verdict(9.0, "q=capital of France?")
    assert judge_answer(cfg, "capital of France?", "Paris.", "Berlin.").score == 2.0
    assert len(server.requests) == 2
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] is None  # no key -> no Authorization header at all
    body = req["body"]
    assert body["model"] == "judge-model" and body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == SYSTEM_PROMPT
    user = body["messages"][1]["content"]
    assert "capital of France?" in user and "Paris." in user and '"score"' in user


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "/v1/chat/completions", "/v1/chat/completions/"])
def test_url_forms_reach_the_same_route(server: _Server, suffix: str) -> None:
    assert judge_answer(_config(server, suffix), "q", "a", "a").score == 9.0
    assert server.requests[-1]["path"] == "/v1/chat/completions"


def test_missing_answer_scores_1_without_a_request(server: _Server) -> None:
    cfg = _config(server)
    assert judge_answer(cfg, "q", "ref", None) == Verdict(1.0, "no answer")
    assert judge_answer(cfg, "q", "ref", "  \n").score == 1.0
    assert server.requests == []


def test_retries_on_500_and_429_then_succeeds(server: _Server) -> None:
    cfg = _config(server)
    assert judge_answer(cfg, "flaky", "x", "x").score == 9.0
    assert judge_answer(cfg, "rate limited", "x", "y").score == 2.0
    assert server.seen == {"flaky": 2, "rate limited": 2}


def test_gives_up_after_retries_with_an_error_verdict(server: _Server) -> None:
    v = judge_answer(_config(server, retries=1), "down", "x", "x")
    assert v.score is None and "HTTP 503" in v.error and "2 attempts" in v.error
    assert server.seen["down"] == 2
    v = judge_answer(_config(server, retries=0), "down", "x", "x")
    assert v.score is None and server.seen["down"] == 3


def test_timeout_is_retried_then_reported(server: _Server) -> None:
    start = time.monotonic()
    v = judge_answer(_config(server, timeout=0.1, retries=1), "slow", "x", "x")
    assert v.score is None and "cannot reach" in v.error and "2 attempts" in v.error
    assert server.seen["slow"] == 2 and time.monotonic() - start < 2


def test_connection_refused_is_an_error_verdict() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = JudgeConfig(f"http://127.0.0.1:{port}/v1", "m", timeout=1, retries=1, backoff=0)
    v = judge_answer(cfg, "q", "a", "a")
    assert v.score is None and f"127.0.0.1:{port}" in v.error and "2 attempts" in v.error


def test_unusable_replies_give_error_verdicts(server: _Server) -> None:
    cfg = _config(server)
    malformed = judge_answer(cfg, "malformed", "x", "x")
    assert (
        malformed.score is None and "no score" in malformed.error and "I cannot decide." in malformed.reason
    )
    high = judge_answer(cfg, "too high", "x", "x")
    assert high.score is None and "outside 1-10" in high.error
    page = judge_answer(cfg, "not json", "x", "x")
    assert page.score is None and "no chat completion" in page.error and "proxy error" in page.error
    assert server.seen["malformed"] == 1  # a bad reply is not retried


def test_lenient_reply_parsing(server: _Server) -> None:
    cfg = _config(server)
    assert judge_answer(cfg, "fenced", "x", "x") == Verdict(7.0, "mostly right")
    prose = judge_answer(cfg, "prose", "x", "x")
    assert prose.score == 6.0 and prose.error is None
    assert parse_reply('{"reason": "ok", "score": "8/10"}').score == 8.0
    assert parse_reply('noise {"a": 1} then {"score": 4.5, "reason": "r"} end') == Verdict(4.5, "r")
    assert parse_reply('{"score": 0}').error is not None
    assert parse_reply('{"score": true}').score is None
    assert parse_reply("").score is None


def test_key_is_sent_and_wrong_key_raises(keyed_server: _Server) -> None:
    assert judge_answer(_config(keyed_server, api_key=KEY), "q", "a", "a").score == 9.0
    assert keyed_server.requests[-1]["auth"] == f"Bearer {KEY}"
    with pytest.raises(ConfigError, match=r"refused the API key \(HTTP 401\)") as info:
        judge_answer(_config(keyed_server, api_key="sk-wrong-key"), "q", "a", "a")
    assert "sk-wrong-key" not in str(info.value)
    with pytest.raises(ConfigError, match="requires an API key"):
        judge_answer(_config(keyed_server), "q", "a", "a")
    assert len(keyed_server.requests) == 3  # 401 is not retried


def test_key_never_leaks(keyed_server: _Server) -> None:
    cfg = _config(keyed_server, api_key=KEY, retries=0)
    echoed = judge_answer(cfg, "echo", "a", "a")  # the server quotes our Authorization header in its error
    assert echoed.score is None and "HTTP 400" in echoed.error and "***" in echoed.error
    verdicts = judge_answers(cfg, [("q", "a", "a"), ("echo", "a", "a"), ("down", "a", "a")])
    summary = summarize(cfg, verdicts)
    for text in [repr(cfg), str(cfg), repr(echoed), repr(verdicts), json.dumps(summary)]:
        assert KEY not in text and "SECRET" not in text


def test_wrong_path_raises_config_error(server: _Server) -> None:
    with pytest.raises(ConfigError, match="not found.*HTTP 404"):
        judge_answer(_config(server, "/wrong"), "q", "a", "a")


def test_judge_answers_keeps_input_order_and_summarizes(server: _Server) -> None:
    items = [(f"order {i}", "ref", "ref" if i % 2 == 0 else "other") for i in range(10)]
    items.insert(3, ("order 5", "ref", None))
    items.append(("malformed", "x", "x"))
    cfg = _config(server)
    verdicts = judge_answers(cfg, items, workers=4, progress=True)
    assert [v.reason for v in verdicts[:3]] == ["q=order 0", "q=order 1", "q=order 2"]
    assert verdicts[3] == Verdict(1.0, "no answer")
    assert [v.reason for v in verdicts[4:11]] == [f"q=order {i}" for i in range(3, 10)]
    assert [v.score for v in verdicts[:11]] == [9, 2, 9, 1, 2, 9, 2, 9, 2, 9, 2]
    assert verdicts[11].score is None
    summary = summarize(cfg, verdicts)
    assert summary == {
        "url": f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions",
        "model": "judge-model",
        "mean_score": pytest.approx((5 * 9 + 5 * 2 + 1) / 11),
        "scored": 11,
        "failed": 1,
        "prompt_version": PROMPT_VERSION,
    }
    assert judge_answers(cfg, []) == []
    assert summarize(cfg, [])["mean_score"] is None


def test_judge_answers_stops_on_a_refused_key(keyed_server: _Server) -> None:
    cfg = _config(keyed_server, api_key="sk-wrong")
    with pytest.raises(ConfigError, match="HTTP 401"):
        judge_answers(cfg, [(f"q{i}", "a", "a") for i in range(50)], workers=2)
    assert len(keyed_server.requests) < 50  # the pending requests were cancelled


def test_config_validation() -> None:
    for url in ["ftp://host/v1", "localhost:8000/v1", "http:///v1", "", "host/v1"]:
        with pytest.raises(ConfigError, match="http"):
            JudgeConfig(url, "m")
    with pytest.raises(ConfigError, match="user name or password") as info:
        JudgeConfig("http://me:hunter2@host/v1", "m")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match="model"):
        JudgeConfig("http://host/v1", " ")
    with pytest.raises(ConfigError, match="timeout"):
        JudgeConfig("http://host/v1", "m", timeout=0)
    with pytest.raises(ConfigError, match="retries"):
        JudgeConfig("http://host/v1", "m", retries=-1)
    with pytest.raises(ConfigError, match="workers"):
        judge_answers(JudgeConfig("http://host/v1", "m"), [("q", "a", "a")], workers=0)
    cfg = JudgeConfig("https://api.example.com/v1/?token=abc", "m")
    assert cfg.endpoint == "https://api.example.com/v1/chat/completions?token=abc"
    assert summarize(cfg, [])["url"] == "https://api.example.com/v1/chat/completions"
