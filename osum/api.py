"""The user-facing object: ``osum.load(...)`` -> :class:`Osum` with ``run`` and ``save``.

>>> model = osum.load("tiny")                               # doctest: +SKIP
>>> model.run(["a.wav"], tasks=["asr", "sgc"])[0]["sgc"].labels   # doctest: +SKIP
{'gender': 'female'}
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from osum.checkpoint import PROMPTS_FILE, build_model, load_checkpoint, save_checkpoint
from osum.codec import LLMCodec, WhisperCodec
from osum.config import ModelConfig
from osum.data.audio import load_audio
from osum.errors import ConfigError, OsumError, TaskError
from osum.export import is_delta_dir, load_delta
from osum.inference.decoding import DecodingOptions
from osum.inference.engine import Engine, Query  # Query: re-exported (osum.Query)
from osum.inference.long_audio import MAX_AUDIO_SECONDS
from osum.inference.quantize import is_int8, quantize_int8
from osum.inference.transcriber import Transcriber
from osum.model.osum import OsumModel
from osum.model.whisper_tasks import WhisperTaskModel
from osum.presets import PRESETS, preset_config
from osum.runtime import default_device, parse_dtype, trained_models_dir
from osum.tasks import PromptTable, Task, TaskResult, default_prompts

AudioInput = str | os.PathLike | np.ndarray | torch.Tensor
BASE_SUFFIX = "-base"


class Osum:
    """An OSUM model with its tokenizer and prompt sets, ready to answer the eight speech tasks."""

    def __init__(
        self,
        model: OsumModel | WhisperTaskModel,
        tokenizer: PreTrainedTokenizerBase,
        prompts: PromptTable | None = None,
        source: str = "",
    ) -> None:
        self.engine = Engine(model.eval(), tokenizer, prompts or default_prompts())
        self.source = source
        self.int8 = False  # quantize_int8 was applied: answer only

    def quantize_int8(self) -> int:
        """int8 weights for CPU inference (:mod:`osum.inference.quantize`), in the model and its transcriber ->
        the number of linear layers replaced. Irreversible: the model can then answer, not train or be saved."""
        if self.device.type != "cpu":
            raise ConfigError(f"int8 weights run on the CPU only; this model is on {self.device}")
        modules: list[torch.nn.Module] = [self.model]
        if self.transcriber is not None:
            modules.append(self.transcriber.model)
        count = quantize_int8(*modules)
        self.int8 = True
        return count

    @property
    def model(self) -> OsumModel | WhisperTaskModel:
        return self.engine.model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.engine.tokenizer

    @property
    def prompts(self) -> PromptTable:
        return self.engine.prompts

    @prompts.setter
    def prompts(self, prompts: PromptTable) -> None:
        self.engine.prompts = prompts

    @property
    def transcriber(self) -> Transcriber | None:
        """See :attr:`osum.inference.engine.Engine.transcriber`."""
        return self.engine.transcriber

    def codec(self, language: str | None = None, random_prompt: bool = True) -> LLMCodec | WhisperCodec:
        """How this model's prompts and targets become token ids (``language`` defaults to the model's own)."""
        return self.engine.codec(language, random_prompt)

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.engine.device

    def task(self, name: str | Task) -> Task:
        """The registry task ``name`` with this model's prompt set applied."""
        return self.engine.task(name)

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write a self-describing checkpoint directory (config, weights, tokenizer, prompts)."""
        if self.int8:
            raise ConfigError("an int8 model cannot be saved: save the model loaded without dtype='int8'")
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
        max_seconds: float | None = MAX_AUDIO_SECONDS,
    ) -> list[dict[str, TaskResult]]:
        """Answer every task for every clip -> one ``{task_name: TaskResult}`` per clip, in input order.

        ``audios`` are paths, or arrays/tensors ``(N,)``/``(N, C)`` with ``sample_rate``. ``prompt`` replaces the
        task's instruction (the task then only says how to parse the answer). Utterances are decoded in batches of
        ``options.batch_size``, sorted by length; a padded batch gives the same answers as one clip at a time.
        Clips longer than the encoder's window are cut at pauses (see :meth:`answer`); ``max_seconds`` refuses
        longer files (None: no limit).
        """
        task_names = [tasks] if isinstance(tasks, str) else list(tasks)
        if not task_names:
            raise TaskError("no task given")
        if prompt is not None and not prompt.strip():
            raise TaskError("the prompt is empty")
        for name in task_names:
            self.task(name)  # an unknown task fails before any audio is read
        waves = [self._load(a, i, sample_rate, max_seconds) for i, a in enumerate(audios)]
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
        the queries of many requests into one call); see :mod:`osum.inference.engine` for the steps and guards.
        ``language`` picks the prompt language (default: the model's).
        """
        return self.engine.answer(queries, options, progress, language)

    def check_prompt(self, prompt: str, options: DecodingOptions) -> None:
        """TaskError when ``prompt`` is empty or has more tokens than ``options.max_prompt_tokens``."""
        self.engine.check_prompt(prompt, options)

    def _load(
        self, audio: AudioInput, index: int, sample_rate: int | None, max_seconds: float | None
    ) -> torch.Tensor:
        name = str(audio) if isinstance(audio, (str, os.PathLike)) else f"audio[{index}]"
        return load_audio(audio, sample_rate, max_seconds=max_seconds, name=name)


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
    ``"int8"``: int8 weights in every linear layer, on the CPU, for answering only (:meth:`Osum.quantize_int8`).
    """
    dev = torch.device(device) if device is not None else default_device()
    if is_int8(dtype):
        if dev.type != "cpu":
            raise ConfigError(f"dtype int8 runs on the CPU only; device is {dev}")
        model = load(name_or_dir, dev, torch.float32, seed)
        model.quantize_int8()
        return model
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
