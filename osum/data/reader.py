"""Read a manifest in any format osum takes: ours, OSUM's raw JSONL, OSUM's tar shards, Lhotse cuts or recordings +
supervisions. The format is detected from the file (:func:`osum.data.manifest.detect_format`)."""

from __future__ import annotations

import os
from pathlib import Path

from osum.data.lhotse_io import partner_manifest, read_lhotse
from osum.data.manifest import ManifestIterator, check_on_error, detect_format, read_manifest
from osum.data.osum_raw import read_osum_raw
from osum.data.shards import read_shards


def read_any(
    path: str | os.PathLike, on_error: str = "raise", *, check_audio: bool = True, require_target: bool = True
) -> ManifestIterator:
    """Read a manifest in any supported format (:func:`detect_format`); a folder means its ``shards.list``.

    A Lhotse recordings (supervisions) file is paired with the file named the same with ``supervisions``
    (``recordings``) instead. Relative paths follow each format's rule (module docstring).
    """
    check_on_error(on_error)
    if Path(path).is_dir() and (Path(path) / "shards.list").is_file():
        path = Path(path) / "shards.list"
    kind = detect_format(path)
    if kind == "osum":
        return read_manifest(path, on_error, check_audio=check_audio, require_target=require_target)
    if kind == "osum_raw":
        return read_osum_raw(path, on_error, check_audio=check_audio, require_target=require_target)
    if kind in ("tar", "shard_list"):
        return read_shards(path, on_error, require_target=require_target)
    if kind == "lhotse_cuts":
        return read_lhotse(path, None, on_error, check_audio=check_audio, require_target=require_target)
    pair = (path, partner_manifest(path, kind))
    recordings, supervisions = pair if kind == "lhotse_recordings" else pair[::-1]
    return read_lhotse(
        recordings, supervisions, on_error, check_audio=check_audio, require_target=require_target
    )
