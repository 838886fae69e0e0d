"""``osum`` console script: one subcommand per job, each a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from osum import __version__
from osum.cli import convert, data, demo, evaluate, export, infer, label, plan, serve, tasks, train
from osum.errors import OsumError

COMMANDS = {
    "infer": infer,
    "label": label,
    "demo": demo,
    "convert-osum": convert,
    "tasks": tasks,
    "train": train,
    "data": data,
    "eval": evaluate,
    "export": export,
    "serve": serve,
    "plan": plan,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="osum", description="Open speech understanding models (OSUM-style)."
    )
    parser.add_argument("--version", action="version", version=f"osum {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_parser(sub.add_parser(name, help=module.HELP, description=module.HELP))
    args = parser.parse_args(argv)
    # Deprecation chatter between transformers and peft versions is for developers, not CLI users.
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except OsumError as exc:
        print(f"osum {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `osum ... | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout must stay valid until exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
