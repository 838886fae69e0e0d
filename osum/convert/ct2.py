"""Read and write CTranslate2 ``model.bin`` files without depending on ``ctranslate2``.

The container is little-endian::

    u32 binary_version
    string spec_name, u32 spec_revision                    (binary_version >= 2)
    u32 n_variables, then per variable:
        string name, u8 rank, rank x u32 dims,
        u8 dtype id, u32 byte count                        (binary_version >= 4)
        u8 item size, u32 element count                    (binary_version < 4)
        raw bytes
    u32 n_aliases, then (string alias, string target) pairs (binary_version >= 3)

A string is a u16 length (counting a trailing NUL) followed by that many bytes.
Dtype ids follow CTranslate2's ``DataType`` enum: 0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from osum.errors import CheckpointError

#: The newest container layout this reader understands (CTranslate2 >= 3.x writes 6).
MAX_BINARY_VERSION = 6

# dtype id -> (numpy dtype used to read the raw bytes, torch dtype of the result).
# bfloat16 has no numpy dtype: its bits are read as int16 and reinterpreted in torch.
_DTYPES: dict[int, tuple[str, torch.dtype]] = {
    0: ("<f4", torch.float32),
    1: ("i1", torch.int8),
    2: ("<i2", torch.int16),
    3: ("<i4", torch.int32),
    4: ("<f2", torch.float16),
    5: ("<i2", torch.bfloat16),
}
_DTYPE_IDS: dict[torch.dtype, int] = {torch_dtype: i for i, (_, torch_dtype) in _DTYPES.items()}
# Before binary version 4 only the item size was stored; CTranslate2 mapped it like this.
_LEGACY_ITEM_SIZE_DTYPES = {4: 0, 2: 2, 1: 1}


@dataclass
class Ct2Model:
    """The content of a CTranslate2 ``model.bin``.

    ``variables`` maps names such as ``encoder/layer_0/ffn/linear_0/weight`` to tensors in their stored dtype
    (rank-0 tensors for scalars like ``encoder/num_heads``); ``aliases`` maps an alias name to the name of the
    stored variable it shares (e.g. ``decoder/projection/weight`` -> ``decoder/embeddings/weight``).
    """

    spec_name: str
    revision: int
    binary_version: int
    variables: dict[str, torch.Tensor] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> torch.Tensor | None:
        """The variable called ``name``, following an alias if needed; None if absent."""
        if name in self.variables:
            return self.variables[name]
        target = self.aliases.get(name)
        return None if target is None else self.variables.get(target)

    def resolved(self) -> dict[str, torch.Tensor]:
        """All variables with every alias expanded into its own entry (sharing the target tensor)."""
        out = dict(self.variables)
        for alias, target in self.aliases.items():
            out[alias] = self.variables[target]
        return out


class _Reader:
    """Bounds-checked little-endian cursor over a buffer; errors name the file and what was being read."""

    def __init__(self, buf: mmap.mmap | bytes, path: Path) -> None:
        self.buf = buf
        self.path = path
        self.pos = 0
        self.context = "the header"

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: malformed CTranslate2 model.bin: {what} (at byte {self.pos})")

    def take(self, n: int) -> int:
        """Reserve ``n`` bytes and return their start offset."""
        if self.pos + n > len(self.buf):
            raise self.fail(
                f"unexpected end of file while reading {self.context} "
                f"(needed {n} bytes, {len(self.buf) - self.pos} left)"
            )
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str) -> int:
        size = struct.calcsize("<" + fmt)
        return struct.unpack_from("<" + fmt, self.buf, self.take(size))[0]

    def string(self) -> str:
        length = self.unpack("H")
        raw = bytes(self.buf[self.take(length) : self.pos])
        if length == 0 or raw[-1] != 0:
            raise self.fail(f"string in {self.context} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string in {self.context} is not valid UTF-8") from exc


def _read_variable(r: _Reader, index: int, binary_version: int) -> tuple[str, torch.Tensor]:
    r.context = f"variable {index}"
    name = r.string()
    r.context = f"variable {index} {name!r}"
    rank = r.unpack("B")
    shape = tuple(r.unpack("I") for _ in range(rank))
    if binary_version >= 4:
        type_id = r.unpack("B")
        num_bytes = r.unpack("I")
    else:
        item_size = r.unpack("B")
        if item_size not in _LEGACY_ITEM_SIZE_DTYPES:
            raise r.fail(f"{r.context} has unknown item size {item_size}")
        type_id = _LEGACY_ITEM_SIZE_DTYPES[item_size]
        num_bytes = r.unpack("I") * item_size
    if type_id not in _DTYPES:
        raise r.fail(f"{r.context} has unknown dtype id {type_id} (known: {sorted(_DTYPES)})")
    np_dtype, torch_dtype = _DTYPES[type_id]
    count = int(np.prod(shape, dtype=np.int64))
    if count * np.dtype(np_dtype).itemsize != num_bytes:
        raise r.fail(
            f"{r.context} of shape {list(shape)} and dtype {torch_dtype} should hold "
            f"{count * np.dtype(np_dtype).itemsize} bytes, the file says {num_bytes}"
        )
    start = r.take(num_bytes)
    # Copy out of the mmap so the tensor outlives the file; astype gives native byte order.
    array = np.frombuffer(r.buf, dtype=np_dtype, count=count, offset=start).astype(np_dtype[-2:], copy=True)
    tensor = torch.from_numpy(array).reshape(shape)
    if torch_dtype == torch.bfloat16:
        tensor = tensor.view(torch.bfloat16)
    return name, tensor


def read_ct2(path: str | os.PathLike) -> Ct2Model:
    """Read a CTranslate2 ``model.bin`` (or the folder holding one).

    Raises:
        CheckpointError: the file is missing, truncated, has trailing bytes, an unknown dtype, or an alias to a
            variable that does not exist. The message names the file and the variable being read.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise CheckpointError(f"{path}: CTranslate2 model.bin not found")
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise CheckpointError(f"{path}: malformed CTranslate2 model.bin: the file is empty")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _parse(_Reader(buf, path))


