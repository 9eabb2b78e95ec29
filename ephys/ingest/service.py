"""Writing a session's sorted ephys data to the database (the EphysIngest step's make).

One call ingests one ``SortedOutput`` (a version of a session folder's files) inside the
caller's transaction: every probe of the session or none. Per probe (spec §14.3-§14.7):

1. the ``.ap.meta`` gives the probe (by serial), its electrode configuration (by hash) and the
   sampling rate; an unsupported probe model is a ProbeInsertionError;
2. the sorter output is loaded (``discovery.load_clustering``), the ephys trials are aligned to
   the behavior trials by bitcode (``*bitcode.mat``, else SpikeGLX NI text files);
3. units, their spike arrays (``.npy`` bytes, one row per unit, written with PostgreSQL
   ``COPY ... (FORMAT BINARY)``), noise labels, notes, metrics and the per-trial alignment are
   written in bulk.

A newer version of an already ingested session (a re-sort) archives each probe's replaced
clustering with its arrays and metrics (``ArchivedClustering``, §14.6) before loading the new
one; a probe whose clustering method and time are unchanged (±1 s) is left alone, and a version
that changes no probe is recorded as *identical* and writes nothing.

Bad input raises an ``EphysIngestError`` (or ``PathOutsideRootsError``) naming the file and
the problem; the caller's transaction then leaves the database as it was.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from ephys import models as m
from experiment.models import BehaviorTrial, Session, SessionTrial, TrialEvent, TrialNote
from lab.models import (
    ElectrodeConfig,
    ElectrodeConfigElectrode,
    Probe,
    ProbeType,
    ProbeTypeElectrode,
)
from mapsite.core.npy import npy_bytes, npy_header
from mapsite.core.paths import DataRoot, PathOutsideRootsError, resolve_in_roots
from mapsite.pipeline.steps import StepWaiting

from . import bitcode
from .db_discovery import ephys_roots, fingerprint, input_files
from .discovery import (
    ProbeRecording,
    SessionEphysDir,
    clustering_info_of,
    find_probe_recordings,
    load_clustering,
)
from .errors import (
    BitCodeError,
    BitCodeFileNotFoundError,
    EphysIngestError,
    ProbeInsertionError,
    SpikeGLXMetaNotFoundError,
)
from .sorting import ClusteringInfo, SortingResult, normalize_label
from .spikeglx import ElectrodeConfig as MetaElectrodeConfig
from .spikeglx import SpikeGLXMeta, read_spikeglx_meta

log = logging.getLogger(__name__)

#: Behavior and ephys start within this of each other (spec §14.3, several sessions a day).
MAX_START_OFFSET = timedelta(seconds=120)
#: A clustering whose time is within this of the ingested one is the same clustering (§14.6).
SAME_CLUSTERING = timedelta(seconds=1)
MTL_TASK = "multi-target-licking"
#: Rig whose NI recordings may lack bit pulses: trials then map one-to-one (§14.5).
ONE_TO_ONE_RIG = "RRig-MTL"


# ---- the behavior side ---------------------------------------------------------------------------
@dataclass
class BehaviorSide:
    """What the alignment needs from the session's behavior trials."""

    trial_ids: dict[int, int]  # trial number -> SessionTrial pk
    bitcodes: dict[int, str]  # trial number -> TrialNote 'bitcode'
    go_times: dict[int, float]  # trial number -> first 'go' event, s from trial start
    free_water: list[int]
    mtl: bool
    rig: str


def behavior_side(session: Session) -> BehaviorSide:
    trial_ids = dict(
        SessionTrial.objects.filter(session=session).values_list("trial", "pk").order_by("trial")
    )
    bitcodes = dict(
        TrialNote.objects.filter(trial__session=session, note_type__name="bitcode").values_list(
            "trial__trial", "note"
        )
    )
    go_times: dict[int, float] = {}
    for trial, t in (
        TrialEvent.objects.filter(trial__trial__session=session, event_type__name="go")
        .order_by("trial_event_id")
        .values_list("trial__trial__trial", "trial_event_time")
    ):
        go_times.setdefault(trial, t)
    behavior = BehaviorTrial.objects.filter(trial__session=session)
    free = list(behavior.filter(free_water=True).values_list("trial__trial", flat=True))
    mtl = behavior.filter(task_protocol__task__name=MTL_TASK).exists()
    return BehaviorSide(trial_ids, bitcodes, go_times, free, mtl, session.rig.name)


