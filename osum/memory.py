"""How much memory a model needs, before a user starts: weights, KV cache, training state and activations.

Dimension legend: S the LLM's tokens per sample (prompt + speech markers + speech tokens + answer), T the encoder's
frames (50 per second of audio; the whole 30 s window for ``pad_to_window`` encoders), T2 the adaptor's (T / 4).

- **Parameters** are counted on a meta-device build of the config: exact, nothing allocated.
- **Activations** (what autograd keeps between forward and backward) are measured, not guessed:
  :func:`measure_activations` runs one layer of each stack (encoder, adaptor, LLM) at the config's real widths
  on two short inputs, under the training precision, and records every tensor saved for backward
  (``torch.autograd.graph.saved_tensors_hooks``; parameters excluded, shared storages counted once). Each
  layer's bytes are fitted as ``fixed + per_token x length``: ``fixed`` is what does not grow with the input (the
  bf16 copies autocast makes of frozen float32 weights), ``per_token`` the rest. The input is short, so attention
  matrices (which a CPU may store and CUDA's flash and memory-efficient kernels do not) stay negligible, and the
  estimate assumes the CUDA kernels. What lies outside the layers (embeddings, convolutions, the LM head and its
  loss on the answer's tokens) is measured the same way, per token or frame.
- **Training state** follows :mod:`osum.training.engines`: weights stay float32 (4 bytes per parameter, trained or
  frozen), gradients float32 (4 per trained parameter), AdamW's two moments (8 per trained parameter). ZeRO with G
  GPUs divides the optimizer state by G (stage 1), also the gradients (stage 2), also the weights (stage 3).
- **Inference**: weights as :meth:`osum.model.osum.OsumModel.place` holds them (encoder and adaptor float32, the
  LLM in the given dtype; ``int8``: the LLM's linear weights one byte each plus a float32 scale per output row),
  the KV cache ``2 x layers x kv_heads x head_dim x S x batch`` in the LLM's dtype, and the largest transient
  workspace (the encoder's largest layer, or the LLM prefill's MLP, on the whole batch).

Not counted: the CUDA context and allocator slack (about 0.5-1 GB per GPU), DeepSpeed's communication buffers, the
data loader. Gradient checkpointing keeps each layer's input (its residual stream) and recomputes one layer at a
time in backward: ``layers x input + one layer's activations``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from osum.config import ModelConfig
from osum.data.audio import HOP_LENGTH, SAMPLE_RATE
from osum.model.adaptor import encoder_frames, num_speech_tokens
from osum.model.osum import OsumModel

GIB = 1024**3


@dataclass(frozen=True)
class Workload:
    """What a batch holds: ``batch`` clips of ``seconds`` of audio, each with a prompt and an answer."""

    seconds: float = 30.0
    batch: int = 1
    prompt_tokens: int = 48
    answer_tokens: int = 128

    @property
    def mel_frames(self) -> int:
        """Log-mel frames per clip."""
        return round(self.seconds * SAMPLE_RATE / HOP_LENGTH)

    def encoder_frames(self, config: ModelConfig) -> int:
        """T: the encoder's output frames per clip."""
        if config.encoder.pad_to_window:
            return config.encoder.max_positions
        return int(encoder_frames(self.mel_frames))

    def adaptor_frames(self, config: ModelConfig) -> int:
        """T2: speech tokens per clip (the adaptor's frames; a padded window's are cut to the clip's)."""
        return int(num_speech_tokens(self.mel_frames))

    def llm_tokens(self, config: ModelConfig) -> int:
        """S: prompt + speech BOS + speech tokens + speech EOS + answer (+ one label token per field)."""
        labels = len(config.label_fields) if config.adaptor.label_tokens else 0
        return self.prompt_tokens + 2 + self.adaptor_frames(config) + labels + self.answer_tokens


