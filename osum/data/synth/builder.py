"""``build_corpus``: plan, render (in parallel, deterministically), write wavs, manifests and the data card.

Layout of the output folder::

    OUT/train.jsonl  OUT/test.jsonl       osum manifests (osum.data.manifest), audio paths relative to OUT
    OUT/wavs/<split>/<task>/<key>.wav     16 kHz mono 16-bit PCM, 1-12 s
    OUT/README.md                         the data card (counts, hours, voices, augmentation, acoustic truths vs
                                          proxies)

A clip without speech has ``text: ""``, no labels (a vocal event alone keeps its event label in VED), no
speaker, and ``extra.nonspeech: true`` with ``extra.kind``. Every clip's ``extra.acoustics`` says which
augmentation it got (``{}`` when clean).
"""

from __future__ import annotations

import multiprocessing
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import soundfile as sf

from osum.data.synth.card import write_card
from osum.data.synth.dsp import SAMPLE_RATE, median_f0
from osum.data.synth.plan import TASK_LABELS, ClipSpec, PlanSettings, plan_corpus
from osum.data.synth.render import Rendered, render_clip
from osum.data.synth.text import SPLITS
from osum.errors import ConfigError

# Which labels are facts about the audio, and which are procedural proxies (see the data card).
LABEL_KINDS = MappingProxyType(
    {"gender": "acoustic", "event": "acoustic", "emotion": "proxy", "style": "proxy", "age": "proxy"}
)


@dataclass(frozen=True)
class CorpusSummary:
    """What ``build_corpus`` wrote. ``counts``/``seconds``: ``{split: {task: value}}``; ``labels``:
    ``{split: {task: {label: count}}}``; ``voices``: ``{split: [voice ids used]}``; ``acoustics``:
    ``{split: {item: clips}}`` (items such as ``clean``, ``noise:pink``, ``reverb``, ``codec:gsm``); ``nonspeech``:
    ``{split: {kind: clips}}``."""

    out_dir: Path
    manifests: Mapping[str, Path]
    card: Path
    counts: Mapping[str, Mapping[str, int]]
    seconds: Mapping[str, Mapping[str, float]]
    labels: Mapping[str, Mapping[str, Mapping[str, int]]]
    voices: Mapping[str, Sequence[str]]
    f0: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # {field: {label: median Hz}}
    build_seconds: float = 0.0
    acoustics: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    nonspeech: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return sum(s for per_task in self.seconds.values() for s in per_task.values()) / 3600.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "manifests": {k: str(v) for k, v in self.manifests.items()},
            "card": str(self.card),
            "counts": {k: dict(v) for k, v in self.counts.items()},
            "seconds": {k: dict(v) for k, v in self.seconds.items()},
            "labels": {k: {t: dict(c) for t, c in v.items()} for k, v in self.labels.items()},
            "voices": {k: list(v) for k, v in self.voices.items()},
            "f0": {k: dict(v) for k, v in self.f0.items()},
            "acoustics": {k: dict(v) for k, v in self.acoustics.items()},
            "nonspeech": {k: dict(v) for k, v in self.nonspeech.items()},
            "hours": self.hours,
            "build_seconds": self.build_seconds,
        }


def record_of(spec: ClipSpec, rendered: Rendered, f0: float) -> dict[str, Any]:
    """The manifest record (osum manifest field names) of a rendered clip; ``audio`` relative to OUT."""
    voice = spec.voice
    extra: dict[str, Any] = {"split": spec.split}
    if voice is not None:
        extra.update(
            engine=voice.engine,
            voice=voice.name,
            accent=voice.accent,
            delivery=spec.delivery.to_dict(),
            speed_factor=rendered.speed_factor,
            speech_onset=rendered.speech_span[0],
            speech_offset=rendered.speech_span[1],
            f0_median_hz=None if np.isnan(f0) else round(f0, 1),
        )
        if voice.converted:
            extra["converted"] = voice.converted
        if (
            voice.gender != "unknown"
        ):  # a variant without a gender line gives no gender label (data.extra_labels)
            extra["voice_gender"] = voice.gender
    else:
        info = dict(rendered.nonspeech or {})
        extra.update(nonspeech=True, kind=info.pop("kind", spec.nonspeech))
        if info:
            extra["sound"] = info  # level, colour or style of the non-speech sound
    extra.update(seed=spec.seed, acoustics=dict(rendered.acoustics), **dict(spec.info))
    if spec.labels:
        extra["label_kinds"] = {name: LABEL_KINDS[name] for name in spec.labels}
    if spec.event:
        event = {
            "event": spec.event,
            "event_placement": spec.placement,  # None for a vocal event alone
            "event_onset": rendered.event_span[0],
            "event_offset": rendered.event_span[1],
            "event_snr_db": spec.snr_db,
        }
        extra.update({k: v for k, v in event.items() if v is not None})
    record: dict[str, Any] = {
        "key": spec.key,
        "audio": spec.audio_path,
        "task": spec.task,
        "text": spec.text,
        "labels": dict(spec.labels),
        "words": [{"word": w, "start": s, "end": e} for w, s, e in rendered.words]
        if rendered.words
        else None,
        "answer": spec.answer,
        "duration": round(rendered.duration, 4),
        "language": "en",
        "speaker": voice.id if voice is not None else None,
        "extra": extra,
    }
    return {k: v for k, v in record.items() if v is not None and v != {}}


