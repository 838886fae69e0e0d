"""``osum data ACTION``: make and inspect training data.

``osum data synth OUT --hours H --seed S`` builds the synthetic multi-task corpus (osum.data.synth): train/test
manifests, 16 kHz wavs and a data card, the same files for the same seed whatever ``--jobs`` is.

``osum data prepare NAME SRC OUT.jsonl [--subset S] [--task T]`` turns a local copy of a public test set
(LibriSpeech, AISHELL-1/2, WenetSpeech, MELD, VocalSound, ESC-50, Kaggle Common Voice) into a manifest
(osum.data.corpora); ``osum data prepare --list`` shows the corpora, their subsets, tasks and expected layout.

``osum data offgen OUT`` builds the off-generator evaluation sets (osum.data.offgen): real human English speech
and synthesized speech shipped in Debian/PyPI packages, and non-speech clips, with a data card.

``osum data insert-events MANIFEST OUT [--events DIR]`` makes ASR+VED clips by inserting vocal events into
transcribed speech (osum.data.insert_events), as the OSUM paper built its VED data.

``osum data agree MANIFEST OUT --field emotion --labeller SPEC --labeller SPEC`` keeps a clip's label where every
labeller agrees (osum.labelling.agreement): label files, osum models, chat endpoints, text classifiers.

``osum data shards OUT NAME=MANIFEST[@WEIGHT] ...`` writes datasets as OSUM tar shards with their mixing weights
(osum.data.weighted_shards): ``OUT/data.yaml`` and the ``data.train`` override for ``osum train``.

``osum data sttc DIALOGUES OUT --tts espeak-ng:en-us`` speaks text dialogues' questions with a TTS and pairs them
with the dialogue's (or an LLM endpoint's) replies: STTC training data (osum.data.sttc_data).

``osum data align MANIFEST OUT.jsonl`` times the words of transcribed clips (SRWT labels) by forced alignment
(osum.data.align): the shipped frame aligner (osum.data.frame_align) or Whisper's cross-attention.
``osum data train-aligner MANIFEST OUT_DIR`` trains a frame aligner on clips with exact word times.
"""

from __future__ import annotations

import argparse
import json
import sys

from osum.errors import ConfigError

HELP = (
    "make data (synth: the offline synthetic multi-task corpus; prepare: manifests of public test sets; "
    "offgen: evaluation sets from outside the generator; align, insert-events, agree, sttc, shards: the OSUM "
    "paper's data pipeline on your own corpora)"
)


def add_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    s = sub.add_parser(
        "synth",
        help="build the synthetic multi-task corpus (all eight tasks) with espeak-ng/flite",
        description="Build OUT/train.jsonl, OUT/test.jsonl, OUT/wavs/ and the data card OUT/README.md.",
    )
    s.add_argument("out", help="output folder")
    s.add_argument("--hours", type=float, required=True, help="total hours of audio (e.g. 0.1 or 50)")
    s.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    s.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of the hours in test (default 0.2)"
    )
    s.add_argument(
        "--engines", default="espeak-ng,flite", help="comma-separated: espeak-ng, flite (default: both)"
    )
    s.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    s.add_argument(
        "--tasks",
        help="task weights, e.g. 'asr=2,srwt=1,ser=1' (unlisted tasks get 0; default: all eight equally)",
    )
    s.add_argument(
        "--flite-split",
        choices=("test", "train", "split"),
        default="test",
        help="where flite voices go: test only (default, an unseen synthesizer), train, or split by voice",
    )
    s.add_argument(
        "--flite-share",
        type=float,
        default=0.3,
        help="chance that a clip uses flite in a split that has both engines (default 0.3)",
    )
    s.add_argument(
        "--clean-share",
        type=float,
        default=0.4,
        help="share of clips left without acoustic augmentation (noise, reverb, codecs, speed, gain); 1: no clip "
        "augmented, with the same texts, voices and deliveries as at any other share (default 0.4)",
    )
    s.add_argument("--overwrite", action="store_true", help="replace an existing corpus in OUT")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_prepare_parser(sub)
    _add_offgen_parser(sub)
    _add_insert_parser(sub)
    _add_agree_parser(sub)
    _add_shards_parser(sub)
    _add_sttc_parser(sub)
    _add_align_parser(sub)
    _add_train_aligner_parser(sub)


