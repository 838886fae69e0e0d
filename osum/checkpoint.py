"""Our checkpoint: one self-describing directory.

::

    DIR/config.yaml          resolved ModelConfig (every field)
    DIR/model.safetensors    all weights (strictly checked on load: missing/unexpected keys are listed)
    DIR/tokenizer/           HF tokenizer files
    DIR/prompts.yaml         the prompt sets the model was trained with {task: {lang: [prompt, ...]}}

``build_model`` makes a model from a config alone: random init, then the base weights its ``sources`` name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_model
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from osum.config import ModelConfig, load_yaml, save_yaml
from osum.errors import CheckpointError
from osum.model.osum import OsumModel
from osum.model.whisper_tasks import WhisperTaskModel

CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
PROMPTS_FILE = "prompts.yaml"


def load_strict(
    module: torch.nn.Module, state_dict: dict[str, torch.Tensor], what: str, assign: bool = False
) -> None:
    """``load_state_dict(strict=True)`` whose failure is a CheckpointError naming the keys at fault.

    A checkpoint from before the speech field's third value (``"vocal"``) loads with its two-class speech
    classifier widened by :func:`widen_speech_field`."""
    own = module.state_dict(keep_vars=True)
    state_dict = widen_speech_field(own, _fill_tied(own, state_dict))
    missing, unexpected = set(own) - set(state_dict), set(state_dict) - set(own)
    if missing or unexpected:
        raise CheckpointError(
            f"{what}: weights do not match the model: missing {sorted(missing)[:20]} ({len(missing)}), "
            f"unexpected {sorted(unexpected)[:20]} ({len(unexpected)})"
        )
    try:
        module.load_state_dict(state_dict, strict=True, assign=assign)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{what}: {str(exc).strip()}") from None


# the speech classifier's output layer and its class vectors (osum.model.label_tokens.LabelTokens)
_SPEECH_ROWS = ("heads.speech.weight", "heads.speech.bias", "values.speech")


def widen_speech_field(
    expected: Mapping[str, torch.Tensor], state_dict: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Give a two-class speech classifier (``speech``, ``none``: checkpoints made before ``"vocal"`` was added to
    :data:`osum.vocabulary.SPEECH_FIELD`) the third class the model expects, which it then never chooses: a
    zero weight row and a bias of -1e4 (a class vector of zeros). Such a model answers as it did; its speech head
    must be trained again to hear lone vocal events. ``expected``: the model's own state dict (its shapes).
    Other keys and shapes are left to the strict load."""
    out = dict(state_dict)
    for key, tensor in expected.items():
        if not key.endswith(_SPEECH_ROWS):
            continue
        got, shape = out.get(key), tensor.shape
        if got is None or got.shape[0] != 2 or shape[0] != 3 or tuple(got.shape[1:]) != tuple(shape[1:]):
            continue
        row = torch.full((1, *got.shape[1:]), -1e4 if key.endswith("bias") else 0.0, dtype=got.dtype)
        out[key] = torch.cat([got, row.to(got.device)])
    return out


def model_class(config: ModelConfig) -> type[OsumModel] | type[WhisperTaskModel]:
    """The module class of ``config.architecture``: the one registry of model families."""
    classes = {"osum": OsumModel, "whisper": WhisperTaskModel}
    if config.architecture not in classes:
        raise CheckpointError(f"unknown architecture {config.architecture!r}; known: {sorted(classes)}")
    from osum.model.label_tokens import LABEL_HEADS

    if config.label_head not in LABEL_HEADS:
        raise CheckpointError(f"unknown label_head {config.label_head!r}; known: {list(LABEL_HEADS)}")
    return classes[config.architecture]


def build_model(
    config: ModelConfig, seed: int = 0
) -> tuple[OsumModel | WhisperTaskModel, PreTrainedTokenizerBase]:
    """A model from ``config``: seeded random init, then the pretrained bases its ``sources`` point at."""
    from osum.model.assets import load_encoder_source, load_llm_source, load_tokenizer

    torch.manual_seed(seed)
    model = model_class(config)(config)
    tokenizer = None
    if config.architecture == "whisper":
        if config.sources.encoder:
            _load_whisper_source(model, config.sources.encoder)
        model.eval()
        return model, load_tokenizer(config.sources.tokenizer)
    if config.sources.encoder:
        _, enc_sd = load_encoder_source(config.sources.encoder)
        load_strict(model.encoder, enc_sd, f"encoder source {config.sources.encoder!r}")
    if config.sources.llm:
        _, llm_sd, tokenizer = load_llm_source(config.sources.llm)
        lm = model.lm
        if config.lora.enabled:  # peft renamed the adapted linears' weights to `<name>.base_layer.weight`
            llm_sd = _to_peft_names(llm_sd, lm.state_dict())
        load_strict(lm, llm_sd, f"LLM source {config.sources.llm!r}")
    if config.sources.tokenizer and (tokenizer is None or config.sources.tokenizer != config.sources.llm):
        tokenizer = load_tokenizer(config.sources.tokenizer)
    if tokenizer is None:
        raise CheckpointError("config.sources.tokenizer is empty: a model needs a tokenizer")
    model.eval()
    return model, tokenizer


