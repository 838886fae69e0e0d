"""Training data: manifests -> filtered, planned batches -> prepared :class:`Batch` es (in worker processes).

``TrainingData`` reads every manifest once (metadata only), measures lengths, applies OSUM's filters and plans
batches per epoch (:mod:`osum.data.sampler`). ``BatchSet`` is a map-style torch Dataset whose item ``i`` is a whole
prepared batch: audio decoded, log-mel, SpecAugment, a prompt drawn for each utterance, ASR+X target tokens.
All randomness is drawn from ``(seed, epoch, utterance index)``, so a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence

import soundfile as sf
import torch

from osum.codec import LLMCodec, TranscriptCodec, WhisperCodec
from osum.config import DataConfig, DatasetEntry
from osum.data.audio import log_mel_spectrogram, num_mel_frames
from osum.data.augment import spec_augment
from osum.data.collate import collate
from osum.data.encoder_cache import EncoderCache
from osum.data.manifest import Utterance, load_utterance_audio
from osum.data.pitch import pitch_features
from osum.data.reader import read_any
from osum.data.sampler import ItemInfo, filter_items, plan_epoch
from osum.errors import ConfigError, OsumError
from osum.model.adaptor import num_speech_tokens
from osum.model.encoder import encoder_frames
from osum.model.osum import Batch
from osum.tasks import LABEL_FIELDS, attribute_classes, get_task, normalize_text

log = logging.getLogger(__name__)


def utterance_seconds(u: Utterance) -> float:
    """Duration from the manifest when present, else from the audio header (cheap: no decoding)."""
    if u.duration is not None:
        return float(u.duration)
    if u.start is not None and u.end is not None:
        return float(u.end) - float(u.start)
    if u.audio_bytes is not None:
        import io

        info = sf.info(io.BytesIO(u.audio_bytes))
    else:
        info = sf.info(u.audio)
    end = float(u.end) if u.end is not None else info.frames / info.samplerate
    return end - float(u.start or 0.0)


def speech_label(u: Utterance) -> str | None:
    """The clip's value of the ``speech`` field (:data:`osum.vocabulary.SPEECH_FIELD`), from its transcript:
    ``"speech"`` when it has words; when it is empty, ``"vocal"`` if the clip holds a vocal event (an ``event``
    label, or ``extra.event`` as `osum data synth` writes for a lone event under every task) and ``"none"``
    otherwise; None (unknown) without a transcript."""
    if u.text is None:
        return None
    if normalize_text(u.text):
        return "speech"
    return "vocal" if u.labels.get("event") or u.extra.get("event") else "none"


class TrainingData:
    """All utterances of the configured manifests, with the lengths batching needs."""

    def __init__(
        self,
        entries: Sequence[DatasetEntry],
        cfg: DataConfig,
        codec: LLMCodec | WhisperCodec | TranscriptCodec,
        n_mels: int = 80,
        transcripts: TranscriptCodec | None = None,
        label_weight: float = 1.0,
        pitch: bool = False,
    ) -> None:
        """``transcripts``: also give every batch the transcript ids (``Batch.transcript_ids``) of this codec.
        ``label_weight`` != 1: training batches weight the label tags' tokens of the targets by it in the LM loss
        (``Batch.target_weights``, :meth:`LLMCodec.label_token_mask`); evaluation batches stay unweighted.
        ``pitch``: give every batch the clips' F0 statistics (``Batch.pitch``; ``ModelConfig.label_pitch``), read
        from the audio even when the encoder's output is cached."""
        if not entries:
            raise OsumError("no training data: set data.train to a list of {path, weight}")
        if label_weight <= 0:
            raise ConfigError(f"train.label_loss_weight must be > 0, got {label_weight}")
        if label_weight != 1 and not isinstance(codec, LLMCodec):
            raise ConfigError(
                "train.label_loss_weight weights the LM targets of an OSUM model (train.objective=lm)"
            )
        unknown = sorted(set(cfg.extra_labels) - set(LABEL_FIELDS))
        if unknown:
            raise ConfigError(
                f"data.extra_labels: {unknown} are not label fields; choose from {list(LABEL_FIELDS)}"
            )
        self.cfg, self.n_mels = cfg, n_mels
        # data.encoder_cache: the trainer fills it (fill_cache) before the first batch is read
        self.cache = EncoderCache(cfg.encoder_cache) if cfg.encoder_cache else None
        self.codec, self.transcripts, self.label_weight = codec, transcripts, label_weight
        self.pitch = pitch
        self.weights = [e.weight for e in entries]
        self.utterances: list[Utterance] = []
        self.skipped: Counter = Counter()
        infos: list[ItemInfo] = []
        prompt_len: dict[str, int] = {}
        for source, entry in enumerate(entries):
            reader = read_any(entry.path, on_error=cfg.on_error)
            for u in reader:
                task = get_task(u.task)
                self.auxiliary_labels(u)  # a bad extra label is named now, not mid-run
                try:
                    seconds = utterance_seconds(u)
                except (RuntimeError, OSError, sf.LibsndfileError) as exc:
                    if cfg.on_error == "raise":
                        raise OsumError(f"{u.audio}: cannot read audio header: {exc}") from None
                    self.skipped["unreadable audio"] += 1
                    continue
                if task.name not in prompt_len:
                    prompt_len[task.name] = self.codec.max_prompt_tokens(task)
                label = len(self.codec.target_ids(task, u.text, u.labels, u.words, u.answer))
                frames = num_mel_frames(round(seconds * 16000))
                total = prompt_len[task.name] + int(num_speech_tokens(frames)) + 2 + label
                infos.append(ItemInfo(len(self.utterances), frames, total, label, source))
                self.utterances.append(u)
            bad = getattr(reader, "skipped", [])
            if bad:
                self.skipped["bad manifest record"] += len(bad)
                log.warning("%s: skipped %d bad records, e.g. %s", entry.path, len(bad), bad[:3])
        self.items, dropped = filter_items(infos, cfg)
        self.skipped.update({f"filter: {k}": v for k, v in dropped.items()})
        if not self.items:
            raise OsumError(
                f"no usable utterances in {[e.path for e in entries]} (dropped: {dict(self.skipped)})"
            )
        log.info("training data: %d utterances kept, dropped %s", len(self.items), dict(self.skipped))

    def auxiliary_labels(self, u: Utterance) -> Mapping[str, str]:
        """The labels of ``u`` for the auxiliary classifiers: its own, ``speech`` (:func:`speech_label`), plus
        ``data.extra_labels``' fields it lacks, read from its ``extra``. A value the field does not know is an
        error naming the clip."""
        labels = dict(u.labels)
        heard = speech_label(u)
        if heard is not None and "speech" not in labels:
            labels["speech"] = heard
        for name, key in self.cfg.extra_labels.items():
            if name in labels or key not in u.extra:
                continue
            if LABEL_FIELDS[name].canonical(u.extra[key]) is None:
                raise OsumError(
                    f"{u.key}: extra.{key} = {u.extra[key]!r} (data.extra_labels.{name}) is not a {name} label; "
                    f"choose from {list(LABEL_FIELDS[name].values)}"
                )
            labels[name] = u.extra[key]
        return labels

    def target_vocabulary(self, codec: LLMCodec | WhisperCodec | TranscriptCodec | None = None) -> set[int]:
        """Every token id of the kept utterances' targets under ``codec`` (default: the data's own), e.g. the
        classes a CTC objective scores."""
        codec = codec or self.codec
        vocab: set[int] = set()
        for item in self.items:
            u = self.utterances[item.index]
            vocab.update(codec.target_ids(get_task(u.task), u.text, u.labels, u.words, u.answer))
        return vocab

    def plan(self, epoch: int) -> list[list[int]]:
        return plan_epoch(self.items, self.weights, self.cfg, epoch)

    def batch_set(self, batches: list[list[int]], epoch: int, train: bool = True) -> BatchSet:
        return BatchSet(self, batches, epoch, train)


