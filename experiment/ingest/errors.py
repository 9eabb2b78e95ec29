"""Errors raised while reading Bpod behavior files.

Every error names the file and says what is wrong with it, because the person who reads the
message is usually an experimenter looking at a list of failed files, not a programmer looking
at a traceback. All of them are ``ValueError`` subclasses so callers that only care about "this
file is bad" can catch :class:`BehaviorFileError` (or even ``ValueError``) and move on.
"""

from __future__ import annotations

import os
from pathlib import PurePath

__all__ = [
    "BadFileNameError",
    "BehaviorFileError",
    "DateMismatchError",
    "LengthMismatchError",
    "MissingFieldError",
    "UnknownPhotostimError",
    "UnknownTaskLayoutError",
    "UnreadableFileError",
]


class BehaviorFileError(ValueError):
    """A behavior file cannot be ingested; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.file_name = PurePath(self.path).name or self.path
        self.problem = problem
        super().__init__(f"{self.file_name}: {problem}")


class BadFileNameError(BehaviorFileError):
    """The file name does not follow ``{h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat``."""


class UnreadableFileError(BehaviorFileError):
    """The file is not a MATLAB file, is truncated or is otherwise corrupt."""


class MissingFieldError(BehaviorFileError):
    """A field the ingest rules need (``SessionData`` itself, ``Info.SessionDate``...) is absent."""


class LengthMismatchError(BehaviorFileError):
    """Per-trial arrays of one session have different lengths."""


class DateMismatchError(BehaviorFileError):
    """``Info.SessionDate`` does not match the date in the file name."""


class UnknownTaskLayoutError(BehaviorFileError):
    """``SessionData`` matches neither the delay-response nor the multi-target-licking layout."""


class UnknownPhotostimError(BehaviorFileError):
    """A photostim trial uses a stimulation protocol id with no known definition."""
