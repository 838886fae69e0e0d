"""WenetSpeech (10k h Mandarin from the web): segments of long Opus files, for ASR (paper: CER on test-net and
test-meeting).

The corpus root holds ``WenetSpeech.json``, ``{"audios": [{"aid", "path", "duration", "segments": [{"sid",
"begin_time", "end_time", "text", "subsets": ["TEST_NET", ...]}, ...]}, ...]}``, with ``path`` relative to
the root (``audio/test/...opus``). Each segment becomes an utterance with ``start``/``end`` into its file.

The file is several GB, so it is read as a stream: one ``audios`` entry at a time with the standard library's
``json.JSONDecoder.raw_decode`` (no extra dependency), never the whole document at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from osum.data.corpora.base import Corpus, Record, Skip, check_src, find_first, labelled, make_key
from osum.errors import ConfigError, ManifestError

LAYOUT = """\
  SRC = the WenetSpeech root (or the folder holding WenetSpeech/):
  WenetSpeech.json   {"audios": [{"aid", "path", "segments": [{"sid", "begin_time", "end_time", "text",
                                   "subsets": ["TEST_NET" | "TEST_MEETING" | "DEV" | "S" | "M" | "L" ...]}]}]}
  audio/...opus      the long recordings, at each entry's "path" (relative to the root)"""

# Our subset name -> the tag in the segments' "subsets" lists.
SUBSETS = {
    "test_net": "TEST_NET",
    "test_meeting": "TEST_MEETING",
    "dev": "DEV",
    "train_s": "S",
    "train_m": "M",
    "train_l": "L",
}

_SPACE = re.compile(r"[ \t\n\r]*")
_CHUNK = 1 << 20


class JsonStream:
    """Reads the values of one array member of a top-level JSON object one at a time.

    ``array_items(key)`` parses the top-level object member by member (small members are decoded and
    dropped) and yields ``(line, value)`` for each element of the array ``key``. Errors are ManifestError
    ``file:line``.
    """

    def __init__(self, f: TextIO, name: str, chunk: int = _CHUNK) -> None:
        self.f, self.name, self.chunk = f, name, chunk
        self.buf, self.pos, self.eof = "", 0, False
        self.counted_pos, self.counted_lines = 0, 0  # newlines in the file before buf[counted_pos]
        self.decoder = json.JSONDecoder()

    def _newlines_before(self, pos: int) -> int:
        # Counted incrementally: recounting the buffer for every entry would be quadratic.
        if pos < self.counted_pos:
            return self.counted_lines - self.buf.count("\n", pos, self.counted_pos)
        self.counted_lines += self.buf.count("\n", self.counted_pos, pos)
        self.counted_pos = pos
        return self.counted_lines

    def line(self, pos: int | None = None) -> int:
        return self._newlines_before(self.pos if pos is None else pos) + 1

    def error(self, reason: str, pos: int | None = None) -> ManifestError:
        return ManifestError(f"{self.name}:{self.line(pos)}", reason)

    def _fill(self) -> bool:
        """Read more text, dropping what is consumed; reads grow with the buffer so big values stay linear."""
        if self.eof:
            return False
        try:
            chunk = self.f.read(max(self.chunk, len(self.buf) - self.pos))
        except UnicodeDecodeError as e:
            raise self.error(f"not UTF-8 text ({e.reason})") from None
        if not chunk:
            self.eof = True  # and the buffer stays as it is: callers may hold positions in it
            return False
        self.counted_lines = self._newlines_before(self.pos)
        self.buf, self.pos, self.counted_pos = self.buf[self.pos :] + chunk, 0, 0
        return True

    def _peek(self) -> str:
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos : self.pos + 1]

    def _expect(self, chars: str) -> str:
        c = self._peek()
        if not c or c not in chars:
            raise self.error(f"expected one of {list(chars)}, got {c or 'the end of the file'!r}")
        self.pos += 1
        return c

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                # A value cut by the end of the buffer fails within a few characters of it (a cut literal,
                # number or \u escape) or at its open string; an error elsewhere is real and is reported
                # without reading the rest of the file.
                truncated = e.pos >= len(self.buf) - 16 or e.msg.startswith("Unterminated")
                if truncated and self._fill():
                    continue
                raise self.error(f"invalid JSON: {e.msg}", e.pos) from None
            if (
                len(self.buf) - end < 32 and self._fill()
            ):  # a number cut at the end ("1." of "1.5") parses too
                continue
            self.pos = end
            return value

    def array_items(self, key: str) -> Iterator[tuple[int, Any]]:
        self._expect("{")
        while self._peek() != "}":
            name = self._value()
            self._expect(":")
            if name != key:
                self._value()
            else:
                self._expect("[")
                if self._peek() == "]":
                    return
                while True:
                    self._peek()
                    line = self.line()
                    yield line, self._value()
                    if self._expect(",]") == "]":
                        return
            if self._expect(",}") == "}":
                break
        raise self.error(f"the top-level object has no {key!r} array")