def align_probe(
    probe: ProbeRecording, h2o: str, meta: SpikeGLXMeta, sampling_rate: float, side: BehaviorSide
) -> tuple[bitcode.TrialAlignment, Path]:
    """Ephys trials of one probe mapped to behavior trials (§14.5-§14.6) and the file used."""
    margin = meta.pretrigger_margin_samples
    mat = bitcode.find_bitcode_mat(probe.probe_dir, h2o)
    if mat is not None:
        bf = bitcode.read_bitcode_mat(mat)
        al = bitcode.align_trials(
            bf.bitcodes,
            bf.trial_starts,
            bf.go_cues,
            side.bitcodes,
            bf.trial_num,
            free_water_trials=side.free_water,
            sampling_rate=sampling_rate,
            margin_samples=margin,
            source=mat,
        )
        source = mat
    else:
        try:
            ni = bitcode.read_ni_bitcodes(probe.probe_dir.parent)
        except BitCodeFileNotFoundError:
            raise BitCodeFileNotFoundError(
                probe.probe_dir,
                f"no {h2o}_*bitcode.mat here and no SpikeGLX NI trial files "
                f"(*.XA_0_0[.adj].txt) in {probe.probe_dir.parent.name}: the trials cannot be "
                "aligned",
            ) from None
        if not side.bitcodes:
            raise BitCodeError(ni.trial_start_file, "the behavior session has no trial bitcodes")
        al = bitcode.align_ni_trials(
            ni,
            side.bitcodes,
            None if side.mtl else side.go_times,
            sampling_rate=sampling_rate,
            margin_samples=margin,
            allow_one_to_one=side.rig == ONE_TO_ONE_RIG,
        )
        source = ni.bit_file or ni.trial_start_file
    trials, counts = np.unique(al.behavior_trials, return_counts=True)
    if (counts > 1).any():
        raise BitCodeError(
            source,
            f"several ephys trials map to behavior trial(s) {trials[counts > 1][:10].tolist()}",
        )
    missing = sorted(set(al.behavior_trials.tolist()) - side.trial_ids.keys())
    if missing:
        raise BitCodeError(source, f"behavior trial(s) {missing[:10]} do not exist")
    if al.n_trials == 0:
        raise BitCodeError(source, "no ephys trial could be aligned to a behavior trial")
    return al, source


# ---- finding the session ------------------------------------------------------------------------
def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "an unknown time"


def find_session(recording: m.EphysRecording) -> Session:
    """The behavior session of a recording: same h2o, start within ±120 s of the recording.

    For the date-named layouts a single session of that day is taken even if its start time
    is further away (the original matched those by date only). None found -> StepWaiting.
    """
    h2o = recording.h2o
    sessions = Session.objects.filter(subject__water_restriction__water_restriction_number=h2o)
    when = recording.recording_time
    if when is not None:
        near = list(
            sessions.filter(
                start_time__gte=when - MAX_START_OFFSET, start_time__lte=when + MAX_START_OFFSET
            ).order_by("start_time")
        )
        if len(near) == 1:
            return near[0]
        if len(near) > 1:
            raise EphysIngestError(
                recording.relative_path,
                f"{len(near)} behavior sessions of {h2o} start within 120 s of the recording "
                f"({_when(when)} UTC): cannot tell which one it belongs to",
            )
    if recording.layout != m.RecordingLayout.GLOB and recording.folder_date is not None:
        midnight = datetime.combine(recording.folder_date, datetime.min.time(), tzinfo=UTC)
        day = list(  # the folder's date is that of Bpod's SessionStartTime_UTC
            sessions.filter(start_time__gte=midnight, start_time__lt=midnight + timedelta(days=1))
        )
        if len(day) == 1:
            return day[0]
        if len(day) > 1:
            raise EphysIngestError(
                recording.relative_path,
                f"{len(day)} behavior sessions of {h2o} on {recording.folder_date} and none "
                f"starts within 120 s of the recording ({_when(when)} UTC)",
            )
    raise StepWaiting(
        f"no behavior session for {h2o} at {_when(when or _date_only(recording))} yet: it is "
        "ingested once the behavior session is"
    )


def _date_only(recording: m.EphysRecording) -> datetime | None:
    if recording.folder_date is None:
        return None
    return datetime.combine(recording.folder_date, datetime.min.time(), tzinfo=UTC)


