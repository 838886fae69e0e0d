"""``osum tasks``: list the tasks, their OSUM tags, labels and prompts."""

from __future__ import annotations

import argparse

HELP = "list the tasks a model can be asked, with their labels and prompts"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", action="store_true", help="also print every prompt (en and zh)")


def run(args: argparse.Namespace) -> int:
    from osum.tasks import OSUM_TASKS, TASKS

    for name in OSUM_TASKS:
        _show(TASKS[name], args.prompts)
    print("\ncombined tags of OSUM's data (parsed; answered only by models trained on them):")
    for name, task in TASKS.items():
        if name not in OSUM_TASKS:
            _show(task, args.prompts)
    return 0


def _show(task, prompts: bool) -> None:
    labels = "; ".join(f.describe() for f in task.label_fields) or "-"
    print(f"{task.name:22s} {task.tag:34s} {labels}")
    if prompts:
        for lang, items in task.prompts.items():
            for prompt in items:
                print(f"    [{lang}] {prompt}")
