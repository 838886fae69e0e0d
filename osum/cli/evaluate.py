"""``osum eval``: decode a test manifest and score it, score an OSUM decode file, or compare finished runs.

osum eval --model M --manifest TEST.jsonl --out DIR [--tasks asr,ser]      decode + score (resumable)
osum eval --decode-file text --manifest TEST.jsonl --out DIR [--tasks ser]  score OSUM's key<TAB>hyp output
osum eval --compare DIR1 DIR2 ...                                           one side-by-side table
"""

from __future__ import annotations

import argparse
import os
import sys

from osum.cli.common import add_decoding_args, add_guard_args, decoding_options, load_model
from osum.errors import ConfigError

HELP = "evaluate a model on a test manifest (metrics.json, report.md, plots) or compare evaluations"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", help="test manifest: ours, OSUM raw JSONL, OSUM shards or Lhotse")
    p.add_argument("--out", help="output folder (an interrupted run with the same settings continues)")
    p.add_argument("--model", help="checkpoint directory or preset to decode with (default: mini)")
    p.add_argument(
        "--decode-file", help="score this OSUM decode output (key<TAB>hyp lines) instead of decoding"
    )
    p.add_argument(
        "--tasks",
        help="comma-separated tasks to score every utterance on, where it has the references "
        "(default: each utterance on its own manifest task)",
    )
    p.add_argument("--limit", type=int, help="only the first N utterances of the manifest")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier run in --out")
    add_decoding_args(p)
    add_guard_args(p)
    p.add_argument(
        "--judge-url", help="OpenAI-compatible endpoint (e.g. http://host:8000/v1) to score STTC answers"
    )
    p.add_argument("--judge-model", help="model name for the judge endpoint")
    p.add_argument(
        "--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the judge's API key"
    )
    p.add_argument(
        "--compare", nargs="+", metavar="DIR", help="print one table comparing finished eval folders"
    )
    p.add_argument("--names", help="comma-separated column names for --compare")


def _judge(args: argparse.Namespace):
    if not args.judge_url:
        return None
    if not args.judge_model:
        raise ConfigError("--judge-url needs --judge-model (the model name the endpoint serves)")
    from osum.evaluation.judge import JudgeConfig, judge_answers, summarize

    config = JudgeConfig(
        url=args.judge_url, model=args.judge_model, api_key=os.environ.get(args.judge_key_env)
    )

    def judge(items: list[tuple[str, str, str | None]]) -> dict:
        return summarize(config, judge_answers(config, items, progress=True))

    return judge


def run(args: argparse.Namespace) -> int:
    if args.compare:
        from osum.evaluation.report import compare_table

        names = args.names.split(",") if args.names else None
        if names is not None and len(names) != len(args.compare):
            raise ConfigError(f"--names has {len(names)} names for {len(args.compare)} folders")
        print(compare_table(args.compare, names))
        return 0
    if not args.manifest or not args.out:
        raise ConfigError("osum eval needs --manifest and --out (or --compare DIR...)")
    if args.model and args.decode_file:
        raise ConfigError("give --model (decode and score) or --decode-file (score OSUM output), not both")
    if not args.decode_file:
        args.model = args.model or "mini"  # as osum infer: the embedded default
    from osum.evaluation.run import evaluate
    from osum.tasks import parse_task_list

    tasks = None if not args.tasks else [t.name for t in parse_task_list(args.tasks)]
    options = decoding_options(args)
    model = load_model(args) if args.model else None
    judge = _judge(args)
    result = evaluate(
        args.manifest,
        args.out,
        model=model,
        tasks=tasks,
        options=options,
        decode_file=args.decode_file,
        judge=judge,
        limit=args.limit,
        overwrite=args.overwrite,
        progress=True,
    )
    print(
        f"decoded {result.decoded}, reused {result.reused} from an earlier run; outputs in {result.out_dir}"
    )
    for reason, count in result.skipped.items():
        print(f"skipped {count} utterances: {reason}", file=sys.stderr)
    from osum.evaluation.report import format_value, metric_label

    print(f"{'task':<22}{'n':>6}  {'metric':<26}{'value':>10}")
    for name, entry in result.metrics["tasks"].items():
        value = format_value(entry["primary"], entry["metrics"].get(entry["primary"]))
        print(f"{name:<22}{entry['n']:>6}  {metric_label(entry['primary']):<26}{value:>10}")
    print(f"report: {result.out_dir / 'report.md'}")
    return 0
