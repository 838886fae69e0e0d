"""Batched, KV-cached decoding over token ids. Deterministic by default (greedy); beam and sampling on request.

Knows nothing about files, tasks or HTTP: it turns a :class:`~osum.model.osum.Batch` (features + prompt ids) into
generated token ids. OSUM's original decoding was beam *sampling* with dropout left on in its demos; ours runs the
model in ``eval()`` under ``torch.inference_mode`` and samples only when ``do_sample=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from osum.errors import ConfigError
from osum.model.osum import Batch, OsumModel
from osum.model.whisper_tasks import WhisperTaskModel


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

    def __post_init__(self) -> None:
        checks = {
            "max_new_tokens": self.max_new_tokens >= 1,
            "num_beams": self.num_beams >= 1,
            "temperature": self.temperature > 0,
            "top_p": 0 < self.top_p <= 1,
            "top_k": self.top_k >= 0,
            "repetition_penalty": self.repetition_penalty > 0,
            "batch_size": self.batch_size >= 1,
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
    ids generated after them."""
    if model.training:
        raise RuntimeError("generate_ids needs model.eval(): dropout would make decoding random")
    if isinstance(model, WhisperTaskModel):
        if options.num_beams > 1:
            raise ConfigError(
                "beam search is not available for Whisper (stage-1) models yet: use num_beams=1"
            )
        if answer_prefix is not None:
            raise ConfigError("answer_prefix is for osum (LLM) models")
        if options.do_sample and options.seed is not None:
            torch.manual_seed(options.seed)
        return model.generate(
            batch, options.max_new_tokens, options.do_sample, options.temperature, options.top_k
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
    )
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
        if options.seed is not None:
            torch.manual_seed(options.seed)
    else:  # keep the model's generation_config sampling knobs out of a greedy/beam run
        kwargs.update(temperature=None, top_p=None, top_k=None)
    out = model.lm.generate(**kwargs)  # with inputs_embeds HF returns only the new tokens
    results = []
    for row in out.tolist():
        ids = []
        for t in row:
            if t == eos:
                break
            ids.append(t)
        results.append(ids)
    return results
