"""``osum infer --task asr,ser FILE|DIR...``: run tasks on audio files; a table or JSON lines.

Files are answered a batch at a time and each record is written (and flushed) as soon as its batch is done, so a
kill loses at most the batch in flight; ``--out FILE --resume`` appends to FILE and skips the files it already
holds. A folder is searched recursively for audio files. A file that cannot be used is reported (stderr, and an
``error`` record with ``--json``) and the rest go on; the exit code is then 1. Audio longer than the model's window
is cut at pauses and answered piece by piece (``segments`` in the record).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from osum.cli.common import add_decoding_args, add_guard_args, decoding_options, load_model
from osum.labelling.inputs import display_name, expand
from osum.labelling.records import cut_torn_line

HELP = "run OSUM tasks on audio files or folders"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files", nargs="+", help="audio files (wav, flac, ogg, mp3, ...) or folders (searched recursively)"
    )
    p.add_argument("--model", default="mini", help="checkpoint directory or preset (default: mini)")
    p.add_argument(
        "--task",
        action="append",
        help="comma-separated tasks, e.g. asr,ser,sgc ('all': the paper's eight); may be repeated "
        "(--task asr --task sgc is asr,sgc); default asr",
    )
    p.add_argument("--prompt", help="your own instruction instead of the task's prompt")
    p.add_argument("--json", action="store_true", help="one JSON object per file instead of a table")
    p.add_argument("--out", help="write the records (JSON lines) to this file instead of stdout")
    p.add_argument(
        "--resume", action="store_true", help="with --out: append, skipping the files already in the file"
    )
    p.add_argument(
        "--max-audio-seconds",
        type=float,
        default=None,
        help="refuse longer files (default: 4 hours; longer than the model's window is cut at pauses)",
    )
    add_decoding_args(p)
    add_guard_args(p)
    p.add_argument("--sample", action="store_true", help="sample instead of greedy/beam decoding")
    p.add_argument("--seed", type=int, help="seed for --sample")


def answered(out: Path) -> set[str]:
    """The files recorded in ``out`` (JSON lines). A torn last line (a kill mid-write) is cut off first."""
    if not out.exists():
        return set()
    cut_torn_line(out)
    data = out.read_bytes()
    done = set()
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            done.add(json.loads(line)["file"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(
                f"osum infer: --resume: {out} line {number} is not an osum infer record ({exc})"
            ) from None
    return done


def _row(path: str, task: str, result) -> str:
    extra = [f"{k}={v}" for k, v in result.labels.items()]
    if result.answer is not None:
        extra.append(f"answer={result.answer}")
    if result.words:
        extra.append(" ".join(f"{w.word}[{w.start:.2f}-{w.end:.2f}]" for w in result.words))
    text = result.transcript if result.transcript is not None else ""
    return f"{path}\t{task}\t{text}\t{' '.join(extra)}"


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from osum.data.audio import load_audio
    from osum.errors import AudioError
    from osum.inference.long_audio import MAX_AUDIO_SECONDS
    from osum.tasks import parse_task_list

    if args.resume and not args.out:
        raise SystemExit("osum infer: --resume needs --out FILE (the records to continue)")
    # every --task given counts (argparse would keep only the last one of a plain option)
    tasks = [t.name for t in parse_task_list(",".join(args.task or ["asr"]))]
    options = decoding_options(args)
    files = list(expand(args.files))
    if not files:
        raise SystemExit(f"osum infer: no audio files in {', '.join(args.files)}")
    sink: TextIO = sys.stdout
    as_json = args.json or bool(args.out)
    if args.out:
        out = Path(args.out)
        done = answered(out) if args.resume else set()
        skipped = len(files)
        files = [f for f in files if display_name(f) not in done]
        skipped -= len(files)
        if skipped:
            print(f"osum infer: --resume: {skipped} files already in {out}", file=sys.stderr)
        out.parent.mkdir(parents=True, exist_ok=True)
        sink = out.open("a" if args.resume else "w", encoding="utf-8")
    model = load_model(args)
    print(
        f"osum infer: {len(files)} files x {len(tasks)} tasks ({', '.join(tasks)}) with {model.source}",
        file=sys.stderr,
    )
    failed = 0
    if not as_json:
        print("file\ttask\ttranscript\tlabels", file=sink, flush=True)
    bar = tqdm(total=len(files), desc="osum infer", unit="file", file=sys.stderr, disable=None)

    def write(record: dict) -> None:
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")

    try:
        for start in range(0, len(files), options.batch_size):
            records: list[dict | None] = []  # in input order; None: answered below
            names, waves = [], []
            for path in files[start : start + options.batch_size]:
                name = display_name(path)
                try:
                    waves.append(
                        load_audio(path, max_seconds=args.max_audio_seconds or MAX_AUDIO_SECONDS, name=name)
                    )
                    names.append(name)
                    records.append(None)
                except (AudioError, OSError) as exc:
                    failed += 1
                    print(f"osum infer: skipping: {exc}", file=sys.stderr)
                    records.append({"file": name, "error": str(exc)})
            answers = iter(
                model.run(waves, tasks=tasks, prompt=args.prompt, options=options, sample_rate=16000)
                if waves
                else []
            )
            found = iter(zip(names, waves, strict=True))
            for record in records:
                if record is not None:
                    if as_json:
                        write(record)
                    continue
                name, wave = next(found)
                per_task = next(answers)
                if as_json:
                    write(
                        {
                            "file": name,
                            "model": model.source,
                            "duration": round(wave.shape[0] / 16000, 3),
                            "results": {task: r.to_dict() for task, r in per_task.items()},
                        }
                    )
                else:
                    for task, r in per_task.items():
                        sink.write(_row(name, task, r) + "\n")
            sink.flush()
            bar.update(len(records))
    finally:
        bar.close()
        if sink is not sys.stdout:
            sink.close()
    return 1 if failed else 0