def _add_prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="make a manifest from a local copy of a public test set (LibriSpeech, AISHELL, MELD, ...)",
        description="Read a corpus in its release layout (nothing is downloaded) and write our JSONL manifest "
        "with absolute audio paths. 'osum data prepare --list' shows the corpora and the layouts they expect.",
    )
    p.add_argument("name", nargs="?", help="corpus name (see --list)")
    p.add_argument("src", nargs="?", help="the corpus folder")
    p.add_argument("out", nargs="?", help="manifest to write (.jsonl or .jsonl.gz)")
    p.add_argument("--subset", help="subset, e.g. test-clean (default: the corpus's test set)")
    p.add_argument(
        "--task", help="task, comma-separated tasks, or 'all' the corpus can label (default: its first task)"
    )
    p.add_argument("--list", action="store_true", help="list the corpora, subsets, tasks and layouts")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_offgen_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "offgen",
        help="build evaluation sets from outside the synthetic generator (packaged speech, non-speech)",
        description="Write OUT/real.jsonl (human English speech from Debian packages), "
        "OUT/packaged_tts.jsonl, OUT/nonspeech.jsonl (empty transcripts), 16 kHz wavs and the data card "
        "OUT/README.md. The Debian packages come from scripts/install_system_deps.sh; pytest-audioeval is "
        "installed with pip --target outside the venv (a missing package's error shows the command).",
    )
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--sources",
        help="comma-separated sources: asterisk, alsa, pocketsphinx, audioeval, nonspeech (default: all but "
        "audioeval, whose 3 synthesized clips need pytest-audioeval installed apart)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic non-speech clips (default 0)")
    p.add_argument("--asterisk-limit", type=int, default=150, help="Asterisk prompts to take (default 150)")
    p.add_argument("--overwrite", action="store_true", help="replace existing sets in OUT")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _add_insert_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "insert-events",
        help="make ASR+VED clips: a vocal event inserted into each transcribed clip of a manifest",
        description="Write OUT/ved.jsonl, OUT/wavs/ and OUT/insert_summary.json: every clip of MANIFEST with a "
        "transcript gets one vocal event (laugh, cough, cry, screaming, sigh, throat clearing, sneeze) before, "
        "after or inside its speech at a random SNR; the record keeps the transcript and says which event and "
        "where (extra.event_onset / event_offset). Events come from --events DIR (DIR/<class>/*.wav) or the "
        "synthesizer.",
    )
    p.add_argument("manifest", help="speech with transcripts (any format osum reads)")
    p.add_argument("out", help="output folder")
    p.add_argument("--events", help="folder of event recordings, one subfolder per class (default: synthesized)")
    p.add_argument("--classes", help="comma-separated event classes to use (default: all available)")
    p.add_argument("--snr", default="0,15", help="speech-to-event SNR range in dB, LOW,HIGH (default 0,15)")
    p.add_argument(
        "--placements", default="before,after,inside", help="where the event goes (default before,after,inside)"
    )
    p.add_argument(
        "--timbre",
        default="1,1",
        help="spectrum-shift range of the event, LOW,HIGH, e.g. 0.85,1.2 (a stand-in for voice conversion; "
        "default 1,1: none)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_agree_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agree",
        help="label a field (emotion, style, ...) with several labellers and keep the clips they agree on",
        description="Write OUT/agreed.jsonl (the agreed clips as training records of the field's task), "
        "OUT/agreement.json and OUT/agreement.md (agreement rate, coverage, confusion table). Labellers: "
        "file:PATH (JSONL with key and labels.<field>, or key,label CSV/TSV), model:NAME_OR_DIR (an osum model), "
        "chat:URL#MODEL (an OpenAI-compatible endpoint reading the transcript; key from $OSUM_CHAT_API_KEY), "
        "text-classifier:DIR (a local transformers text classifier reading the transcript).",
    )
    p.add_argument("manifest", help="the clips (any format osum reads)")
    p.add_argument("out", help="output folder")
    p.add_argument("--field", required=True, help="emotion, style, gender, age or event")
    p.add_argument(
        "--labeller", action="append", required=True, help="a labeller spec; give two or more (repeat the option)"
    )
    p.add_argument("--device", default="cpu", help="device of model: labellers (default cpu)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_shards_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shards",
        help="write datasets as OSUM tar shards with mixing weights, ready for osum train",
        description="Write OUT/<NAME>/shard_*.tar and shards.list per dataset, OUT/data.yaml (data.train: each "
        "shard list with its weight; a weight repeats the dataset in every epoch, OSUM's rule) and "
        "OUT/balance.md/.json (clips, hours, tasks, each dataset's share of an epoch).",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("datasets", nargs="+", help="NAME=MANIFEST or NAME=MANIFEST@WEIGHT (any format osum reads)")
    p.add_argument("--shard-size", type=int, default=1000, help="utterances per tar (default 1000)")
    p.add_argument(
        "--on-error", choices=("raise", "skip"), default="raise", help="a bad record stops (default) or is skipped"
    )
    p.add_argument("--json", action="store_true", help="print the balance report as JSON")


def _add_sttc_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sttc",
        help="STTC data: text dialogues' questions spoken by a TTS, with the dialogue's or an LLM's replies",
        description="Read DIALOGUES (JSONL: question/answer, or OpenAI-style messages), synthesize every user "
        "turn and write OUT/sttc.jsonl (task sttc: the question as text, the reply as answer) and OUT/wavs/.",
    )
    p.add_argument("dialogues", help="JSONL dialogue file")
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--tts",
        default="espeak-ng:en-us",
        help="comma-separated voices used in turn: espeak-ng:VOICE, flite:VOICE, speech:URL#MODEL@VOICE (an "
        "OpenAI-compatible /audio/speech endpoint; key from $OSUM_TTS_API_KEY); default espeak-ng:en-us",
    )
    p.add_argument(
        "--answers-from",
        help="URL#MODEL of an OpenAI-compatible chat endpoint answering questions without a reply "
        "(key from $OSUM_CHAT_API_KEY)",
    )
    p.add_argument(
        "--replace-answers", action="store_true", help="ask the endpoint for every reply, not only missing ones"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_align_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="SRWT labels: word start/end times for transcribed clips by forced alignment",
        description="Write OUT (a manifest): every clip of MANIFEST with a transcript as an SRWT record with its "
        "words timed by forced alignment: the shipped frame aligner (letters and pauses on Whisper tiny.en's "
        "encoder frames, Viterbi through the transcript; clips up to 10 min) or Whisper's alignment heads "
        "reading the transcript (clips up to 30 s, boundaries refined on the audio's pauses).",
    )
    p.add_argument("manifest", help="transcribed clips (any format osum reads)")
    p.add_argument("out", help="the manifest to write (.jsonl or .jsonl.gz)")
    p.add_argument(
        "--aligner",
        default="frames",
        help="frames (default: the shipped frame aligner, models/aligner), attention (Whisper tiny.en's alignment "
        "heads), attention:MODEL, or a folder from `osum data train-aligner`",
    )
    refine = p.add_mutually_exclusive_group()
    refine.add_argument(
        "--refine", action="store_true", default=None, help="move boundaries onto the audio's pauses"
    )
    refine.add_argument(
        "--no-refine", dest="refine", action="store_false", help="keep the aligner's boundaries as they are"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_train_aligner_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-aligner",
        help="train a frame aligner (for osum data align) on clips with exact word times",
        description="Train the frame aligner's head (osum.data.frame_align) on the frozen encoder's frames of "
        "MANIFEST's clips that have timed words (e.g. `osum data synth --tasks srwt=1`), and write it to OUT "
        "(aligner.json, head.safetensors) for `osum data align --aligner OUT`.",
    )
    p.add_argument("manifest", nargs="+", help="clips with words and their start/end times")
    p.add_argument("out", help="the folder to write")
    p.add_argument("--encoder", default="mini-stage1-base", help="a Whisper model (default: the packaged tiny.en)")
    p.add_argument("--epochs", type=int, default=12, help="passes over the clips per round (default 12)")
    p.add_argument("--rounds", type=int, default=2, help="1 + times the letters' frames are re-drawn (default 2)")
    p.add_argument("--limit", type=int, default=0, help="the first N timed clips only (default all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _pair(spec: str, option: str) -> tuple[float, float]:
    """``"0,15"`` -> ``(0.0, 15.0)``; ConfigError naming the option otherwise."""
    try:
        low, high = (float(v) for v in spec.split(","))
    except ValueError:
        raise ConfigError(f"{option}: write LOW,HIGH (two numbers), got {spec!r}") from None
    return low, high


def parse_weights(spec: str | None) -> dict[str, float] | None:
    """``"asr=2,ser=1"`` -> ``{"asr": 2.0, "ser": 1.0}``; a bare name means weight 1."""
    if spec is None:
        return None
    weights: dict[str, float] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        name, _, value = item.partition("=")
        try:
            weights[name.strip().lower()] = float(value) if value.strip() else 1.0
        except ValueError:
            raise ConfigError(
                f"--tasks: bad weight {item.strip()!r}; write name=number, e.g. asr=2"
            ) from None
    if not weights:
        raise ConfigError(f"--tasks: no task in {spec!r}")
    return weights


def _synth(args: argparse.Namespace) -> int:
    from osum.data.synth import build_corpus

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    summary = build_corpus(
        args.out,
        args.hours,
        args.seed,
        test_fraction=args.test_fraction,
        engines=engines,
        jobs=args.jobs,
        task_weights=parse_weights(args.tasks),
        flite_split=args.flite_split,
        flite_share=args.flite_share,
        clean_share=args.clean_share,
        overwrite=args.overwrite,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return 0
    for split, path in summary.manifests.items():
        n = sum(summary.counts.get(split, {}).values())
        hours = sum(summary.seconds.get(split, {}).values()) / 3600
        print(f"{split}: {n} clips, {hours:.3f} h -> {path}")
    print(f"data card: {summary.card}  ({summary.build_seconds:.1f} s)")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from osum.data.corpora import describe_corpora, prepare_corpus

    if args.list:
        print(describe_corpora())
        return 0
    if args.out is None:
        raise ConfigError("osum data prepare needs NAME SRC OUT (or --list to see the corpora)")
    summary = prepare_corpus(args.name, args.src, args.out, subset=args.subset, task=args.task)
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(summary.lines()))
    return 0


def _offgen(args: argparse.Namespace) -> int:
    from osum.data.offgen import build_offgen

    sources = {"sources": [s.strip() for s in args.sources.split(",")]} if args.sources else {}
    summary = build_offgen(
        args.out,
        **sources,
        seed=args.seed,
        asterisk_limit=args.asterisk_limit,
        overwrite=args.overwrite,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(summary.lines()))
    return 0


def _insert(args: argparse.Namespace) -> int:
    from osum.data.insert_events import InsertSettings, insert_events

    settings = InsertSettings(
        snr_db=_pair(args.snr, "--snr"),
        placements=tuple(p.strip() for p in args.placements.split(",") if p.strip()),
        timbre=_pair(args.timbre, "--timbre"),
        seed=args.seed,
    )
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    summary = insert_events(
        args.manifest,
        args.out,
        settings,
        events=args.events,
        classes=classes,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return 0
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.events.items()))
    print(f"{summary.clips} clips ({counts}) -> {summary.manifest}")
    if summary.skipped:
        print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())))
    return 0