@dataclass(frozen=True)
class Counts:
    """Parameter counts of one config (elements)."""

    encoder: int
    adaptor: int
    llm: int  # without LoRA
    lora: int
    other: int  # speech markers, label tokens
    trained: int  # by ``train_modules``
    llm_linear: int  # elements of the LLM's linear weights (what int8 quantises)
    llm_linear_rows: int  # their output rows (one int8 scale each)

    @property
    def total(self) -> int:
        return self.encoder + self.adaptor + self.llm + self.lora + self.other


def build_meta(config: ModelConfig) -> OsumModel:
    """The model of ``config`` on the meta device (shapes only, nothing allocated)."""
    if config.architecture != "osum":
        raise ValueError(f"memory plans cover OSUM (LLM) models; {config.name!r} is {config.architecture!r}")
    with torch.device("meta"):
        return OsumModel(config)


def count_parameters(config: ModelConfig, train_modules: list[str]) -> Counts:
    """Exact parameter counts of ``config``, and how many ``train_modules`` trains."""
    from osum.training.optim import set_trainable

    model = build_meta(config)
    trained = sum(p.numel() for p in set_trainable(model, train_modules))
    lora = sum(p.numel() for n, p in model.llm.named_parameters() if "lora_" in n)
    linear = [m for n, m in model.llm.named_modules() if isinstance(m, nn.Linear) and "lora_" not in n]
    return Counts(
        encoder=sum(p.numel() for p in model.encoder.parameters()),
        adaptor=sum(p.numel() for p in model.adaptor.parameters()),
        llm=sum(p.numel() for p in model.llm.parameters()) - lora,
        lora=lora,
        other=sum(
            p.numel()
            for n, p in model.named_parameters()
            if not n.startswith(("encoder.", "adaptor.", "llm."))
        ),
        trained=trained,
        llm_linear=sum(m.weight.numel() for m in linear),
        llm_linear_rows=sum(m.weight.shape[0] for m in linear),
    )


@dataclass(frozen=True)
class Cost:
    """Bytes autograd keeps for one layer: ``fixed + per_unit x units`` (units: its input's frames or tokens)."""

    fixed: float
    per_unit: float


@dataclass(frozen=True)
class Activations:
    """Measured activation costs: one layer of each stack, and what lies outside the layers.

    Units: the encoder layer per encoder frame (T), the adaptor layer per adaptor frame (T2), the LLM layer per
    token (S). Outside the layers: ``per_frame`` x T + ``per_answer`` x answer tokens (the LM head's logits and
    the loss, vocabulary-sized) per clip, plus ``outside_fixed``. ``input_bytes``: bytes per element of each
    stack's layer input (what a checkpointed layer keeps).
    """

    encoder_layer: Cost
    adaptor_layer: Cost
    llm_layer: Cost
    per_frame: float
    per_answer: float
    outside_fixed: float
    input_bytes: tuple[int, int, int]

    def total(self, config: ModelConfig, work: Workload, checkpointing: bool = False) -> float:
        """Bytes kept for backward by one batch of ``work`` (at the peak: the end of the forward pass, or with
        ``checkpointing`` the recomputation of the largest layer in backward)."""
        t, t2, s = work.encoder_frames(config), work.adaptor_frames(config), work.llm_tokens(config)
        stacks = [
            (config.encoder.layers, self.encoder_layer, t, config.encoder.d_model, self.input_bytes[0]),
            (config.adaptor.layers, self.adaptor_layer, t2, config.adaptor.d_model, self.input_bytes[1]),
            (config.llm.layers, self.llm_layer, s, config.llm.hidden_size, self.input_bytes[2]),
        ]
        outside = self.outside_fixed + work.batch * (
            self.per_frame * t + self.per_answer * work.answer_tokens
        )
        if checkpointing:  # every layer keeps its input; backward recomputes one layer at a time
            kept = sum(n * units * width * size for n, _, units, width, size in stacks)
            one = max(c.fixed + work.batch * c.per_unit * units for _, c, units, _, _ in stacks)
            return outside + work.batch * kept + one
        return outside + sum(n * (c.fixed + work.batch * c.per_unit * units) for n, c, units, _, _ in stacks)


