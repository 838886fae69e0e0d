"""``osum label INPUT... --out RECORDS.jsonl``: label a corpus with every task, one record per recording, resumable.

INPUT: audio files, folders (searched recursively), manifests (ours, OSUM raw JSONL, Lhotse) or OSUM tar shards.
Records are appended a chunk at a time (flushed and synced): after a kill, the same command with ``--resume``
labels only what is missing. ``--lhotse`` and ``--shards`` also write the labelled corpus as a Lhotse CutSet or as
OSUM tar shards for ``osum train``. Under ``torchrun --nproc_per_node N`` each process labels every N-th clip and
the records are merged in input order at the end (see :mod:`osum.labelling.runner`); with ``--ray [ADDRESS]`` a
Ray Data pipeline with a pool of model actors does the work and the driver writes the same records file
(:mod:`osum.labelling.ray_runner`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from osum.cli.common import add_decoding_args, add_guard_args, decoding_options

HELP = "label a corpus (folders, manifests, shards) with every task; resumable, multi-process"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs", nargs="+", help="audio files, folders, manifests (any format osum reads) or shards"
    )
    p.add_argument("--out", required=True, help="the records file (JSON lines, one per recording)")
    p.add_argument("--model", default="mini", help="checkpoint directory or preset (default: mini)")
    p.add_argument("--tasks", default="all", help="comma-separated tasks (default 'all': the paper's eight)")
    p.add_argument("--resume", action="store_true", help="keep the records in --out and label only the rest")
    p.add_argument("--limit", type=int, help="only the first N clips of the input")
    p.add_argument(
        "--dry-run", action="store_true", help="count the clips and their audio hours, label nothing"
    )
    p.add_argument(
        "--min-confidence",
        dest="min_label_prob",
        type=float,
        default=0.0,
        help="keep a label only when its probability reaches this (else null); same as --min-label-prob",
    )
    p.add_argument("--lhotse", help="also write the labelled corpus as a Lhotse CutSet (.jsonl or .jsonl.gz)")
    p.add_argument("--shards", help="also write it as OSUM tar shards (a folder) for osum train")
    p.add_argument("--shard-size", type=int, default=1000, help="examples per tar shard (default 1000)")
    p.add_argument("--chunk", type=int, default=0, help="clips decoded together (default: 4 x --batch-size)")
    p.add_argument(
        "--max-audio-seconds",
        type=float,
        default=None,
        help="longer clips become error records (default 4 h)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="label on Ray (pip install 'osum[ray]'): a local instance, or the cluster at ADDRESS "
        "('auto': the one this machine belongs to)",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="--ray: model actors (default: one per GPU of the cluster, else one per --worker-cpus CPUs)",
    )
    p.add_argument("--worker-cpus", type=int, default=1, help="--ray: CPU threads per actor (default 1)")
    add_decoding_args(p)
    add_guard_args(p)


def run(args: argparse.Namespace) -> int:
    from osum.inference.long_audio import MAX_AUDIO_SECONDS
    from osum.labelling.inputs import count_inputs, is_tar_input, iter_inputs
    from osum.labelling.records import RecordFile, model_info
    from osum.labelling.runner import (
        every,
        label_clips,
        merge_parts,
        part_files,
        part_path,
        rank_and_world,
        recorded_keys,
    )
    from osum.tasks import parse_task_list

    tasks = [t.name for t in parse_task_list(args.tasks)]
    if args.limit is not None and args.limit < 1:
        raise SystemExit("osum label: --limit must be at least 1")
    if args.dry_run:
        clips, seconds, unknown = count_inputs(args.inputs, args.limit)
        note = f" ({unknown} of unknown length)" if unknown else ""
        print(f"osum label: {clips} clips, {seconds / 3600:.3f} h of audio{note}; {len(tasks)} tasks each")
        return 0
    rank, world, local_rank = rank_and_world()
    out = Path(args.out)
    if args.ray is not None:
        if world > 1:
            raise SystemExit("osum label: --ray runs from one process; start it without torchrun")
        return _run_ray(args, tasks, out)
    dist = _init_distributed(world)
    if rank == 0:
        if not args.resume:
            out.unlink(missing_ok=True)
            for part in part_files(out):
                part.unlink()
        elif world == 1:
            merge_parts(out)  # parts of an earlier multi-process run
    _barrier(dist)
    done = recorded_keys(out) if args.resume else set()
    _barrier(dist)  # every process has read what is recorded before any appends again
    if args.device is None and world > 1:
        import torch

        args.device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    options = decoding_options(args)  # a bad option fails before the model is loaded
    model = _load(args, rank)
    sink_path = part_path(out, rank, world) if world > 1 else out
    bar = None
    if (
        rank == 0
    ):  # the progress bar's total (and ETA) when counting is cheap: not for tar shards (read twice)
        counted = not any(is_tar_input(i) for i in args.inputs)
        bar = _Progress(count_inputs(args.inputs, args.limit, seconds=False)[0] if counted else None)
    with RecordFile(sink_path, resume=args.resume or world > 1) as sink:
        sink.done |= done
        if rank == 0:
            print(
                f"osum label: {len(tasks)} tasks ({', '.join(tasks)}) with {model.source}, {world} process(es)"
                + (f"; {len(done)} clips already recorded" if done else ""),
                file=sys.stderr,
            )
        summary = label_clips(
            model,
            iter_inputs(args.inputs, on_error="skip"),
            tasks,
            options,
            sink,
            model_info=model_info(model),
            max_seconds=args.max_audio_seconds or MAX_AUDIO_SECONDS,
            limit=args.limit,
            chunk=args.chunk or 4 * options.batch_size,
            take=every(rank, world) if world > 1 else None,
            on_chunk=bar.tick if bar is not None else None,
        )
    if bar is not None:
        bar.close()
    summary = _gather(dist, summary)
    if dist is not None:
        dist.destroy_process_group()  # the rest (merging the parts) is process 0's, through files
    if rank != 0:
        return 0
    merge_parts(out)
    return _finish(args, out, summary)


def _finish(args: argparse.Namespace, out: Path, summary) -> int:
    """Exports, the summary file and the report on stderr -> the exit code (1 when a clip failed)."""
    from osum.labelling.records import read_records

    if args.lhotse or args.shards:
        from osum.labelling.export import write_label_shards, write_lhotse_cuts

        records = read_records(out)
        if args.lhotse:
            n = write_lhotse_cuts(records, args.lhotse)
            print(f"osum label: {n} cuts in {args.lhotse}", file=sys.stderr)
        if args.shards:
            paths = write_label_shards(records, args.shards, args.shard_size)
            print(f"osum label: {len(paths)} shards in {args.shards}", file=sys.stderr)
    report = summary.to_dict()
    Path(f"{out}.summary.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(_describe(report, out), file=sys.stderr)
    return 1 if summary.errors else 0


def _run_ray(args: argparse.Namespace, tasks: list[str], out: Path) -> int:
    """The Ray Data path (:mod:`osum.labelling.ray_runner`): same inputs, records file, resume and summary."""
    from osum.inference.long_audio import MAX_AUDIO_SECONDS
    from osum.labelling.inputs import count_inputs, is_tar_input, iter_inputs
    from osum.labelling.ray_runner import label_with_ray, start_ray
    from osum.labelling.records import RecordFile
    from osum.labelling.runner import merge_parts, part_files, recorded_keys

    if args.worker_cpus < 1 or (args.workers is not None and args.workers < 1):
        raise SystemExit("osum label: --workers and --worker-cpus must be at least 1")
    options = decoding_options(args)
    if args.resume:
        merge_parts(out)  # parts of an earlier torchrun run
    else:
        out.unlink(missing_ok=True)
        for part in part_files(out):
            part.unlink()
    done = recorded_keys(out) if args.resume else set()
    ray = start_ray(args.ray)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    workers = args.workers or (gpus or max(1, int(resources.get("CPU", 1)) // args.worker_cpus))
    counted = not any(is_tar_input(i) for i in args.inputs)
    bar = _Progress(count_inputs(args.inputs, args.limit, seconds=False)[0] if counted else None)
    print(
        f"osum label: {len(tasks)} tasks ({', '.join(tasks)}) with {args.model} on Ray: {workers} workers "
        f"({'1 GPU' if gpus else f'{args.worker_cpus} CPU'} each)"
        + (f"; {len(done)} clips already recorded" if done else ""),
        file=sys.stderr,
    )
    with RecordFile(out, resume=args.resume) as sink:
        sink.done |= done
        summary = label_with_ray(
            ray,
            args.model,
            args.dtype,
            iter_inputs(args.inputs, on_error="skip"),
            tasks,
            options,
            sink,
            max_seconds=args.max_audio_seconds or MAX_AUDIO_SECONDS,
            workers=workers,
            cpus_per_worker=args.worker_cpus,
            gpus_per_worker=1.0 if gpus else 0.0,
            limit=args.limit,
            chunk=args.chunk or 4 * options.batch_size,
            on_chunk=bar.tick,
        )
    bar.close()
    return _finish(args, out, summary)


def _load(args: argparse.Namespace, rank: int):
    from osum.cli.common import load_model

    if rank == 0:
        return load_model(args)
    import osum

    return osum.load(args.model, device=args.device, dtype=args.dtype)


def _init_distributed(world: int):
    """torch.distributed (gloo: CPU collectives for the barrier and the summaries) when torchrun started us."""
    if world <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist


def _barrier(dist) -> None:
    if dist is not None:
        dist.barrier()


def _gather(dist, summary):
    if dist is None:
        return summary
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, summary)
    total = parts[0]
    for other in parts[1:]:
        total.merge(other)
    dist.barrier()  # every part file is closed before process 0 merges them
    return total


LOG_EVERY_SECONDS = 30.0  # a progress line this often when stderr is not a terminal (a job's log file)


class _Progress:
    """A progress bar on a terminal; elsewhere (stderr to a log file) tqdm is off and :meth:`tick` writes a plain
    line every ``LOG_EVERY_SECONDS``."""

    def __init__(self, total: int | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="osum label", unit="clip", file=sys.stderr, disable=None)
        self.last_logged = time.monotonic()

    def tick(self, summary, seen: int) -> None:
        rate, speed = summary.recordings_per_second or 0.0, summary.audio_hours_per_hour or 0.0
        status = f"{rate:.2f} rec/s, {speed:.1f} audio h/h, {summary.errors} errors"
        if not self.bar.disable:
            self.bar.n = seen
            self.bar.set_postfix_str(status, refresh=True)
            return
        now = time.monotonic()
        if now - self.last_logged >= LOG_EVERY_SECONDS:
            self.last_logged = now
            of = f" of {self.bar.total}" if self.bar.total else ""
            print(f"osum label: {seen}{of} clips; {status}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def _describe(report: dict, out: Path) -> str:
    lines = [
        f"osum label: {report['recordings']} recordings labelled, {report['errors']} errors, "
        f"{report['resumed']} already recorded; {report['audio_hours']:.3f} h of audio in "
        f"{report['wall_seconds']:.0f} s ({report['recordings_per_second'] or 0:.2f} rec/s, "
        f"{report['audio_hours_per_hour'] or 0:.1f} audio h/h); {report['no_speech']} without speech",
    ]
    for name, counts in report["labels"].items():
        lines.append(f"  {name}: " + ", ".join(f"{v} {n}" for v, n in counts.items()))
    lines.append(f"records: {out} (summary: {out}.summary.json)")
    return "\n".join(lines)