# ---- paths ---------------------------------------------------------------------------------------
def confined_session_dir(recording: m.EphysRecording, roots: list[DataRoot]) -> Path:
    """The recording's folder, re-checked against the configured roots before it is read."""
    if not any(str(r.path) == recording.root for r in roots):
        raise PathOutsideRootsError(
            f"{recording.relative_path}: its data root {recording.root} is no longer configured "
            "(MAP_EPHYS_ROOTS)"
        )
    path = Path(recording.root) / recording.relative_path
    try:
        resolve_in_roots(path, roots)
    except PathOutsideRootsError as exc:
        raise PathOutsideRootsError(f"{recording.relative_path}: refused: {exc}") from None
    return path


def _confine_files(session_dir: Path, files: Iterable[str], roots: list[DataRoot]) -> None:
    for name in files:
        try:
            resolve_in_roots(session_dir / name, roots)
        except PathOutsideRootsError as exc:
            raise PathOutsideRootsError(f"{session_dir / name}: refused: {exc}") from None


def _relative(path: Path, root: str) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


# ---- lab rows ------------------------------------------------------------------------------------
def get_or_create_probe(meta: SpikeGLXMeta, probe_type: ProbeType) -> Probe:
    serial = meta.serial_number
    probe, _ = Probe.objects.get_or_create(serial=serial, defaults={"probe_type": probe_type})
    if probe.probe_type_id != probe_type.pk:
        raise ProbeInsertionError(
            meta.path,
            f"probe {serial} is recorded as a {probe.probe_type.name}, this meta says "
            f"{probe_type.name}",
        )
    return probe


def get_or_create_config(
    config: MetaElectrodeConfig, probe_type: ProbeType, source: Path
) -> ElectrodeConfig:
    """The ElectrodeConfig with this hash, or a new one with its electrode rows (§2.2)."""
    existing = ElectrodeConfig.objects.filter(config_hash=config.hash).first()
    if existing is not None:
        return existing
    name = config.name
    if ElectrodeConfig.objects.filter(probe_type=probe_type, name=name).exists():
        # same electrodes, different 'used' flags: keep the name unique
        name = f"{name[:54]} #{config.hash[:8]}"
    electrodes = dict(
        ProbeTypeElectrode.objects.filter(
            probe_type=probe_type, electrode__in=config.electrodes.tolist()
        ).values_list("electrode", "pk")
    )
    unknown = sorted(set(config.electrodes.tolist()) - electrodes.keys())
    if unknown:
        raise ProbeInsertionError(
            source,
            f"electrode(s) {unknown[:10]} are not electrodes of {probe_type.name} in "
            "lab.ProbeTypeElectrode",
        )
    with transaction.atomic():  # a concurrent ingest may create the same config first
        row, created = ElectrodeConfig.objects.get_or_create(
            config_hash=config.hash, defaults={"probe_type": probe_type, "name": name}
        )
        if created:
            ElectrodeConfigElectrode.objects.bulk_create(
                [
                    ElectrodeConfigElectrode(
                        config=row,
                        electrode_id=electrodes[int(e)],
                        electrode_group=config.electrode_group,
                        is_used=bool(u),
                    )
                    for e, u in zip(config.electrodes, config.is_used, strict=True)
                ],
                batch_size=2000,
            )
    return row


# ---- per probe -----------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    number: int
    method: str
    label: str
    n_units: int = 0
    n_spikes: int = 0
    n_trials: int = 0
    sync_file: str = ""
    replaced: str = ""
    unchanged: bool = False
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.unchanged:
            return f"probe {self.number}: {self.method} clustering unchanged"
        text = (
            f"probe {self.number}: {self.method} ({self.label}), {self.n_units} units, "
            f"{self.n_spikes} spikes, {self.n_trials} trials aligned with {self.sync_file}"
        )
        if self.replaced:
            text += f"; replaced {self.replaced} (archived)"
        if self.warnings:
            text += f"; {len(self.warnings)} warning(s): " + "; ".join(self.warnings[:3])
        return text


def _aware(moment: datetime) -> datetime:
    """Clustering times are the lab's local time (file times, phy.log)."""
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _label_name(info: ClusteringInfo) -> str:
    return info.label.rstrip("_")


def _same_clustering(insertion: m.ProbeInsertion | None, method: str, when: datetime) -> bool:
    if insertion is None:
        return False
    labels = list(insertion.clustering_labels.select_related("clustering_method"))
    return (
        len(labels) == 1
        and labels[0].clustering_method.name == method
        and abs(labels[0].clustering_time - when) <= SAME_CLUSTERING
    )


def _clustering_files(files: dict, session_dir: Path, output_path: Path) -> dict:
    """The part of a SortedOutput listing that belongs to one clustering output."""
    rel = str(Path(output_path).relative_to(session_dir))
    return {k: v for k, v in files.items() if k == rel or k.startswith(rel + "/")}


