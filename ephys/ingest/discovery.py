"""Find a session's sorted ephys data under the ephys roots (spec §14.3).

Session folder, per root (first match wins):
1. `{root}/{h2o}/{YYYYMMDD}/`             -> probe folders `[0-9]`            (layout 'date')
2. `{root}/{h2o}/catgt_{YYYYMMDD}_g0/`    -> probe folders `{YYYYMMDD}_*_imec[0-9]` ('catgt')
3. `{root}/{h2o}/*{h2o}*{date}_*` for date = mmddyy, YYYYMMDD, accepted only if the first
   recursive `{h2o}_*tcat*.ap.meta` was created within 120 s of the behavior session start
   (several sessions a day)         -> probe folders `{h2o}*{date}_*_imec[0-9]`   ('glob')
No folder -> None (the caller warns and skips the session).

The other direction, for scans of the roots (`iter_session_dirs`): every folder of a root that
has one of the three shapes, holds a `*tcat*.ap.meta` in a probe folder and some sorter output;
`input_files` lists the files an ingest of it reads (for change detection).

Per probe folder (must hold one `*tcat*.ap.meta`): probe number = trailing digit of the folder
name (`imecN` -> N + 1, plain digit -> itself). Clustering outputs: JRClust v4
`{h2o}_*.ap_res.mat` > JRClust v3 `{h2o}_*_jrc.mat` > Kilosort (recursive folder holding
`mean_waveforms.npy`, else `spike_times.npy`; 'pyks25' in the path -> pykilosort2.5). More than
one Kilosort folder, or several files of the chosen kind -> ClusteringFileError; none ->
ClusteringFileNotFoundError.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from os import PathLike
from pathlib import Path

from .errors import (
    ClusteringFileError,
    ClusteringFileNotFoundError,
    EphysIngestError,
    ProbeInsertionError,
    SpikeGLXMetaNotFoundError,
)
from .jrclust import load_jrclust_v3, load_jrclust_v4
from .phy import _pick_spike_times, load_phy
from .sorting import ClusteringInfo, SortingResult, clustering_info
from .spikeglx import SpikeGLXMeta, read_spikeglx_meta

log = logging.getLogger(__name__)

MAX_START_OFFSET_S = 120.0
PRIORITY = ("jrclust_v4", "jrclust_v3", "kilosort2", "pykilosort2.5")


@dataclass(frozen=True)
class ClusteringOutput:
    """One spike-sorting result: a JRClust file or a Kilosort/phy folder."""

    method: str  # jrclust_v4 | jrclust_v3 | kilosort2 | pykilosort2.5
    path: Path


@dataclass
class ProbeRecording:
    """A probe folder of a session with its meta and the chosen clustering output."""

    probe_number: int  # ProbeInsertion.insertion_number
    probe_dir: Path
    meta_path: Path
    clustering: ClusteringOutput
    alternatives: list[ClusteringOutput] = field(default_factory=list)  # lower priority

    def read_meta(self) -> SpikeGLXMeta:
        return read_spikeglx_meta(self.meta_path)


@dataclass
class SessionEphysDir:
    root: Path
    session_dir: Path
    layout: str  # 'date' | 'catgt' | 'glob'
    probe_glob: str  # glob of probe folders relative to session_dir


def probe_number_from_dir(name: str) -> int:
    """'..._imec0' -> 1, '..._imec2' -> 3, '1' -> 1 (spec §14.3)."""
    m = re.search(r"(imec)?(\d)$", name)
    if not m:
        raise ProbeInsertionError(name, "probe folder name does not end in a digit / imecN")
    return int(m[2]) + 1 if m[1] else int(m[2])


def _meta_time(path: Path) -> datetime | None:
    try:
        return read_spikeglx_meta(path).recording_time
    except EphysIngestError as exc:
        log.info("skipping %s: %s", path, exc)
        return None


def find_session_dir(
    roots: Iterable[str | PathLike[str]],
    h2o: str,
    session_datetime: datetime,
    *,
    max_offset_s: float = MAX_START_OFFSET_S,
) -> SessionEphysDir | None:
    """The session folder for (h2o, behavior session start), or None (see module docstring).

    `session_datetime` is compared, naive, with the meta's fileCreateTime (as the original).
    """
    ymd = session_datetime.strftime("%Y%m%d")
    for root in roots:
        root = Path(root)
        subject_dir = root / h2o
        if (subject_dir / ymd).is_dir():
            return SessionEphysDir(root, subject_dir / ymd, "date", "[0-9]")
        catgt = subject_dir / f"catgt_{ymd}_g0"
        if catgt.is_dir():
            return SessionEphysDir(root, catgt, "catgt", f"{ymd}_*_imec[0-9]")
        if not subject_dir.is_dir():
            continue
        for date_str in (session_datetime.strftime("%m%d%y"), ymd):
            for sess_dir in sorted(subject_dir.glob(f"*{h2o}*{date_str}_*")):
                if not sess_dir.is_dir():
                    continue
                metas = sorted(sess_dir.rglob(f"{h2o}_*tcat*.ap.meta"))
                if not metas:
                    continue
                t = _meta_time(metas[0])
                if t is None:
                    continue
                offset = abs((t - session_datetime).total_seconds())
                if offset <= max_offset_s:
                    return SessionEphysDir(root, sess_dir, "glob", f"{h2o}*{date_str}_*_imec[0-9]")
                log.info(
                    "%s starts %.0f s from the behavior session (> %.0f s): skipped",
                    sess_dir,
                    offset,
                    max_offset_s,
                )
    log.warning("no ephys session folder for %s on %s", h2o, session_datetime)
    return None


def find_clustering_outputs(probe_dir: str | PathLike[str], h2o: str) -> list[ClusteringOutput]:
    """All clustering outputs of a probe folder, highest priority first (may raise)."""
    probe_dir = Path(probe_dir)
    out: list[ClusteringOutput] = []
    for method, pattern in (
        ("jrclust_v4", f"{h2o}_*.ap_res.mat"),
        ("jrclust_v3", f"{h2o}_*_jrc.mat"),
    ):
        hits = sorted(p for p in probe_dir.glob(pattern) if p.is_file())
        if len(hits) > 1:
            raise ClusteringFileError(
                probe_dir, f"several {method} results: {', '.join(h.name for h in hits)}"
            )
        out += [ClusteringOutput(method, h) for h in hits]
    ks = sorted({p.parent for p in probe_dir.rglob("mean_waveforms.npy")})
    if not ks:
        ks = sorted({p.parent for p in probe_dir.rglob("spike_times.npy")})
    if len(ks) > 1:
        raise ClusteringFileError(
            probe_dir,
            "more than one Kilosort output folder: "
            + ", ".join(str(k.relative_to(probe_dir)) for k in ks),
        )
    for k in ks:
        out.append(ClusteringOutput("pykilosort2.5" if "pyks25" in str(k) else "kilosort2", k))
    if not out:
        raise ClusteringFileNotFoundError(
            probe_dir,
            f"no clustering results ({h2o}_*.ap_res.mat, {h2o}_*_jrc.mat, or a folder with "
            "spike_times.npy)",
        )
    out.sort(key=lambda c: PRIORITY.index(c.method))
    return out


def find_probe_recordings(session: SessionEphysDir, h2o: str) -> dict[int, ProbeRecording]:
    """Probe number -> ProbeRecording for every probe folder with a `*tcat*.ap.meta`."""
    metas = sorted(session.session_dir.glob(f"{session.probe_glob}/*tcat*.ap.meta"))
    if not metas:
        raise SpikeGLXMetaNotFoundError(
            session.session_dir, f"no *tcat*.ap.meta in probe folders {session.probe_glob}"
        )
    probes: dict[int, ProbeRecording] = {}
    for meta in metas:
        probe_dir = meta.parent
        number = probe_number_from_dir(probe_dir.name)
        if number in probes:
            other = probes[number]
            where = "in" if other.probe_dir == probe_dir else f"for {other.probe_dir.name} and"
            raise ProbeInsertionError(
                probe_dir, f"probe {number}: several *tcat*.ap.meta files {where} this folder"
            )
        outputs = find_clustering_outputs(probe_dir, h2o)
        if len(outputs) > 1:
            log.warning(
                "several clustering results in %s; using %s (JRC4 > JRC3 > KS2)",
                probe_dir,
                outputs[0].method,
            )
        probes[number] = ProbeRecording(number, probe_dir, meta, outputs[0], outputs[1:])
    return dict(sorted(probes.items()))


def discover_session(
    roots: Iterable[str | PathLike[str]],
    h2o: str,
    session_datetime: datetime,
    *,
    max_offset_s: float = MAX_START_OFFSET_S,
) -> tuple[SessionEphysDir, dict[int, ProbeRecording]] | None:
    """find_session_dir + find_probe_recordings; None when there is no session folder."""
    session = find_session_dir(roots, h2o, session_datetime, max_offset_s=max_offset_s)
    if session is None:
        return None
    return session, find_probe_recordings(session, h2o)


def clustering_info_of(output: ClusteringOutput) -> ClusteringInfo:
    """Label and time of a clustering output without loading it (what its loader reports)."""
    if output.method in ("jrclust_v3", "jrclust_v4"):
        return clustering_info(output.path.parent, output.path)
    return clustering_info(output.path, _pick_spike_times(output.path))


def load_clustering(
    output: ClusteringOutput, meta: SpikeGLXMeta, **kwargs: object
) -> SortingResult:
    """Run the loader matching `output.method` (extra kwargs go to load_phy)."""
    if output.method == "jrclust_v3":
        return load_jrclust_v3(output.path)
    if output.method == "jrclust_v4":
        return load_jrclust_v4(output.path, meta=meta)
    return load_phy(output.path, meta=meta, method=output.method, **kwargs)  # type: ignore[arg-type]


# ---- scanning a root (the other direction: folders -> sessions) --------------------------------
_DATE_DIR = re.compile(r"^\d{8}$")
_CATGT_DIR = re.compile(r"^catgt_(\d{8})_g0$")
#: Sorter outputs that make a folder "sorted data" (what find_clustering_outputs looks for).
SORTER_FILES = ("spike_times.npy", "mean_waveforms.npy")
#: Raw data: not part of the change-detection listing (a re-sort does not touch it), except
#: the `.ap.bin` next to the meta (stat only, never read for the listing).
RAW_SUFFIXES = (".bin", ".dat")


@dataclass(frozen=True)
class FoundSessionDir:
    """A session folder found by a scan: its h2o, the date in its name and its first meta."""

    h2o: str
    session: SessionEphysDir
    folder_date: date | None
    first_meta: Path


def _folder_date(token: str) -> date | None:
    for fmt in ("%Y%m%d", "%m%d%y"):
        try:
            return datetime.strptime(token, fmt).date()
        except ValueError:
            continue
    return None


def classify_session_dir(folder: Path) -> tuple[str, str, date | None] | None:
    """(layout, probe glob, date) when `folder` (`{root}/{h2o}/<name>`) has a §14.3 shape."""
    h2o, name = folder.parent.name, folder.name
    if _DATE_DIR.match(name):
        day = _folder_date(name)
        return ("date", "[0-9]", day) if day else None
    m = _CATGT_DIR.match(name)
    if m:
        day = _folder_date(m[1])
        return ("catgt", f"{m[1]}_*_imec[0-9]", day) if day else None
    if h2o and h2o in name:
        rest = name[name.index(h2o) + len(h2o) :]
        for token in re.findall(r"(?<!\d)(\d{8}|\d{6})_", rest):
            day = _folder_date(token)
            if day:
                return "glob", f"{h2o}*{token}_*_imec[0-9]", day
    return None


def _has_sorter_output(probe_dir: Path, h2o: str) -> bool:
    if any(probe_dir.glob(f"{h2o}_*.ap_res.mat")) or any(probe_dir.glob(f"{h2o}_*_jrc.mat")):
        return True
    return any(next(probe_dir.rglob(name), None) for name in SORTER_FILES)


def examine_session_dir(folder: str | PathLike[str]) -> FoundSessionDir | None:
    """A FoundSessionDir for `{root}/{h2o}/<name>` if it holds sorted data (else None).

    It must have a §14.3 shape, at least one probe folder with a `*tcat*.ap.meta`, and sorter
    output in some probe folder. Whether the rest is complete (every probe sorted, one Kilosort
    folder each...) is for the ingest to check and report.
    """
    folder = Path(folder)
    shape = classify_session_dir(folder)
    if shape is None or not folder.is_dir():
        return None
    h2o = folder.parent.name
    layout, probe_glob, day = shape
    metas = sorted(folder.glob(f"{probe_glob}/*tcat*.ap.meta"))
    if not metas:
        return None
    probe_dirs = sorted({m.parent for m in metas})
    if not any(_has_sorter_output(p, h2o) for p in probe_dirs):
        return None
    return FoundSessionDir(
        h2o, SessionEphysDir(folder.parent.parent, folder, layout, probe_glob), day, metas[0]
    )


def iter_session_dirs(root: str | PathLike[str]) -> Iterator[FoundSessionDir]:
    """Session folders of one root that hold sorted data (`examine_session_dir`), sorted."""
    root = Path(root)
    if not root.is_dir():
        return
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
            found = examine_session_dir(folder)
            if found is not None:
                yield found


def _is_input_file(name: str) -> bool:
    return (
        name.endswith((".meta", ".ap.bin"))
        or name.endswith("bitcode.mat")
        or ".XA_" in name
        or name.endswith("_jrc.mat")
        or name.endswith(".ap_res.mat")
    )


def input_files(session_dir: str | PathLike[str]) -> dict[str, tuple[int, int]]:
    """Files an ingest of the session folder reads -> (size, mtime_ns), by relative path.

    Metas, the `.ap.bin` next to them (the phy loader may read waveforms from it; a copy still
    in progress shows as a change), bitcode files, NI text files, JRClust results, and every
    file (not raw `.bin`/`.dat` copies) of a folder holding `spike_times*.npy`. Symbolic links
    are listed with the size and mtime of their target; the ingest refuses targets outside the
    roots.
    """
    session_dir = Path(session_dir)
    out: dict[str, tuple[int, int]] = {}
    for dirpath, _dirs, names in os.walk(session_dir, followlinks=False):
        folder = Path(dirpath)
        sorter_dir = any(n.startswith("spike_times") and n.endswith(".npy") for n in names)
        for name in names:
            if name.endswith(RAW_SUFFIXES) and not name.endswith(".ap.bin"):
                continue
            if not (sorter_dir or _is_input_file(name)):
                continue
            path = folder / name
            try:
                st = path.stat()
            except OSError:  # a dangling link, or removed meanwhile
                continue
            out[str(path.relative_to(session_dir))] = (int(st.st_size), int(st.st_mtime_ns))
    return dict(sorted(out.items()))
