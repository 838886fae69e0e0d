"""Corpus planning: which clips to make (task, split, text, voice, delivery, labels), before any audio exists.

The plan is a pure function of its arguments, and each (split, task) pair draws from its own random stream,
so the same seed always gives the same plan, and changing one task's share does not change other tasks.
Rendering a :class:`ClipSpec` (``osum.data.synth.render``) depends only on the spec, which is what makes
parallel builds deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth import prosody
from osum.data.synth.events import EVENT_GENERATORS, PLACEMENTS
from osum.data.synth.prosody import Delivery
from osum.data.synth.questions import sample_question
from osum.data.synth.text import EMOTION_TEMPLATES, SPLITS, STYLE_TEMPLATES, pick, sample_sentence, words_of
from osum.data.synth.voices import Voice, split_voices
from osum.errors import ConfigError

TASK_NAMES = ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc")
# The labels each classification task cycles through (OSUM's vocabularies, without "other").
TASK_LABELS = MappingProxyType(
    {
        "ved": ("event", tuple(EVENT_GENERATORS)),
        "ser": ("emotion", tuple(EMOTION_TEMPLATES)),
        "ssr": ("style", tuple(STYLE_TEMPLATES)),
        "sgc": ("gender", ("female", "male")),
        "sap": ("age", ("child", "adult", "old")),
    }
)
MAX_SECONDS = 12.0
MIN_SECONDS = 1.0
_TARGET_SECONDS = 9.0  # plan clips to about this length at most; rendering speeds up anything over 12 s


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip and write its manifest record."""

    key: str
    split: str
    task: str
    text: str
    voice: Voice
    delivery: Delivery
    seed: int
    labels: Mapping[str, str] = field(default_factory=dict)
    word_by_word: bool = False  # SRWT: synthesize each word alone so that word times are exact
    event: str | None = None  # VED: event name, its placement and its speech-to-event power ratio (dB)
    placement: str | None = None
    snr_db: float | None = None
    answer: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)  # goes into the record's extra (question facts)

    @property
    def audio_path(self) -> str:
        """Path of the wav relative to the corpus folder."""
        return f"wavs/{self.split}/{self.task}/{self.key}.wav"


@dataclass(frozen=True)
class PlanSettings:
    """Knobs of :func:`plan_corpus` (see ``build_corpus`` for their meaning)."""

    hours: float
    seed: int
    test_fraction: float = 0.2
    engines: tuple[str, ...] = ("espeak-ng", "flite")
    task_weights: Mapping[str, float] | None = None
    flite_split: str = "test"
    flite_share: float = 0.3
    text_holdout: float = 0.2
    snr_db: tuple[float, float] = (-5.0, 10.0)
    min_clips: int = 2

    def validate(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.hours, (int, float)) and self.hours > 0):
            raise ConfigError(f"hours must be > 0, got {self.hours!r}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction!r}")
        if not 0.0 < self.text_holdout < 1.0:
            raise ConfigError(f"text_holdout must be in (0, 1), got {self.text_holdout!r}")
        if not 0.0 <= self.flite_share <= 1.0:
            raise ConfigError(f"flite_share must be in [0, 1], got {self.flite_share!r}")
        low, high = self.snr_db
        if low > high:
            raise ConfigError(f"snr_db range must be (low, high) with low <= high, got {self.snr_db!r}")
        for name, w in self.weights().items():
            if not (isinstance(w, (int, float)) and w >= 0):
                raise ConfigError(f"task weight of {name!r} must be a number >= 0, got {w!r}")
        if sum(self.weights().values()) <= 0:
            raise ConfigError("at least one task weight must be > 0")

    def weights(self) -> dict[str, float]:
        if self.task_weights is None:
            return dict.fromkeys(TASK_NAMES, 1.0)
        unknown = sorted(set(self.task_weights) - set(TASK_NAMES))
        if unknown:
            raise ConfigError(f"unknown task(s) {unknown} in task weights; valid: {', '.join(TASK_NAMES)}")
        return {t: float(self.task_weights.get(t, 0.0)) for t in TASK_NAMES}


def _seconds_per_word(d: Delivery, word_by_word: bool) -> float:
    # Fitted on built corpora: a word said alone (SRWT) takes much longer than inside a sentence.
    if word_by_word:
        return 0.42 * 175.0 / d.speed + 0.09
    return 60.0 / d.speed * 0.95 + d.word_gap * 0.01