def _finite_or_none(value: object) -> float | None:
    v = float(value)  # type: ignore[arg-type]
    return v if math.isfinite(v) else None


def _lookup(model: type, names: Iterable[str], what: str, source: Path) -> dict:
    wanted = set(names)
    rows = {row.name: row for row in model.objects.filter(name__in=wanted)}
    unknown = wanted - rows.keys()
    if unknown:
        raise EphysIngestError(source, f"unknown {what}: {', '.join(sorted(unknown))}")
    return rows


def ingest_probe(
    probe: ProbeRecording,
    *,
    session: Session,
    recording: m.EphysRecording,
    side: BehaviorSide,
    insertion: m.ProbeInsertion | None,
    output: m.SortedOutput,
    previous_output: m.SortedOutput | None,
) -> ProbeResult:
    """Load, align and write one probe of the session (see the module docstring).

    The probe is left alone when its clustering is the one ingested: same method, same time
    (±1 s) and, when the previous version's listing is known, the same files.
    """
    h2o = recording.h2o
    meta = probe.read_meta()
    probe_type_name = meta.probe_type  # unsupported models raise here
    sampling_rate = meta.sampling_rate  # missing or non-positive raise here
    info = clustering_info_of(probe.clustering)
    when = _aware(info.time)
    result = ProbeResult(probe.probe_number, probe.clustering.method, _label_name(info))
    if _same_clustering(insertion, probe.clustering.method, when):
        session_dir = Path(recording.root) / recording.relative_path
        mine = _clustering_files(output.files, session_dir, probe.clustering.path)
        before = (
            _clustering_files(previous_output.files, session_dir, probe.clustering.path)
            if previous_output is not None
            else mine
        )
        if mine == before:
            result.unchanged = True
            return result

    probe_type = ProbeType.objects.filter(name=probe_type_name).first()
    if probe_type is None:
        raise ProbeInsertionError(meta.path, f"probe type {probe_type_name!r} is not in lab")
    config = meta.electrode_config
    site_electrodes = meta.site_electrodes

    # The file order of the spikes is not stored: the loader frees it early (10 M spikes: 80 MB).
    sorting = load_clustering(probe.clustering, meta, keep_order=False)
    sorting.order = None
    result.warnings = list(sorting.warnings)
    alignment, sync_file = align_probe(probe, h2o, meta, sorting.sampling_rate, side)
    result.sync_file = _relative(sync_file, recording.root)

    # -- lab rows and the insertion
    probe_row = get_or_create_probe(meta, probe_type)
    config_row = get_or_create_config(config, probe_type, meta.path)
    if insertion is None:
        insertion = m.ProbeInsertion.objects.create(
            session=session,
            insertion_number=probe.probe_number,
            probe=probe_row,
            electrode_config=config_row,
            sampling_rate=sampling_rate,
        )
    else:
        changes = [
            f"{what} {old} -> {new}"
            for what, old, new in (
                ("probe", insertion.probe.serial, probe_row.serial),
                ("electrode config", insertion.electrode_config.name, config_row.name),
                ("sampling rate", insertion.sampling_rate, sampling_rate),
            )
            if old != new
        ]
        if changes:
            raise ProbeInsertionError(
                meta.path,
                f"insertion {probe.probe_number} of {session} was ingested with another "
                f"recording ({', '.join(changes)}); a re-sort must keep the recording",
            )
        result.replaced = archive_and_delete(insertion, previous_output)

    # -- units
    source_path = _relative(probe.clustering.path, recording.root)
    method = _lookup(m.ClusteringMethod, [sorting.method], "clustering method", sorting.path)
    m.ClusteringLabel.objects.create(
        insertion=insertion,
        clustering_method=method[sorting.method],
        clustering_time=when,
        quality_control=info.quality_control,
        manual_curation=info.manual_curation,
        clustering_note=_label_name(info),
        source_path=source_path,
    )
    units = write_units(insertion, sorting, meta, site_electrodes, config_row, alignment)
    write_unit_details(units, sorting)
    write_alignment(insertion, alignment, side, sorting.sampling_rate)
    result.n_units, result.n_spikes, result.n_trials = (
        sorting.n_units,
        sorting.n_spikes,
        alignment.n_trials,
    )
    return result