@contextmanager
def saved_bytes(model: nn.Module, parts: dict[str, nn.Module]) -> Iterator[dict[str, int]]:
    """Bytes of the tensors saved for backward inside each of ``parts`` (the rest under "outside"), and each
    part's input element size under "<part>.input"."""
    totals = dict.fromkeys([*parts, "outside"], 0)
    stack: list[str] = []
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in params and ptr not in seen:
            seen.add(ptr)
            totals[stack[-1] if stack else "outside"] += storage.nbytes()
        return t

    def enter(name: str, args: tuple) -> None:
        stack.append(name)
        totals[f"{name}.input"] = args[0].element_size()

    handles = []
    for name, module in parts.items():
        handles.append(module.register_forward_pre_hook(lambda _, args, n=name: enter(n, args)))
        handles.append(module.register_forward_hook(lambda *_: stack.pop() and None))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield totals
    finally:
        for h in handles:
            h.remove()


def measure_activations(
    config: ModelConfig, train_modules: list[str], autocast: torch.dtype | None = torch.bfloat16
) -> Activations:
    """Measure :class:`Activations` for ``config`` (see the module docstring): a one-layer copy of each stack at the
    real widths, run forward in train mode under ``autocast`` on three inputs (2 s with 8 answer tokens, 4 s with
    8, 2 s with 24) with a 512-row vocabulary, and the answer-token cost again with 2048 rows: the part that grows
    with the vocabulary (logits, loss) is extrapolated to the real one."""
    a, b, c = _runs(config, train_modules, autocast, 512, [(2.0, 8), (4.0, 8), (2.0, 24)])
    a2, c2 = _runs(config, train_modules, autocast, 2048, [(2.0, 8), (2.0, 24)])

    def layer(part: str) -> Cost:
        per = (b[0][part] - a[0][part]) / (b[1][part] - a[1][part])
        return Cost(fixed=max(0.0, a[0][part] - per * a[1][part]), per_unit=per)

    # outside the layers = fixed + per_frame x T + per_answer x answer tokens (C differs from A in the answer only)
    def per_answer(x: tuple, z: tuple) -> float:
        return (z[0]["outside"] - x[0]["outside"]) / (z[1]["answer"] - x[1]["answer"])

    small, large = per_answer(a, c), per_answer(a2, c2)
    per_row = (large - small) / (2048 - 512)  # bytes per vocabulary row per answer token
    per_frame = (b[0]["outside"] - a[0]["outside"]) / (b[1]["encoder"] - a[1]["encoder"])
    fixed = a[0]["outside"] - per_frame * a[1]["encoder"] - small * a[1]["answer"]
    fixed2 = a2[0]["outside"] - per_frame * a2[1]["encoder"] - large * a2[1]["answer"]
    # the fixed part also grows with the vocabulary (a bf16 copy of a frozen float32 LM head)
    fixed = max(0.0, fixed + (fixed2 - fixed) / (2048 - 512) * (config.llm.vocab_size - 512))
    return Activations(
        layer("encoder"),
        layer("adaptor"),
        layer("llm"),
        per_frame=per_frame,
        per_answer=small + per_row * (config.llm.vocab_size - 512),
        outside_fixed=fixed,
        input_bytes=(a[0]["encoder.input"], a[0]["adaptor.input"], a[0]["llm.input"]),
    )


