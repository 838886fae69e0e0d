"""``osum demo``: synthesize a few clips and answer all eight tasks with the default model."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HELP = "synthesize test speech and run all eight tasks on it (the `make demo` job)"
CLIPS = (  # (file stem, text, espeak-ng voice)
    ("female_weather", "The weather will be sunny tomorrow with a light breeze.", "en-us+f3"),
    ("male_question", "What is seven plus five?", "en+m3"),
)
TASKS = ("asr", "srwt", "ved", "ser", "ssr", "sgc", "sap", "sttc")


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mini", help="checkpoint directory or preset (default: mini)")
    p.add_argument("--out", help="keep the synthesized clips in this folder")
    p.add_argument("--max-new-tokens", type=int, default=60)


def run(args: argparse.Namespace) -> int:
    import osum
    from osum.data.tts import synthesize

    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="osum-demo-"))
    paths = [synthesize(text, folder / f"{stem}.wav", voice=voice) for stem, text, voice in CLIPS]
    print(f"synthesized {len(paths)} clips with espeak-ng into {folder}")
    model = osum.load(args.model)
    print(
        f"model: {model.source} ({model.config.name}; encoder {model.config.encoder.layers} layers, "
        f"LLM {model.config.llm.layers} layers x {model.config.llm.hidden_size})"
    )
    if not model.config.trained:
        print(
            "NOTE: this model's adaptor is randomly initialised (not trained yet), so its answers ignore the "
            "audio. The pipeline below is real; a trained mini model is issue [4 of 5] (recipes/mini, still to come).",
            file=sys.stderr,
        )
    options = osum.DecodingOptions(max_new_tokens=args.max_new_tokens)
    results = model.run([str(p) for p in paths], tasks=TASKS, options=options, progress=True)
    for (stem, text, voice), per_task in zip(CLIPS, results, strict=True):
        print(f"\n== {stem}.wav  (voice {voice}; spoken: {text!r})")
        for name, r in per_task.items():
            fields = {
                k: v for k, v in r.to_dict().items() if k not in ("task", "raw") and v not in (None, {}, [])
            }
            print(f"  {name:5s} raw={r.raw[:90]!r}")
            if fields:
                print(f"        parsed={fields}")
    return 0