def write_units(
    insertion: m.ProbeInsertion,
    sorting: SortingResult,
    meta: SpikeGLXMeta,
    site_electrodes: np.ndarray,
    config: ElectrodeConfig,
    alignment: bitcode.TrialAlignment,
) -> list[m.Unit]:
    """Unit rows, then their spike arrays (one UnitSpikes row per unit)."""
    qualities = _lookup(
        m.UnitQualityType, set(sorting.unit_quality.tolist()), "unit quality", sorting.path
    )
    method = m.ClusteringMethod.objects.get(name=sorting.method)
    config_electrodes = dict(
        ElectrodeConfigElectrode.objects.filter(config=config).values_list(
            "electrode__electrode", "pk"
        )
    )
    peak_electrodes = meta.sites_to_electrodes(sorting.unit_peak_site)
    counts = sorting.spike_counts
    units = [
        m.Unit(
            insertion=insertion,
            clustering_method=method,
            unit=int(u),
            unit_uid=int(u),
            quality=qualities[str(sorting.unit_quality[i])],
            electrode_id=config_electrodes[int(peak_electrodes[i])],
            unit_posx=float(sorting.unit_posx[i]),
            unit_posy=float(sorting.unit_posy[i]),
            unit_amp=float(sorting.unit_amp[i]),
            unit_snr=_finite_or_none(sorting.unit_snr[i]),
            spike_count=int(counts[i]),
            waveform=npy_bytes(sorting.unit_waveform[i].astype(np.float32)),
        )
        for i, u in enumerate(sorting.unit_ids)
    ]
    units = m.Unit.objects.bulk_create(units, batch_size=500)
    if connection.vendor != "postgresql" or any(u.pk is None for u in units):
        units = list(m.Unit.objects.filter(insertion=insertion).order_by("unit"))

    # Per-spike arrays, each computed once for all units; units take slices (views). The
    # sorting's sites and depths are consumed (replaced by empty arrays) as soon as they are
    # converted, so that at most one spare copy of the per-spike data exists at a time.
    sites = np.asarray(sorting.spike_sites)
    if sites.size and (int(sites.min()) < 1 or int(sites.max()) > site_electrodes.size):
        bad = int(sites.min()) if int(sites.min()) < 1 else int(sites.max())
        raise EphysIngestError(
            sorting.path,
            f"spike site {bad} is outside the {site_electrodes.size} recorded sites of "
            f"{meta.path.name}",
        )
    lut = np.zeros(site_electrodes.size + 1, dtype=np.int32)
    lut[1:] = site_electrodes
    electrodes = np.take(lut, sites)
    del sites
    sorting.spike_sites = np.empty(0, np.int32)
    depths = np.asarray(sorting.spike_depths, dtype=np.float32)
    sorting.spike_depths = np.empty(0, np.float64)
    seconds = bitcode.spike_times_relative(sorting.spike_samples, alignment, sorting.sampling_rate)
    offsets = sorting.offsets
    write_unit_spikes(
        [u.pk for u in units],
        offsets,
        (seconds, electrodes, depths),
    )
    return units


def write_unit_spikes(
    unit_ids: Sequence[int], offsets: np.ndarray, arrays: Sequence[np.ndarray]
) -> None:
    """One UnitSpikes row per unit: slice ``offsets[i]:offsets[i+1]`` of each grouped array.

    On PostgreSQL the rows go through ``COPY ... FROM STDIN (FORMAT BINARY)`` with the array
    memory handed to the driver as it is (the ``.npy`` header is written in front of it), so a
    10 M-spike session is not copied in Python. Elsewhere (the embedded SQLite) bulk_create.
    """
    columns = ("spike_times", "spike_sites", "spike_depths")
    if len(arrays) != len(columns):
        raise ValueError("need spike times, sites and depths")
    arrays = [np.ascontiguousarray(a) for a in arrays]
    if connection.vendor != "postgresql":
        m.UnitSpikes.objects.bulk_create(
            [
                m.UnitSpikes(
                    unit_id=uid,
                    **{
                        c: npy_bytes(a[offsets[i] : offsets[i + 1]])
                        for c, a in zip(columns, arrays, strict=True)
                    },
                )
                for i, uid in enumerate(unit_ids)
            ],
            batch_size=50,
        )
        return
    table = m.UnitSpikes._meta.db_table
    sql = f"COPY {table} (unit_id, {', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    views = [memoryview(a).cast("B") for a in arrays]
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
        for i, uid in enumerate(unit_ids):
            a, b = int(offsets[i]), int(offsets[i + 1])
            copy.write(struct.pack("!hiq", len(columns) + 1, 8, uid))
            for arr, view in zip(arrays, views, strict=True):
                size = arr.dtype.itemsize
                header = npy_header(arr.dtype, b - a)
                copy.write(struct.pack("!i", len(header) + (b - a) * size) + header)
                if b > a:
                    copy.write(view[a * size : b * size])
        copy.write(struct.pack("!h", -1))


