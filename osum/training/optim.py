"""What trains (staged freezing), the optimizer and the learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from osum.config import TrainConfig
from osum.errors import ConfigError
from osum.model.osum import OsumModel
from osum.model.whisper_tasks import WhisperTaskModel
from osum.vocabulary import whisper_task_tokens

# The OSUM authors' stages: adaptor -> + encoder -> + LoRA (maintainer, OSUM issue #22).
MODULES = ("adaptor", "speech_markers", "encoder", "lora", "llm", "label_tokens")
WHISPER_MODULES = ("encoder", "decoder", "decoder_layers", "task_tokens", "label_tokens")


def set_trainable(model: OsumModel | WhisperTaskModel, modules: list[str]) -> list[nn.Parameter]:
    """Freeze everything, then unfreeze the named parts; returns the trainable parameters.

    OSUM models: ``adaptor``, ``speech_markers`` (the learned speech BOS/EOS), ``encoder``, ``lora`` (the LoRA
    matrices), ``llm`` (every LLM weight), ``label_tokens`` (their classifiers and class vectors). Stage-1 Whisper
    models: ``encoder``, ``decoder`` (all of it), ``decoder_layers`` (the decoder without its token table),
    ``task_tokens`` (only the rows of the task tag tokens; the pretrained rows get no gradient, so train with
    ``weight_decay: 0`` to keep them exactly) and ``label_tokens`` (the label classifiers, ``decoder.label_heads``).
    Any model: a dotted submodule path such as ``encoder.layers.3`` (e.g. to unfreeze the top encoder layers).
    The encoder's fixed position table never trains.
    """
    whisper = isinstance(model, WhisperTaskModel)
    valid = WHISPER_MODULES if whisper else MODULES
    unknown = sorted(m for m in set(modules) - set(valid) if "." not in m)
    if unknown:
        kind = "a Whisper (stage-1)" if whisper else "an OSUM"
        raise ConfigError(
            f"train.train_modules: {unknown} do not exist in {kind} model; choose from {list(valid)} "
            "or a submodule path such as encoder.layers.3"
        )
    if whisper and {"decoder", "task_tokens"} <= set(modules):
        raise ConfigError("train.train_modules: 'decoder' already trains every token row; drop 'task_tokens'")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in modules:
        for p in part_parameters(model, name, "train.train_modules"):
            p.requires_grad_(True)
    if "task_tokens" in modules:
        _train_last_rows(model.decoder.embed_tokens.weight, len(whisper_task_tokens()))
    model.encoder.embed_positions.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("train.train_modules selects no parameters")
    return params


def part_parameters(model: OsumModel | WhisperTaskModel, name: str, where: str) -> list[nn.Parameter]:
    """The parameters of one part named as in :func:`set_trainable` (``where``: the config key, for errors)."""
    if name == "speech_markers" and isinstance(model, OsumModel):
        return [model.speech_bos, model.speech_eos]
    if name == "lora" and isinstance(model, OsumModel):
        found = [p for n, p in model.llm.named_parameters() if "lora_" in n]
        if not found:
            raise ConfigError(f"{where} has 'lora' but the model has no LoRA (lora.enabled is false)")
        return found
    if name == "label_tokens" and model.label_tokens is None:
        fix = "decoder.label_heads" if isinstance(model, WhisperTaskModel) else "train.label_tokens"
        raise ConfigError(f"{where} has 'label_tokens' but the model has none (set {fix}: true)")
    if isinstance(model, WhisperTaskModel) and name in ("decoder_layers", "task_tokens"):
        d = model.decoder
        if name == "task_tokens":  # the whole table; only the tag rows get a gradient (_train_last_rows)
            return [d.embed_tokens.weight]
        return [p for m in (d.layers, d.layer_norm, d.embed_positions) for p in m.parameters()]
    try:
        return list(model.get_submodule(name).parameters())
    except AttributeError:
        raise ConfigError(f"{where}: the model has no submodule {name!r}") from None


def _train_last_rows(table: nn.Parameter, n: int) -> None:
    """Let only the last ``n`` rows of ``table`` (V, D) learn: the gradient of every other row is zeroed."""
    table.requires_grad_(True)
    mask = torch.zeros(table.shape[0], 1, dtype=table.dtype, device=table.device)
    mask[-n:] = 1
    table.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))


def param_groups(
    model: OsumModel | WhisperTaskModel, params: list[nn.Parameter], scales: dict[str, float], lr: float
) -> list[dict]:
    """Split ``params`` into AdamW groups: the parameters of each part named in ``scales`` (a ``train_modules``
    name or a dotted submodule path) get ``lr * scale``, every other one ``lr``. A part that trains nothing is
    an error (a misspelt name would otherwise be silently ignored)."""
    if not scales:
        return [{"params": list(params), "lr": lr}]
    trainable = {id(p) for p in params}
    taken: dict[int, str] = {}
    groups = []
    for name, scale in scales.items():
        if scale <= 0:
            raise ConfigError(f"train.lr_scales.{name} must be > 0, got {scale}")
        own = [
            p
            for p in part_parameters(model, name, "train.lr_scales")
            if id(p) in trainable and id(p) not in taken
        ]
        if not own:
            raise ConfigError(
                f"train.lr_scales: {name!r} has no trained parameter of its own (train.train_modules selects "
                "what trains)"
            )
        taken.update((id(p), name) for p in own)
        groups.append({"params": own, "lr": lr * scale})
    rest = [p for p in params if id(p) not in taken]
    # the unscaled group first: the logged learning rate is group 0's
    return ([{"params": rest, "lr": lr}] if rest else []) + groups


def build_optimizer(params: list[nn.Parameter] | list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW as OSUM (lr 5e-5, betas 0.9/0.99, eps 1e-6, weight decay 0.01 by default); ``params`` may be
    :func:`param_groups`' groups."""
    return torch.optim.AdamW(
        params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay
    )


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` after ``step`` optimizer steps."""
    warm = max(cfg.warmup_steps, 0)
    if cfg.scheduler == "constant":
        return min(1.0, (step + 1) / warm) if warm else 1.0
    if cfg.scheduler == "warmup_inverse_sqrt":  # WeNet's WarmupLR: peak lr at `warm`, then ~ 1/sqrt(step)
        s = step + 1
        return min(s / warm, math.sqrt(warm / s)) if warm else 1.0 / math.sqrt(s)
    if cfg.scheduler == "warmup_cosine":
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, cfg.max_steps - warm))
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise ConfigError(
        f"train.scheduler {cfg.scheduler!r}: choose warmup_inverse_sqrt, warmup_cosine or constant"
    )


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    lr_factor(0, cfg)  # validate the name now, not at the first step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
