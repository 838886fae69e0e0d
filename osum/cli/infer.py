"""``osum infer --task asr,ser FILE...``: run tasks on audio files; a table or JSON lines on stdout.

Files are read in chunks, so millions of clips stream through with bounded memory. A file that cannot be used is
reported (stderr, and an ``error`` record with ``--json``) and the rest go on; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from osum.cli.common import add_decoding_args, load_model

HELP = "run OSUM tasks on audio files"
CHUNK = 256  # files read and decoded per step


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--model", default="mini", help="checkpoint directory or preset (default: mini)")
    p.add_argument(
        "--task", default="asr", help="comma-separated tasks, e.g. asr,ser,sgc ('all' for every task)"
    )
    p.add_argument("--prompt", help="your own instruction instead of the task's prompt")
    p.add_argument("--json", action="store_true", help="one JSON object per file instead of a table")
    add_decoding_args(p)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy/beam decoding")
    p.add_argument("--seed", type=int, help="seed for --sample")


def _row(path: str, task: str, result) -> str:
    extra = [f"{k}={v}" for k, v in result.labels.items()]
    if result.answer is not None:
        extra.append(f"answer={result.answer}")
    if result.words:
        extra.append(" ".join(f"{w.word}[{w.start:.2f}-{w.end:.2f}]" for w in result.words))
    text = result.transcript if result.transcript is not None else ""
    return f"{path}\t{task}\t{text}\t{' '.join(extra)}"


def run(args: argparse.Namespace) -> int:
    import osum
    from osum.data.audio import load_audio
    from osum.errors import AudioError
    from osum.tasks import parse_task_list

    tasks = [t.name for t in parse_task_list(args.task)]
    options = osum.DecodingOptions(
        max_new_tokens=args.max_new_tokens,
        num_beams=args.beams,
        do_sample=args.sample,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    model = load_model(args)
    failed = 0
    progress = len(args.files) > args.batch_size
    if not args.json:
        print("file\ttask\ttranscript\tlabels")
    for start in range(0, len(args.files), CHUNK):
        paths, waves = [], []
        for path in args.files[start : start + CHUNK]:
            try:
                waves.append(load_audio(path, max_seconds=model.config.max_audio_seconds))
                paths.append(path)
            except AudioError as exc:
                failed += 1
                print(f"osum infer: skipping: {exc}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"file": path, "error": str(exc)}, ensure_ascii=False), flush=True)
        if not waves:
            continue
        results = model.run(
            waves, tasks=tasks, prompt=args.prompt, options=options, sample_rate=16000, progress=progress
        )
        for path, per_task in zip(paths, results, strict=True):
            if args.json:
                record = {
                    "file": path,
                    "model": model.source,
                    "results": {name: r.to_dict() for name, r in per_task.items()},
                }
                print(json.dumps(record, ensure_ascii=False), flush=True)
            else:
                for name, r in per_task.items():
                    print(_row(path, name, r), flush=True)
    return 1 if failed else 0