def write_unit_details(units: list[m.Unit], sorting: SortingResult) -> None:
    """Noise labels, curation notes, UnitStat / ClusterMetric / WaveformMetric (metrics.csv)."""
    by_id = {u.unit: u for u in units}
    m.UnitNoiseLabel.objects.bulk_create(
        [
            m.UnitNoiseLabel(unit=by_id[u], noise=label)
            for u, label in sorted(sorting.noise_labels.items())
            if u in by_id
        ]
    )
    notes = [
        (source, u, quality)
        for source, per_unit in sorted(sorting.unit_notes.items())
        for u, quality in sorted(per_unit.items())
        if u in by_id
    ]
    qualities = _lookup(
        m.UnitQualityType, {normalize_label(q) for *_, q in notes}, "unit quality", sorting.path
    )
    m.UnitNote.objects.bulk_create(
        [
            m.UnitNote(
                unit=by_id[u], note_source=source[:36], quality=qualities[normalize_label(q)]
            )
            for source, u, q in notes
        ],
        batch_size=2000,
    )
    if sorting.metrics is None:
        return
    from .phy import CLUSTER_METRIC_COLUMNS, WAVEFORM_METRIC_COLUMNS

    met = sorting.metrics
    stats, clusters, waves = [], [], []
    for i, u in enumerate(sorting.unit_ids):
        unit = by_id[int(u)]
        stats.append(
            m.UnitStat(
                unit=unit,
                isi_violation=_finite_or_none(met["isi_viol"][i]),
                avg_firing_rate=_finite_or_none(met["firing_rate"][i]),
            )
        )
        clusters.append(
            m.ClusterMetric(
                unit=unit,
                epoch_name_quality_metrics=str(met["epoch_name_quality_metrics"][i])[:64],
                **{c: _finite_or_none(met[c][i]) for c in CLUSTER_METRIC_COLUMNS},
            )
        )
        waves.append(
            m.WaveformMetric(
                unit=unit,
                epoch_name_waveform_metrics=str(met["epoch_name_waveform_metrics"][i])[:64],
                **{c: _finite_or_none(met[c][i]) for c in WAVEFORM_METRIC_COLUMNS},
            )
        )
    m.UnitStat.objects.bulk_create(stats, batch_size=2000)
    m.ClusterMetric.objects.bulk_create(clusters, batch_size=2000)
    m.WaveformMetric.objects.bulk_create(waves, batch_size=2000)


def write_alignment(
    insertion: m.ProbeInsertion,
    alignment: bitcode.TrialAlignment,
    side: BehaviorSide,
    sampling_rate: float,
) -> None:
    """One InsertionTrialAlignment row per aligned trial (on the Unit.spike_times clock)."""
    m.InsertionTrialAlignment.objects.filter(insertion=insertion).delete()
    starts = (alignment.trial_starts - alignment.first_trial_start) / sampling_rate
    go = (alignment.go_cues - alignment.trial_starts) / sampling_rate
    m.InsertionTrialAlignment.objects.bulk_create(
        [
            m.InsertionTrialAlignment(
                insertion=insertion,
                trial_id=side.trial_ids[int(trial)],
                ephys_trial=int(alignment.ephys_indices[k]) + 1,
                start_time=float(starts[k]),
                go_cue_time=_finite_or_none(go[k]),
            )
            for k, trial in enumerate(alignment.behavior_trials)
        ],
        batch_size=2000,
    )


# ---- archive (§14.6) -----------------------------------------------------------------------------
def _unit_metrics_json(units: list[m.Unit]) -> dict[int, dict]:
    """What the archive keeps of each unit beyond its columns (rows that cascade away)."""
    ids = [u.pk for u in units]
    out: dict[int, dict] = {
        u.pk: {"unit_uid": u.unit_uid, "spike_count": u.spike_count} for u in units
    }
    for s in m.UnitStat.objects.filter(unit_id__in=ids):
        out[s.unit_id]["unit_stat"] = {
            "isi_violation": s.isi_violation,
            "avg_firing_rate": s.avg_firing_rate,
        }
    for model, key in (
        (m.ClusterMetric, "cluster_metrics"),
        (m.WaveformMetric, "waveform_metrics"),
    ):
        fields = [
            f.attname for f in model._meta.concrete_fields if f.attname not in ("id", "unit_id")
        ]
        for row in model.objects.filter(unit_id__in=ids).values("unit_id", *fields):
            out[row.pop("unit_id")].setdefault(key, []).append(row)
    for n in m.UnitNoiseLabel.objects.filter(unit_id__in=ids):
        out[n.unit_id]["noise_label"] = n.noise
    for note in m.UnitNote.objects.filter(unit_id__in=ids).select_related("quality"):
        out[note.unit_id].setdefault("notes", {})[note.note_source] = note.quality.name
    for c in m.UnitComment.objects.filter(unit_id__in=ids).order_by("pk"):
        out[c.unit_id].setdefault("comments", []).append(c.comment)
    return out


