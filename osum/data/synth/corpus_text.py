"""Real-text sentences for the synthetic corpus, taken from text that Debian packages ship.

Templates alone teach a model the generator's language, so most ``general`` sentences come from this pool:
fortune cookies (``fortunes``, ``fortunes-min``) and the example sentences inside WordNet's glosses
(``wordnet-base``). Every sentence is cleaned into plain speakable English (:func:`clean_sentence`), checked
against the ``wamerican`` word list, and de-duplicated by its normalised text.

Splits are decided per SOURCE (one fortune file, one WordNet part of speech), never per sentence:
:data:`TEST_SOURCES` are test-only, so the test split measures text from whole sources that training never
saw. A sentence that also occurs in a training source is kept in test and removed from train. The cleaned
pool is cached as JSON under osum's cache dir, keyed by the source files and this module's code.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import re
import subprocess
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osum.data.synth.numbers import number_words
from osum.errors import ConfigError, OsumError

SPLITS = ("train", "test")
MIN_WORDS, MAX_WORDS = 3, 20
FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
WORD_LIST = Path("/usr/share/dict/words")
WORD_LIST_PACKAGE = "wamerican"
INSTALL_HINT = "bash scripts/install_system_deps.sh"
LICENCES = {
    "fortunes": "BSD-3-Clause (fortune-mod, Regents of the University of California)",
    "fortunes-min": "BSD-3-Clause (fortune-mod, Regents of the University of California)",
    "wordnet-base": "WordNet 3.0 licence (Princeton University; permissive, keep the notice)",
    "wamerican": "SCOWL licence (Kevin Atkinson; permissive, keep the notice)",
}
# Fortune files in English prose; left out: ASCII art, code and IRC logs, untranslated text, ethnic jokes.
_FORTUNE_MIN_FILES = ("fortunes", "literature", "riddles")
_FORTUNE_FILES = (
    "art computers cookie definitions drugs education food goedel humorists kids law love magic medicine "
    "men-women miscellaneous news paradoxum people pets platitudes politics science songs-poems sports "
    "startrek tao wisdom work zippy"
).split()
_WORDNET_PARTS = ("noun", "verb", "adj", "adv")
# Whole sources held out for the test split: one WordNet part of speech and three fortune files.
TEST_SOURCES = frozenset({"wordnet/adv", "fortunes/literature", "fortunes/wisdom", "fortunes/science"})


@dataclass(frozen=True)
class TextSource:
    """One source file: ``name`` is e.g. ``"fortunes/people"``; ``kind`` says how to read it."""

    name: str
    package: str
    path: Path
    kind: str  # "fortune" or "wordnet"

    @property
    def split(self) -> str:
        return "test" if self.name in TEST_SOURCES else "train"


def default_sources() -> tuple[TextSource, ...]:
    """The sources of the pool, in a fixed order."""
    fortunes = [
        TextSource(f"fortunes/{f}", "fortunes-min", FORTUNE_DIR / f, "fortune") for f in _FORTUNE_MIN_FILES
    ]
    fortunes += [TextSource(f"fortunes/{f}", "fortunes", FORTUNE_DIR / f, "fortune") for f in _FORTUNE_FILES]
    wordnet = [
        TextSource(f"wordnet/{p}", "wordnet-base", WORDNET_DIR / f"data.{p}", "wordnet")
        for p in _WORDNET_PARTS
    ]
    return tuple(fortunes + wordnet)


def _missing(package: str, path: Path) -> ConfigError:
    return ConfigError(
        f"real-text source {path} is missing: install the Debian package {package!r} "
        f"(apt-get install {package}, or run {INSTALL_HINT})"
    )


# ---- cleaning ------------------------------------------------------------------------------------------------

_ABBREVIATIONS = {
    "Mr.": "Mister", "Mrs.": "Missus", "Dr.": "Doctor", "Prof.": "Professor", "St.": "Saint", "Jr.": "Junior",
    "Sr.": "Senior", "vs.": "versus", "etc.": "et cetera", "Mt.": "Mount", "Capt.": "Captain", "Lt.": "Lieutenant",
}  # fmt: skip
_ABBREV = re.compile("|".join(re.escape(a) for a in _ABBREVIATIONS))
_SENTENCE_END = re.compile(r"""([.!?]+["')\]]*)\s+(?=["'`(\[]*[A-Z])""")
_WORD = re.compile(r"[A-Za-z']+")
_NUMBER = re.compile(r"\d+")
_URL = re.compile(r"(https?:|www\.|\.com\b|\.org\b|@)", re.IGNORECASE)
_ALLOWED = re.compile(r"[A-Za-z ,.?!']+")


def _spell_numbers(text: str) -> str | None:

    if re.search(r"\d[,.:/]\d|\d[A-Za-z]|[A-Za-z]\d", text):
        return None  # 3.14, 1,000, 10:30, 20th, mp3: not a plain small number
    try:
        return _NUMBER.sub(lambda m: number_words(int(m.group())) if len(m.group()) <= 3 else "#", text)
    except OsumError:
        return None


def clean_sentence(text: str, vocabulary: frozenset[str] | None = None) -> str | None:
    """``text`` as one speakable English sentence, or None when it cannot be made one.

    Keeps ASCII letters, spaces and ``, . ? ! '``; ``&`` becomes "and", dashes, colons and semicolons become
    commas, quotation marks and hyphens go, integers up to 999 are spelled out. Rejects URLs, code and other
    symbols, larger numbers, all-caps words (acronyms, shouting), abbreviations, fewer than :data:`MIN_WORDS`
    or more than :data:`MAX_WORDS` words, and (given a ``vocabulary``) any word the word list does not know.
    """
    text = (
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
        if not text.isascii()
        else text
    )
    if _URL.search(text):
        return None
    text = _ABBREV.sub(lambda m: _ABBREVIATIONS[m.group()], text)
    text = text.replace("&", " and ").replace("%", " percent")
    if any(c.isdigit() for c in text):
        spelled = _spell_numbers(text)
        if spelled is None or "#" in spelled:
            return None
        text = spelled
    text = re.sub(r"\.{2,}|--+|\s-\s|[;:]", ", ", text)
    text = re.sub(r"""["`]|''""", " ", text)
    text = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text)
    text = re.sub(r"(?<![A-Za-z])'|'(?![A-Za-z])", " ", text)  # quotation marks, not apostrophes
    text = " ".join(text.split())
    if not text or _ALLOWED.fullmatch(text) is None:
        return None
    text = re.sub(r"\s+([,.?!])", r"\1", text)
    text = re.sub(r"[,.?!]{2,}", lambda m: next(c for c in "?!.," if c in m.group()), text)  # "?!" -> "?"
    text = re.sub(r"[,.?!]+(?=\w)", "", text).strip(" ,.")
    if not text or "." in text.rstrip(".?!"):
        return None  # a full stop inside: an abbreviation or initial that would be split wrongly
    words = _WORD.findall(text)
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    if vocabulary is not None:  # lines joined from verse: "the night, And see" -> "the night, and see"
        text = re.sub(r"(?<=[a-z,] )[A-Z][a-z]+\b", lambda m: _lower_common(m.group(), vocabulary), text)
    for w in words:
        letters = w.replace("'", "")
        if len(letters) > 1 and letters.isupper():
            return None
        if vocabulary is not None and not _known(w, vocabulary):
            return None
    if text[-1] not in "?!":
        text += "."
    return text[0].upper() + text[1:]


def _lower_common(word: str, vocabulary: frozenset[str]) -> str:
    return word.lower() if word not in vocabulary and word.lower() in vocabulary else word


def _known(word: str, vocabulary: frozenset[str]) -> bool:
    base = word[:-2] if word.endswith("'s") else word
    return any(w in vocabulary for w in (word, word.lower(), base, base.lower()))


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences at ``. ! ?`` followed by a capital (common abbreviations expanded)."""
    text = " ".join(_ABBREV.sub(lambda m: _ABBREVIATIONS[m.group()], text).split())
    return [s for s in _SENTENCE_END.sub(r"\1\n", text).split("\n") if s.strip()]


# ---- readers -------------------------------------------------------------------------------------------------

_ATTRIBUTION = re.compile(r"^\s*--|^\s*-\s+[A-Z]")
_SPEAKER = re.compile(r"^\s*[A-Z][A-Za-z.]*(?: [A-Z][A-Za-z.]*)?:\s+")


def fortune_texts(path: Path) -> Iterator[str]:
    """Sentences of a fortune file: cookies split at ``%`` lines, attributions, headers and speakers removed."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    for cookie in re.split(r"\n%\n", raw):
        lines = []
        for line in cookie.splitlines():
            if _ATTRIBUTION.match(line):
                break  # "-- Mark Twain" and anything after it
            if line.rstrip().endswith(":") and len(line.split()) <= 6:
                continue  # a header such as "Rule of Friendship:"
            lines.append(_SPEAKER.sub("", line))
        yield from split_sentences(" ".join(lines))


def wordnet_texts(path: Path) -> Iterator[str]:
    """The quoted example sentences in the glosses of a WordNet ``data.*`` file (the glosses are phrases)."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header
            for example in re.findall(r'"([^"]+)"', line.split(" | ", 1)[1]):
                if len(example.split()) >= 4:  # shorter examples are mostly noun phrases ("a dying fire")
                    yield from split_sentences(example)


def read_source(source: TextSource) -> Iterator[str]:
    """Raw sentences of ``source``; ConfigError naming the package when its file is missing."""
    if not source.path.is_file():
        raise _missing(source.package, source.path)
    return fortune_texts(source.path) if source.kind == "fortune" else wordnet_texts(source.path)


def load_vocabulary(path: Path = WORD_LIST) -> frozenset[str]:
    """The ``wamerican`` word list: the words a sentence may use."""
    if not path.is_file():
        raise _missing(WORD_LIST_PACKAGE, path)
    return frozenset(path.read_text(encoding="utf-8", errors="replace").split())


def _norm(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))


def build_pool(sources: Sequence[TextSource], vocabulary: frozenset[str] | None) -> dict[str, list[str]]:
    """Source name -> its cleaned, de-duplicated sentences, no sentence in both splits.

    Test sources are read first, so a sentence shared with a train source stays in test only.
    """
    ordered = sorted(sources, key=lambda s: s.split != "test")
    seen: set[str] = set()
    pool: dict[str, list[str]] = {}
    for source in ordered:
        kept = []
        for raw in read_source(source):
            text = clean_sentence(raw, vocabulary)
            if text is not None and _norm(text) not in seen:
                seen.add(_norm(text))
                kept.append(text)
        pool[source.name] = kept
    return {s.name: pool[s.name] for s in sources}


# ---- the cached pool -----------------------------------------------------------------------------------------


def package_version(package: str) -> str:
    """The installed version of a Debian package, or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _fingerprint(sources: Iterable[TextSource]) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(Path(__file__).read_bytes())  # any change to the cleaning code rebuilds the pool
    for package, path in [(s.package, s.path) for s in sources] + [(WORD_LIST_PACKAGE, WORD_LIST)]:
        if not path.is_file():
            raise _missing(package, path)
        st = path.stat()
        h.update(f"{path}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Pool:
    """The cleaned pool: sentences per split sorted by word count (for fast length-bounded draws)."""

    sentences: dict[str, tuple[str, ...]]
    word_counts: dict[str, tuple[int, ...]]
    sources: tuple[dict, ...]  # name, package, version, licence, split, sentences (count)


@functools.lru_cache(maxsize=1)
def load_pool() -> Pool:
    """Build the pool once (a few seconds) and cache it under osum's cache dir; later calls read the cache."""
    from osum.runtime import cache_dir  # late import: osum.runtime imports torch

    sources = default_sources()
    path = cache_dir() / "synth_text" / f"real_text_{_fingerprint(sources)}.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        texts = build_pool(sources, load_vocabulary())
        versions = {p: package_version(p) for p in {s.package for s in sources}}
        data = {
            "sources": [
                {
                    "name": s.name,
                    "package": s.package,
                    "version": versions[s.package],
                    "licence": LICENCES[s.package],
                    "split": s.split,
                    "sentences": texts[s.name],
                }
                for s in sources
            ]
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=True), encoding="utf-8")
        tmp.replace(path)
        for stale in path.parent.glob("real_text_*.json"):
            if stale != path:
                stale.unlink(missing_ok=True)
    by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for src in data["sources"]:
        by_split[src["split"]].extend(src["sentences"])
    sentences, counts = {}, {}
    for split, texts in by_split.items():
        ordered = sorted(texts, key=lambda t: (len(_WORD.findall(t)), t))
        sentences[split] = tuple(ordered)
        counts[split] = tuple(len(_WORD.findall(t)) for t in ordered)
    summary = tuple({**s, "sentences": len(s["sentences"])} for s in data["sources"])
    return Pool(sentences, counts, summary)


def sentence_pool(split: str) -> tuple[str, ...]:
    """Every real-text sentence of ``split`` (``"train"`` or ``"test"``), sorted by word count."""
    if split not in SPLITS:
        raise OsumError(f"split must be one of {SPLITS}, got {split!r}")
    return load_pool().sentences[split]


def sample_real(split: str, rng: np.random.Generator, min_words: int, max_words: int) -> str | None:
    """A uniformly drawn pool sentence of ``split`` with ``min_words..max_words`` words (None if there is none).

    Uses exactly one draw from ``rng``, so the result is a function of the rng state.
    """
    pool = load_pool()
    if split not in SPLITS:
        raise OsumError(f"split must be one of {SPLITS}, got {split!r}")
    counts = pool.word_counts[split]
    lo, hi = bisect.bisect_left(counts, min_words), bisect.bisect_right(counts, max_words)
    index = int(rng.integers(max(hi - lo, 1)))
    return pool.sentences[split][lo + index] if hi > lo else None


def source_summary() -> tuple[dict, ...]:
    """Per source: name, package, version, licence, split and number of sentences."""
    return load_pool().sources


def card_lines() -> list[str]:
    """Markdown lines for the data card: the real-text sources, their licences and counts per split."""
    rows: dict[tuple[str, str], dict] = {}
    for s in source_summary():
        row = rows.setdefault((s["package"], s["split"]), {**s, "names": [], "sentences": 0})
        row["names"].append(s["name"].split("/", 1)[1])
        row["sentences"] += s["sentences"]
    totals = {split: sum(r["sentences"] for r in rows.values() if r["split"] == split) for split in SPLITS}
    lines = [
        "### Real text",
        "",
        f"Most general sentences are real sentences from Debian packages ({totals['train']} train, "
        f"{totals['test']} test), cleaned into plain speakable English and de-duplicated. Whole sources are "
        "held out: the test split's sources never occur in training.",
        "",
        "| package | version | licence | split | sources | sentences |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (package, split), r in sorted(rows.items(), key=lambda kv: (kv[0][1] != "train", kv[0][0])):
        lines.append(
            f"| {package} | {r['version']} | {r['licence']} | {split} | {', '.join(r['names'])} | {r['sentences']} |"
        )
    lines.append(
        f"| {WORD_LIST_PACKAGE} | {package_version(WORD_LIST_PACKAGE)} | {LICENCES[WORD_LIST_PACKAGE]} | both | "
        "word list: every word of a kept sentence is in it | - |"
    )
    return [*lines, ""]
