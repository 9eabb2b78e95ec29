"""Exceptions raised by ephys ingestion (spec §14.11).

Every exception is a ValueError so callers can treat "bad input" uniformly; the ones that mean
"a required file is not there" are also FileNotFoundError, because the original pipeline cancels
the whole session's transaction on ProbeInsertionError, ClusterMetricError or FileNotFoundError.
Messages always start with the offending file or folder.
"""

from __future__ import annotations

from os import PathLike


class EphysIngestError(ValueError):
    """Base class: bad or inconsistent ephys input. `path` names the file that is wrong."""

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ProbeInsertionError(EphysIngestError):
    """Probe model unsupported, or the SpikeGLX metadata cannot describe the insertion."""


class ClusterMetricError(EphysIngestError):
    """metrics.csv lacks required columns, has unreadable values or misses units."""


class BitCodeError(EphysIngestError):
    """Bitcode/trial-sync files are missing fields or disagree with the behavior trials."""


class ClusteringFileError(EphysIngestError):
    """Spike-sorting output is missing, ambiguous, truncated or internally inconsistent."""


class ClusteringFileNotFoundError(ClusteringFileError, FileNotFoundError):
    """No spike-sorting output (or a mandatory file of it) where one was expected."""


class BitCodeFileNotFoundError(BitCodeError, FileNotFoundError):
    """Neither a `*bitcode.mat` nor SpikeGLX NI `*.XA_0_0*.txt` files were found."""


class SpikeGLXMetaNotFoundError(ProbeInsertionError, FileNotFoundError):
    """A probe folder has no `.ap.meta` file."""