def _cell_types(unit_ids: list[int]) -> dict[int, int]:
    """Unit -> CellType id, when the psth app computed them (UnitCellType, §15)."""
    if not apps.is_installed("psth"):
        return {}
    try:
        model = apps.get_model("psth", "UnitCellType")
    except LookupError:
        return {}
    return dict(model.objects.filter(unit_id__in=unit_ids).values_list("unit_id", "cell_type_id"))


def archive_and_delete(insertion: m.ProbeInsertion, previous_output: m.SortedOutput | None) -> str:
    """Copy the insertion's clustering(s) into the archive, then delete the live units.

    Arrays are copied inside the database (INSERT ... SELECT), never through Python. Jobs of
    steps downstream of EphysIngest for the replaced units are forgotten first
    (``runner.invalidate``), their results going with the units (cascades).
    """
    labels = list(insertion.clustering_labels.select_related("clustering_method"))
    if not labels and not insertion.units.exists():
        return ""
    invalidate_downstream(insertion, previous_output)
    au, un, us = m.ArchivedUnit._meta, m.Unit._meta, m.UnitSpikes._meta
    described = []
    for label in labels:
        archived, created = m.ArchivedClustering.objects.get_or_create(
            insertion=insertion,
            clustering_method=label.clustering_method,
            clustering_time=label.clustering_time,
            defaults={
                "quality_control": label.quality_control,
                "manual_curation": label.manual_curation,
                "clustering_note": label.clustering_note,
                "source_path": label.source_path,
            },
        )
        described.append(
            f"{label.clustering_method.name} of "
            f"{timezone.localtime(label.clustering_time):%Y-%m-%d %H:%M:%S}"
        )
        if not created:
            log.info("%s: clustering %s was archived already", insertion, described[-1])
            continue
        # Table names come from model metadata; the values are parameters.
        sql = (
            f"INSERT INTO {au.db_table} (clustering_id, unit, quality_id, cell_type_id, "  # noqa: S608
            "electrode_id, unit_posx, unit_posy, unit_amp, unit_snr, spike_times, "
            "spike_sites, spike_depths, waveform, metrics) "
            "SELECT %s, u.unit, u.quality_id, NULL, u.electrode_id, u.unit_posx, "
            "u.unit_posy, u.unit_amp, u.unit_snr, s.spike_times, s.spike_sites, "
            f"s.spike_depths, u.waveform, '{{}}' FROM {un.db_table} u "
            f"JOIN {us.db_table} s ON s.unit_id = u.id "
            "WHERE u.insertion_id = %s AND u.clustering_method_id = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [archived.pk, insertion.pk, label.clustering_method_id],
            )
        units = list(
            m.Unit.objects.filter(insertion=insertion, clustering_method=label.clustering_method)
            .only("pk", "unit", "unit_uid", "spike_count")
            .order_by("unit")
        )
        extra = _unit_metrics_json(units)
        cell_types = _cell_types([u.pk for u in units])
        archived_units = {a.unit: a for a in archived.units.only("pk", "unit")}
        for u in units:
            archived_units[u.unit].metrics = extra[u.pk]
            archived_units[u.unit].cell_type_id = cell_types.get(u.pk)
        m.ArchivedUnit.objects.bulk_update(
            list(archived_units.values()), ["metrics", "cell_type"], batch_size=500
        )
    m.Unit.objects.filter(insertion=insertion).delete()
    m.ClusteringLabel.objects.filter(insertion=insertion).delete()
    return ", ".join(described)


