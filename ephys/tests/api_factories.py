"""Builders for the ephys API and admin tests: units with known arrays and metrics, trial
alignments, and a small world with every ephys table filled (built on ``factories``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import numpy as np

from ephys import models
from ephys.tests.factories import ProbeInsertionFactory, npy, unit_with_spikes
from experiment.models import SessionTrial
from experiment.tests.factories import SessionFactory
from lab.models import BrainArea, Hemisphere, SkullReference
from lab.tests.factories import WaterRestrictionFactory, lookup

UTC = dt.UTC


def spike_train(seed: int, n: int, duration: float = 100.0) -> np.ndarray:
    """Sorted float64 spike times in [0, duration) that do not round-trip through decimals."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.random(n) * duration)


def make_unit(
    insertion: models.ProbeInsertion,
    number: int,
    spike_times: np.ndarray,
    *,
    quality: str = "good",
    method: str = "kilosort2",
    amp: float = 100.0,
    snr: float | None = 5.0,
    rate: float | None = 5.0,
    isi: float | None = 0.1,
    presence: float | None = 0.95,
    cutoff: float | None = 0.05,
    noise: str = "good",
) -> models.Unit:
    """A unit with its UnitSpikes, UnitStat, ClusterMetric, WaveformMetric, note, noise label."""
    unit = unit_with_spikes(
        spike_times,
        insertion=insertion,
        unit=number,
        quality=lookup(models.UnitQualityType, quality),
        clustering_method=lookup(models.ClusteringMethod, method),
        unit_amp=amp,
        unit_snr=snr,
        unit_posy=20.0 * number,
        waveform=npy(np.linspace(-50.0, 20.0, 82, dtype=np.float32) * number),
    )
    models.UnitStat.objects.create(unit=unit, isi_violation=isi, avg_firing_rate=rate)
    models.ClusterMetric.objects.create(
        unit=unit,
        epoch_name_quality_metrics="complete_session",
        presence_ratio=presence,
        amplitude_cutoff=cutoff,
        isolation_distance=30.0,
    )
    models.WaveformMetric.objects.create(
        unit=unit, epoch_name_waveform_metrics="complete_session", duration=0.5, halfwidth=0.2
    )
    models.UnitNote.objects.create(
        unit=unit, note_source="sort", quality=lookup(models.UnitQualityType, quality)
    )
    models.UnitNoiseLabel.objects.create(unit=unit, noise=noise)
    return unit


def add_trials(session: object, n: int) -> list[SessionTrial]:
    return SessionTrial.objects.bulk_create(
        SessionTrial(
            session=session,
            trial=k,
            trial_uid=k,
            start_time=10.0 * (k - 1),
            stop_time=10.0 * (k - 1) + 6.0,
        )
        for k in range(1, n + 1)
    )


def align_trials(
    insertion: models.ProbeInsertion,
    trials: list[SessionTrial],
    starts: np.ndarray,
    go_cues: list[float | None],
) -> list[models.InsertionTrialAlignment]:
    """InsertionTrialAlignment rows: trial k starts at ``starts[k]`` on the spike clock."""
    return models.InsertionTrialAlignment.objects.bulk_create(
        models.InsertionTrialAlignment(
            insertion=insertion,
            trial=trial,
            ephys_trial=k + 1,
            start_time=float(starts[k]),
            go_cue_time=go_cues[k],
        )
        for k, trial in enumerate(trials)
    )


