"""The user-facing object: ``osum.load(...)`` -> :class:`Osum` with ``run`` and ``save``.

>>> model = osum.load("tiny")                               # doctest: +SKIP
>>> model.run(["a.wav"], tasks=["asr", "sgc"])[0]["sgc"].labels   # doctest: +SKIP
{'gender': 'female'}
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from osum.checkpoint import PROMPTS_FILE, build_model, load_checkpoint, save_checkpoint
from osum.config import ModelConfig
from osum.data.audio import load_audio, log_mel_spectrogram
from osum.data.collate import collate
from osum.errors import ConfigError, OsumError, TaskError
from osum.export import is_delta_dir, load_delta
from osum.inference.decoding import DecodingOptions, generate_ids
from osum.model.codec import LLMCodec, WhisperCodec
from osum.model.osum import OsumModel
from osum.model.whisper_tasks import WhisperTaskModel
from osum.presets import PRESETS, preset_config
from osum.runtime import default_device, parse_dtype, trained_models_dir
from osum.tasks import PromptTable, Task, TaskResult, default_prompts, get_task

AudioInput = str | os.PathLike | np.ndarray | torch.Tensor
_T = TypeVar("_T")
BASE_SUFFIX = "-base"


@dataclass(frozen=True)
class Query:
    """One question about one clip: a 16 kHz mono waveform ``(N,)`` (see ``load_audio``), a task and an optional
    instruction that replaces the task's prompt (the task then only says how to parse the answer)."""

    audio: torch.Tensor
    task: str | Task = "asr"
    prompt: str | None = None