def _agree(args: argparse.Namespace) -> int:
    from osum.labelling.agreement import agree
    from osum.labelling.labellers import make_labeller

    labellers = [make_labeller(spec, device=args.device) for spec in args.labeller]
    report = agree(args.manifest, args.out, args.field, labellers)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(report.markdown(), end="")
    return 0


def _shards(args: argparse.Namespace) -> int:
    from osum.data.weighted_shards import Dataset, balance_markdown, train_override, write_weighted_shards

    datasets = [Dataset.parse(spec) for spec in args.datasets]
    report = write_weighted_shards(datasets, args.out, args.shard_size, args.on_error)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(balance_markdown(report), end="")
    print(f"\nosum train CONFIG \"{train_override(report)}\"")
    return 0


def _sttc(args: argparse.Namespace) -> int:
    from osum.data.sttc_data import Voice, answer_endpoint, build_sttc

    voices = [Voice.parse(v.strip()) for v in args.tts.split(",") if v.strip()]
    answerer = answer_endpoint(args.answers_from) if args.answers_from else None
    summary = build_sttc(
        args.dialogues,
        args.out,
        voices,
        answerer,
        args.replace_answers,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(f"{summary.clips} spoken questions -> {summary.manifest}")
    if summary.skipped:
        print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())))
    return 0