def invalidate_downstream(
    insertion: m.ProbeInsertion, previous_output: m.SortedOutput | None
) -> None:
    """Forget the jobs of steps downstream of EphysIngest that used this insertion's units.

    A downstream step with ``keys_after`` is asked for its keys of the previous version (before
    its units are deleted); one without it is reached when its key model is Unit,
    ProbeInsertion, Session or SortedOutput.
    """
    from mapsite.pipeline import runner
    from mapsite.pipeline.steps import downstream_of

    from ..steps import EPHYS_INGEST

    downstream = downstream_of(EPHYS_INGEST)
    if not downstream:
        return
    by_model: dict[type, list[int]] = {
        m.Unit: list(insertion.units.values_list("pk", flat=True)),
        m.ProbeInsertion: [insertion.pk],
        Session: [insertion.session_id],
        m.SortedOutput: [previous_output.pk] if previous_output else [],
    }
    for step in downstream:
        if step.keys_after is not None and previous_output is not None:
            keys = list(step.keys_after(EPHYS_INGEST, previous_output.pk))
        else:
            keys = by_model.get(step.key_model, [])
        if keys:
            runner.invalidate(step.name, keys)


# ---- the step's make -----------------------------------------------------------------------------
def ingest_sorted_output(output: m.SortedOutput) -> str:
    """Make one key of EphysIngest. Returns what was done (also saved as ``output.note``)."""
    recording = output.recording
    if output.superseded_at is not None:
        note = "superseded by a newer version of the folder before its ingest: not ingested"
        _finish(output, m.SortedOutputStatus.SUPERSEDED, note, ingested=False)
        return note
    roots = ephys_roots()
    session_dir = confined_session_dir(recording, roots)
    if not output.fingerprint:
        raise PathOutsideRootsError(output.note or f"{session_dir}: refused when it was found")
    files = input_files(session_dir)
    if fingerprint(files) != output.fingerprint:
        raise EphysIngestError(
            session_dir,
            "its files changed since they were found (still being copied, or re-sorted?); the "
            "next scan records the new version and that is ingested",
        )
    _confine_files(session_dir, files, roots)

    if recording.recording_time is None and recording.layout == m.RecordingLayout.GLOB:
        # Matching by time needs the meta's fileCreateTime: say what is wrong with it.
        metas = sorted(session_dir.glob(f"{recording.probe_glob}/*tcat*.ap.meta"))
        if not metas:
            raise SpikeGLXMetaNotFoundError(session_dir, "no *tcat*.ap.meta in probe folders")
        when = read_spikeglx_meta(metas[0]).recording_time  # raises, naming the file
        recording.recording_time = when.replace(tzinfo=UTC)
        recording.save(update_fields=["recording_time", "updated_at"])
    session = find_session(recording)
    session = (
        Session.objects.select_for_update(of=("self",)).select_related("rig").get(pk=session.pk)
    )
    other = m.EphysRecording.objects.filter(session=session).exclude(pk=recording.pk).first()
    if other is not None:
        raise EphysIngestError(
            session_dir,
            f"session {session} already has ephys data from {other.root}/{other.relative_path}; "
            "one session, one folder: remove the copy that is wrong",
        )
    probes = find_probe_recordings(
        SessionEphysDir(Path(recording.root), session_dir, recording.layout, recording.probe_glob),
        recording.h2o,
    )
    side = behavior_side(session)
    existing = {
        ins.insertion_number: ins
        for ins in m.ProbeInsertion.objects.filter(session=session).select_related(
            "probe", "electrode_config"
        )
    }
    previous = (
        recording.outputs.filter(status=m.SortedOutputStatus.INGESTED)
        .exclude(pk=output.pk)
        .order_by("-version")
        .first()
    )
    results = [
        ingest_probe(
            probe,
            session=session,
            recording=recording,
            side=side,
            insertion=existing.get(number),
            output=output,
            previous_output=previous,
        )
        for number, probe in probes.items()
    ]
    summary = "; ".join(r.describe() for r in results)
    if existing and all(r.unchanged for r in results):
        note = (
            f"identical clustering results: every probe's clustering is the one ingested "
            f"(same method, time ±1 s and files), nothing changed ({summary})"
        )
        _finish(output, m.SortedOutputStatus.IDENTICAL, note, ingested=False)
        log.info("%s: %s", output, note)
        return note
    recording.session = session
    recording.save(update_fields=["session", "updated_at"])
    _finish(output, m.SortedOutputStatus.INGESTED, summary, ingested=True)
    log.info("ingested %s into %s: %s", output, session, summary)
    return summary


def _finish(output: m.SortedOutput, status: str, note: str, *, ingested: bool) -> None:
    output.status = status
    output.note = note
    fields = ["status", "note", "updated_at"]
    if ingested:
        output.ingested_at = timezone.now()
        fields.append("ingested_at")
    output.save(update_fields=fields)