def ephys_world(n_sessions: int = 8) -> SimpleNamespace:
    """Every ephys table with at least eight rows.

    Two subjects with four sessions each, one insertion per session, plus a second insertion
    in the first session that nobody has described yet (no location, note, quality, ...).
    The first insertion has eight units with known spike trains and metrics, ten trials aligned
    (trial k starts at 10 (k-1) s; go cue 4 s into each trial, none in trial 7).
    Unit i (1-based): amp 50 i µV, SNR i, rate i Hz, ISI violation i/10, presence 0.8 + i/50,
    amplitude cutoff i/100, quality good for odd i and multi for even, noise for i = 8, and
    4000 + 500 i spikes over 100 s.
    """
    bregma = SkullReference.objects.get(name="Bregma")
    alm, left = BrainArea.objects.get(name="ALM"), Hemisphere.objects.get(name="left")
    wr_a, wr_b = WaterRestrictionFactory(), WaterRestrictionFactory()
    sessions = [
        SessionFactory(
            subject=(wr_a if i < n_sessions // 2 else wr_b).subject,
            session=i % (n_sessions // 2) + 1,
            start_time=dt.datetime(2019, 3, 1 + i, 15, 0, tzinfo=UTC),
        )
        for i in range(n_sessions)
    ]
    insertions = [ProbeInsertionFactory(session=s, insertion_number=1) for s in sessions]
    bare = ProbeInsertionFactory(session=sessions[0], insertion_number=2)
    trials = {s.pk: add_trials(s, 10 if i == 0 else 2) for i, s in enumerate(sessions)}
    kilosort2 = lookup(models.ClusteringMethod, "kilosort2")
    for i, ins in enumerate(insertions):
        models.InsertionLocation.objects.create(
            insertion=ins,
            skull_reference=bregma,
            ap_location=Decimal("2500.00"),
            ml_location=Decimal("-1500.00") if i % 2 else Decimal("1500.00"),
            depth=Decimal("-3000.00") - i,
            theta=Decimal("15.00"),
            phi=Decimal("0.00"),
            beta=Decimal("0.00"),
        )
        models.RecordableBrainRegion.objects.create(insertion=ins, brain_area=alm, hemisphere=left)
        models.InsertionNote.objects.create(insertion=ins, note=f"probe {i} ok")
        quality = models.ProbeInsertionQuality.objects.create(
            insertion=ins, number_of_landmarks=i, comment=f"q{i}"
        )
        models.GoodPeriod.objects.create(quality=quality, start=10.0, end=50.0 + i)
        models.GoodTrial.objects.create(quality=quality, trial=trials[ins.session_id][0])
        models.BrainAreaDepthCriteria.objects.create(
            insertion=ins, brain_area=alm, depth_upper=0.0, depth_lower=1000.0 + i
        )
        models.ClusteringLabel.objects.create(
            insertion=ins,
            clustering_method=kilosort2,
            clustering_time=dt.datetime(2019, 4, 1, tzinfo=UTC),
            quality_control=True,
            manual_curation=bool(i % 2),
        )
        models.ArchivedClustering.objects.create(
            insertion=ins,
            clustering_method=kilosort2,
            clustering_time=dt.datetime(2019, 3, 20, tzinfo=UTC),
            quality_control=False,
            manual_curation=False,
        )
        recording = models.EphysRecording.objects.create(
            root="/data/ephys",
            relative_path=f"{i}/20190301",
            h2o=f"h{i}",
            layout="date",
            probe_glob="*",
            session=ins.session,
        )
        models.SortedOutput.objects.create(recording=recording, version=1, status="ingested")
    first = insertions[0]
    trains = {}
    units = []
    for i in range(1, 9):
        train = spike_train(i, 4000 + 500 * i)
        unit = make_unit(
            first,
            i,
            train,
            quality="good" if i % 2 else "multi",
            amp=50.0 * i,
            snr=float(i),
            rate=float(i),
            isi=i / 10,
            presence=0.8 + i / 50,
            cutoff=i / 100,
            noise="noise" if i == 8 else "good",
        )
        models.UnitComment.objects.create(unit=unit, comment=f"unit {i} looks fine")
        trains[unit.pk] = train
        units.append(unit)
    electrode = units[0].electrode
    for i in range(1, 9):
        models.ArchivedUnit.objects.create(
            clustering=first.archived_clusterings.get(),
            unit=i,
            quality=lookup(models.UnitQualityType, "good"),
            electrode=electrode,
            unit_posx=0.0,
            unit_posy=10.0 * i,
            unit_amp=80.0,
            spike_times=npy(spike_train(100 + i, 50)),
            spike_sites=npy(np.zeros(50, np.int32)),
            spike_depths=npy(np.zeros(50, np.float32)),
            waveform=npy(np.zeros(82, np.float32)),
            metrics={"unit_stat": {"avg_firing_rate": 1.0}},
        )
    starts = 10.0 * np.arange(10)
    go_cues = [None if k == 6 else 4.0 for k in range(10)]
    align_trials(first, trials[first.session_id], starts, go_cues)
    for ins in insertions[1:]:
        align_trials(ins, trials[ins.session_id], np.array([0.0, 10.0]), [4.0, 4.0])
    return SimpleNamespace(
        subject_a=wr_a.subject,
        subject_b=wr_b.subject,
        wr_a=wr_a.water_restriction_number,
        sessions=sessions,
        insertions=insertions,
        bare=bare,
        first=first,
        units=units,
        trains=trains,
        trials=trials,
        starts=starts,
        go_cues=go_cues,
    )