class Osum:
    """An OSUM model with its tokenizer and prompt sets, ready to answer the eight speech tasks."""

    def __init__(
        self,
        model: OsumModel | WhisperTaskModel,
        tokenizer: PreTrainedTokenizerBase,
        prompts: PromptTable | None = None,
        source: str = "",
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.prompts = prompts or default_prompts()
        self.source = source

    def codec(self, language: str | None = None, random_prompt: bool = True) -> LLMCodec | WhisperCodec:
        """How this model's prompts and targets become token ids (``language`` defaults to the model's own)."""
        if self.config.architecture == "whisper":
            return WhisperCodec(self.tokenizer, self.config.decoder.eot_token_id)
        return LLMCodec(
            self.tokenizer,
            self.prompts,
            self.config.llm.eos_token_id,
            language or self.config.prompt_language,
            random_prompt,
        )

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.encoder.conv1.weight.device

    def task(self, name: str) -> Task:
        """The registry task ``name`` with this model's prompt set applied."""
        return get_task(name, prompts=self.prompts)

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write a self-describing checkpoint directory (config, weights, tokenizer, prompts)."""
        out = save_checkpoint(out_dir, self.model, self.tokenizer)
        self.prompts.save(out / PROMPTS_FILE)
        return out

    # ------------------------------------------------------------------------------------------- inference

    def run(
        self,
        audios: Sequence[AudioInput],
        tasks: Sequence[str] | str = ("asr",),
        prompt: str | None = None,
        options: DecodingOptions | None = None,
        sample_rate: int | None = None,
        progress: bool = False,
    ) -> list[dict[str, TaskResult]]:
        """Answer every task for every clip -> one ``{task_name: TaskResult}`` per clip, in input order.

        ``audios`` are paths, or arrays/tensors ``(N,)``/``(N, C)`` with ``sample_rate``. ``prompt`` replaces the
        task's instruction (the task then only says how to parse the answer). Utterances are decoded in batches of
        ``options.batch_size``, sorted by length; a padded batch gives the same answers as one clip at a time.
        """
        task_names = [tasks] if isinstance(tasks, str) else list(tasks)
        if not task_names:
            raise TaskError("no task given")
        if prompt is not None and not prompt.strip():
            raise TaskError("the prompt is empty")
        for name in task_names:
            self.task(name)  # an unknown task fails before any audio is read
        waves = [self._load(a, i, sample_rate) for i, a in enumerate(audios)]
        queries = [Query(w, t, prompt) for w in waves for t in task_names]
        answers = iter(self.answer(queries, options, progress))
        return [{self.task(t).name: next(answers) for t in task_names} for _ in waves]

    def answer(
        self,
        queries: Sequence[Query],
        options: DecodingOptions | None = None,
        progress: bool = False,
        language: str | None = None,
    ) -> list[TaskResult]:
        """Answer each query (its own clip, task and prompt) -> one :class:`TaskResult` per query, in order.

        The general form of :meth:`run`, for callers whose clips ask different things (the HTTP server batches
        the queries of many requests into one call). Queries that share one waveform object get its features
        once. ``language`` picks the prompt language (default: the model's).
        """
        options = options or DecodingOptions()
        codec = self.codec(language)
        n_mels = self.config.encoder.n_mels
        feats: dict[int, torch.Tensor] = {}
        prompts: dict[tuple[str, str | None], list[int]] = {}  # tokenised once per (task, prompt)
        items: list[tuple[int, torch.Tensor, Task, list[int]]] = []
        for index, query in enumerate(queries):
            task = self.task(query.task)
            if query.prompt is not None and not query.prompt.strip():
                raise TaskError("the prompt is empty")
            key = id(query.audio)
            if key not in feats:
                feats[key] = log_mel_spectrogram(query.audio, n_mels)
            ids = prompts.get((task.name, query.prompt))
            if ids is None:
                ids = prompts[task.name, query.prompt] = codec.prompt_ids(task, prompt=query.prompt)
            items.append((index, feats[key], task, ids))
        items.sort(key=lambda it: -it[1].shape[0])  # similar lengths together: less padding
        results: list[TaskResult | None] = [None] * len(items)
        batches = list(_chunks(items, options.batch_size))
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc="decoding", unit="batch")
        for chunk in batches:
            batch = collate([it[1] for it in chunk], [it[3] for it in chunk], [[] for _ in chunk])
            texts = [codec.decode(x) for x in generate_ids(self.model, batch.to(self.device), options)]
            for (index, _, task, _), text in zip(chunk, texts, strict=True):
                results[index] = task.parse(text)
        return [r for r in results if r is not None]

    def _load(self, audio: AudioInput, index: int, sample_rate: int | None) -> torch.Tensor:
        name = str(audio) if isinstance(audio, (str, os.PathLike)) else f"audio[{index}]"
        return load_audio(audio, sample_rate, max_seconds=self.config.max_audio_seconds, name=name)


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load(
    name_or_dir: str | os.PathLike = "mini",
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    seed: int = 0,
) -> Osum:
    """Load a checkpoint directory or build a preset (``mini``, ``tiny``; ``osum-7b`` needs converted weights).

    A preset with a trained release under ``models/NAME`` (``OSUM_MODELS_DIR``) loads that; ``NAME-base`` always
    builds the untrained base from the packaged weights.

    ``dtype`` is the LLM's (default: bf16 on CUDA, float32 on CPU); encoder and adaptor run in float32.
    """
    dev = torch.device(device) if device is not None else default_device()
    llm_dtype = parse_dtype(dtype, dev)
    path = Path(name_or_dir)
    if path.is_dir() and is_delta_dir(path):  # an exported folder: trained tensors over packaged bases
        model, tokenizer, prompts = load_delta(path, dev, llm_dtype)
        return Osum(model, tokenizer, prompts, source=str(path))
    if path.is_dir():
        model, tokenizer, _ = load_checkpoint(path, dev, llm_dtype)
        prompts = PromptTable.load(path / PROMPTS_FILE) if (path / PROMPTS_FILE).is_file() else None
        return Osum(model, tokenizer, prompts, source=str(path))
    name = str(name_or_dir)
    trained = trained_models_dir() / name
    if name in PRESETS and is_delta_dir(trained):  # the trained release of a preset (recipes/mini)
        return load(trained, device, dtype, seed)
    name = name.removesuffix(BASE_SUFFIX)  # "mini-base": always the untrained build (what recipes start from)
    if name not in PRESETS:
        raise OsumError(
            f"{str(name_or_dir)!r} is neither a checkpoint directory nor a preset "
            f"({', '.join(sorted(PRESETS))}; NAME{BASE_SUFFIX} for a preset's untrained base)"
        )
    config = preset_config(name)
    if name == "osum-7b":
        raise ConfigError(
            "the osum-7b preset has no packaged weights: download OSUM's infer.pt (HF ASLP-lab/OSUM) and run "
            "`osum convert-osum infer.pt DIR`, then load DIR"
        )
    model, tokenizer = build_model(config, seed=seed)
    model.place(dev, llm_dtype if config.architecture == "osum" else None)
    return Osum(model, tokenizer, None, source=name)
