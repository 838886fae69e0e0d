"""``osum data agree``: keep a clip's label only where every labeller gives the same one (OSUM section 3.4).

Writes ``OUT/agreed.jsonl`` (the clips all labellers agree on, as training records of the field's task: SER for
emotion, SSR for style, ...; ``extra.labellers`` holds every labeller's answer), ``OUT/agreement.json`` (the
agreement rate, each labeller's coverage and the first two labellers' confusion table) and ``OUT/agreement.md``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from osum.data.manifest import Utterance, write_manifest
from osum.data.reader import read_any
from osum.errors import ConfigError
from osum.labelling.labellers import FIELD_TASKS, Labeller
from osum.vocabulary import TASK_LABEL_FIELDS


@dataclass
class AgreementReport:
    """How the labellers agreed: ``clips`` read, ``labelled`` by each labeller (not None), ``by_all`` (every
    labeller gave a label), ``agreed`` (all the same), the agreed labels' counts and the confusion of the first two
    labellers (``{their first's label: {the second's label: clips}}``, over the clips both labelled)."""

    field: str
    labellers: list[str]
    clips: int = 0
    labelled: dict[str, int] = field(default_factory=dict)
    by_all: int = 0
    agreed: int = 0
    labels: Counter = field(default_factory=Counter)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def agreement_rate(self) -> float | None:
        """Agreed clips over the clips every labeller labelled (None when there are none)."""
        return self.agreed / self.by_all if self.by_all else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "labellers": self.labellers,
            "clips": self.clips,
            "labelled": self.labelled,
            "labelled_by_all": self.by_all,
            "agreed": self.agreed,
            "agreement_rate": self.agreement_rate,
            "agreed_labels": dict(sorted(self.labels.items())),
            "confusion": self.confusion,
        }

    def markdown(self) -> str:
        rate = "n/a" if self.agreement_rate is None else f"{100 * self.agreement_rate:.1f}%"
        lines = [
            f"# Label agreement: {self.field}",
            "",
            f"{self.clips} clips; labelled by every labeller: {self.by_all}; agreed: {self.agreed} ({rate}).",
            "",
            "| labeller | clips labelled |",
            "|---|--:|",
            *[f"| {n} | {c} |" for n, c in self.labelled.items()],
        ]
        if len(self.labellers) >= 2 and self.confusion:
            a, b = self.labellers[:2]
            cols = sorted({c for row in self.confusion.values() for c in row})
            lines += ["", f"Rows: {a}; columns: {b}.", "", "| | " + " | ".join(cols) + " |"]
            lines.append("|---|" + "--:|" * len(cols))
            for r in sorted(self.confusion):
                lines.append(f"| {r} | " + " | ".join(str(self.confusion[r].get(c, 0)) for c in cols) + " |")
        return "\n".join(lines) + "\n"


def agree(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    field_name: str,
    labellers: Sequence[Labeller],
) -> AgreementReport:
    """Label every clip of ``manifest`` with each labeller, keep the agreements; see the module doc."""
    label_field = TASK_LABEL_FIELDS.get(field_name)
    if label_field is None or field_name not in FIELD_TASKS:
        raise ConfigError(f"field {field_name!r}: choose one of {sorted(FIELD_TASKS)}")
    if len(labellers) < 2:
        raise ConfigError("agreement needs at least two labellers")
    names = [lab.name for lab in labellers]
    if len(set(names)) != len(names):
        names = [f"{i + 1}:{n}" for i, n in enumerate(names)]
    utterances = list(read_any(manifest))
    answers = {n: lab.label(utterances, label_field) for n, lab in zip(names, labellers, strict=True)}
    report = AgreementReport(field=field_name, labellers=names, clips=len(utterances))
    report.labelled = {n: sum(a is not None for a in answers[n]) for n in names}
    confusion: dict[str, Counter] = {}
    kept: list[Utterance] = []
    for i, u in enumerate(utterances):
        given = [answers[n][i] for n in names]
        if given[0] is not None and given[1] is not None:
            confusion.setdefault(given[0], Counter())[given[1]] += 1
        if any(g is None for g in given):
            continue
        report.by_all += 1
        if len(set(given)) != 1:
            continue
        report.agreed += 1
        report.labels[given[0]] += 1
        kept.append(_agreed(u, field_name, str(given[0]), dict(zip(names, given, strict=True))))
    report.confusion = {a: dict(sorted(row.items())) for a, row in sorted(confusion.items())}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder / "agreed.jsonl", kept, relative=False)
    (folder / "agreement.json").write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
    (folder / "agreement.md").write_text(report.markdown(), encoding="utf-8")
    return report


def _agreed(u: Utterance, field_name: str, label: str, given: dict[str, str | None]) -> Utterance:
    from dataclasses import replace

    return replace(
        u,
        task=FIELD_TASKS[field_name],
        labels={**u.labels, field_name: label},
        extra={**u.extra, "labellers": given},
    )