def _load_whisper_source(model: WhisperTaskModel, source: str) -> None:
    """Pretrained Whisper encoder + decoder; task-tag rows appended to the vocabulary start as <|transcribe|>'s."""
    from osum.convert.whisper import load_whisper, packaged_tiny_en_dir

    folder = packaged_tiny_en_dir() if source == "packaged:whisper-tiny.en" else Path(source)
    hf_config, hf = load_whisper(folder)
    sd = {
        k.removeprefix("model."): v
        for k, v in hf.items()
        if k.startswith(("model.encoder.", "model.decoder."))
    }
    emb = sd["decoder.embed_tokens.weight"]
    n_new = model.config.decoder.vocab_size - emb.shape[0]
    if n_new < 0:
        raise CheckpointError(f"{source}: vocabulary {emb.shape[0]} is larger than decoder.vocab_size")
    transcribe = (
        50358 if emb.shape[0] == 51864 else 50359
    )  # <|transcribe|> in English-only / multilingual Whisper
    sd["decoder.embed_tokens.weight"] = torch.cat([emb, emb[transcribe].expand(n_new, -1)])
    if model.label_tokens is not None:  # not in Whisper: the label heads keep their seeded initialisation
        sd.update({f"label_tokens.{k}": v for k, v in model.label_tokens.state_dict().items()})
        # it decodes as the pretrained Whisper does, so it keeps Whisper's decoding rules
        d = model.config.decoder
        d.suppress_tokens = list(hf_config.suppress_tokens or [])
        d.begin_suppress_tokens = list(hf_config.begin_suppress_tokens or [])
        d.alignment_heads = [list(p) for p in getattr(hf_config, "alignment_heads", None) or []]
    load_strict(model, sd, f"Whisper source {source!r}")


def check_state_dict(config: ModelConfig, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Raise CheckpointError unless ``state_dict`` has exactly the keys and shapes of ``OsumModel(config)``.

    The model is built on the meta device, so this costs no memory even for the 7B model.
    """
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in model_class(config)(config).state_dict().items()}
    missing, unexpected = set(expected) - set(state_dict), set(state_dict) - set(expected)
    wrong = sorted(k for k in set(expected) & set(state_dict) if tuple(state_dict[k].shape) != expected[k])
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{what}: weights do not match the model: missing {sorted(missing)[:20]} ({len(missing)}), "
            f"unexpected {sorted(unexpected)[:20]} ({len(unexpected)}), "
            f"wrong shape {[(k, tuple(state_dict[k].shape), expected[k]) for k in wrong[:10]]}"
        )


def _fill_tied(own: Mapping[str, torch.Tensor], sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Re-add the keys of tied tensors (e.g. lm_head = embed_tokens) that safetensors stored only once; ``own``:
    the model's ``state_dict(keep_vars=True)`` (tied keys share one tensor object)."""
    groups: dict[int, list[str]] = {}
    for key, tensor in own.items():
        groups.setdefault(id(tensor), []).append(key)
    out = dict(sd)
    for keys in groups.values():
        present = [k for k in keys if k in out]
        for k in keys:
            if present and k not in out:
                out[k] = out[present[0]]
    return out


def _to_peft_names(sd: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map plain ``x.weight`` to peft's ``x.base_layer.weight`` and keep the fresh LoRA tensors of ``target``."""
    out = {}
    for key, value in sd.items():
        stem, _, leaf = key.rpartition(".")
        peft_key = f"{stem}.base_layer.{leaf}"
        out[peft_key if peft_key in target else key] = value
    for key, value in target.items():
        if ".lora_" in key:
            out[key] = value
    return out


def usual_file_mode(path: str | os.PathLike) -> None:
    """Give a file the mode a plain ``open(path, "w")`` gives (0666 less the umask): safetensors writes 0600,
    which other users (a server account, a shared model folder) cannot read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def save_checkpoint(
    out_dir: str | os.PathLike,
    model: OsumModel | WhisperTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (config, weights, tokenizer, prompts) to ``out_dir``; returns the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(model.config, out / CONFIG_FILE)
    save_model(model, str(out / WEIGHTS_FILE))  # de-duplicates tied embeddings
    usual_file_mode(out / WEIGHTS_FILE)
    tokenizer.save_pretrained(out / TOKENIZER_DIR)
    if prompts is not None:
        (out / PROMPTS_FILE).write_text(yaml.safe_dump(prompts, allow_unicode=True, sort_keys=False), "utf-8")
    return out


def read_config(ckpt_dir: str | os.PathLike) -> ModelConfig:
    path = Path(ckpt_dir)
    if not (path / CONFIG_FILE).is_file():
        raise CheckpointError(f"{path}: not an osum checkpoint (no {CONFIG_FILE})")
    return load_yaml(ModelConfig, path / CONFIG_FILE)


def load_checkpoint(
    ckpt_dir: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> tuple[OsumModel | WhisperTaskModel, PreTrainedTokenizerBase, dict[str, Any] | None]:
    """Load a checkpoint directory -> (model in eval mode, tokenizer, prompts or None).

    ``dtype`` applies to the LLM (e.g. bf16 on CUDA); encoder and adaptor stay float32 as in OSUM.
    """
    path = Path(ckpt_dir)
    config = read_config(path)
    for name in (WEIGHTS_FILE, TOKENIZER_DIR):
        if not (path / name).exists():
            raise CheckpointError(f"{path}: checkpoint is incomplete, {name} is missing")
    # Build on the meta device and adopt the (memory-mapped) tensors: no random init, no second copy in RAM,
    # which is what makes a 7B checkpoint loadable on a 24 GB machine.
    with torch.device("meta"):
        model = model_class(config)(config)
    try:
        state_dict = load_file(str(path / WEIGHTS_FILE))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path / WEIGHTS_FILE}: cannot read weights: {str(exc).strip()}") from None
    load_strict(model, state_dict, str(path / WEIGHTS_FILE), assign=True)
    model.after_meta_load()
    tokenizer = AutoTokenizer.from_pretrained(path / TOKENIZER_DIR)
    prompts = None
    if (path / PROMPTS_FILE).is_file():
        prompts = yaml.safe_load((path / PROMPTS_FILE).read_text("utf-8"))
    model.place(device, dtype)
    model.eval()
    return model, tokenizer, prompts
