"""The paper's eight tasks on the same clips: one call that reads and encodes each clip once for all its tasks,
against the loop the original code implies (one clip, one task at a time; audio read and encoded each time).

    .venv/bin/python bench/tasks_once.py [--model mini] [--clips 8] [--repeats 3] [--out bench/results/tasks_once.json]

Clips: espeak-ng sentences (made here; 2-5 s). Runs alternate (loop, batched, loop, ...) and the medians are
compared; the answers of both must be equal (the batched call changes the speed, never the answers). Writes
``{"model", "clips", "tasks", "seconds": {"per_task_loop": [...], "one_call": [...]}, "ratio", "same_answers"}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import osum
from osum.data.tts import synthesize
from osum.tasks import OSUM_TASKS
from osum.testing.sentences import PLAIN_SENTENCES as SENTENCES

VOICES = ["en-us", "en-gb+f3", "en-us+m4", "en-gb-x-rp+f2"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mini")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/tasks_once.json")
    args = p.parse_args()
    model = osum.load(args.model, device="cpu")
    options = osum.DecodingOptions(max_new_tokens=200, batch_size=8)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            str(synthesize(SENTENCES[i % len(SENTENCES)], Path(tmp) / f"{i}.wav", voice=VOICES[i % len(VOICES)]))
            for i in range(args.clips)
        ]
        model.run(paths[:1], tasks=["asr"], options=options)  # warm-up (lazy loads: detector, transcriber)
        loop_times, call_times = [], []
        loop_answers = call_answers = None
        for _ in range(args.repeats):
            tic = time.perf_counter()
            loop_answers = [
                {t: model.run([path], tasks=[t], options=options)[0][t] for t in OSUM_TASKS} for path in paths
            ]
            loop_times.append(time.perf_counter() - tic)
            tic = time.perf_counter()
            call_answers = model.run(paths, tasks=list(OSUM_TASKS), options=options)
            call_times.append(time.perf_counter() - tic)
    same = loop_answers == call_answers
    result = {
        "model": model.source,
        "clips": args.clips,
        "tasks": list(OSUM_TASKS),
        "threads": torch.get_num_threads(),
        "seconds": {"per_task_loop": loop_times, "one_call": call_times},
        "median_seconds": {"per_task_loop": statistics.median(loop_times), "one_call": statistics.median(call_times)},
        "ratio": statistics.median(loop_times) / statistics.median(call_times),
        "same_answers": same,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