def estimate_seconds(spec: ClipSpec) -> float:
    """Rough clip length before rendering (used to spend the hour budget; within about 10% on average)."""
    n = len(words_of(spec.text))
    event = 1.0 if spec.event is not None and spec.placement != "inside" else 0.0
    return n * _seconds_per_word(spec.delivery, spec.word_by_word) + 0.5 + event


def _max_words(d: Delivery, word_by_word: bool, event: bool) -> int:
    budget = _TARGET_SECONDS - 0.5 - (1.5 if event else 0.0)
    return max(4, int(budget / _seconds_per_word(d, word_by_word)))


def _choose_voice(
    pool: Sequence[Voice], rng: np.random.Generator, flite_share: float, gender: str | None = None
) -> Voice:
    if gender is not None:
        pool = [v for v in pool if v.gender == gender]
        if not pool:
            raise ConfigError(
                f"no {gender} voice in this split with the chosen engines (needed for SGC and SAP); "
                "add espeak-ng or change flite_split"
            )
    flite = [v for v in pool if v.engine == "flite"]
    espeak = [v for v in pool if v.engine != "flite"]
    if flite and (not espeak or rng.random() < flite_share):
        return pick(rng, flite)
    return pick(rng, espeak)


def _plan_one(
    task: str,
    split: str,
    key: str,
    label: str | None,
    pool: Sequence[Voice],
    rng: np.random.Generator,
    s: PlanSettings,
) -> ClipSpec:
    # Children are spoken by female engine voices: before puberty voices of both sexes are alike, and the
    # male engine voices cannot be raised to a child's F0 (about 300 Hz) without sounding like cartoons.
    gender = label if task == "sgc" else "female" if (task, label) == ("sap", "child") else None
    voice = _choose_voice(pool, rng, s.flite_share, gender=gender)
    seed = int(rng.integers(2**62))
    common = {"key": key, "split": split, "task": task, "voice": voice, "seed": seed}
    field_name = TASK_LABELS[task][0] if task in TASK_LABELS else None
    labels = {field_name: label} if field_name else {}

    if task == "sttc":
        q = sample_question(rng, split, s.text_holdout)
        return ClipSpec(
            text=q.text, delivery=prosody.default_delivery(rng), answer=q.answer, info=q.extra, **common
        )
    if task == "ser":
        d, kind = prosody.emotion_delivery(label, rng), f"emotion:{label}"
    elif task == "ssr":
        d, kind = prosody.style_delivery(label, rng), label
    elif task == "sap":
        d, kind = prosody.age_delivery(label, rng), "general"
    else:
        d, kind = prosody.default_delivery(rng), "general"
    event = placement = snr = None
    if task == "ved":
        event, placement = label, pick(rng, PLACEMENTS)
        snr = round(float(rng.uniform(*s.snr_db)), 2)
    word_by_word = task == "srwt"
    max_words = _max_words(d, word_by_word, event is not None)
    text = sample_sentence(kind, split, rng, s.text_holdout, max_words=max_words)
    return ClipSpec(
        text=text,
        delivery=d,
        labels=labels,
        word_by_word=word_by_word,
        event=event,
        placement=placement,
        snr_db=snr,
        **common,
    )


def plan_corpus(settings: PlanSettings) -> list[ClipSpec]:
    """All clips of the corpus, train first, then test; within a split task by task in ``TASK_NAMES`` order.

    Each (split, task) gets ``hours * split share * task weight / total weight`` of estimated audio, and at
    least ``min_clips`` clips when its share is not zero. Classification labels are used in turn (in a
    shuffled order per round), so even a tiny corpus covers every label of a task about equally.
    """
    settings.validate()
    voices = split_voices(settings.engines, settings.flite_split)
    weights = settings.weights()
    total_weight = sum(weights.values())
    specs: list[ClipSpec] = []
    for split_index, split in enumerate(SPLITS):
        share = settings.test_fraction if split == "test" else 1.0 - settings.test_fraction
        for task_index, task in enumerate(TASK_NAMES):
            budget = settings.hours * 3600.0 * share * weights[task] / total_weight
            if budget <= 0:
                continue
            rng = np.random.default_rng([settings.seed, split_index, task_index])
            labels = TASK_LABELS[task][1] if task in TASK_LABELS else (None,)
            order: list = []
            spent, count = 0.0, 0
            while spent < budget or count < settings.min_clips:
                if not order:
                    order = [labels[i] for i in rng.permutation(len(labels))]
                key = f"{split}-{task}-{count:06d}"
                spec = _plan_one(task, split, key, order.pop(0), voices[split], rng, settings)
                specs.append(spec)
                spent += estimate_seconds(spec)
                count += 1
    return specs
