"""Finding sorted ephys session folders on the ephys data roots and recording them (§14.3).

Unlike the rest of ``ephys.ingest`` this module uses the database. A scan walks every root of
``MAP_EPHYS_ROOTS``; each session folder with sorted data becomes an ``EphysRecording`` and
each distinct state of its input files a ``SortedOutput`` version, the key of the EphysIngest
pipeline step. A folder whose files changed since the last scan (a re-sort, a curation,
metrics added) gets a new version, and the previous one is marked superseded: the step then
ingests the new version, archiving the clustering it replaces.

A folder whose files were modified less than ``settle_seconds`` ago is left for a later scan
(still being copied or written by the sorter). A folder named under a root that resolves
outside every root (a symbolic link) is recorded without reading anything in it: its ingest
job then fails and says why.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ephys.models import EphysRecording, SortedOutput, SortedOutputStatus
from mapsite.core.paths import DataRoot, PathOutsideRootsError, parse_roots, resolve_in_roots

from .discovery import (
    FoundSessionDir,
    classify_session_dir,
    examine_session_dir,
    input_files,
    iter_session_dirs,
)
from .errors import EphysIngestError
from .spikeglx import read_spikeglx_meta

log = logging.getLogger(__name__)


def ephys_roots() -> list[DataRoot]:
    return parse_roots(settings.EPHYS_DATA_ROOTS)


def settle_seconds_setting() -> float:
    """Quiet period of the periodic scan (setting EPHYS_SCAN_SETTLE_SECONDS)."""
    return float(settings.EPHYS_SCAN_SETTLE_SECONDS)


def fingerprint(files: dict[str, tuple[int, int] | list[int]]) -> str:
    """sha256 of the listing (relative path, size, mtime_ns), in path order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        size, mtime_ns = files[name]
        digest.update(f"{name}\t{int(size)}\t{int(mtime_ns)}\n".encode())
    return digest.hexdigest()


@dataclass
class ScanReport:
    new: list[SortedOutput] = field(default_factory=list)  # first version of a recording
    changed: list[SortedOutput] = field(default_factory=list)  # a newer version
    unchanged: int = 0
    settling: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, {self.unchanged} unchanged, "
            f"{len(self.settling)} still being written, {len(self.refused)} refused"
        )


def _recording_time(meta_path: Path) -> datetime | None:
    """fileCreateTime of the meta, as UTC (see EphysRecording); None when unreadable."""
    try:
        naive = read_spikeglx_meta(meta_path).recording_time
    except EphysIngestError as exc:
        log.info("%s: no recording time (%s)", meta_path, exc)
        return None
    return naive.replace(tzinfo=UTC)


def register_session_dir(
    found: FoundSessionDir,
    root: DataRoot,
    roots: list[DataRoot],
    *,
    settle_seconds: float = 0.0,
    report: ScanReport | None = None,
    known: dict[tuple[str, str], str] | None = None,
) -> SortedOutput | None:
    """Record one session folder; return its current version (None: left for a later scan,
    or unchanged and ``known`` given).

    Idempotent: an unchanged folder returns its latest version as it is. ``known`` maps
    (root, relative path) to the latest fingerprint (``latest_fingerprints``): a scan passes
    it so that unchanged folders cost no query.
    """
    report = report if report is not None else ScanReport()
    session_dir = found.session.session_dir
    relative = os.path.relpath(os.path.abspath(session_dir), os.path.abspath(root.path))  # noqa: PTH100
    refusal = ""
    try:
        resolve_in_roots(session_dir, roots)
    except PathOutsideRootsError as exc:
        refusal = f"refused: {exc}"
    files: dict[str, tuple[int, int]] = {} if refusal else input_files(session_dir)
    digest = fingerprint(files) if files else ""
    # The usual case, without a write or reading the meta: nothing changed since the last scan.
    if known is not None and known.get((str(root.path), relative)) == digest:
        report.unchanged += 1
        return None
    latest = (
        SortedOutput.objects.filter(
            recording__root=str(root.path), recording__relative_path=relative
        )
        .order_by("-version")
        .first()
    )
    if latest is not None and latest.fingerprint == digest:
        report.unchanged += 1
        return latest
    if files:
        newest = max(m for _s, m in files.values()) / 1e9
        if settle_seconds and time.time() - newest < settle_seconds:
            report.settling.append(str(session_dir))
            return None
    recording_time = None if refusal else _recording_time(found.first_meta)

    with transaction.atomic():
        recording, created = EphysRecording.objects.select_for_update().get_or_create(
            root=str(root.path),
            relative_path=relative,
            defaults={
                "h2o": found.h2o,
                "layout": found.session.layout,
                "probe_glob": found.session.probe_glob,
                "folder_date": found.folder_date,
                "recording_time": recording_time,
            },
        )
        if not created and recording_time not in (None, recording.recording_time):
            recording.recording_time = recording_time
            recording.save(update_fields=["recording_time", "updated_at"])
        latest = recording.outputs.order_by("-version").first()
        if latest is not None and latest.fingerprint == digest:
            report.unchanged += 1
            return latest
        now = timezone.now()
        output = SortedOutput.objects.create(
            recording=recording,
            version=(latest.version + 1) if latest else 1,
            fingerprint=digest,
            files={k: list(v) for k, v in files.items()},
            note=refusal,
        )
        if latest is not None and latest.superseded_at is None:
            latest.superseded_at = now
            if latest.status == SortedOutputStatus.FOUND:
                latest.status = SortedOutputStatus.SUPERSEDED
            latest.save(update_fields=["superseded_at", "status", "updated_at"])
    if refusal:
        report.refused.append(f"{session_dir}: {refusal}")
    (report.changed if latest is not None else report.new).append(output)
    return output


