"""int8 weights for CPU inference (``osum.load(..., dtype="int8")``, ``--dtype int8``).

Every ``nn.Linear`` of the encoder, adaptor, LLM and Whisper decoder (the model's and its transcriber's) becomes
torch's dynamically quantized linear: int8 weights (one scale per tensor), activations quantized per call, int8
matrix products by fbgemm on x86 CPUs. The label classifiers stay float32 (small, and their decisions sit on
standardised statistics). LoRA is merged into the LLM's weights first (a quantized layer cannot host an adapter).

The result is for answering only: it cannot be trained or saved, and runs on CPU only. The word error rate it
costs is measured in the README ("Speed"). torch marks its eager quantization API as deprecated in favour of
torchao; torchao's eager int8 path measured no faster than float32 on this CPU (2026-12-07), so this module keeps
torch's until that changes, behind this one function.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from osum.errors import ConfigError

INT8 = "int8"
KEEP_FLOAT = ("label_tokens",)  # children of the model kept in float32


def is_int8(dtype: object) -> bool:
    """Whether a ``dtype`` argument asks for int8 weights (``"int8"``, ``"qint8"`` or ``torch.qint8``)."""
    return dtype in (INT8, "qint8", torch.qint8)


def merge_lora(model: nn.Module) -> None:
    """Fold an osum model's LoRA adapters into its LLM's weights and drop the adapters (in place)."""
    llm = getattr(model, "llm", None)
    if llm is not None and hasattr(llm, "merge_and_unload"):
        model.llm = llm.merge_and_unload()


def quantize_int8(*modules: nn.Module, keep: tuple[str, ...] = KEEP_FLOAT) -> int:
    """Replace the linear layers of ``modules`` (in place; the children named in ``keep`` excepted) by int8
    dynamic quantized ones -> the number replaced. The modules must be on the CPU and in float32."""
    count = 0
    for module in modules:
        merge_lora(module)
        for name, child in module.named_children():
            if name in keep:
                continue
            for p in child.parameters():
                if p.device.type != "cpu" or p.dtype != torch.float32:
                    raise ConfigError(
                        f"int8 weights need the model on the CPU in float32; {name} is {p.dtype} on {p.device}"
                    )
            before = sum(isinstance(m, nn.Linear) for m in child.modules())
            if isinstance(child, nn.Linear):
                setattr(module, name, _quantize(child))
            elif before:
                _quantize(child)
            count += before
    return count


def _quantize(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():  # torch's notice that this API moves to torchao (module docstring)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.ao.quantization.quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8, inplace=True)
