"""Scores for the eight tasks, each a pure function of references and hypotheses.

- ASR: WER / CER through jiwer, corpus-level (errors summed over utterances, divided by reference length), with
  the counts (substitutions, deletions, insertions, hits) kept so tables can be recomputed.
- Classification (VED, SER, SSR, SGC, SAP): accuracy, macro-F1, per-class precision/recall, confusion matrix and
  the share of outputs with no valid label (``None`` hypotheses count as wrong).
- SRWT: hypothesis words aligned to reference words by text; boundary errors of the matched words.
- STTC: exact match of normalised answers.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import jiwer

from osum.tasks import Word


@dataclass(frozen=True)
class ErrorCounts:
    """Edit-distance totals of an ASR test set; ``rate`` = (S + D + I) / N."""

    substitutions: int
    deletions: int
    insertions: int
    hits: int

    @property
    def reference_length(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def rate(self) -> float:
        errors = self.substitutions + self.deletions + self.insertions
        if self.reference_length == 0:
            return 0.0 if errors == 0 else float("inf")
        return errors / self.reference_length

    def to_dict(self) -> dict:
        return {**asdict(self), "reference_length": self.reference_length, "rate": self.rate}


@dataclass(frozen=True)
class Alignment:
    """One utterance's edit alignment: counts and the operations, ``(op, ref tokens, hyp tokens)`` with ``op`` in
    equal / substitute / delete / insert (jiwer's names)."""

    counts: ErrorCounts
    ops: tuple[tuple[str, str, str], ...]


def align_tokens(ref: Sequence[str], hyp: Sequence[str]) -> Alignment:
    """Minimum-edit alignment of two token sequences (jiwer); an empty side makes every token an edit."""
    if not ref or not hyp:
        ops = (("delete", " ".join(ref), ""),) if ref else (("insert", "", " ".join(hyp)),) if hyp else ()
        return Alignment(ErrorCounts(0, len(ref), len(hyp), 0), ops)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    ops = tuple(
        (
            c.type,
            " ".join(ref[c.ref_start_idx : c.ref_end_idx]),
            " ".join(hyp[c.hyp_start_idx : c.hyp_end_idx]),
        )
        for c in out.alignments[0]
    )
    return Alignment(ErrorCounts(out.substitutions, out.deletions, out.insertions, out.hits), ops)


def add_counts(counts: Sequence[ErrorCounts]) -> ErrorCounts:
    """Corpus totals of per-utterance counts."""
    return ErrorCounts(
        sum(c.substitutions for c in counts),
        sum(c.deletions for c in counts),
        sum(c.insertions for c in counts),
        sum(c.hits for c in counts),
    )


def _counts(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]]) -> ErrorCounts:
    """Token-sequence edit counts summed over utterances (an empty reference makes every hyp token an insertion)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return add_counts([align_tokens(r, h).counts for r, h in zip(refs, hyps, strict=True)])


def word_errors(
    refs: Sequence[str], hyps: Sequence[str], normalize: Callable[[str], str] = str
) -> ErrorCounts:
    """WER counts over a test set after ``normalize`` (e.g. :func:`osum.evaluation.normalize.normalize_english`)."""
    return _counts([normalize(r).split() for r in refs], [normalize(h).split() for h in hyps])


def char_errors(
    refs: Sequence[str], hyps: Sequence[str], normalize: Callable[[str], str] = str
) -> ErrorCounts:
    """CER counts (spaces ignored, as for Chinese scoring), characters as tokens."""
    return _counts([chars(normalize(r)) for r in refs], [chars(normalize(h)) for h in hyps])


def chars(text: str) -> list[str]:
    """The characters of ``text`` without whitespace: the tokens of CER."""
    return [c for c in text if not c.isspace()]


@dataclass(frozen=True)
class ClassificationReport:
    labels: tuple[str, ...]
    accuracy: float
    macro_f1: float
    precision: dict[str, float]
    recall: dict[str, float]
    confusion: list[list[int]]  # rows: reference label, columns: hypothesis label + a last "invalid" column
    invalid_share: float  # hypotheses with no valid label
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def classification(
    refs: Sequence[str], hyps: Sequence[str | None], labels: Sequence[str]
) -> ClassificationReport:
    """Scores of one label field; a hypothesis outside ``labels`` (or None) is invalid and counts as wrong."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    index = {lab: k for k, lab in enumerate(labels)}
    unknown = sorted({r for r in refs if r not in index})
    if unknown:
        raise ValueError(f"reference labels {unknown} are not in the label set {list(labels)}")
    confusion = [[0] * (len(labels) + 1) for _ in labels]
    for r, h in zip(refs, hyps, strict=True):
        confusion[index[r]][index.get(h, len(labels)) if h is not None else len(labels)] += 1
    n = len(refs)
    correct = sum(confusion[k][k] for k in range(len(labels)))
    precision, recall, f1 = {}, {}, []
    for k, lab in enumerate(labels):
        predicted = sum(row[k] for row in confusion)
        actual = sum(confusion[k])
        p = confusion[k][k] / predicted if predicted else 0.0
        r = confusion[k][k] / actual if actual else 0.0
        precision[lab], recall[lab] = p, r
        if actual:  # macro-F1 over the classes present in the references
            f1.append(2 * p * r / (p + r) if p + r else 0.0)
    invalid = sum(row[-1] for row in confusion)
    return ClassificationReport(
        labels=tuple(labels),
        accuracy=correct / n if n else 0.0,
        macro_f1=sum(f1) / len(f1) if f1 else 0.0,
        precision=precision,
        recall=recall,
        confusion=confusion,
        invalid_share=invalid / n if n else 0.0,
        n=n,
    )


