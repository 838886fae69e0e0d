"""The exceptions osum raises for bad input. Each message names the file, field or limit at fault."""

from __future__ import annotations


class OsumError(Exception):
    """Base class of every error osum raises on purpose."""


class AudioError(OsumError):
    """An audio file or array cannot be used (missing, unreadable, empty, non-finite, too long)."""


class AudioFormatError(AudioError):
    """The data is not in any audio format soundfile can open (a text file, a video, a truncated header...)."""


class AudioTooLongError(AudioError):
    """The audio is longer than the model (or the caller's limit) accepts; ``limit`` is that limit in seconds."""

    def __init__(self, message: str, seconds: float, limit: float) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.limit = limit

    def __reduce__(self) -> tuple[type, tuple[str, float, float]]:
        return (self.__class__, (str(self), self.seconds, self.limit))


class ConfigError(OsumError):
    """A configuration value or key is invalid."""


class CheckpointError(OsumError):
    """A checkpoint is missing, malformed, or does not match the model (missing/unexpected keys)."""


class TaskError(OsumError):
    """An unknown task name or a task used in a way it does not support."""


class ManifestError(OsumError):
    """A bad manifest record or file. The message starts with ``file:line:`` (``file.tar:key:`` in a tar shard).

    ``where`` is that location and ``reason`` what is wrong, so a reader that skips bad records can count them.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # The default would call ManifestError(message) and fail: pickling matters for DataLoader workers.
        return (self.__class__, (self.where, self.reason))
