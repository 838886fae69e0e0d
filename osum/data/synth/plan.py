"""Corpus planning: which clips to make (task, split, text, voice, delivery, labels), before any audio exists.

The plan is a pure function of its arguments, and each (split, task) pair draws from its own random streams
(one for texts, voices and deliveries, one for the acoustic chains, one for the clips without speech), so the
same seed always gives the same plan, and changing one task's share does not change other tasks. Rendering a
:class:`ClipSpec` (``osum.data.synth.render``) depends only on the spec, which is what makes parallel builds
deterministic.

Every task also gets clips WITHOUT speech (``PlanSettings.nonspeech_share`` of its clips): silence, room tone,
noise, hum, tones, clicks, or a vocal event alone. Their transcript is empty and they carry no label, except a
vocal event alone in VED, which keeps its event label (target ``"<cough>"``); so whatever the prompt, the model
learns that no speech means an empty answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from osum.data.synth import prosody
from osum.data.synth.acoustics import TASK_POLICIES, AcousticChain, sample_chain
from osum.data.synth.events import EVENT_GENERATORS, NONSPEECH_KINDS, PLACEMENTS
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
NONSPEECH_SECONDS = (1.0, 8.0)  # length range of a clip without speech
# Which voices a task may use: SGC and SAP need a known gender (and a real F0); SER and SSR a real F0 (their
# labels are pitch, rate and voice quality); the others take any voice, whispering and gender-unknown ones too.
_GENDER_TASKS = ("sgc", "sap")
_VOICED_TASKS = ("ser", "ssr")
# How often each gender group is picked when a task does not fix the gender (the variant pool itself is about
# 18 female, 30 male and 53 gender-unknown variants).
_GENDER_WEIGHTS = MappingProxyType({"female": 0.4, "male": 0.35, "unknown": 0.25})
_TARGET_SECONDS = 9.0  # plan clips to about this length at most; rendering speeds up anything over 12 s


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip and write its manifest record."""

    key: str
    split: str
    task: str
    text: str
    voice: Voice | None  # None for a clip without speech
    delivery: Delivery
    seed: int
    labels: Mapping[str, str] = field(default_factory=dict)
    word_by_word: bool = False  # SRWT: synthesize each word alone so that word times are exact
    event: str | None = None  # VED: event name, its placement and its speech-to-event power ratio (dB)
    placement: str | None = None
    snr_db: float | None = None
    answer: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)  # goes into the record's extra (question facts)
    acoustics: AcousticChain = AcousticChain()  # speed, reverb, noise, codec, gain (see acoustics.py)
    nonspeech: str | None = None  # a clip without speech: its kind (events.NONSPEECH_KINDS)
    seconds: float | None = None  # planned length of a clip without speech

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
    nonspeech_share: float = 0.06  # share of each task's clips that hold no speech
    clean_share: float = 0.4  # share of clips left without acoustic augmentation

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
        if not 0.0 <= self.nonspeech_share <= 0.5:
            raise ConfigError(f"nonspeech_share must be in [0, 0.5], got {self.nonspeech_share!r}")
        if not 0.0 <= self.clean_share <= 1.0:
            raise ConfigError(f"clean_share must be in [0, 1], got {self.clean_share!r}")
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
    if spec.nonspeech is not None:
        return spec.seconds or MIN_SECONDS
    n = len(words_of(spec.text))
    event = 1.0 if spec.event is not None and spec.placement != "inside" else 0.0
    return n * _seconds_per_word(spec.delivery, spec.word_by_word) / spec.acoustics.speed + 0.5 + event


def _max_words(d: Delivery, word_by_word: bool, event: bool) -> int:
    budget = _TARGET_SECONDS - 0.5 - (1.5 if event else 0.0)
    return max(4, int(budget / _seconds_per_word(d, word_by_word)))


def _choose_voice(
    pool: Sequence[Voice],
    rng: np.random.Generator,
    flite_share: float,
    task: str,
    gender: str | None = None,
) -> Voice:
    if task in _GENDER_TASKS:
        pool = [v for v in pool if v.gender_known]
    elif task in _VOICED_TASKS:
        pool = [v for v in pool if v.voiced]
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
    # A gender group first, then a voice of it: otherwise the many gender-unknown variants would dominate.
    groups = [g for g in _GENDER_WEIGHTS if any(v.gender == g for v in espeak)]
    p = np.array([_GENDER_WEIGHTS[g] for g in groups])
    group = groups[int(rng.choice(len(groups), p=p / p.sum()))]
    return pick(rng, [v for v in espeak if v.gender == group])


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
    voice = _choose_voice(pool, rng, s.flite_share, task, gender=gender)
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


def _plan_nonspeech(task: str, split: str, key: str, rng: np.random.Generator, s: PlanSettings) -> ClipSpec:
    """A clip without speech for ``task``: empty text, no labels (a vocal event alone keeps its label in VED)."""
    kinds = list(NONSPEECH_KINDS)
    p = np.array([NONSPEECH_KINDS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    seconds = round(float(rng.uniform(*NONSPEECH_SECONDS)), 2)
    event = pick(rng, tuple(EVENT_GENERATORS)) if kind == "event" else None
    policy = TASK_POLICIES["ved" if kind == "event" else "nonspeech"]
    # A lone event is its own "speech" for the noise SNR: at least 5 dB above the noise.
    chain = sample_chain(rng, replace(policy, clean_share=s.clean_share), event_snr_db=0.0 if event else None)
    return ClipSpec(
        key=key,
        split=split,
        task=task,
        text="",
        voice=None,
        delivery=Delivery(),
        seed=int(rng.integers(2**62)),
        labels={"event": event} if task == "ved" and event else {},
        event=event,
        acoustics=replace(chain, speed=1.0),
        nonspeech=kind,
        seconds=seconds,
    )


def plan_corpus(settings: PlanSettings) -> list[ClipSpec]:
    """All clips of the corpus, train first, then test; within a split task by task in ``TASK_NAMES`` order.

    Each (split, task) gets ``hours * split share * task weight / total weight`` of estimated audio, and at
    least ``min_clips`` speech clips when its share is not zero; ``nonspeech_share`` of its clips (spread
    evenly, the first after about 8 speech clips at the default share) hold no speech. Classification labels are
    used in turn (in a shuffled order per round), so even a tiny corpus covers every label of a task about
    equally.
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
            aug_rng = np.random.default_rng([settings.seed, split_index, task_index, 1])
            none_rng = np.random.default_rng([settings.seed, split_index, task_index, 2])
            policy = replace(TASK_POLICIES[task], clean_share=settings.clean_share)
            labels = TASK_LABELS[task][1] if task in TASK_LABELS else (None,)
            # Non-speech clips per speech clip; `due` spreads them evenly through the task's clips.
            ratio = settings.nonspeech_share / (1.0 - settings.nonspeech_share)
            order: list = []
            spent, count, speech_clips, due = 0.0, 0, 0, 0.5
            while spent < budget or speech_clips < settings.min_clips:
                key = f"{split}-{task}-{count:06d}"
                if due >= 1.0:
                    spec = _plan_nonspeech(task, split, key, none_rng, settings)
                    due -= 1.0
                else:
                    if not order:
                        order = [labels[i] for i in rng.permutation(len(labels))]
                    spec = _plan_one(task, split, key, order.pop(0), voices[split], rng, settings)
                    chain = sample_chain(aug_rng, policy, event_snr_db=spec.snr_db)
                    spec = replace(spec, acoustics=chain)
                    speech_clips += 1
                    due += ratio
                specs.append(spec)
                spent += estimate_seconds(spec)
                count += 1
    return specs
