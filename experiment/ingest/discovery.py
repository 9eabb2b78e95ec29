"""Finding Bpod files on the behavior data roots and recording them (spec §14.1 discovery).

A file is *registered* as a BehaviorFile row (root, path relative to it, size, mtime, sha256);
the BehaviorIngest pipeline step then ingests each registered file once. A scan that finds an
already-ingested file with different contents flags it for a person instead of ingesting it
again.
"""

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from experiment.models import BehaviorFile
from lab.models import Rig
from mapsite.core.paths import DataRoot, PathOutsideRootsError, parse_roots, resolve_in_roots

log = logging.getLogger(__name__)

# {h2o}_{protocol}_{YYYYMMDD}_{HHMMSS}.mat — what the rig computers write (§14.1).
BEHAVIOR_FILE_RE = re.compile(r"^[a-zA-Z]{2}.*_.*_[0-9]{8}_[0-9]{6}\.mat$")


def behavior_roots() -> list[DataRoot]:
    return parse_roots(settings.BEHAVIOR_DATA_ROOTS, with_rig=True)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ScanReport:
    new: list[BehaviorFile] = field(default_factory=list)
    unchanged: int = 0
    changed: list[BehaviorFile] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{len(self.new)} new, {self.unchanged} unchanged, {len(self.changed)} changed "
            f"after ingest, {len(self.refused)} refused"
        )


def _lexical_root(path: Path, roots: list[DataRoot]) -> tuple[DataRoot, Path] | None:
    """The root a path is *named* under, and the rest.

    ``..`` is normalised lexically (``/root/../etc/x`` is named under no root) but symlinks are
    not followed: a link inside a root is named under it even if it points elsewhere, so it is
    recorded and its ingest job says it leads outside every root.
    """
    absolute = Path(os.path.abspath(path.expanduser()))  # noqa: PTH100 - links not followed
    for root in roots:
        root_abs = Path(os.path.abspath(root.path.expanduser()))  # noqa: PTH100
        if absolute.is_relative_to(root_abs):
            return root, absolute.relative_to(root_abs)
    return None


def register_file(path: str | Path, roots: list[DataRoot] | None = None) -> BehaviorFile:
    """Record one file (idempotent). Raises PathOutsideRootsError for paths under no root.

    A file is identified by the root it is named under and its path below it. A path named
    under a root but resolving outside every root (``..``, a symlink leaving the root) is
    recorded without being opened; its ingest job then fails and says why.
    """
    roots = behavior_roots() if roots is None else roots
    path = Path(path)
    named = _lexical_root(path, roots)
    if named is None:
        resolve_in_roots(path, roots)  # raises, with the full explanation
        raise PathOutsideRootsError(f"{path} is not named under a configured data root")
    root, relative = named
    try:
        resolve_in_roots(path, roots)
        real: Path | None = path.resolve(strict=True)
    except PathOutsideRootsError:
        real = None
    rig = Rig.objects.filter(name=root.rig).first() if root.rig else None
    if real is not None:
        stat = real.stat()
        size, mtime = stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    else:
        size, mtime = 0, timezone.now()

    with transaction.atomic():
        existing = (
            BehaviorFile.objects.select_for_update()
            .filter(root=str(root.path), relative_path=str(relative))
            .first()
        )
        if existing is None:
            try:
                with transaction.atomic():  # savepoint: another sweep may record it first
                    return BehaviorFile.objects.create(
                        rig=rig,
                        root=str(root.path),
                        relative_path=str(relative),
                        file_name=path.name,
                        size=size,
                        mtime=mtime,
                        sha256=sha256_of(real) if real is not None else "",
                    )
            except IntegrityError:
                return BehaviorFile.objects.get(root=str(root.path), relative_path=str(relative))
        if real is None or (existing.size == size and existing.mtime == mtime):
            return existing
        checksum = sha256_of(real)
        if checksum == existing.sha256:
            existing.mtime = mtime  # touched, not changed
            existing.save(update_fields=["mtime", "updated_at"])
            return existing
        if existing.session_id is None:
            # Not ingested yet (e.g. found while the rig was still writing): take the new contents.
            existing.size, existing.mtime, existing.sha256 = size, mtime, checksum
            existing.save(update_fields=["size", "mtime", "sha256", "updated_at"])
            _retry_failed_ingest(existing)
            return existing
        if existing.changed_after_ingest is None:
            existing.changed_after_ingest = timezone.now()
            existing.change_note = (
                f"contents changed after ingest: size {existing.size} → {size} bytes, "
                f"sha256 {existing.sha256[:12]}… → {checksum[:12]}…; the ingested session was "
                "kept. Check the file and re-ingest by hand if the new contents are right."
            )
            existing.save(update_fields=["changed_after_ingest", "change_note", "updated_at"])
            log.warning("behavior file %s changed after ingest", existing.relative_path)
        return existing


