"""Preparers for the public test sets the OSUM paper reports: a local copy of a corpus -> our JSONL manifest.

>>> prepare_corpus("librispeech", "/data/LibriSpeech", "test-clean.jsonl", subset="test-clean")  # doctest: +SKIP

Nothing is downloaded: each preparer reads the corpus's own release layout (``osum data prepare --list`` or
``CORPORA[name].layout``) and yields :class:`~osum.data.manifest.Utterance` records with absolute audio paths,
a unique key ``<corpus>-<subset>-<id>``, the task's labels in our vocabulary, the language, the speaker when
known and the duration when the file header gives it. Examples that cannot be used (no transcript, a label
with no counterpart, missing audio) are skipped and counted in the :class:`PrepareSummary`.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from osum.data.corpora.aishell import AISHELL1, AISHELL2
from osum.data.corpora.base import Corpus, Skip
from osum.data.corpora.commonvoice import COMMONVOICE
from osum.data.corpora.esc50 import ESC50
from osum.data.corpora.librispeech import LIBRISPEECH
from osum.data.corpora.meld import MELD
from osum.data.corpora.vocalsound import VOCALSOUND
from osum.data.corpora.wenetspeech import WENETSPEECH
from osum.data.manifest import Utterance, write_manifest
from osum.errors import ConfigError, TaskError
from osum.tasks import get_task

__all__ = ["CORPORA", "Corpus", "PrepareSummary", "Skip", "describe_corpora", "get_corpus", "prepare_corpus"]

log = logging.getLogger(__name__)

_ALL = (LIBRISPEECH, AISHELL1, AISHELL2, WENETSPEECH, MELD, VOCALSOUND, ESC50, COMMONVOICE)
CORPORA: Mapping[str, Corpus] = MappingProxyType({c.name: c for c in _ALL})


@dataclass(frozen=True)
class PrepareSummary:
    """What :func:`prepare_corpus` wrote: utterances per task, label counts ``{task: {field: {value: n}}}``,
    and the examples it skipped (with reasons)."""

    corpus: str
    subset: str
    tasks: tuple[str, ...]
    src: Path
    manifest: Path
    counts: Mapping[str, int]
    labels: Mapping[str, Mapping[str, Mapping[str, int]]]
    skipped: tuple[Skip, ...] = field(default=())
    seconds: float = 0.0  # total duration of the utterances whose duration is known

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def skipped_by_reason(self) -> dict[str, int]:
        """``{reason: count}``, most frequent first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "subset": self.subset,
            "tasks": list(self.tasks),
            "src": str(self.src),
            "manifest": str(self.manifest),
            "utterances": self.total,
            "counts": dict(self.counts),
            "labels": {t: {f: dict(v) for f, v in fields.items()} for t, fields in self.labels.items()},
            "seconds": self.seconds,
            "skipped": self.skipped_by_reason(),
        }

    def lines(self) -> list[str]:
        """A short human-readable report."""
        out = [f"{self.corpus} {self.subset}: {self.total} utterances -> {self.manifest}"]
        for task, n in self.counts.items():
            labels = "; ".join(
                f"{name}: " + ", ".join(f"{v} {c}" for v, c in values.items())
                for name, values in self.labels.get(task, {}).items()
            )
            out.append(f"  {task}: {n}" + (f" ({labels})" if labels else ""))
        if self.seconds:
            amount = f"{self.seconds / 3600:.2f} h" if self.seconds >= 360 else f"{self.seconds:.1f} s"
            out.append(f"  audio with known duration: {amount}")
        if self.skipped:
            reasons = ", ".join(f"{r} {n}" for r, n in self.skipped_by_reason().items())
            out.append(f"  skipped {len(self.skipped)}: {reasons} (first: {self.skipped[0].where})")
        return out


def _norm(name: str) -> str:
    return re.sub(r"[\s_-]+", "", name.lower())


def get_corpus(name: str) -> Corpus:
    """A corpus by name, ignoring case, ``-`` and ``_`` (``"AISHELL-1"``, ``"esc-50"``); ConfigError if unknown."""
    found = {_norm(c): c for c in CORPORA}.get(_norm(name)) if isinstance(name, str) else None
    if found is None:
        raise ConfigError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    return CORPORA[found]


def resolve_subset(corpus: Corpus, subset: str | None, src: Path | None = None) -> str:
    """``subset`` spelled as the corpus spells it (``test_net`` == ``TEST-NET``). None means the subset that
    ``src`` is the folder of, judged by its name or its parent's and its own (``.../LibriSpeech/test-other``,
    ``.../iOS/test`` -> ``ios-test``), else the corpus default."""

    def norm(name: str) -> str:
        return re.sub(r"[_-]", "-", name.strip().lower())

    by_norm = {norm(s): s for s in corpus.subsets}
    if subset is None:
        names = (src.name, f"{src.parent.name}-{src.name}") if src is not None else ()
        return next((by_norm[norm(n)] for n in names if norm(n) in by_norm), corpus.default_subset)
    found = by_norm.get(norm(subset))
    if found is None:
        raise ConfigError(f"{corpus.name}: unknown subset {subset!r}; subsets: {', '.join(corpus.subsets)}")
    return found


