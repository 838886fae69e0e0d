"""The data card (``OUT/README.md``) of a synthetic corpus: what is in it, and which labels can be trusted how.

The card holds no timestamps or machine details, so the same seed and settings give a byte-identical card.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from osum.data.synth.plan import TASK_NAMES
from osum.data.synth.text import SPLITS
from osum.data.synth.voices import TEST_ACCENTS, TEST_VARIANTS
from osum.tasks import get_task

# (what, how it is made, why it is true) for the labels that are facts about the audio.
ACOUSTIC_TRUTHS = (
    ("transcript (all tasks)", "the text given to the synthesizer", "the engine speaks exactly this text"),
    (
        "word times (SRWT)",
        "each word synthesized alone, silence trimmed at -35 dB, words joined with 30-150 ms pauses",
        "boundaries are where the builder placed the samples",
    ),
    (
        "speaker gender (SGC)",
        "gender of the synthesizer voice (espeak-ng +f1..f5 / +m1..m7, flite slt / rms awb kal16)",
        "checked by measured median F0 (table above)",
    ),
    (
        "vocal event presence and timing (VED)",
        "procedural laugh, cough, cry, screaming, sigh, throat clearing, sneeze mixed in at a stored SNR",
        "onset/offset/SNR stored in `extra` (event_onset, event_offset, event_snr_db)",
    ),
    ("STTC answers", "arithmetic computed in code; facts from a built-in table", "correct by construction"),
)
PROCEDURAL_PROXIES = (
    (
        "emotion (SER)",
        "emotion-bearing sentence + delivery: happy high/fast/wide range; sad low/slow/quiet/breathy; anger "
        "loud/fast/saturated; fear high/fast/tremolo; surprise very high/x-wide range; disgust low/slow/rough; "
        "neutral default",
    ),
    (
        "style (SSR)",
        "genre text + delivery: 新闻科普 steady; 恐怖故事 slow/low/quiet/breathy; 童话故事 lively; 客服 polite; "
        "诗歌散文 slow with pauses; 有声书 measured narration; 日常口语 fast casual",
    ),
    (
        "age (SAP)",
        "child: female engine voices, pitch 75-95, fast, spectrum shifted up 1.08-1.2x; adult: default; "
        "old: low pitch, slow, "
        "tremolo, croak-like shimmer, breath",
    ),
)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def rebuild_command(settings: Any) -> str:
    """The ``osum data synth`` command line that plans exactly this corpus (every setting the CLI exposes)."""
    s = settings
    command = (
        f"osum data synth OUT --hours {s.hours:g} --seed {s.seed} --test-fraction {s.test_fraction:g} "
        f"--engines {','.join(s.engines)} --flite-split {s.flite_split} --flite-share {s.flite_share:g}"
    )
    if s.task_weights:
        command += " --tasks " + ",".join(f"{k}={v:g}" for k, v in s.task_weights.items())
    return command


def card_text(summary: Any, settings: Any, task_labels: Mapping[str, tuple[str, tuple[str, ...]]]) -> str:
    """The Markdown data card of a built corpus (``summary``: CorpusSummary, ``settings``: PlanSettings)."""
    s = settings
    engines = ",".join(s.engines)
    lines = [
        f"# Synthetic OSUM multi-task corpus (seed {s.seed})",
        "",
        "Made offline by `osum data synth` from espeak-ng/flite speech, built-in text templates and procedural "
        "vocal events. No recordings of people are involved. Rebuild it exactly with:",
        "",
        "```",
        rebuild_command(s),
        "```",
        "",
        "Audio: 16 kHz mono 16-bit wav, 1-12 s, peak-normalised to -3 dBFS plus a per-delivery offset (quiet "
        "deliveries such as sad or horror are up to 12 dB lower), with a faint noise floor 45-60 dB below the "
        "speech. Manifests: `train.jsonl`, `test.jsonl` (osum manifest records; `extra` holds the voice, the "
        "delivery settings, the measured F0 and, for VED, the event onset/offset/SNR).",
        "",
        "## Counts and hours",
        "",
    ]
    rows, total = [], {sp: [0, 0.0] for sp in SPLITS}
    tasks = sorted({t for sp in SPLITS for t in summary.counts.get(sp, {})}, key=_task_order)
    for task in tasks:
        row: list[Any] = [f"{task} (`{get_task(task).tag}`)"]
        for sp in SPLITS:
            n, sec = summary.counts.get(sp, {}).get(task, 0), summary.seconds.get(sp, {}).get(task, 0.0)
            total[sp][0] += n
            total[sp][1] += sec
            row += [n, _hours(sec)]
        rows.append(row)
    rows.append(["**total**"] + [v for sp in SPLITS for v in (total[sp][0], _hours(total[sp][1]))])
    lines += _table(["task", "train clips", "train hours", "test clips", "test hours"], rows)

    lines += ["## Labels per task", ""]
    rows = []
    for task, (name, values) in sorted(task_labels.items(), key=lambda kv: _task_order(kv[0])):
        for value in values:
            counts = [summary.labels.get(sp, {}).get(task, {}).get(value, 0) for sp in SPLITS]
            if any(counts):
                rows.append([task, name, value, *counts])
    lines += _table(["task", "field", "label", "train", "test"], rows)

    lines += ["## Voices", ""]
    lines += [
        f"Test voices are disjoint from training voices: espeak-ng variants {', '.join(TEST_VARIANTS)} and "
        f"accent {', '.join(TEST_ACCENTS)} are test-only; flite voices go to: **{s.flite_split}** "
        f"(share of clips in a split that has both engines: {s.flite_share:g}).",
        "",
    ]
    for sp in SPLITS:
        used = list(summary.voices.get(sp, []))
        lines.append(f"- **{sp}** ({len(used)} voices used): {', '.join(f'`{v}`' for v in used) or '-'}")
    lines += ["", "## Measured F0 (median over clips of the per-clip median)", ""]
    rows = [
        [name, value, f"{hz:.0f}"] for name, per in sorted(summary.f0.items()) for value, hz in per.items()
    ]
    lines += _table(["field", "label", "F0 (Hz)"], rows) if rows else ["(no gender/age clips)", ""]

    lines += [
        "## How far to trust each label",
        "",
        "### ACOUSTIC TRUTHS (true of the audio by construction)",
        "",
    ]
    lines += _table(["label", "how it is made", "why it holds"], [list(r) for r in ACOUSTIC_TRUTHS])
    lines += ["### PROCEDURAL PROXIES (a controlled delivery, not a real speaker state)", ""]
    lines += _table(["label", "how it is made"], [list(r) for r in PROCEDURAL_PROXIES])
    lines += [
        "A model that scores well on the proxies has learned the delivery rules above (pitch, rate, loudness, "
        "voice quality, wording), not human emotion, style or age. Use real data to evaluate those.",
        "",
        "## Text",
        "",
        f"Sentences come from templates and word lists (osum/data/synth/text.py, lexicon.py): everyday "
        f"statements, seven style genres and seven emotions; STTC asks arithmetic in words (answers in words) "
        f"and questions about a small fact table. A hash of each normalised sentence (or fact, or sum) puts "
        f"{s.text_holdout:.0%} of the material in the test split only, so no test sentence occurs in training.",
        "",
        "## Settings",
        "",
        f"hours {s.hours:g}, seed {s.seed}, test_fraction {s.test_fraction:g}, engines {engines}, "
        f"flite_split {s.flite_split}, flite_share {s.flite_share:g}, text_holdout {s.text_holdout:g}, "
        f"event SNR {s.snr_db[0]:g}..{s.snr_db[1]:g} dB, task weights "
        f"{dict(s.weights()) if s.task_weights is not None else 'equal'}.",
        "",
    ]
    return "\n".join(lines)


def _task_order(task: str) -> int:
    return TASK_NAMES.index(task) if task in TASK_NAMES else len(TASK_NAMES)


def write_card(path: str | Path, summary: Any, settings: Any, task_labels: Mapping) -> Path:
    """Write :func:`card_text` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.write_text(card_text(summary, settings, task_labels), encoding="utf-8")
    return path