def _render_job(job: tuple[ClipSpec, str]) -> dict[str, Any]:
    """Worker: render one clip, write its wav, return its record (must be a top-level function to pickle)."""
    spec, out_dir = job
    rendered = render_clip(spec)
    path = Path(out_dir) / spec.audio_path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, rendered.audio, SAMPLE_RATE, subtype="PCM_16")
    f0 = float("nan")
    if spec.voice is not None:
        # F0 is a fact about the voice: measured on the clip before noise, reverb and codecs.
        a, b = (int(t * SAMPLE_RATE) for t in rendered.speech_span)
        f0 = median_f0(rendered.dry[a:b] if rendered.dry is not None else rendered.audio[a:b])
    return record_of(spec, rendered, f0)


def _render_all(specs: list[ClipSpec], out_dir: Path, jobs: int, progress: bool) -> list[dict[str, Any]]:
    work = [(s, str(out_dir)) for s in specs]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(work), unit="clip", desc="synth")
    records = []
    if jobs <= 1:
        results = map(_render_job, work)
        pool = None
    else:
        # fork: workers inherit the already-imported modules instead of re-importing torch for each one.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork") if "fork" in methods else None
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
        # map keeps the input order, so the manifest order never depends on which worker finished first.
        results = pool.map(_render_job, work, chunksize=4)
    try:
        for record in results:
            records.append(record)
            if bar is not None:
                bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if bar is not None:
            bar.close()
    return records


def _write_manifest(path: Path, records: list[dict[str, Any]], out_dir: Path) -> None:
    from osum.data.manifest import utterance_from_dict, write_manifest

    # write_manifest resolves audio paths against the working directory and writes them relative to OUT.
    utterances = [
        utterance_from_dict(
            {**r, "audio": str((out_dir / r["audio"]).absolute())}, where=f"{path}:{r['key']}"
        )
        for r in records
    ]
    write_manifest(path, utterances)


def acoustic_items(acoustics: Mapping[str, Any]) -> list[str]:
    """What one clip's ``extra.acoustics`` counts as in the summary: ``["clean"]``, or e.g.
    ``["noise:pink", "reverb", "codec:gsm", "speed", "gain"]``."""
    items = []
    if "noise" in acoustics:
        items.append(f"noise:{acoustics['noise']}")
    if "reverb_rt60" in acoustics:
        items.append("reverb")
    if "codec" in acoustics:
        items.append(f"codec:{acoustics['codec']}")
    if "speed" in acoustics:
        items.append(f"speed:{acoustics['speed']:g}")
    if "gain_db" in acoustics:
        items.append("gain")
    return items or ["clean"]


