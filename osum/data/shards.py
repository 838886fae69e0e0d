"""OSUM-compatible tar shards: write them from utterances, read them (ours or OSUM's) back.

A shard is a plain tar holding, for each utterance, consecutive members named ``<key>.<suffix>`` as OSUM's
``make_shard_list_osum.py`` writes them and its ``tar_file_and_group_full_data`` reads them:

=============  ===================================================================================
``.wav``       the segment as 16 kHz mono int16 WAV (resampled with ``load_audio``, cropped to start/end)
``.txt``       the ASR+X target text, e.g. ``hello world<female>``
``.task``      the OSUM tag, e.g. ``<TRANSCRIBE> <GENDER>``
``.lang``      ``.speaker`` ``.gender`` ``.emotion`` ``.duration`` (seconds) -- when known
``.extra``     the ``extra`` object as JSON -- when not empty
``.osum``      our full record as JSON (:meth:`Utterance.to_dict`), so our own round trip is lossless
=============  ===================================================================================

All text is UTF-8 and member sizes are byte counts (OSUM's writer counts characters, which truncates
non-ASCII values). Our record is ``<key>.osum`` rather than ``<key>.osum.json`` on purpose: OSUM and WeNet
group members by the name up to the *last* dot, so ``.osum.json`` would start a phantom sample ``<key>.osum``;
with ``.osum`` OSUM just carries the bytes along unused. A list file (``shards.list``) names one tar per line.

Reading prefers the ``.osum`` member; without it (OSUM's own shards) the fields are rebuilt from ``.txt``
(split with the ``.task``'s parser; no ``.task`` means ASR, as in OSUM) and the other members.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from osum.data.audio import SAMPLE_RATE
from osum.data.manifest import (
    ManifestIterator,
    Utterance,
    check_on_error,
    existing_file,
    load_utterance_audio,
    resolve,
    utterance_from_dict,
    validate_utterance,
)
from osum.data.osum_raw import utterance_from_osum
from osum.errors import AudioError, ConfigError, ManifestError, TaskError
from osum.tasks import get_task

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = ("wav", "flac", "mp3", "m4a", "ogg", "opus", "wma")  # OSUM's AUDIO_FORMAT_SETS
RECORD_SUFFIX = "osum"
LIST_NAME = "shards.list"
_TEXT_MEMBERS = ("txt", "task", "lang", "speaker", "gender", "emotion", "duration")


def encode_wav(wave: np.ndarray) -> bytes:
    """Float samples ``(N,)`` in [-1, 1] at 16 kHz -> 16-bit PCM WAV bytes (rounded, clipped: x -> round(32768 x))."""
    pcm = np.clip(np.round(np.asarray(wave, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def shard_members(u: Utterance, *, require_target: bool = True) -> list[tuple[str, bytes]]:
    """The tar members of one utterance, ``[(name, data), ...]``; decodes (and resamples/crops) its audio."""
    u = validate_utterance(u, require_target=require_target)
    wave = load_utterance_audio(u).numpy()
    wav, duration = encode_wav(wave), len(wave) / SAMPLE_RATE
    record = dataclasses.replace(
        u, audio=f"{u.key}.wav", start=None, end=None, duration=duration, audio_bytes=None
    )
    task = get_task(u.task)
    try:
        target: str | None = u.target()
    except TaskError:
        target = None  # only reachable with require_target=False: OSUM then sees an empty transcript
    texts = {
        "txt": target,
        "task": task.tag,
        "lang": u.language,
        "speaker": u.speaker,
        "gender": u.labels.get("gender"),
        "emotion": u.labels.get("emotion"),
        "duration": repr(duration),
        "extra": json.dumps(dict(u.extra), ensure_ascii=False) if u.extra else None,
        RECORD_SUFFIX: json.dumps(record.to_dict(), ensure_ascii=False),
    }
    members = [(f"{u.key}.wav", wav)]
    members += [
        (f"{u.key}.{suffix}", text.encode("utf-8")) for suffix, text in texts.items() if text is not None
    ]
    return members


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)  # bytes, not characters
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    utterances: Iterable[Utterance],
    out_dir: str | os.PathLike,
    shard_size: int = 1000,
    prefix: str = "shard",
    *,
    on_error: str = "raise",
    require_target: bool = True,
) -> list[Path]:
    """Write ``<out_dir>/<prefix>_000000.tar``, ... with ``shard_size`` utterances each, and ``shards.list``.

    Returns the tar paths (absolute; ``shards.list`` lists them one per line). Keys must be unique. A bad
    utterance (ManifestError/AudioError naming it) stops the writing, or with ``on_error="skip"`` is logged and
    left out. Each tar is written under a temporary name and renamed when complete.
    """
    check_on_error(on_error)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(f"shard_size must be a positive integer, got {shard_size!r}")
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    seen: set[str] = set()
    tar: tarfile.TarFile | None = None
    in_tar = 0
    try:
        for i, u in enumerate(utterances, 1):
            try:
                if u.key in seen:
                    raise ManifestError(f"utterance {i} (key {u.key!r})", "duplicate key")
                members = shard_members(u, require_target=require_target)
            except (ManifestError, AudioError) as e:
                if on_error == "raise":
                    raise
                log.warning("write_shards: skipped utterance %d: %s", i, e)
                continue
            seen.add(u.key)
            if tar is None or in_tar == shard_size:
                if tar is not None:
                    _finish(tar, paths[-1])
                paths.append(out / f"{prefix}_{len(paths):06d}.tar")
                tar, in_tar = tarfile.open(_tmp(paths[-1]), "w", format=tarfile.PAX_FORMAT), 0
            for name, data in members:
                _add(tar, name, data)
            in_tar += 1
        if tar is not None:
            _finish(tar, paths[-1])
            tar = None
    finally:
        if tar is not None:  # an error stopped the writing: leave no half-written shard behind
            tar.close()
            _tmp(paths[-1]).unlink(missing_ok=True)
    (out / LIST_NAME).write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    return paths


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _finish(tar: tarfile.TarFile, path: Path) -> None:
    tar.close()
    os.replace(_tmp(path), path)


# ---- reading -----------------------------------------------------------------------------------------


def read_shards(
    path: str | os.PathLike,
    on_error: str = "raise",
    *,
    require_target: bool = True,
    base_dir: str | os.PathLike | None = None,
) -> ManifestIterator:
    """Utterances of a tar shard, or of every tar named in a list file (one path per line).

    Relative tar paths in a list are relative to ``base_dir`` (default: the current directory, as in OSUM).
    Each utterance has ``audio_bytes`` (the encoded audio member) and ``audio = "<tar>:<key>.wav"``. Bad records
    and missing or corrupt tars give ManifestError ``file:line:`` (list) or ``file.tar:key:`` (tar member).
    """
    check_on_error(on_error)
    path = existing_file(path)
    if path.name.endswith((".tar", ".tar.gz", ".tgz")) or tarfile.is_tarfile(path):
        tars = [(str(path), str(path))]
    else:
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        lines = path.read_text(encoding="utf-8").splitlines()
        tars = [(f"{path}:{n}", resolve(s.strip(), base)) for n, s in enumerate(lines, 1) if s.strip()]
    return ManifestIterator(_read_tars(tars, require_target), on_error)


def _read_tars(tars: list[tuple[str, str]], require_target: bool) -> Iterator[Utterance | ManifestError]:
    for where, tar_path in tars:
        if not os.path.isfile(tar_path):
            yield ManifestError(where, f"shard not found: {tar_path}")
            continue
        try:
            # Stream mode: one sequential pass, no member index held in memory.
            with tarfile.open(tar_path, "r|*") as tar:
                for key, members in _groups(tar):
                    yield _utterance(tar_path, key, members, require_target)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            yield ManifestError(where, f"cannot read the tar {tar_path}: {e}")


def _groups(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {suffix: data})`` for each run of consecutive members ``<key>.<suffix>`` (split at the last dot)."""
    key, members = None, {}
    for info in tar:
        if not info.isfile() or info.name.rfind(".") <= 0:
            continue
        name, suffix = info.name.rsplit(".", 1)
        if name != key and key is not None:
            yield key, members
            members = {}
        key = name
        f = tar.extractfile(info)
        members[suffix] = f.read() if f is not None else b""
    if key is not None:
        yield key, members