def resolve_tasks(corpus: Corpus, task: str | None) -> tuple[str, ...]:
    """Our task names from ``task``: one name or OSUM tag, a comma-separated list, ``"all"`` (every task the
    corpus labels) or None (its first task). ConfigError for a task the corpus cannot label."""
    if task is None:
        return corpus.tasks[:1]
    if task.strip().lower() == "all":
        return corpus.tasks
    names: list[str] = []
    for item in (t for t in task.split(",") if t.strip()):
        try:
            name = get_task(item).name
        except TaskError as e:
            raise ConfigError(str(e)) from None
        if name not in corpus.tasks:
            raise ConfigError(
                f"{corpus.name} has no labels for task {name!r}; it can give: {', '.join(corpus.tasks)}"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError(f"empty task list {task!r}; {corpus.name} can give: {', '.join(corpus.tasks)}")
    return tuple(names)


def prepare_corpus(
    name: str,
    src: str | os.PathLike,
    out_manifest: str | os.PathLike,
    subset: str | None = None,
    task: str | None = None,
) -> PrepareSummary:
    """Read corpus ``name`` from the local copy ``src`` and write ``out_manifest`` (our JSONL, ``.gz`` ok).

    ``subset`` defaults to the corpus's test set (see :func:`resolve_subset`); ``task`` is a task name, a
    comma-separated list or ``"all"`` (default: the corpus's first task, see :func:`resolve_tasks`). With
    several tasks each example appears once per task, its key suffixed with ``-<task>`` so keys stay unique
    (and skip reasons are prefixed with ``<task>: ``).
    The manifest is written to a temporary file and renamed, so a failed run leaves no partial manifest (an
    existing one stays as it was). Raises ConfigError (layout, no usable example) or ManifestError
    (``file:line`` of a malformed corpus file).
    """
    corpus = get_corpus(name)
    src_path = Path(src).expanduser().absolute()
    chosen = resolve_subset(corpus, subset, src_path)
    tasks = resolve_tasks(corpus, task)
    counts: Counter[str] = Counter()
    labels: dict[str, dict[str, Counter[str]]] = {t: {} for t in tasks}
    skipped: list[Skip] = []
    seconds = 0.0

    def records() -> Iterator[Utterance]:
        nonlocal seconds
        seen: set[str] = set()
        for t in tasks:
            for item in corpus.prepare(src_path, chosen, t):
                if isinstance(item, Skip):
                    skipped.append(replace(item, reason=f"{t}: {item.reason}") if len(tasks) > 1 else item)
                    continue
                u = replace(item, key=f"{item.key}-{t}") if len(tasks) > 1 else item
                if u.key in seen:
                    skipped.append(Skip(f"{u.key} ({u.audio})", "duplicate key"))
                    continue
                seen.add(u.key)
                counts[t] += 1
                for label, value in u.labels.items():
                    labels[t].setdefault(label, Counter())[value] += 1
                seconds += u.duration or 0.0
                yield u
        if not seen:
            # Raised inside the writer, so the temporary file is removed and no empty manifest appears.
            reasons = Counter(s.reason for s in skipped).most_common()
            detail = (
                f"; skipped {len(skipped)}: " + ", ".join(f"{r} {n}" for r, n in reasons) if skipped else ""
            )
            example = f" (first: {skipped[0].where})" if skipped else ""
            raise ConfigError(
                f"{corpus.name}: no usable {chosen} example for {', '.join(tasks)} in {src_path}{detail}{example}"
            )

    out = Path(out_manifest).expanduser().absolute()
    write_manifest(out, records(), relative=False)
    summary = PrepareSummary(
        corpus=corpus.name,
        subset=chosen,
        tasks=tasks,
        src=src_path,
        manifest=out,
        counts=MappingProxyType({t: counts[t] for t in tasks}),
        labels=MappingProxyType(
            {t: {f: dict(c.most_common()) for f, c in v.items()} for t, v in labels.items()}
        ),
        skipped=tuple(skipped),
        seconds=seconds,
    )
    log.info("%s", "\n".join(summary.lines()))
    return summary


def describe_corpora() -> str:
    """Every corpus with its subsets (the default starred), tasks and expected layout."""
    blocks = []
    for c in CORPORA.values():
        subsets = ", ".join(f"{s}*" if s == c.default_subset else s for s in c.subsets)
        blocks.append(
            f"{c.name}: {c.description}\n  subsets: {subsets}\n  tasks: {', '.join(c.tasks)}\n{c.layout}"
        )
    return "\n\n".join(blocks)