def _summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict = {s: Counter() for s in SPLITS}
    seconds: dict = {s: defaultdict(float) for s in SPLITS}
    labels: dict = {s: defaultdict(Counter) for s in SPLITS}
    voices: dict = {s: set() for s in SPLITS}
    acoustics: dict = {s: Counter() for s in SPLITS}
    nonspeech: dict = {s: Counter() for s in SPLITS}
    f0s: dict = defaultdict(lambda: defaultdict(list))
    for r in records:
        split, task, extra = r["extra"]["split"], r["task"], r["extra"]
        counts[split][task] += 1
        seconds[split][task] += r["duration"]
        acoustics[split].update(acoustic_items(extra.get("acoustics", {})))
        if extra.get("nonspeech"):
            nonspeech[split][extra["kind"]] += 1
            nonspeech[split][f"task:{task}"] += 1
        if "speaker" in r:
            voices[split].add(r["speaker"])
        for name, value in r.get("labels", {}).items():
            labels[split][task][value] += 1
            if name in ("gender", "age") and extra.get("f0_median_hz") is not None:
                f0s[name][value].append(extra["f0_median_hz"])
    f0 = {
        name: {v: round(float(np.median(x)), 1) for v, x in sorted(per.items())} for name, per in f0s.items()
    }
    return {
        "counts": {s: dict(c) for s, c in counts.items()},
        "seconds": {s: {t: round(v, 2) for t, v in d.items()} for s, d in seconds.items()},
        "labels": {s: {t: dict(c) for t, c in d.items()} for s, d in labels.items()},
        "voices": {s: sorted(v) for s, v in voices.items()},
        "f0": f0,
        "acoustics": {s: dict(sorted(c.items())) for s, c in acoustics.items()},
        "nonspeech": {s: dict(sorted(c.items())) for s, c in nonspeech.items()},
    }


def build_corpus(
    out_dir: str | Path,
    hours: float,
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
    engines: Sequence[str] = ("espeak-ng", "flite"),
    jobs: int = 1,
    task_weights: Mapping[str, float] | None = None,
    flite_split: str = "test",
    flite_share: float = 0.3,
    text_holdout: float = 0.2,
    snr_db: tuple[float, float] = (-5.0, 10.0),
    nonspeech_share: float = 0.06,
    clean_share: float = 0.4,
    overwrite: bool = False,
    progress: bool = False,
) -> CorpusSummary:
    """Build the synthetic multi-task corpus into ``out_dir`` and return a summary.

    Args:
        hours: total estimated audio; spread over the tasks by ``task_weights`` (default: equal) and over the
            splits by ``test_fraction``. Small values work (0.02 h makes about 25 clips).
        seed: the whole corpus (texts, voices, prosody, events, noise) is a function of the seed.
        test_fraction: share of the hours in the test split.
        engines: synthesizers to use, ``espeak-ng`` and/or ``flite``.
        jobs: worker processes for rendering; the output does not depend on it.
        task_weights: ``{task: weight}`` over asr, srwt, ved, ser, ssr, sgc, sap, sttc (missing tasks: 0).
        flite_split: where flite voices go: ``"test"`` (an unseen synthesizer), ``"train"``, or ``"split"``
            (slt and rms test, awb and kal16 train).
        flite_share: chance that a clip uses a flite voice when its split has both engines.
        text_holdout: fraction of sentences (and facts, sums) reserved for the test split.
        snr_db: range of the speech-to-event power ratio for VED clips.
        nonspeech_share: share of every task's clips that hold no speech (empty target; see plan.py).
        clean_share: share of clips left without acoustic augmentation (osum.data.synth.acoustics); 1 = none.
        overwrite: replace an existing corpus in ``out_dir`` (its wavs and manifests) instead of refusing.
        progress: show a progress bar.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
    out = Path(out_dir)
    settings = PlanSettings(
        hours=hours,
        seed=seed,
        test_fraction=test_fraction,
        engines=tuple(engines),
        task_weights=task_weights,
        flite_split=flite_split,
        flite_share=flite_share,
        text_holdout=text_holdout,
        snr_db=tuple(snr_db),
        nonspeech_share=nonspeech_share,
        clean_share=clean_share,
    )
    started = time.monotonic()
    specs = plan_corpus(settings)  # validates the settings before anything is written
    existing = [p for p in (out / "train.jsonl", out / "test.jsonl", out / "wavs") if p.exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{out} already holds a corpus ({existing[0].name}); pass overwrite=True (--overwrite)"
        )
    if (out / "wavs").exists():
        shutil.rmtree(out / "wavs")  # stale clips of an earlier, larger build must not linger
    out.mkdir(parents=True, exist_ok=True)
    records = _render_all(specs, out, jobs, progress)
    manifests = {}
    for split in SPLITS:
        manifests[split] = out / f"{split}.jsonl"
        _write_manifest(manifests[split], [r for r in records if r["extra"]["split"] == split], out)
    summary = CorpusSummary(
        out_dir=out,
        manifests=manifests,
        card=out / "README.md",
        build_seconds=round(time.monotonic() - started, 2),
        **_summarise(records),
    )
    write_card(summary.card, summary, settings, TASK_LABELS)
    return summary
