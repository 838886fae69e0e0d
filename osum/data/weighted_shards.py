"""``osum data shards``: several datasets as OSUM-compatible tar shards, with the weights ``osum train`` mixes by.

OSUM trains on a list of shard lists, each repeated by its weight in every epoch (``int(weight)`` times plus a
random ``frac(weight)`` share: :func:`osum.data.sampler.mix`). This writes each dataset's shards under
``OUT/<name>/`` (:func:`osum.data.shards.write_shards`: ``shard_*.tar`` and ``shards.list``), then ``OUT/data.yaml``
(the ``data.train`` entries: each shard list with its weight, for ``osum train``) and ``OUT/balance.md`` /
``OUT/balance.json``: per dataset its clips, hours and tasks, and its share of an epoch's hours after weighting.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from osum.data.manifest import Utterance
from osum.data.reader import read_any
from osum.data.shards import LIST_NAME, write_shards
from osum.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Dataset:
    """One source: a folder ``name``, the manifest it is read from (any format osum reads) and its weight."""

    name: str
    manifest: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(
                f"dataset name {self.name!r}: use letters, digits, '_', '-' or '.' (a folder name)"
            )
        if not self.weight > 0:
            raise ConfigError(f"dataset {self.name}: weight must be > 0, got {self.weight}")

    @classmethod
    def parse(cls, spec: str) -> Dataset:
        """``NAME=MANIFEST`` or ``NAME=MANIFEST@WEIGHT``."""
        name, sep, rest = spec.partition("=")
        if not sep or not rest:
            raise ConfigError(f"dataset {spec!r}: write NAME=MANIFEST or NAME=MANIFEST@WEIGHT")
        manifest, at, weight = rest.rpartition("@") if "@" in rest else (rest, "", "")
        try:
            return cls(name.strip(), manifest, float(weight) if at else 1.0)
        except ValueError:
            raise ConfigError(f"dataset {spec!r}: weight {weight!r} is not a number") from None


@dataclass
class DatasetStats:
    """What one dataset holds: clips, seconds (from the records' durations; 0 where unknown) and clips per task."""

    clips: int = 0
    seconds: float = 0.0
    tasks: Counter = field(default_factory=Counter)


def _counted(utterances: Iterator[Utterance], stats: DatasetStats) -> Iterator[Utterance]:
    for u in utterances:
        stats.clips += 1
        if u.duration is not None:
            stats.seconds += u.duration
        elif u.start is not None and u.end is not None:
            stats.seconds += u.end - u.start
        stats.tasks[u.task] += 1
        yield u


def write_weighted_shards(
    datasets: Sequence[Dataset], out: str | os.PathLike, shard_size: int = 1000, on_error: str = "raise"
) -> dict[str, Any]:
    """Write every dataset's shards and the mixing files (see the module doc); returns the balance report."""
    if not datasets:
        raise ConfigError("no dataset given: NAME=MANIFEST[@WEIGHT], one or more")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"dataset names must differ: {names}")
    folder = Path(out).absolute()
    stats: dict[str, DatasetStats] = {}
    entries = []
    for d in datasets:
        stats[d.name] = DatasetStats()
        source = _counted(iter(read_any(d.manifest, on_error=on_error)), stats[d.name])
        write_shards(source, folder / d.name, shard_size, on_error=on_error)
        entries.append({"path": str(folder / d.name / LIST_NAME), "weight": d.weight})
    weighted = {d.name: stats[d.name].seconds * d.weight for d in datasets}
    total = sum(weighted.values())
    report = {
        "datasets": [
            {
                "name": d.name,
                "manifest": str(d.manifest),
                "weight": d.weight,
                "clips": stats[d.name].clips,
                "hours": round(stats[d.name].seconds / 3600, 4),
                "tasks": dict(sorted(stats[d.name].tasks.items())),
                "epoch_share": round(weighted[d.name] / total, 4) if total else None,
                "shard_list": entries[i]["path"],
            }
            for i, d in enumerate(datasets)
        ]
    }
    (folder / "data.yaml").write_text(yaml.safe_dump({"data": {"train": entries}}, sort_keys=False))
    (folder / "balance.json").write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    (folder / "balance.md").write_text(balance_markdown(report), encoding="utf-8")
    return report


def train_override(report: dict[str, Any]) -> str:
    """The ``data.train=[...]`` override that points ``osum train`` at the written shard lists."""
    items = ", ".join(f"{{path: {d['shard_list']}, weight: {d['weight']:g}}}" for d in report["datasets"])
    return f"data.train=[{items}]"


def balance_markdown(report: dict[str, Any]) -> str:
    lines = [
        "| dataset | weight | clips | hours | share of an epoch's hours | tasks |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for d in report["datasets"]:
        share = "n/a" if d["epoch_share"] is None else f"{100 * d['epoch_share']:.1f}%"
        tasks = ", ".join(f"{t} {n}" for t, n in d["tasks"].items())
        lines.append(
            f"| {d['name']} | {d['weight']:g} | {d['clips']} | {d['hours']:.3f} | {share} | {tasks} |"
        )
    return "\n".join(lines) + "\n"