def latest_fingerprints() -> dict[tuple[str, str], str]:
    """(root, relative path) -> fingerprint of the latest version of every recording."""
    rows = SortedOutput.objects.order_by("recording_id", "-version").values_list(
        "recording__root", "recording__relative_path", "fingerprint"
    )
    out: dict[tuple[str, str], str] = {}
    for root, relative, digest in rows:
        out.setdefault((root, relative), digest)
    return out


def scan_ephys_roots(
    roots: list[DataRoot] | None = None, *, settle_seconds: float | None = None
) -> ScanReport:
    """Walk every ephys root and record the sorted session folders found there."""
    roots = ephys_roots() if roots is None else roots
    settle = settle_seconds_setting() if settle_seconds is None else settle_seconds
    report = ScanReport()
    known = latest_fingerprints()
    for root in roots:
        if not root.path.is_dir():
            log.warning("ephys data root %s is not reachable", root.path)
            continue
        for found in iter_session_dirs(root.path):
            try:
                register_session_dir(
                    found, root, roots, settle_seconds=settle, report=report, known=known
                )
            except OSError as exc:
                report.refused.append(f"{found.session.session_dir}: {exc}")
    return report


def find_session_dir(path: str | Path, roots: list[DataRoot]) -> tuple[FoundSessionDir, DataRoot]:
    """The session folder a path names (for ``ingest_ephys PATH``); it must be under a root.

    Raises PathOutsideRootsError (not under a root) or EphysIngestError (not a session folder
    with sorted data).
    """
    absolute = Path(os.path.abspath(Path(path).expanduser()))  # noqa: PTH100 - keep '..' as named
    for root in roots:
        root_abs = Path(os.path.abspath(root.path.expanduser()))  # noqa: PTH100
        if not absolute.is_relative_to(root_abs) or absolute == root_abs:
            continue
        resolve_in_roots(absolute, roots)  # raises when it resolves outside every root
        rel = absolute.relative_to(root_abs)
        if len(rel.parts) != 2 or classify_session_dir(absolute) is None:
            raise EphysIngestError(
                absolute,
                "not a session folder: expected {root}/{h2o}/{YYYYMMDD}, "
                "{root}/{h2o}/catgt_{YYYYMMDD}_g0 or {root}/{h2o}/*{h2o}*{date}_*",
            )
        found = examine_session_dir(root.path / rel)
        if found is not None:
            return found, root
        raise EphysIngestError(
            absolute, "no probe folder with a *tcat*.ap.meta and sorter output in it"
        )
    resolve_in_roots(absolute, roots)  # raises with the full explanation
    raise PathOutsideRootsError(f"{path} is not named under a configured ephys data root")
