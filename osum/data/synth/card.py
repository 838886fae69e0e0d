"""The data card (``OUT/README.md``) of a synthetic corpus: what is in it, and which labels can be trusted how.

The card holds no timestamps or machine details, so the same seed and settings give a byte-identical card.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from osum.data.synth import corpus_text
from osum.data.synth.plan import TASK_NAMES
from osum.data.synth.text import SPLITS
from osum.data.synth.voices import GENDERS, TEST_ACCENTS, TEST_VARIANTS, inventory, split_voices
from osum.tasks import get_task

# (what, how it is made, why it is true) for the labels that are facts about the audio.
ACOUSTIC_TRUTHS = (
    ("transcript (all tasks)", "the text given to the synthesizer", "the engine speaks exactly this text"),
    (
        "no speech (all tasks)",
        "silence, room tone, noise, hum, tones, clicks or a vocal event alone; empty transcript, no labels "
        "(VED keeps a lone event's label)",
        "nothing was synthesized from text (`extra.nonspeech`, `extra.kind`)",
    ),
    (
        "word times (SRWT)",
        "each word synthesized alone, silence trimmed at -35 dB, words joined with 30-150 ms pauses",
        "boundaries are where the builder placed the samples",
    ),
    (
        "speaker gender (SGC)",
        "gender line of the espeak-ng variant file (variants without one, and whispering ones, are never used "
        "for SGC/SAP); flite slt / rms awb kal16; in training also awb~female and kal16~female, the male flite "
        "voices converted (F0 about 200 Hz, spectrum x1.15; `osum.data.synth.voices`)",
        "checked by measured median F0 before augmentation (table above)",
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
        f"--engines {','.join(s.engines)} --flite-split {s.flite_split} --flite-share {s.flite_share:g} "
        f"--clean-share {s.clean_share:g}"
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
        "Made offline by `osum data synth` from espeak-ng/flite speech, real text from Debian packages, text "
        "templates and procedural vocal events. No recordings of people are involved. Rebuild it exactly with:",
        "",
        "```",
        rebuild_command(s),
        "```",
        "",
        "Audio: 16 kHz mono 16-bit wav, 1-12 s, peak-normalised to -3 dBFS plus a per-delivery offset (quiet "
        "deliveries such as sad or horror are up to 12 dB lower), with a faint noise floor 45-60 dB below the "
        "speech; then, for most clips, acoustic augmentation (speed, reverberation, noise, phone band or codec, "
        "level; see below). Manifests: `train.jsonl`, `test.jsonl` (osum manifest records; `extra` holds the "
        "voice, the delivery settings, the measured F0, `acoustics` (what augmentation the clip got) and, for "
        "VED, the event onset/offset/SNR).",
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

    lines += _voices_section(summary, s)
    lines += _acoustics_section(summary)
    lines += ["## Measured F0 (median over clips of the per-clip median, before augmentation)", ""]
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
        "Most general sentences (ASR, SRWT, VED, SGC, SAP) are real text from Debian packages "
        "(osum/data/synth/corpus_text.py), each source wholly in one split (the test split's sources are never "
        "read for training); the rest, and every emotion and style sentence, come from templates and word lists "
        "(osum/data/synth/text.py, lexicon.py); STTC asks arithmetic in words (answers in words) and questions "
        f"about a small fact table. A hash of each normalised template sentence (or fact, or sum) puts "
        f"{s.text_holdout:.0%} of that material in the test split only, so no test sentence occurs in training.",
        "",
        *corpus_text.card_lines(),
        "",
        "## Settings",
        "",
        f"hours {s.hours:g}, seed {s.seed}, test_fraction {s.test_fraction:g}, engines {engines}, "
        f"flite_split {s.flite_split}, flite_share {s.flite_share:g}, text_holdout {s.text_holdout:g}, "
        f"event SNR {s.snr_db[0]:g}..{s.snr_db[1]:g} dB, nonspeech_share {s.nonspeech_share:g}, "
        f"clean_share {s.clean_share:g}, task weights "
        f"{dict(s.weights()) if s.task_weights is not None else 'equal'}.",
        "",
    ]
    return "\n".join(lines)


def _voices_section(summary: Any, s: Any) -> list[str]:
    lines = ["## Voices", ""]
    lines += [
        f"Test voices are disjoint from training voices: espeak-ng variants {', '.join(TEST_VARIANTS)} and "
        f"accent {', '.join(TEST_ACCENTS)} are test-only; flite voices go to: **{s.flite_split}** "
        f"(share of clips in a split that has both engines: {s.flite_share:g}). A variant's gender is the "
        "`gender` line of its espeak-ng file; `unknown` voices (no such line) and whispering ones are used for "
        "ASR, SRWT, VED and STTC only (whispering ones not for SER/SSR either).",
        "",
    ]
    rows = []
    for sp, per_engine in inventory(s.engines, s.flite_split).items():
        for engine, counts in sorted(per_engine.items()):
            rows.append([sp, engine, *(counts.get(g, 0) for g in (*GENDERS, "whispered"))])
    lines += _table(["split", "engine", "female", "male", "unknown", "of which whispering"], rows)
    gender = {v.id: v.gender for vs in split_voices(s.engines, s.flite_split).values() for v in vs}
    for sp in SPLITS:
        used = list(summary.voices.get(sp, []))
        by_gender = ", ".join(f"{sum(gender.get(v) == g for v in used)} {g}" for g in GENDERS)
        variants = sorted({v.split("+", 1)[1] for v in used if "+" in v}, key=str.lower)
        accents = sorted({v.split(":", 1)[1].split("+")[0] for v in used if "+" in v})
        flite = [f"`{v}`" for v in used if v.startswith("flite:")]
        lines.append(
            f"- **{sp}**: {len(used)} voices used ({by_gender}); espeak-ng accents {', '.join(accents) or '-'}; "
            f"variants {', '.join(variants) or '-'}; flite {', '.join(flite) or '-'}"
        )
    return lines + [""]


def _acoustics_section(summary: Any) -> list[str]:
    lines = [
        "## Acoustic augmentation and clips without speech",
        "",
        "Each clip's chain is drawn per task (osum/data/synth/acoustics.py) and stored in `extra.acoustics`: "
        "speed 0.9/1.1 (content tasks only; word and event times are measured after it), reverberation "
        "(synthetic exponential tail, RT60 0.1-0.8 s), additive noise (white, pink, brown, speech-shaped, "
        "babble of synthetic talkers; SNR 0-30 dB, 5-30 dB for SER/SSR/SGC/SAP, and for VED at least 5 dB "
        "below the event), a channel (300-3400 Hz phone band alone, or 8 kHz mu-law / GSM / AMR-NB, or 16 kHz "
        "MP3, through sox; none for VED) and a level change. A clip counts once per item below.",
        "",
    ]
    items = sorted({k for sp in SPLITS for k in summary.acoustics.get(sp, {})}, key=_item_order)
    totals = {sp: sum(summary.counts.get(sp, {}).values()) or 1 for sp in SPLITS}
    rows = []
    for item in items:
        row: list[Any] = [item]
        for sp in SPLITS:
            n = summary.acoustics.get(sp, {}).get(item, 0)
            row += [n, f"{n / totals[sp]:.0%}"]
        rows.append(row)
    lines += _table(["item", "train clips", "train share", "test clips", "test share"], rows) if rows else []
    kinds = sorted({k for sp in SPLITS for k in summary.nonspeech.get(sp, {})})
    rows = []
    for kind in kinds:
        rows.append(
            [kind.replace("task:", "task "), *(summary.nonspeech.get(sp, {}).get(kind, 0) for sp in SPLITS)]
        )
    lines += [
        "Clips without speech (empty transcript, no labels; a lone vocal event keeps its label in VED), by kind "
        "and by task:",
        "",
    ]
    lines += _table(["kind / task", "train", "test"], rows) if rows else ["(none)", ""]
    return lines


def _item_order(item: str) -> tuple[int, str]:
    heads = ("clean", "noise", "reverb", "codec", "speed", "gain")
    head = item.split(":")[0]
    return (heads.index(head) if head in heads else len(heads), item)


def _task_order(task: str) -> int:
    return TASK_NAMES.index(task) if task in TASK_NAMES else len(TASK_NAMES)


def write_card(path: str | Path, summary: Any, settings: Any, task_labels: Mapping) -> Path:
    """Write :func:`card_text` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.write_text(card_text(summary, settings, task_labels), encoding="utf-8")
    return path
