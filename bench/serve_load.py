"""Load test of `osum serve`: C concurrent clients x R transcription requests on loopback -> JSON.

    .venv/bin/python bench/serve_load.py --model mini-stage1 --clients 32 --requests 10 --out bench/results/serve_load.json

Starts the server in this process (uvicorn thread, like the tests), sends held-out espeak-ng clips, and reports
throughput, latency percentiles, status counts, whether every answer equals the clip's answer when sent alone, and
the mean batch size read from /metrics. Run it once per --max-batch-size to see what batching buys.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import soundfile as sf
import urllib3
import uvicorn

import osum
from osum.data.tts import synthesize_array
from osum.serving import ServeSettings, create_app

SENTENCES = (
    "the quick brown fox jumps over the lazy dog",
    "please call your mother and ask her to bring these things",
    "we will meet at the station at nine tomorrow morning",
    "my sister likes green apples and warm bread",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mini-stage1")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=10, help="per client")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument("--max-wait-ms", type=float, default=10.0)
    p.add_argument("--max-queue", type=int, default=64)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    clips = []
    for text in SENTENCES:
        buf = io.BytesIO()
        sf.write(buf, synthesize_array(text, voice="en-us+m3"), 16000, format="WAV", subtype="PCM_16")
        clips.append(buf.getvalue())
    settings = ServeSettings(
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue
    )
    app = create_app(osum.load(args.model, device="cpu"), settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"

    def post(pool: urllib3.PoolManager, k: int) -> tuple[int, str, float]:
        tic = time.perf_counter()
        resp = pool.request(
            "POST",
            f"{url}/v1/audio/transcriptions",
            fields={"file": ("a.wav", clips[k], "audio/wav"), "response_format": "text"},
        )
        return resp.status, resp.data.decode().strip(), time.perf_counter() - tic

    alone_pool = urllib3.PoolManager(retries=False, timeout=600)
    alone = [post(alone_pool, k) for k in range(len(clips))]
    single_latency = statistics.mean(t for _, _, t in alone)
    expected = [text for _, text, _ in alone]

    def user(u: int) -> list[tuple[int, int, str, float]]:
        pool = urllib3.PoolManager(retries=False, timeout=600)
        return [(k, *post(pool, k)) for k in ((u + r) % len(clips) for r in range(args.requests))]

    tic = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as ex:
        answers = [a for part in ex.map(user, range(args.clients)) for a in part]
    wall = time.perf_counter() - tic
    metrics = alone_pool.request("GET", f"{url}/metrics").data.decode()
    values = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("osum_batch_requests_")
    )
    server.should_exit = True
    thread.join(30)

    latencies = sorted(t for *_, t in answers)
    ok = [a for a in answers if a[1] == 200]
    result = {
        "model": args.model,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "settings": {
            "max_batch_size": args.max_batch_size,
            "max_wait_ms": args.max_wait_ms,
            "max_queue": args.max_queue,
        },
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(answers) / wall, 2),
        "latency_seconds": {
            "alone": round(single_latency, 3),
            "p50": round(latencies[len(latencies) // 2], 3),
            "p90": round(latencies[int(len(latencies) * 0.9)], 3),
            "max": round(latencies[-1], 3),
        },
        "status_counts": {
            str(s): sum(1 for a in answers if a[1] == s) for s in sorted({a[1] for a in answers})
        },
        "answers_equal_alone": all(text == expected[k] for k, _, text, _ in ok),
        "mean_batch_requests": round(
            float(values["osum_batch_requests_sum"]) / float(values["osum_batch_requests_count"]), 2
        ),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