def _utterance(
    tar_path: str, key: str, members: dict[str, bytes], require_target: bool
) -> Utterance | ManifestError:
    where = f"{tar_path}:{key}"
    suffix = next((s for s in AUDIO_SUFFIXES if s in members), None)
    if suffix is None:
        return ManifestError(
            where, f"no audio member ({key}.wav or .{', .'.join(AUDIO_SUFFIXES[1:])}); has {sorted(members)}"
        )
    audio = f"{tar_path}:{key}.{suffix}"
    try:
        if RECORD_SUFFIX in members:
            record = json.loads(members[RECORD_SUFFIX].decode("utf-8"))
            if not isinstance(record, dict) or record.get("key") != key:
                raise ManifestError(where, f"the {key}.{RECORD_SUFFIX} member is not this utterance's record")
            u = utterance_from_dict(record, where)
        else:
            fields = {s: members[s].decode("utf-8").strip() for s in _TEXT_MEMBERS if s in members}
            if "duration" in fields:
                try:
                    fields["duration"] = float(fields["duration"])
                except ValueError:
                    raise ManifestError(where, f"bad .duration {fields['duration']!r:.40}") from None
            if "extra" in members:
                fields["extra"] = json.loads(members["extra"].decode("utf-8") or "{}")
            u = utterance_from_osum({**fields, "key": key}, audio, where, require_target=require_target)
        u = dataclasses.replace(u, audio=audio, audio_bytes=members[suffix])
        return validate_utterance(u, require_target=require_target, where=where)
    except ManifestError as e:
        return e
    except UnicodeDecodeError as e:
        return ManifestError(where, f"a text member is not UTF-8: {e}")
    except json.JSONDecodeError as e:
        return ManifestError(where, f"invalid JSON in a member: {e}")
