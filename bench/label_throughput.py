"""``osum label`` against the loop the original code implies: recordings per second, the paper's 8 tasks each.

    .venv/bin/python bench/label_throughput.py [--model mini] [--clips 16] [--repeats 2] [--ray-workers 2] \
        [--out bench/results/label_throughput.json]

Clips: espeak-ng sentences made here (2-5 s, four voices). The naive loop answers one clip and one task per call
(``model.run([path], tasks=[task])``, batch 1: the audio read and encoded for every task). ``osum label`` runs
:func:`osum.labelling.runner.label_clips` over the same folder (chunks of 32 clips, batch 8, one encoder pass per
clip for all tasks) into a records file. Runs alternate (loop, label, loop, ...); the medians are compared, and
the labels of both must agree. Then (``--processes N``, default 2) ``osum label`` under ``torchrun`` with N
processes of threads/N torch threads each (timed by its summary: from the first clip to the last record, each
process's model loaded before), and (``--ray-workers N``, default 2) the same folder through ``osum label --ray``'s
path on a local Ray instance: N actors with threads/N torch threads each, timed from the call to the last record
(starting the actors and loading a model in each included), against the one-process run. Writes ``{"model",
"clips", "tasks", "seconds": {...}, "recordings_per_second": {...}, "ratio", "same_labels", "torchrun": {...},
"ray": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import osum
from osum.data.tts import synthesize
from osum.labelling.inputs import iter_inputs
from osum.labelling.ray_runner import label_with_ray, start_ray
from osum.labelling.records import RecordFile, model_info, read_records
from osum.labelling.runner import label_clips
from osum.tasks import OSUM_TASKS
from osum.testing.sentences import PLAIN_SENTENCES as SENTENCES

VOICES = ["en-us", "en-gb+f3", "en-us+m4", "en-gb-x-rp+f2"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mini")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--processes", type=int, default=2, help="also time osum label under torchrun (0: skip)")
    p.add_argument("--ray-workers", type=int, default=2, help="also time osum label on local Ray (0: skip)")
    p.add_argument("--out", default="bench/results/label_throughput.json")
    args = p.parse_args()
    model = osum.load(args.model, device="cpu")
    tasks = list(OSUM_TASKS)
    single = osum.DecodingOptions(max_new_tokens=200, batch_size=1)
    batched = osum.DecodingOptions(max_new_tokens=200, batch_size=8)
    info = model_info(model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        folder.mkdir()
        paths = [
            str(
                synthesize(
                    SENTENCES[i % len(SENTENCES)], folder / f"{i:03d}.wav", voice=VOICES[i % len(VOICES)]
                )
            )
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
        run_times, run_labels = [], []
        if args.processes:  # the CLI under torchrun: N processes with threads/N torch threads each
            threads = max(1, torch.get_num_threads() // args.processes)
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
            for repeat in range(args.repeats):
                out = Path(tmp) / f"torchrun{repeat}.jsonl"
                command = [
                    sys.executable,
                    "-m",
                    "torch.distributed.run",
                    f"--nproc_per_node={args.processes}",
                ]
                command += [
                    "-m",
                    "osum.cli.main",
                    "label",
                    str(folder),
                    "--model",
                    args.model,
                    "--out",
                    str(out),
                ]
                command += ["--batch-size", "8", "--max-new-tokens", "200"]
                subprocess.run(command, check=True, env=env, capture_output=True)
                run_times.append(json.loads(Path(f"{out}.summary.json").read_text())["wall_seconds"])
                run_labels = [r["labels"] for r in read_records(out)]
        ray_times, ray_labels = [], []
        if args.ray_workers:  # the same folder on local Ray: decode tasks, one model per actor
            ray = start_ray("local", cpus=os.cpu_count())
            threads = max(1, torch.get_num_threads() // args.ray_workers)
            for repeat in range(args.repeats):
                out = Path(tmp) / f"ray{repeat}.jsonl"
                tic = time.perf_counter()
                with RecordFile(out, resume=False) as sink:
                    label_with_ray(
                        ray,
                        args.model,
                        None,
                        iter_inputs([str(folder)]),
                        tasks,
                        batched,
                        sink,
                        max_seconds=None,
                        workers=args.ray_workers,
                        cpus_per_worker=threads,
                    )
                ray_times.append(time.perf_counter() - tic)
                ray_labels = [r["labels"] for r in read_records(out)]
            ray.shutdown()
    loop_s, label_s = statistics.median(loop_times), statistics.median(label_times)
    agree = sum(la == lb for la, lb in zip(loop_labels, label_labels, strict=True))
    result = {
        "model": model.source,
        "clips": args.clips,
        "tasks": tasks,
        "torch_threads": torch.get_num_threads(),
        "seconds": {
            "naive_loop": [round(t, 2) for t in loop_times],
            "osum_label": [round(t, 2) for t in label_times],
        },
        "recordings_per_second": {
            "naive_loop": round(args.clips / loop_s, 3),
            "osum_label": round(args.clips / label_s, 3),
        },
        "ratio": round(loop_s / label_s, 2),
        "same_labels": f"{agree} of {args.clips} clips",
    }
    if run_times:
        run_s = statistics.median(run_times)
        result["torchrun"] = {
            "processes": args.processes,
            "threads_per_process": max(1, torch.get_num_threads() // args.processes),
            "seconds": run_times,
            "recordings_per_second": round(args.clips / run_s, 3),
            "ratio_to_naive_loop": round(loop_s / run_s, 2),
            "same_labels_as_one_process": f"{sum(a == b for a, b in zip(run_labels, label_labels, strict=True))} "
            f"of {args.clips} clips",
        }
    if ray_times:
        ray_s = statistics.median(ray_times)
        result["ray"] = {
            "workers": args.ray_workers,
            "threads_per_worker": max(1, torch.get_num_threads() // args.ray_workers),
            "seconds": [round(t, 2) for t in ray_times],
            "recordings_per_second": round(args.clips / ray_s, 3),
            "ratio_to_one_process": round(label_s / ray_s, 2),
            "same_labels_as_one_process": f"{sum(a == b for a, b in zip(ray_labels, label_labels, strict=True))} "
            f"of {args.clips} clips",
        }
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