def _seconds(value: object) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _segments(root: Path, where: str, entry: object, tag: str) -> Iterator[tuple[str, dict, Path]]:
    """``(where, segment, audio path)`` for the segments of one ``audios`` entry that are in ``tag``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("segments"), list):
        raise ManifestError(where, "an 'audios' entry must be an object with a 'segments' list")
    for i, seg in enumerate(entry["segments"]):
        if not isinstance(seg, dict):
            raise ManifestError(where, f"segments[{i}] must be an object")
        subsets = seg.get("subsets")
        if isinstance(subsets, list) and tag in subsets:
            if not isinstance(entry.get("path"), str) or not entry["path"]:
                raise ManifestError(where, f"audio {entry.get('aid')!r} has no 'path'")
            yield f"{where} (segment {seg.get('sid', i)})", seg, root / entry["path"]


def prepare(src: Path, subset: str, task: str) -> Iterator[Record]:
    """One ASR utterance per segment of ``subset``; segments whose audio file is missing are skipped."""
    src = check_src("wenetspeech", src, LAYOUT)
    meta = find_first(
        "wenetspeech", [src / "WenetSpeech.json", src / "WenetSpeech" / "WenetSpeech.json"], LAYOUT
    )
    root, tag = meta.parent, SUBSETS[subset]
    try:
        f = open(meta, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {meta}: {e}") from None
    last_audio, audio_found = None, False  # one stat per recording, not per segment
    with f:
        for line, entry in JsonStream(f, str(meta)).array_items("audios"):
            for where, seg, audio in _segments(root, f"{meta}:{line}", entry, tag):
                if audio != last_audio:
                    last_audio, audio_found = audio, audio.is_file()
                if not audio_found:
                    yield Skip(f"{where} ({audio})", "audio file not found")
                    continue
                begin, end, sid = (
                    _seconds(seg.get("begin_time")),
                    _seconds(seg.get("end_time")),
                    seg.get("sid"),
                )
                if not isinstance(sid, str) or not sid or begin is None or end is None:
                    raise ManifestError(
                        where, "a segment needs 'sid' (string), 'begin_time' and 'end_time' (s)"
                    )
                if begin < 0 or end <= begin:
                    yield Skip(where, "bad segment times")
                    continue
                text = seg.get("text")
                yield labelled(
                    task,
                    where,
                    {},
                    (text.strip() or None) if isinstance(text, str) else None,
                    key=make_key("wenetspeech", subset, sid),
                    audio=str(audio),
                    start=begin,
                    end=end,
                    duration=end - begin,
                    language="zh",
                )


WENETSPEECH = Corpus(
    name="wenetspeech",
    description="WenetSpeech Mandarin web speech; ASR (CER on test_net, test_meeting)",
    subsets=tuple(SUBSETS),
    default_subset="test_net",
    tasks=("asr",),
    layout=LAYOUT,
    prepare=prepare,
)
