"""``osum demo``: synthesize held-out test clips, one per task, and answer them with the trained mini models side by side;
then recorded human speech and non-speech that Debian packages ship, beside the untouched Whisper tiny.en.

The synthetic clips come from ``osum data synth``'s test split (voices, accents and text sources never used in
training); the recordings from ``osum data offgen`` (never used in training either). What the demo prints is what the
models do on unseen speech, next to the reference answer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HELP = "synthesize held-out test clips and answer all eight tasks with the mini models (the `make demo` job)"
TASKS = ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc")
DEFAULT_MODELS = "mini-stage1,mini"
BASELINE = (
    "mini-stage1-base"  # transcribes exactly as the untouched Whisper tiny.en (its label heads are untrained)
)
# recorded clips shown: (offgen key prefix, how many); then non-speech kinds
REAL_CLIPS = (("asterisk-", 2), ("alsa-", 1), ("pocketsphinx-", 2))
NONSPEECH_KINDS = ("silence", "pink-noise", "chord")
MAX_SHOWN = 150  # characters of a transcript printed


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help=f"comma-separated checkpoint directories or presets, shown side by side (default: {DEFAULT_MODELS})",
    )
    p.add_argument("--seed", type=int, default=2026, help="which synthetic clips (default 2026)")
    p.add_argument("--out", help="keep the synthesized clips in this folder")
    p.add_argument("--max-new-tokens", type=int, default=120)
    p.add_argument(
        "--no-recordings",
        action="store_true",
        help="skip the recorded speech and non-speech clips from Debian packages",
    )


def _clips(folder: Path, seed: int) -> list:
    """The first test-split clip of every task from a tiny synthetic corpus -> [Utterance]."""
    from osum.data.reader import read_any
    from osum.data.synth.builder import build_corpus

    build_corpus(folder, hours=0.001, seed=seed, test_fraction=0.5, flite_split="split", overwrite=True)
    by_task = {}
    for utt in read_any(folder / "test.jsonl"):
        by_task.setdefault(utt.task, utt)
    return [by_task[t] for t in TASKS if t in by_task]


def _recordings(folder: Path) -> list:
    """A few recorded human clips and non-speech clips from the packages (``osum data offgen``) -> [Utterance]."""
    from osum.data.offgen import build_offgen
    from osum.data.reader import read_any

    summary = build_offgen(folder, asterisk_limit=10, overwrite=True)
    real = list(read_any(summary.manifests["real"]))
    chosen = [u for prefix, n in REAL_CLIPS for u in [u for u in real if u.key.startswith(prefix)][:n]]
    silent = list(read_any(summary.manifests["nonspeech"]))
    chosen += [next(u for u in silent if kind in u.key) for kind in NONSPEECH_KINDS]
    return chosen


def _describe(text: str | None, labels, answer: str | None, words) -> str:
    """One line for a reference or an answer: transcript, labels, chat answer, word timings."""
    parts = [repr(text)] if text is not None else []
    if labels:
        parts.append(" ".join(f"{k}={v}" for k, v in labels.items()))
    if answer:
        parts.append(f"answer={answer!r}")
    if words:
        parts.append(f"{len(words)} timed words, first {words[0].word!r} at {words[0].start:.2f}s")
    return "; ".join(parts)


def _reference(utt) -> str:
    """What a perfect answer says."""
    return _describe(utt.text or None, utt.labels, utt.answer, utt.words)


def _answer(result) -> str:
    """What the model said, as parsed (the raw text when it did not parse)."""
    text = result.transcript
    if text is None:
        return f"unparsed {result.raw[:MAX_SHOWN]!r}"
    if len(text) > MAX_SHOWN:  # an untrained model can ramble up to --max-new-tokens
        text = text[:MAX_SHOWN] + "..."
    return _describe(text, result.labels, result.answer, result.words)


def run(args: argparse.Namespace) -> int:
    import osum

    names = [m.strip() for m in args.models.split(",") if m.strip()]
    if not names:
        raise SystemExit("--models is empty")
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="osum-demo-"))
    clips = _clips(folder, args.seed)
    print(
        f"synthesized {len(clips)} held-out test clips (voices and sentences unseen in training) into {folder}"
    )
    options = osum.DecodingOptions(max_new_tokens=args.max_new_tokens)
    answers: dict[str, list] = {}
    for name in names:
        model = osum.load(name)
        print(f"model {name}: {model.source} ({model.config.architecture}, {model.config.name})")
        if not model.config.trained:
            print(
                f"NOTE: {name} is not trained (recipes/mini/run.sh trains it), so its answers are not meaningful.",
                file=sys.stderr,
            )
        answers[name] = [model.run([str(u.audio)], tasks=[u.task], options=options)[0][u.task] for u in clips]
    width = max(len(n) for n in names)
    for i, utt in enumerate(clips):
        print(f"\n== {utt.task.upper()}  {Path(utt.audio).name}  (voice {utt.speaker})")
        print(f"  {'reference':{width}s}  {_reference(utt)}")
        for name in names:
            print(f"  {name:{width}s}  {_answer(answers[name][i])}")
    if not args.no_recordings:
        _show_recordings(folder / "recordings", names, options)
    return 0


def _show_recordings(folder: Path, names: list[str], options) -> None:
    """Recorded human speech and non-speech from Debian packages: ASR (and gender where it is documented) by each
    model and by the untouched Whisper tiny.en."""
    import osum

    clips = _recordings(folder)
    print(f"\nrecorded speech and non-speech from Debian packages (never trained on) in {folder}:")
    shown = {"whisper-tiny.en": BASELINE, **{n: n for n in names}}
    width = max(len(n) for n in shown)
    answers = {}
    for label, name in shown.items():
        model = osum.load(name)
        answers[label] = model.run([str(u.audio) for u in clips], tasks=["asr", "sgc"], options=options)
    for i, utt in enumerate(clips):
        gender = utt.extra.get("speaker_gender")
        print(f"\n== {utt.key}" + (f"  (speaker: {gender}, documented)" if gender else ""))
        print(f"  {'reference':{width}s}  {utt.text!r}")
        for label in shown:
            asr, sgc = answers[label][i]["asr"], answers[label][i]["sgc"]
            said = f"{_answer(asr)}"
            if gender and label != "whisper-tiny.en":
                said += f"; gender={sgc.labels.get('gender')}"
            print(f"  {label:{width}s}  {said}")