def _parse(r: _Reader) -> Ct2Model:
    binary_version = r.unpack("I")
    if not 1 <= binary_version <= MAX_BINARY_VERSION:
        raise r.fail(
            f"unsupported binary version {binary_version} (this reader handles 1..{MAX_BINARY_VERSION}); "
            "is this really a CTranslate2 model.bin?"
        )
    spec_name, revision = "", 1
    if binary_version >= 2:
        spec_name = r.string()
        revision = r.unpack("I")
    r.context = "the variable count"
    model = Ct2Model(spec_name=spec_name, revision=revision, binary_version=binary_version)
    for index in range(r.unpack("I")):
        name, tensor = _read_variable(r, index, binary_version)
        if name in model.variables:
            raise r.fail(f"variable {name!r} appears twice")
        model.variables[name] = tensor
    if binary_version >= 3:
        r.context = "the alias count"
        for index in range(r.unpack("I")):
            r.context = f"alias {index}"
            alias, target = r.string(), r.string()
            if target not in model.variables:
                raise r.fail(f"alias {alias!r} points to {target!r}, which is not a variable in the file")
            model.aliases[alias] = target
    if r.pos != len(r.buf):
        raise r.fail(f"{len(r.buf) - r.pos} unexpected trailing bytes after the last alias")
    return model


def _pack_string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    if len(raw) > 0xFFFF:
        raise CheckpointError(f"CTranslate2 string too long ({len(raw)} bytes): {text[:80]!r}...")
    return struct.pack("<H", len(raw)) + raw


def write_ct2(
    path: str | os.PathLike,
    variables: Mapping[str, torch.Tensor],
    spec_name: str = "WhisperSpec",
    revision: int = 3,
    aliases: Mapping[str, str] | None = None,
    binary_version: int = 6,
) -> None:
    """Write ``variables`` (name -> tensor, written in mapping order) as a CTranslate2 ``model.bin``.

    Only the current layout (binary versions 4..6) is written. Supported dtypes: float32, int8, int16, int32,
    float16, bfloat16. ``aliases`` maps alias -> name of a variable in ``variables``.
    """
    if not 4 <= binary_version <= MAX_BINARY_VERSION:
        raise CheckpointError(
            f"write_ct2 writes binary versions 4..{MAX_BINARY_VERSION}, not {binary_version}"
        )
    aliases = dict(aliases or {})
    for alias, target in aliases.items():
        if target not in variables:
            raise CheckpointError(f"alias {alias!r} points to {target!r}, which is not among the variables")
    with open(path, "wb") as f:
        f.write(struct.pack("<I", binary_version) + _pack_string(spec_name) + struct.pack("<I", revision))
        f.write(struct.pack("<I", len(variables)))
        for name, tensor in variables.items():
            if tensor.dtype not in _DTYPE_IDS:
                raise CheckpointError(
                    f"cannot write variable {name!r}: dtype {tensor.dtype} is not supported"
                )
            type_id = _DTYPE_IDS[tensor.dtype]
            t = tensor.detach().cpu().contiguous()
            if t.dtype == torch.bfloat16:
                t = t.view(torch.int16)
            data = t.numpy().astype(_DTYPES[type_id][0], copy=False).tobytes()
            f.write(_pack_string(name) + struct.pack("<B", t.dim()))
            f.write(struct.pack(f"<{t.dim()}I", *t.shape))
            f.write(struct.pack("<BI", type_id, len(data)))
            f.write(data)
        f.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases.items():
            f.write(_pack_string(alias) + _pack_string(target))


def dequantize_ct2(variables: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Turn int8/int16 quantized weights back into float32 and drop their ``<name>_scale`` companions.

    CTranslate2 stores ``q = round(w * scale)`` with a per-row scale for int8 and a single scale for int16, so
    ``w = q / scale``. Float variables and scalars are returned unchanged.
    """
    out: dict[str, torch.Tensor] = {}
    for name, value in variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in variables:
            continue
        scale = variables.get(name + "_scale")
        if scale is not None and value.dtype in (torch.int8, torch.int16):
            scale = scale.float()
            if scale.dim() == 1 and value.dim() >= 2:
                scale = scale.reshape(-1, *([1] * (value.dim() - 1)))
            value = value.float() / scale
        out[name] = value
    return out
