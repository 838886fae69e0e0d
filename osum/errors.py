"""The exceptions osum raises for bad input. Each message names the file, field or limit at fault."""

from __future__ import annotations


class OsumError(Exception):
    """Base class of every error osum raises on purpose."""


class AudioError(OsumError):
    """An audio file or array cannot be used (missing, unreadable, empty, non-finite, too long)."""


class ConfigError(OsumError):
    """A configuration value or key is invalid."""


class CheckpointError(OsumError):
    """A checkpoint is missing, malformed, or does not match the model (missing/unexpected keys)."""


class TaskError(OsumError):
    """An unknown task name or a task used in a way it does not support."""
