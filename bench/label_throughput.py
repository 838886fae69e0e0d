"""``osum label`` against the loop the original code implies: recordings per second, the paper's 8 tasks each.

    .venv/bin/python bench/label_throughput.py [--model mini] [--clips 16] [--repeats 2] \
        [--out bench/results/label_throughput.json]

Clips: espeak-ng sentences made here (2-5 s, four voices). The naive loop answers one clip and one task per call
(``model.run([path], tasks=[task])``, batch 1: the audio read and encoded for every task). ``osum label`` runs
:func:`osum.labelling.runner.label_clips` over the same folder (chunks of 32 clips, batch 8, one encoder pass per
clip for all tasks) into a records file. Runs alternate (loop, label, loop, ...); the medians are compared, and
the labels of both must agree. Writes ``{"model", "clips", "tasks", "seconds": {...}, "recordings_per_second":
{...}, "ratio", "same_labels"}``.
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
from osum.labelling.inputs import iter_inputs
from osum.labelling.records import RecordFile, read_records
from osum.labelling.runner import label_clips
from osum.tasks import OSUM_TASKS
from osum.testing.sentences import PLAIN_SENTENCES as SENTENCES

VOICES = ["en-us", "en-gb+f3", "en-us+m4", "en-gb-x-rp+f2"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mini")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="bench/results/label_throughput.json")
    args = p.parse_args()
    model = osum.load(args.model, device="cpu")
    tasks = list(OSUM_TASKS)
    single = osum.DecodingOptions(max_new_tokens=200, batch_size=1)
    batched = osum.DecodingOptions(max_new_tokens=200, batch_size=8)
    info = {"id": model.source, "name": model.config.name, "osum": osum.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        paths = [
            str(synthesize(SENTENCES[i % len(SENTENCES)], folder / f"{i:03d}.wav", voice=VOICES[i % len(VOICES)]))
            for i in range(args.clips)
        ]
        model.run(paths[:1], tasks=["asr"], options=single)  # warm-up (lazy loads: detector, transcriber)
        loop_times, label_times = [], []
        loop_labels: list[dict] = []
        label_labels: list[dict] = []
        for repeat in range(args.repeats):
            tic = time.perf_counter()
            loop = [{t: model.run([path], tasks=[t], options=single)[0][t] for t in tasks} for path in paths]
            loop_times.append(time.perf_counter() - tic)
            loop_labels = [{f: v for r in clip.values() for f, v in r.labels.items()} for clip in loop]
            out = Path(tmp) / f"records{repeat}.jsonl"
            tic = time.perf_counter()
            with RecordFile(out, resume=False) as sink:
                label_clips(
                    model, iter_inputs([str(folder)]), tasks, batched, sink, model_info=info, max_seconds=None
                )
            label_times.append(time.perf_counter() - tic)
            label_labels = [r["labels"] for r in read_records(out)]
    loop_s, label_s = statistics.median(loop_times), statistics.median(label_times)
    agree = sum(la == lb for la, lb in zip(loop_labels, label_labels, strict=True))
    result = {
        "model": model.source,
        "clips": args.clips,
        "tasks": tasks,
        "torch_threads": torch.get_num_threads(),
        "seconds": {"naive_loop": [round(t, 2) for t in loop_times], "osum_label": [round(t, 2) for t in label_times]},
        "recordings_per_second": {"naive_loop": round(args.clips / loop_s, 3), "osum_label": round(args.clips / label_s, 3)},
        "ratio": round(loop_s / label_s, 2),
        "same_labels": f"{agree} of {args.clips} clips",
    }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
