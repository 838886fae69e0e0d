"""Frozen-encoder cache (``data.encoder_cache``): each training clip's encoder output, computed once.

Dimension legend: T mel frames, T1 = ceil(T/2) encoder frames, D encoder width, B batch.

Why: a pretrained Whisper encoder that stays frozen (the mini recipe keeps what it knows of real speech) gives the
same frames for a clip at every epoch and in every stage that reads it. Run on a padded 30 s window
(``encoder.pad_to_window``) it costs about half a second of CPU per clip, more than the rest of a CTC step; cached,
a stage pays it once per clip, and the next stages on the same corpus not at all.

A cache folder holds one ``<key>.npz`` per clip (float16 frames and the clip's mel length), for label heads that
read pitch its F0 statistics (``<key>.pitch-v1.npy``, written at first use) and ``fingerprint.txt``,
a hash of the encoder's weights and settings: a folder written by another encoder is refused, never silently mixed
in. An encoder that runs on a padded window (``encoder.pad_to_window``) stores the whole window ``(W, D)``, since
Whisper's decoder reads all of it (the label heads and the adaptor read the clip's own first ``T1`` frames);
otherwise the clip's own frames ``(T1, D)``. SpecAugment then masks spans of the clip's frames and channels of the
cached output instead of log-mel frames and bins (:func:`osum.data.augment.spec_augment`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from osum.data.audio import log_mel_spectrogram
from osum.data.manifest import Utterance, load_utterance_audio
from osum.errors import ConfigError, OsumError
from osum.model.encoder import WhisperEncoder

log = logging.getLogger(__name__)
FINGERPRINT_FILE = "fingerprint.txt"
# F0 statistics beside a clip's frames; the version names the pitch_features settings they were made with
PITCH_SUFFIX = "pitch-v1.npy"


def encoder_fingerprint(encoder: WhisperEncoder) -> str:
    """A hash of the encoder's weights and settings (what its frames depend on)."""
    h = hashlib.blake2b(digest_size=12)
    # "window": the stored layout (whole window for pad_to_window encoders); caches of the older own-frames layout
    # get another fingerprint and are refused
    h.update(b"window" if encoder.config.pad_to_window else b"own")
    h.update(repr(encoder.config).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def clip_key(u: Utterance) -> str:
    """The file stem of a clip: a hash of where its audio is (file, start, end), not of its task or text."""
    where = f"{u.audio}|{u.start}|{u.end}"
    return hashlib.blake2b(where.encode("utf-8"), digest_size=12).hexdigest()


class EncoderCache:
    """One cache folder; :meth:`check` ties it to an encoder before anything is read or written."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def check(self, fingerprint: str) -> None:
        """Create the folder for ``fingerprint``, or raise ConfigError if another encoder wrote it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / FINGERPRINT_FILE
        if not path.is_file():
            path.write_text(fingerprint + "\n", encoding="utf-8")
        elif path.read_text(encoding="utf-8").strip() != fingerprint:
            raise ConfigError(
                f"data.encoder_cache {self.folder}: written by another encoder (or other encoder settings) than "
                "this run's; point it at a new folder"
            )

    def path(self, u: Utterance) -> Path:
        return self.folder / f"{clip_key(u)}.npz"

    def load(self, u: Utterance) -> tuple[torch.Tensor, int]:
        """The clip's frames float32 (``(W, D)``, the whole window, for a ``pad_to_window`` encoder, else
        ``(T1, D)``) and its mel length ``T``; OsumError naming the clip if they were never written."""
        path = self.path(u)
        try:
            with np.load(path) as data:
                return torch.from_numpy(data["frames"].astype(np.float32)), int(data["mel_frames"])
        except (OSError, ValueError, KeyError) as exc:
            raise OsumError(f"{u.key}: no cached encoder frames at {path} ({exc})") from None

    def write(self, u: Utterance, frames: torch.Tensor, mel_frames: int) -> None:
        """Store ``frames`` ``(W or T1, D)`` of a clip of ``mel_frames`` mel frames; written under a temporary name,
        then renamed (a kill leaves no half-written file)."""
        path = self.path(u)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, frames=frames.detach().to(torch.float16).cpu().numpy(), mel_frames=np.int64(mel_frames))
        tmp.replace(path)

    def pitch_path(self, u: Utterance) -> Path:
        return self.folder / f"{clip_key(u)}.{PITCH_SUFFIX}"

    def load_pitch(self, u: Utterance) -> torch.Tensor | None:
        """The clip's stored F0 statistics ``(PITCH_FEATURES,)`` (:func:`osum.data.pitch.pitch_features`), or None.

        Label heads that read pitch need it for every clip at every epoch; Praat's tracker costs more than reading
        the cached frames, and a cached clip's audio never changes (no wave augmentation on cached frames)."""
        try:
            return torch.from_numpy(np.load(self.pitch_path(u)).astype(np.float32))
        except (OSError, ValueError):
            return None

    def write_pitch(self, u: Utterance, pitch: torch.Tensor) -> None:
        """Store the clip's F0 statistics next to its frames (temporary name, then renamed: safe for several
        loader processes writing the same clip)."""
        path = self.pitch_path(u)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, pitch.detach().to(torch.float32).cpu().numpy())
        tmp.replace(path)

    def missing(self, utterances: Sequence[Utterance]) -> list[Utterance]:
        """The clips (one per audio span) without a file yet."""
        seen: set[str] = set()
        out = []
        for u in utterances:
            key = clip_key(u)
            if key not in seen and not (self.folder / f"{key}.npz").is_file():
                seen.add(key)
                out.append(u)
        return out


@torch.inference_mode()
def fill_cache(
    cache: EncoderCache,
    encoder: WhisperEncoder,
    utterances: Sequence[Utterance],
    batch_size: int = 8,
    progress: bool = False,
) -> int:
    """Compute and store the frames of every clip of ``utterances`` not yet cached -> how many were written.

    Clips are encoded in length-sorted batches; a padded batch gives each clip the frames it gets alone. A
    ``pad_to_window`` encoder's whole window is stored (see the module docstring)."""
    from osum.data.collate import collate

    cache.check(encoder_fingerprint(encoder))
    todo = cache.missing(utterances)
    if not todo:
        return 0
    device = encoder.conv1.weight.device
    mels = []
    for u in todo:
        mels.append(log_mel_spectrogram(load_utterance_audio(u), encoder.config.n_mels))
    order = sorted(range(len(todo)), key=lambda i: -mels[i].shape[0])
    steps = range(0, len(order), batch_size)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="encoder cache", unit="batch")
    window = encoder.config.pad_to_window
    was_training = encoder.training
    encoder.eval()
    for start in steps:
        chunk = order[start : start + batch_size]
        batch = collate([mels[i] for i in chunk], [[] for _ in chunk], [[] for _ in chunk])
        frames, lengths = encoder(batch.feats.to(device), batch.feat_lengths.to(device), keep_window=window)
        for row, i in enumerate(chunk):
            keep = frames.shape[1] if window else int(lengths[row])
            cache.write(todo[i], frames[row, :keep].float(), int(batch.feat_lengths[row]))
    encoder.train(was_training)
    log.info("encoder cache %s: %d clips written", cache.folder, len(todo))
    return len(todo)
