"""osum: Open Speech Understanding Models (OSUM-style SULMs) — Whisper encoder, adaptor, Qwen2 + LoRA.

Public API: :func:`load` -> :class:`Osum` (``run``, ``save``), the task registry ``TASKS``, config dataclasses.
"""

from osum.api import Osum, Query, load
from osum.config import ModelConfig
from osum.errors import AudioError, AudioFormatError, CheckpointError, ConfigError, OsumError, TaskError
from osum.inference.decoding import DecodingOptions
from osum.tasks import TASKS, TaskResult, get_task

__version__ = "0.1.0"
__all__ = [
    "TASKS",
    "AudioError",
    "AudioFormatError",
    "CheckpointError",
    "ConfigError",
    "DecodingOptions",
    "ModelConfig",
    "Osum",
    "OsumError",
    "Query",
    "TaskError",
    "TaskResult",
    "get_task",
    "load",
]