class BatchSet(torch.utils.data.Dataset):
    """Item ``i`` = planned batch ``i``, fully prepared. Unreadable audio is dropped from its batch and counted."""

    def __init__(self, data: TrainingData, batches: list[list[int]], epoch: int, train: bool) -> None:
        self.data, self.batches, self.epoch, self.train = data, batches, epoch, train

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[Batch | None, int]:
        d, cfg = self.data, self.data.cfg
        feats, prompts, targets, attributes, transcripts, bad = [], [], [], [], [], 0
        frames: list[torch.Tensor] = []
        pitch: list[torch.Tensor] = []
        weigh = self.train and d.label_weight != 1
        weights: list[list[float]] = []
        for index in self.batches[i]:
            u = d.utterances[index]
            rng = random.Random(f"{cfg.seed}:{self.epoch}:{index}")
            try:
                if d.cache is not None:
                    cached, n_mel = d.cache.load(u)
                    if self.train and cfg.spec_augment:  # masks of frames (half as many) and channels
                        channels = cfg.max_freq_mask * cached.shape[1] // d.n_mels
                        cached = spec_augment(
                            cached,
                            rng,
                            cfg.time_masks,
                            cfg.max_time_mask // 2,
                            cfg.freq_masks,
                            channels,
                            frames=int(encoder_frames(n_mel)),
                        )
                    frames.append(cached)
                    # the mel length is all the model needs of the features when it has the encoder's output
                    mel = torch.zeros(n_mel, 0)
                stored = d.cache.load_pitch(u) if d.cache is not None and d.pitch else None
                if d.cache is None or (d.pitch and stored is None):
                    wave = load_utterance_audio(u, max_seconds=cfg.max_seconds + 1.0)
                if d.cache is None:
                    mel = log_mel_spectrogram(wave, d.n_mels)
                if d.pitch:
                    if stored is None:
                        stored = pitch_features(wave)
                        if d.cache is not None:  # the cached clip's audio is never augmented: compute once
                            d.cache.write_pitch(u, stored)
                    pitch.append(stored)
            except OsumError as exc:
                if cfg.on_error == "raise":
                    raise
                log.warning("skipping %s: %s", u.key, exc)
                bad += 1
                continue
            if self.train and cfg.spec_augment and d.cache is None:
                mel = spec_augment(
                    mel, rng, cfg.time_masks, cfg.max_time_mask, cfg.freq_masks, cfg.max_freq_mask
                )
            task = get_task(u.task)
            prompts.append(d.codec.prompt_ids(task, rng))
            targets.append(d.codec.target_ids(task, u.text, u.labels, u.words, u.answer))
            attributes.append(attribute_classes(d.auxiliary_labels(u)))
            if weigh:
                mask = d.codec.label_token_mask(task, u.text, u.labels, u.words, u.answer)
                weights.append([d.label_weight if m else 1.0 for m in mask])
            if d.transcripts is not None:
                transcripts.append(d.transcripts.target_ids(task, u.text, u.labels, u.words, u.answer))
            feats.append(mel)
        if not feats:
            return None, bad
        batch = collate(
            feats,
            prompts,
            targets,
            pad_id=d.codec.eos_id,
            attributes=attributes,
            transcripts=transcripts if d.transcripts is not None else None,
            target_weights=weights if weigh else None,
            encoder_frames=frames if d.cache is not None else None,
            pitch=pitch if d.pitch else None,
        )
        return batch, bad
