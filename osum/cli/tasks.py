"""``osum tasks``: list the tasks, their OSUM tags, labels and prompts."""

from __future__ import annotations

import argparse

HELP = "list the tasks a model can be asked, with their labels and prompts"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", action="store_true", help="also print every prompt (en and zh)")


def run(args: argparse.Namespace) -> int:
    from osum.tasks import TASKS

    for task in TASKS.values():
        labels = "; ".join(f.describe() for f in task.label_fields) or "-"
        print(f"{task.name:22s} {task.tag:34s} {labels}")
        if args.prompts:
            for lang, prompts in task.prompts.items():
                for prompt in prompts:
                    print(f"    [{lang}] {prompt}")
    return 0
