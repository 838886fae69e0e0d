"""Batched, KV-cached decoding over token ids. Deterministic by default (greedy); beam and sampling on request.

Knows nothing about files, tasks or HTTP: it turns a :class:`~osum.model.osum.Batch` (features + prompt ids) into
generated token ids. OSUM's original decoding was beam *sampling* with dropout left on in its demos; ours runs the
model in ``eval()`` under ``torch.inference_mode`` and samples only when ``do_sample=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import CompileConfig, StoppingCriteriaList

from osum.errors import ConfigError
from osum.inference.guards import StopRunaways, loop_start, trim_loop
from osum.model.osum import IGNORE_INDEX, Batch, OsumModel
from osum.model.whisper_tasks import WhisperTaskModel

KV_CACHES = ("dynamic", "static", "compiled")


@dataclass(frozen=True)
class DecodingOptions:
    max_new_tokens: int = 200  # generated tokens per answer (OSUM used 400)
    num_beams: int = 1  # 1 = greedy; > 1 = beam search (still deterministic)
    do_sample: bool = False  # sample instead of argmax/beam; only then do temperature/top_p/top_k matter
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k filter
    repetition_penalty: float = 1.0  # OSUM used 1.05
    seed: int | None = None  # seeds sampling, so even sampled runs can be repeated
    batch_size: int = 8  # utterance x task pairs decoded together
    # the LLM's key/value cache (osum models; a Whisper model's decoder keeps its own): "dynamic" grows with each
    # token; "static" is allocated once for the prefix plus max_new_tokens; "compiled" is the static cache with the
    # decoding step compiled by torch.compile (the first batch pays the compilation, ~35 s for mini on 2 CPU
    # cores). Same tokens every way; tokens/s on CPU (bench/kv_cache.py): static 1.0x, compiled 1.19x
    kv_cache: str = "dynamic"
    # guards (osum.api.Osum.answer): on by default, each switchable
    skip_silence: bool = True  # no speech found by the voice activity detector -> empty answers, no labels
    stop_loops: bool = True  # end an answer that repeats itself; cap its tokens by the audio's length
    min_label_prob: float = 0.0  # a label less probable than this is answered None (label tasks of osum models)
    max_prompt_tokens: int = 1024  # a longer custom prompt is refused (it would hold the batch for minutes)

    def __post_init__(self) -> None:
        checks = {
            "max_new_tokens": self.max_new_tokens >= 1,
            "num_beams": self.num_beams >= 1,
            "temperature": self.temperature > 0,
            "top_p": 0 < self.top_p <= 1,
            "top_k": self.top_k >= 0,
            "repetition_penalty": self.repetition_penalty > 0,
            "batch_size": self.batch_size >= 1,
            "max_prompt_tokens": self.max_prompt_tokens >= 1,
            "min_label_prob": 0 <= self.min_label_prob <= 1,
            "kv_cache": self.kv_cache in KV_CACHES,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(
                f"invalid decoding options: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}"
            )


@torch.inference_mode()
def generate_ids(
    model: OsumModel | WhisperTaskModel,
    batch: Batch,
    options: DecodingOptions,
    answer_prefix: list[list[int]] | None = None,
) -> list[list[int]]:
    """Generate answers for every row of ``batch`` -> token ids per row, without the end token or padding.
    ``answer_prefix`` (osum models): per row, ids the answer is forced to start with; the result holds only the
    ids generated after them. No guards: see :func:`generate`."""
    return generate(model, batch, options, answer_prefix, guard=False)[0]


@torch.inference_mode()
def generate(
    model: OsumModel | WhisperTaskModel,
    batch: Batch,
    options: DecodingOptions,
    answer_prefix: list[list[int]] | None = None,
    caps: list[int] | None = None,
    guard: bool = True,
) -> tuple[list[list[int]], list[float | None]]:
    """:func:`generate_ids` with guards and scores -> (ids per row, mean log-probability per generated token, the
    end token included; None when a guard cut the row or beam search ran). With ``guard`` and
    ``options.stop_loops``: a row whose end repeats itself stops and loses the repeated copies, and row i stops
    after ``caps[i]`` tokens (:mod:`osum.inference.guards`)."""
    if model.training:
        raise RuntimeError("generate_ids needs model.eval(): dropout would make decoding random")
    stop_loops = guard and options.stop_loops
    caps = caps if stop_loops else None
    if isinstance(model, WhisperTaskModel):
        if options.num_beams > 1:
            raise ConfigError(
                "beam search is not available for Whisper (stage-1) models yet: use num_beams=1"
            )
        if answer_prefix is not None:
            raise ConfigError("answer_prefix is for osum (LLM) models")
        if options.do_sample and options.seed is not None:
            torch.manual_seed(options.seed)
        return model.decode(
            batch,
            options.max_new_tokens,
            options.do_sample,
            options.temperature,
            options.top_k,
            caps=caps,
            loop_start=loop_start if stop_loops else None,
        )
    embeds, mask = model.prefix_embeddings(batch, answer_prefix)
    eos = model.config.llm.eos_token_id
    kwargs: dict = dict(
        inputs_embeds=embeds,
        attention_mask=mask,
        max_new_tokens=options.max_new_tokens,
        num_beams=options.num_beams,
        do_sample=options.do_sample,
        repetition_penalty=options.repetition_penalty,
        eos_token_id=eos,
        pad_token_id=eos,
        use_cache=True,
        return_dict_in_generate=True,
        output_scores=options.num_beams == 1,
    )
    if options.kv_cache == "static":
        kwargs.update(cache_implementation="static", disable_compile=True)
    elif options.kv_cache == "compiled":
        kwargs.update(cache_implementation="static", compile_config=compile_config(model.lm.device))
    if stop_loops:
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopRunaways(0, caps, True)])
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
        if options.seed is not None:
            torch.manual_seed(options.seed)
    else:  # keep the model's generation_config sampling knobs out of a greedy/beam run
        kwargs.update(temperature=None, top_p=None, top_k=None)
    out = model.lm.generate(**kwargs)  # with inputs_embeds HF returns only the new tokens
    chosen = None
    if out.scores:  # (B, steps): log-probability of each chosen token
        steps = torch.stack(out.scores, 1).float().log_softmax(-1)
        chosen = steps.gather(-1, out.sequences[:, : steps.shape[1], None])[..., 0].tolist()
    results, means = [], []
    for r, row in enumerate(out.sequences.tolist()):
        ids = []
        ended = False
        for t in row:
            if t == eos:
                ended = True
                break
            ids.append(t)
        cut = trim_loop(ids) if stop_loops else ids
        results.append(cut)
        whole = ended and len(cut) == len(ids) and (caps is None or len(ids) < caps[r])
        means.append(sum(chosen[r][: len(ids) + 1]) / (len(ids) + 1) if chosen is not None and whole else None)
    return results, means


def compile_config(device: torch.device) -> CompileConfig:
    """transformers' settings for compiling the decoding step: CUDA graphs (its default "reduce-overhead") on a
    GPU; on the CPU inductor's default mode, and the flag by which transformers' ``generate`` compiles on devices
    other than accelerators (it documents the flag for this use)."""
    if device.type == "cuda":
        return CompileConfig()
    config = CompileConfig(mode="default")
    config._compile_all_devices = True
    return config


@torch.inference_mode()
def score_targets(model: OsumModel, batch: Batch, n_scored: list[int]) -> torch.Tensor:
    """Teacher-forced log-probability of each row's last ``n_scored[i]`` target ids (its end token included), in one
    pass -> ``(B,)``. ``batch``'s targets are the forced answer prefix followed by a candidate answer."""
    if model.training:
        raise RuntimeError("score_targets needs model.eval()")
    out = model(batch, full_logits=False)  # logits (N, V): every row's target positions, row by row
    flat = out.labels[:, 1:][out.labels[:, 1:] != IGNORE_INDEX]
    logp = out.logits.float().log_softmax(-1).gather(-1, flat[:, None])[:, 0]
    scores = []
    start = 0
    for length, n in zip(batch.target_lengths.tolist(), n_scored, strict=True):
        scores.append(logp[start + length - n : start + length].sum())
        start += length
    return torch.stack(scores)