def _retry_failed_ingest(behavior_file: BehaviorFile) -> None:
    """New contents deserve a new attempt: a failed ingest job of the file goes back to pending.

    Without this, a file found half-written (and failing as truncated) or fixed by a person
    would stay failed for ever; the next queue_missing sends pending jobs that were never sent.
    """
    from experiment.steps import BEHAVIOR_INGEST  # steps imports this module
    from mapsite.pipeline.models import Job, JobStatus

    retried = Job.objects.filter(
        step=BEHAVIOR_INGEST, key_id=behavior_file.pk, status=JobStatus.ERROR
    ).update(
        status=JobStatus.PENDING,
        queued_at=None,
        message="contents changed since the last attempt: queued again",
        traceback="",
    )
    if retried:
        log.info("behavior file %s changed; its failed ingest is retried", behavior_file.file_name)


def iter_candidate_files(root: DataRoot) -> list[Path]:
    """Files under a root whose name follows the Bpod pattern, in a stable order."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root.path, followlinks=False):
        for name in filenames:
            if BEHAVIOR_FILE_RE.match(name):
                found.append(Path(dirpath) / name)
    return sorted(found)


def _same_stat(path: Path, row: BehaviorFile) -> bool:
    """True if the file still has the size and mtime recorded (what register_file checks first)."""
    try:
        stat = path.stat()
    except OSError:
        return False  # register_file says what is wrong
    return stat.st_size == row.size and datetime.fromtimestamp(stat.st_mtime, tz=UTC) == row.mtime


def scan_behavior_roots(roots: list[DataRoot] | None = None) -> ScanReport:
    """Walk every behavior root and register what is there.

    Runs on every sweep (every minute), over roots holding years of sessions: the rows already
    recorded for a root are read in one query, and a file whose size and mtime are unchanged
    costs one ``stat`` and no query (register_file would return its row untouched anyway).
    """
    roots = behavior_roots() if roots is None else roots
    report = ScanReport()
    for root in roots:
        if not root.path.is_dir():
            log.warning("behavior data root %s (rig %s) is not reachable", root.path, root.rig)
            continue
        known = {
            row.relative_path: row
            for row in BehaviorFile.objects.filter(root=str(root.path)).only(
                "relative_path", "size", "mtime", "changed_after_ingest"
            )
        }
        for path in iter_candidate_files(root):
            # iter_candidate_files yields paths named under root.path
            before = known.get(str(path.relative_to(root.path)))
            if before is not None and _same_stat(path, before):
                report.unchanged += 1
                continue
            flagged_before = before.changed_after_ingest if before else None
            try:
                row = register_file(path, [root])
            except (OSError, PathOutsideRootsError) as exc:
                report.refused.append(f"{path}: {exc}")
                continue
            if before is None:
                report.new.append(row)
            elif row.changed_after_ingest and not flagged_before:
                report.changed.append(row)
            else:
                report.unchanged += 1
    return report