def _runs(
    config: ModelConfig,
    train_modules: list[str],
    autocast: torch.dtype | None,
    vocab: int,
    inputs: list[tuple[float, int]],
) -> list[tuple[dict[str, int], dict[str, int]]]:
    """(saved bytes by part, units) of one forward pass per (seconds, answer tokens) of a one-layer copy."""
    from osum.data.collate import collate
    from osum.training.optim import set_trainable

    small = dataclasses.replace(
        config,
        encoder=dataclasses.replace(config.encoder, layers=1, pad_to_window=False),
        adaptor=dataclasses.replace(config.adaptor, layers=1),
        llm=dataclasses.replace(config.llm, layers=1, vocab_size=vocab, eos_token_id=0),
    )
    torch.manual_seed(0)
    model = OsumModel(small)
    model.train()
    set_trainable(model, train_modules)
    parts = {
        "encoder": model.encoder.layers[0],
        "adaptor": model.adaptor.layers[0],
        "llm": model.lm.model.layers[0],
    }
    runs = []
    for seconds, answer in inputs:
        work = Workload(seconds=seconds, prompt_tokens=8, answer_tokens=answer)
        prompt = torch.randint(1, vocab, (work.prompt_tokens,)).tolist()
        target = torch.randint(1, vocab, (answer,)).tolist()
        batch = collate([torch.randn(work.mel_frames, config.encoder.n_mels)], [prompt], [target])
        context = torch.autocast("cpu", dtype=autocast) if autocast is not None else nullcontext()
        with saved_bytes(model, parts) as totals, context:
            out = model(batch, full_logits=False)
        del out
        units = {
            "encoder": work.encoder_frames(small),
            "adaptor": work.adaptor_frames(small),
            "llm": work.llm_tokens(small),
            "answer": answer,
        }
        runs.append((dict(totals), units))
    return runs


@dataclass(frozen=True)
class Row:
    """One setting's memory per GPU, in bytes."""

    setting: str
    weights: float
    gradients: float
    optimizer: float
    activations: float  # inference: KV cache + the largest transient workspace

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations


def inference_rows(config: ModelConfig, counts: Counts, work: Workload) -> list[Row]:
    """Inference (no gradients) with the LLM in bf16 and in int8 (encoder and adaptor float32)."""
    llm = config.llm
    t, s = work.encoder_frames(config), work.llm_tokens(config)
    speech_side = 4 * (counts.encoder + counts.adaptor + counts.other)
    head_dim = llm.hidden_size // llm.heads
    kv = 2 * llm.layers * llm.kv_heads * head_dim * s * work.batch * 2
    encoder_work = work.batch * t * (3 * config.encoder.d_model + config.encoder.ffn_dim) * 4
    llm_work = work.batch * (s * (3 * llm.hidden_size + 2 * llm.intermediate_size) * 2 + llm.vocab_size * 4)
    transient = kv + max(encoder_work, llm_work)
    llm_params = counts.llm + counts.lora
    int8 = counts.llm_linear + 4 * counts.llm_linear_rows + 2 * (llm_params - counts.llm_linear)
    return [
        Row("inference, LLM bf16", speech_side + 2 * llm_params, 0, 0, transient),
        Row("inference, LLM int8 weights", speech_side + int8, 0, 0, transient),
    ]


def training_rows(
    config: ModelConfig,
    counts: Counts,
    acts: Activations,
    work: Workload,
    gpus: tuple[int, ...] = (2, 4, 8),
) -> list[Row]:
    """Training as osum's engines run it (float32 weights, bf16 autocast, AdamW), one GPU and ZeRO-2/3 on ``gpus``,
    each without and with gradient checkpointing; ``work`` is one micro-batch per GPU."""
    weights, grads, optimizer = 4 * counts.total, 4 * counts.trained, 8 * counts.trained
    rows = []
    for checkpointing in (False, True):
        a = acts.total(config, work, checkpointing)
        tag = ", checkpointing" if checkpointing else ""
        rows.append(Row(f"1 GPU{tag}", weights, grads, optimizer, a))
        for g in gpus:
            rows.append(Row(f"ZeRO-2 x {g}{tag}", weights, grads / g, optimizer / g, a))
            rows.append(Row(f"ZeRO-3 x {g}{tag}", weights / g, grads / g, optimizer / g, a))
    return rows


def markdown(rows: list[Row]) -> str:
    """A table of ``rows`` in GiB."""
    lines = [
        "| setting | weights | gradients | optimizer | activations | total per GPU |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        cells = [r.weights, r.gradients, r.optimizer, r.activations, r.total]
        lines.append(f"| {r.setting} | " + " | ".join(f"{x / GIB:.1f}" for x in cells) + " |")
    return "\n".join(lines)
