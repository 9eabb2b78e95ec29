"""Find a session's sorted ephys data under the ephys roots (spec §14.3).

Session folder, per root (first match wins):
1. `{root}/{h2o}/{YYYYMMDD}/`             -> probe folders `[0-9]`            (layout 'date')
2. `{root}/{h2o}/catgt_{YYYYMMDD}_g0/`    -> probe folders `{YYYYMMDD}_*_imec[0-9]` ('catgt')
3. `{root}/{h2o}/*{h2o}*{date}_*` for date = mmddyy, YYYYMMDD, accepted only if the first
   recursive `{h2o}_*tcat*.ap.meta` was created within 120 s of the behavior session start
   (several sessions a day)         -> probe folders `{h2o}*{date}_*_imec[0-9]`   ('glob')
No folder -> None (the caller warns and skips the session).

Per probe folder (must hold one `*tcat*.ap.meta`): probe number = trailing digit of the folder
name (`imecN` -> N + 1, plain digit -> itself). Clustering outputs: JRClust v4
`{h2o}_*.ap_res.mat` > JRClust v3 `{h2o}_*_jrc.mat` > Kilosort (recursive folder holding
`mean_waveforms.npy`, else `spike_times.npy`; 'pyks25' in the path -> pykilosort2.5). More than
one Kilosort folder, or several files of the chosen kind -> ClusteringFileError; none ->
ClusteringFileNotFoundError.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
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
from .phy import load_phy
from .sorting import SortingResult
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


def load_clustering(
    output: ClusteringOutput, meta: SpikeGLXMeta, **kwargs: object
) -> SortingResult:
    """Run the loader matching `output.method` (extra kwargs go to load_phy)."""
    if output.method == "jrclust_v3":
        return load_jrclust_v3(output.path)
    if output.method == "jrclust_v4":
        return load_jrclust_v4(output.path, meta=meta)
    return load_phy(output.path, meta=meta, method=output.method, **kwargs)  # type: ignore[arg-type]
