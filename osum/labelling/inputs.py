"""What ``osum label`` (and ``osum infer``) read: audio files, folders of them, and manifests in any format osum takes.

Every input becomes an :class:`~osum.data.manifest.Utterance` whose ``key`` names its record: an audio file's path
as given (folders: the path of each file found in them), a manifest utterance's own key. Inputs are read lazily,
in order, so a corpus of millions of clips is never held in memory (tar shards keep only the clip in hand).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from osum.data.manifest import Utterance
from osum.data.reader import read_any
from osum.errors import OsumError

AUDIO_SUFFIXES = (
    ".wav",
    ".flac",
    ".ogg",
    ".opus",
    ".mp3",
    ".m4a",
    ".aac",
    ".wma",
    ".aiff",
    ".aif",
    ".au",
    ".sph",
)
MANIFEST_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".tar", ".tar.gz", ".tgz", ".list")


def display_name(path: str) -> str:
    """``path`` as it appears in records: a name that is not valid UTF-8 keeps its bytes as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def expand(inputs: Iterable[str]) -> Iterator[str]:
    """Files as given; folders replaced by their audio files (recursive, sorted, by extension)."""
    for item in inputs:
        if os.path.isdir(item):
            for root, dirs, names in os.walk(item):
                dirs.sort()
                for name in sorted(names):
                    if name.lower().endswith(AUDIO_SUFFIXES):
                        yield os.path.join(root, name)
        else:
            yield item


def is_manifest(path: str) -> bool:
    """A manifest (ours, OSUM raw, Lhotse, tar shards or a shard list), or a folder holding ``shards.list``."""
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, "shards.list"))
    return path.lower().endswith(MANIFEST_SUFFIXES)


def is_tar_input(path: str) -> bool:
    """Tar shards (a tar, a shard list, or a folder holding ``shards.list``): reading them means reading the audio."""
    return is_manifest(path) and not path.lower().endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz"))


def iter_inputs(inputs: Iterable[str], on_error: str = "raise") -> Iterator[Utterance]:
    """The clips of ``inputs`` in order, one per recording (or segment): a manifest that lists a clip once per
    task (a training corpus) gives it once, under its first key. ``on_error``: what a bad manifest line does
    ("raise" or "skip"; audio is only read later, where a bad file becomes that clip's error record)."""
    seen: set[tuple[str, float | None, float | None]] = set()
    for item in inputs:
        if is_manifest(item):
            for u in read_any(item, on_error, check_audio=False, require_target=False):
                where = (u.audio, u.start, u.end)
                if where in seen:
                    continue
                seen.add(where)
                yield u
            continue
        if not os.path.exists(item):
            raise OsumError(f"{display_name(item)}: no such file or folder")
        found = False
        for path in expand([item]):
            found = True
            name = display_name(path)
            yield Utterance(key=name, audio=path)
        if not found:
            raise OsumError(
                f"{display_name(item)}: no audio files in this folder ({', '.join(AUDIO_SUFFIXES)})"
            )


def audio_seconds(u: Utterance) -> float | None:
    """The clip's length in seconds from its header or manifest, without decoding it; None if unknown."""
    if u.start is not None and u.end is not None:
        return max(u.end - u.start, 0.0)
    if u.duration is not None:
        return u.duration
    if u.audio_bytes is not None:
        import io

        import soundfile as sf

        try:
            return sf.info(io.BytesIO(u.audio_bytes)).duration
        except (RuntimeError, sf.LibsndfileError):
            return None
    try:
        import soundfile as sf

        seconds = sf.info(os.fsencode(u.audio)).duration
    except (RuntimeError, OSError, sf.LibsndfileError):
        return None
    return seconds - (u.start or 0.0)


def count_inputs(
    inputs: Iterable[str], limit: int | None = None, seconds: bool = True
) -> tuple[int, float, int]:
    """(clips, audio seconds of those whose length is known, clips of unknown length) among the first ``limit``
    clips; ``seconds=False`` only counts (no file is opened)."""
    clips, total, unknown = 0, 0.0, 0
    for u in iter_inputs(inputs, on_error="skip"):
        if limit is not None and clips >= limit:
            break
        clips += 1
        length = audio_seconds(u) if seconds else 0.0
        if length is None:
            unknown += 1
        else:
            total += length
    return clips, total, unknown