def _align(args: argparse.Namespace) -> int:
    from osum.data.align import align_manifest

    summary = align_manifest(
        args.manifest,
        args.out,
        args.aligner,
        refine=args.refine,
        device=args.device,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(f"{summary.clips} clips, {summary.words} words timed -> {summary.manifest}")
    if summary.skipped:
        print("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())))
    return 0


def _train_aligner(args: argparse.Namespace) -> int:
    from osum.data.frame_align import timed_clips, train_frame_aligner

    if args.epochs < 1 or args.rounds < 1:
        raise ConfigError(f"--epochs and --rounds must be >= 1, got {args.epochs} and {args.rounds}")
    clips = timed_clips(args.manifest, args.limit)
    say = None if args.quiet or args.json else (lambda m: print(m, file=sys.stderr, flush=True))
    summary = train_frame_aligner(
        clips,
        args.out,
        args.encoder,
        epochs=args.epochs,
        rounds=args.rounds,
        device=args.device,
        log=say,
        extra={"manifests": [str(m) for m in args.manifest]},
        progress=say is not None and sys.stderr.isatty(),
    )
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(
        f"{summary.clips} clips, {summary.frames} frames; frame accuracy {100 * summary.frame_accuracy:.1f}%; "
        f"{summary.seconds:.0f} s -> {args.out}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    actions = {
        "synth": _synth,
        "prepare": _prepare,
        "offgen": _offgen,
        "insert-events": _insert,
        "agree": _agree,
        "shards": _shards,
        "sttc": _sttc,
        "align": _align,
        "train-aligner": _train_aligner,
    }
    return actions[args.data_command](args)