@dataclass(frozen=True)
class TimingReport:
    matched: int
    reference_words: int
    hypothesis_words: int
    mean_start_error: float  # seconds, over matched words
    mean_end_error: float
    aas: float  # average absolute shift: mean of all start and end boundary errors (the paper's AAS), seconds
    within_50ms: float  # share of matched boundaries within 0.05 s
    within_100ms: float  # share of matched boundaries within 0.1 s
    within_200ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def calibration_error(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error of ``(confidence, correct)`` pairs: the answers go into ``bins`` equal-width
    confidence bins, and the result is the mean |accuracy - mean confidence| of the bins, weighted by their share
    of the answers (0: the confidences are the accuracies). Empty input: 0."""
    if not pairs:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in pairs if lo < c <= hi or (b == 0 and c <= lo)]
        if inside:
            accuracy = sum(ok for _, ok in inside) / len(inside)
            confidence = sum(c for c, _ in inside) / len(inside)
            total += len(inside) / len(pairs) * abs(accuracy - confidence)
    return total


def word_timing(
    refs: Sequence[Sequence[Word]],
    hyps: Sequence[Sequence[Word] | None],
    normalize: Callable[[str], str] = str.lower,
) -> TimingReport:
    """Align each utterance's hypothesis words to its reference words by text (difflib), score matched pairs."""
    errors: list[float] = []
    starts: list[float] = []
    ends: list[float] = []
    n_ref = n_hyp = matched = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        hyp = hyp or ()
        n_ref, n_hyp = n_ref + len(ref), n_hyp + len(hyp)
        sm = difflib.SequenceMatcher(
            a=[normalize(w.word) for w in ref], b=[normalize(w.word) for w in hyp], autojunk=False
        )
        for block in sm.get_matching_blocks():
            for k in range(block.size):
                r, h = ref[block.a + k], hyp[block.b + k]
                starts.append(abs(r.start - h.start))
                ends.append(abs(r.end - h.end))
                matched += 1
    errors = starts + ends

    def mean(x: list[float]) -> float:
        return sum(x) / len(x) if x else float("nan")

    return TimingReport(
        matched=matched,
        reference_words=n_ref,
        hypothesis_words=n_hyp,
        mean_start_error=mean(starts),
        mean_end_error=mean(ends),
        aas=mean(errors),
        within_50ms=mean([float(e <= 0.05 + 1e-9) for e in errors]),
        within_100ms=mean([float(e <= 0.1 + 1e-9) for e in errors]),
        within_200ms=mean([float(e <= 0.2 + 1e-9) for e in errors]),
    )


def answer_accuracy(
    refs: Sequence[str], hyps: Sequence[str | None], normalize: Callable[[str], str] = str.lower
) -> float:
    """Share of answers equal to the reference after ``normalize`` (a missing answer is wrong)."""
    if not refs:
        return 0.0
    ok = sum(
        h is not None and normalize(h).strip() == normalize(r).strip()
        for r, h in zip(refs, hyps, strict=True)
    )
    return ok / len(refs)
