"""factory_boy factories for schema ``ephys`` and a builder of synthetic ingested sessions.

``SyntheticWorld`` writes a synthetic Bpod session (``experiment.ingest.synthetic``) under a
behavior root and a matching synthetic sorted session (``ephys.ingest.synthetic``) under an
ephys root, with the subject and rig they need, so that tests run the real BehaviorIngest and
EphysIngest steps and compare with the generators' ground truth.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import factory
import numpy as np

from ephys import models
from ephys.ingest.synthetic import BehaviorTrials, SyntheticSession, make_synthetic_session
from experiment.ingest.synthetic import GroundTruth, write_synthetic_session
from experiment.tests.factories import SessionFactory
from lab.models import ElectrodeConfig, ElectrodeConfigElectrode, Probe, ProbeType
from lab.tests.factories import RigFactory, WaterRestrictionFactory, lookup

NP1_3B = "neuropixels 1.0 - 3B"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array))
    return buffer.getvalue()


def electrode_config(n_electrodes: int = 384, probe_type: str = NP1_3B) -> ElectrodeConfig:
    """A config of electrodes 1..n of a probe type (created once)."""
    ptype = ProbeType.objects.get(name=probe_type)
    config, created = ElectrodeConfig.objects.get_or_create(
        config_hash=f"test-{probe_type}-{n_electrodes}",
        defaults={"probe_type": ptype, "name": f"1-{n_electrodes}"},
    )
    if created:
        ElectrodeConfigElectrode.objects.bulk_create(
            [
                ElectrodeConfigElectrode(config=config, electrode=e)
                for e in ptype.electrodes.filter(electrode__lte=n_electrodes)
            ]
        )
    return config


class ProbeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Probe
        django_get_or_create = ("serial",)

    serial = factory.Sequence(lambda n: f"1800{n:07d}")
    probe_type = factory.LazyFunction(lambda: ProbeType.objects.get(name=NP1_3B))


class ProbeInsertionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ProbeInsertion

    session = factory.SubFactory(SessionFactory)
    insertion_number = 1
    probe = factory.SubFactory(ProbeFactory)
    electrode_config = factory.LazyFunction(electrode_config)
    sampling_rate = 30000.0


class ClusteringLabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ClusteringLabel

    insertion = factory.SubFactory(ProbeInsertionFactory)
    clustering_method = factory.LazyFunction(lambda: lookup(models.ClusteringMethod, "kilosort2"))
    clustering_time = datetime(2019, 3, 4, 12, 0, tzinfo=UTC)
    quality_control = True
    manual_curation = False
    clustering_note = "qc"


class UnitFactory(factory.django.DjangoModelFactory):
    """A unit without spike arrays; ``unit_with_spikes`` adds them."""

    class Meta:
        model = models.Unit

    insertion = factory.SubFactory(ProbeInsertionFactory)
    clustering_method = factory.LazyFunction(lambda: lookup(models.ClusteringMethod, "kilosort2"))
    unit = factory.Sequence(lambda n: n + 1)
    unit_uid = factory.SelfAttribute("unit")
    quality = factory.LazyFunction(lambda: lookup(models.UnitQualityType, "good"))
    electrode = factory.LazyAttribute(lambda o: o.insertion.electrode_config.electrodes.first())
    unit_posx = 16.0
    unit_posy = 200.0
    unit_amp = 120.0
    unit_snr = 4.0
    spike_count = 0
    waveform = factory.LazyFunction(lambda: npy(np.zeros(82, np.float32)))


def unit_with_spikes(spike_times: np.ndarray | None = None, **kwargs: Any) -> models.Unit:
    """A unit and its UnitSpikes row (default: 10 spikes over 9 s)."""
    times = np.linspace(0.0, 9.0, 10) if spike_times is None else np.asarray(spike_times, float)
    unit = UnitFactory(spike_count=times.size, **kwargs)
    models.UnitSpikes.objects.create(
        unit=unit,
        spike_times=npy(times),
        spike_sites=npy(np.full(times.size, unit.electrode.electrode.electrode, np.int32)),
        spike_depths=npy(np.full(times.size, unit.unit_posy, np.float32)),
    )
    return unit


# ---- synthetic behavior + ephys sessions --------------------------------------------------------
@dataclasses.dataclass
class SyntheticWorld:
    """A subject and rig, and the roots that the tests point the settings at."""

    behavior_root: Path
    ephys_root: Path
    h2o: str = "sy01"
    rig: str = "RRig"
    subject: Any = dataclasses.field(default=None, init=False)  # set by setup_lab

    def __post_init__(self) -> None:
        self.behavior_root.mkdir(parents=True, exist_ok=True)
        self.ephys_root.mkdir(parents=True, exist_ok=True)

    def setup_lab(self) -> None:
        """The rig of the behavior root and the subject (water restriction number h2o)."""
        RigFactory(name=self.rig)
        self.subject = WaterRestrictionFactory(water_restriction_number=self.h2o).subject

    @property
    def behavior_roots(self) -> list[str]:
        return [f"{self.rig}={self.behavior_root}"]

    @property
    def ephys_roots(self) -> list[str]:
        return [str(self.ephys_root)]

    def write_behavior(self, n_trials: int = 30, seed: int = 1, **options: Any) -> GroundTruth:
        folder = self.behavior_root / self.h2o / "tw2" / "Session Data"
        return write_synthetic_session(
            folder, h2o=self.h2o, n_trials=n_trials, seed=seed, **options
        )

    @staticmethod
    def behavior_trials(truth: GroundTruth) -> BehaviorTrials:
        """The ingested behavior trials as the ephys generator wants them."""
        trials = truth.ingested
        return BehaviorTrials.from_lists(
            [t.start_time for t in trials],
            [t.go_cue_time for t in trials],
            [t.bitcode for t in trials],
            [t.trial for t in trials],
        )

    def write_ephys(
        self,
        truth: GroundTruth,
        *,
        n_units: int = 20,
        n_spikes: int = 50_000,
        n_channels: int = 64,
        seed: int = 0,
        probe_index: int = 0,
        **options: Any,
    ) -> SyntheticSession:
        """A sorted session recorded 5 s after the behavior session started."""
        options.setdefault("n_empty_labels", 2)
        return make_synthetic_session(
            self.ephys_root,
            h2o=self.h2o,
            session_datetime=truth.session_datetime_utc.replace(tzinfo=None),
            trials=self.behavior_trials(truth),
            n_units=n_units,
            n_spikes=n_spikes,
            n_channels=n_channels,
            seed=seed,
            probe_index=probe_index,
            **options,
        )


def configured_world(tmp_path: Path, settings: Any) -> SyntheticWorld:
    """A SyntheticWorld with the roots set in ``settings`` (the pytest-django fixture)."""
    world = SyntheticWorld(tmp_path / "behavior", tmp_path / "ephys")
    settings.BEHAVIOR_DATA_ROOTS = world.behavior_roots
    settings.EPHYS_DATA_ROOTS = world.ephys_roots
    settings.EPHYS_SCAN_SETTLE_SECONDS = 0
    world.setup_lab()
    return world


def command_runner(capture: Any) -> Any:
    """``run("ingest_ephys", ...)``: a command whose queued jobs run in-process on commit.

    ``capture`` is pytest-django's ``django_capture_on_commit_callbacks`` fixture.
    """
    from django.core.management import call_command

    def run(*args: str) -> str:
        out = io.StringIO()
        with capture(execute=True):
            call_command(*args, stdout=out, stderr=out)
        return out.getvalue()

    return run
