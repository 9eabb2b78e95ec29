"""A fleet on a running system: two Celery worker processes and a beat on the real Redis
populate a whole session (two probes) - ingest and every analysis - without anyone acting.

The workers and the beat are ``celery -A mapsite worker|beat`` subprocesses (the settings of
production: PostgreSQL, a broker, tasks not eager) on this test's database, which therefore
commits for real (``transaction=True``); the Redis database (``PSTH_FLEET_BROKER_URL``,
default ``redis://127.0.0.1:6379/7``) is emptied before and after. The test only drops the
files into the data roots, types in what people type in (locations, regions, depth criteria,
quality) once the insertions exist, and re-sends every job a second time (a duplicated
message must not make a key twice). Then: every key made exactly once (one job row per key,
done at its first attempt), result rows unique and none missing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from celery import Celery
from django.db import connection, transaction

from ephys import models as em
from ephys.steps import EPHYS_INGEST
from ephys.tests.factories import SyntheticWorld
from mapsite.celery import app as celery_app
from mapsite.core.testing import live_celery_app, wait_for
from mapsite.pipeline import tasks
from mapsite.pipeline.models import Job, JobStatus
from psth import models as pm
from psth import steps as ps
from psth.synthetic import (
    FS_WIDTH_SAMPLES,
    PYR_WIDTH_SAMPLES,
    add_selective_units,
    set_waveform_widths,
)

from .helpers import analysed, annotate, oracle_inputs, oracle_psth

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("PSTH_FLEET_BROKER_URL", "redis://127.0.0.1:6379/7")
QUEUES = "ingest,compute,transfer"
N_PROBES = 2


@pytest.fixture
def live_app(settings, hard_timeout) -> Iterator[Celery]:
    """This process sends to the fleet's broker for real (what a web process does)."""
    hard_timeout(300)
    with live_celery_app(BROKER_URL, settings) as app:
        yield app


class Fleet:
    """Two worker processes and a beat process; their logs are kept for a failing test."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env = tmp_path, env
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []
        host = socket.gethostname()
        self.names = [f"fleet{i}-{os.getpid()}@{host}" for i in (1, 2)]

    def start(self) -> None:
        celery = [sys.executable, "-m", "celery", "-A", "mapsite"]
        for name in self.names:
            self._spawn(
                name,
                [*celery, "worker", "-n", name, "-Q", QUEUES, "-P", "threads", "-c", "2",
                 "--without-gossip", "--without-mingle", "-l", "WARNING"],
            )  # fmt: skip
        self._spawn(
            "beat",
            [*celery, "beat", "-s", str(self.tmp_path / "beat-schedule"), "-l", "WARNING"],
        )

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = self.tmp_path / f"{name.split('@')[0]}.log"
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )
        self.procs.append((name, proc, log))

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            replies = celery_app.control.ping(timeout=1.0)
            answered = {name for reply in replies for name in reply}
            if set(self.names) <= answered:
                return
        pytest.fail(f"the workers did not answer within {timeout} s\n{self.logs()}")

    def check_alive(self) -> None:
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, _, log in self.procs)

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        """``wait_for`` that fails at once if a process died, and shows the fleet's logs."""
        return wait_for(
            condition, timeout, what, interval=0.2, check=self.check_alive, details=self.logs
        )

    def stop(self) -> None:
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, _ in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def backdate(folder: Path, seconds: float = 600) -> None:
    """Files copied a while ago: the discovery's settle time is over."""
    t = time.time() - seconds
    for path in folder.rglob("*"):
        os.utime(path, (t, t))


def expected_keys() -> set[tuple[str, int]]:
    """(step, insertion) of every key the analysis steps should make, by their key sources."""
    from mapsite.pipeline.steps import get_step

    return {
        (name, pk)
        for name in ps.STEPS
        for pk in get_step(name).key_source().values_list("pk", flat=True)
    }


def analyses_done() -> bool:
    if em.ProbeInsertion.objects.count() < N_PROBES:
        return False
    wanted = expected_keys()
    done = set(
        Job.objects.filter(step__in=ps.STEPS, status=JobStatus.DONE).values_list("step", "key_id")
    )
    return len(wanted) >= 7 * N_PROBES and wanted <= done


def test_two_workers_and_beat_populate_a_whole_session(live_app, tmp_path, clean_env):
    world = SyntheticWorld(tmp_path / "behavior", tmp_path / "ephys", h2o="sy09")
    world.setup_lab()
    db = connection.settings_dict
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mapsite.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=BROKER_URL,
        CELERY_RESULT_BACKEND=BROKER_URL,
        MAP_BEHAVIOR_ROOTS=",".join(world.behavior_roots),
        MAP_EPHYS_ROOTS=",".join(world.ephys_roots),
        PIPELINE_SWEEP_SECONDS="2",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    fleet = Fleet(tmp_path, env)
    try:
        fleet.start()
        fleet.wait_ready()

        # A rig writes a behavior session; the sorted probes land on the ephys share.
        truth = world.write_behavior(n_trials=60, seed=21, photostim=True, photostim_rate=0.25)
        answer: dict[int, dict[int, int]] = {}
        for probe in range(N_PROBES):
            s = world.write_ephys(
                truth, n_units=10, n_spikes=25_000, seed=30 + probe, probe_index=probe,
                with_metrics=probe == 0,
            )  # fmt: skip
            ids = s.unit_ids.tolist()
            answer[probe + 1] = {ids[0]: 1, ids[1]: -1, ids[2]: 1}
            add_selective_units(s, truth, answer[probe + 1], hemisphere="left", seed=probe)
            set_waveform_widths(
                s, {u: FS_WIDTH_SAMPLES if k % 2 else PYR_WIDTH_SAMPLES for k, u in enumerate(ids)}
            )
        backdate(tmp_path)
        t0 = time.perf_counter()

        # Beat sweeps every 2 s: the files are found and ingested, the analyses follow.
        ingested = Job.objects.filter(step=EPHYS_INGEST, status=JobStatus.DONE)
        fleet.wait_for(ingested.exists, 120, "the ephys ingest")
        print(f"session ingested {time.perf_counter() - t0:.1f} s after the files landed")
        insertions = list(em.ProbeInsertion.objects.order_by("insertion_number"))
        assert len(insertions) == N_PROBES

        # What people type in, one transaction per insertion (as an admin page saves it)
        for insertion in insertions:
            with transaction.atomic():
                annotate(insertion, hemisphere="left", seed=insertion.insertion_number)
        # every message delivered twice: a duplicate must not make a key again
        for job_id in Job.objects.values_list("pk", flat=True):
            tasks.run_job.apply_async(args=[job_id], queue="compute")

        waited = fleet.wait_for(analyses_done, 180, "every analysis of both insertions")
        print(f"all analyses done {time.perf_counter() - t0:.1f} s after the files landed")
        time.sleep(3)  # a few more sweeps and the duplicates: nothing may change
        worker_hosts = set(Job.objects.values_list("worker_host", flat=True))
    finally:
        fleet.stop()
    print(f"(waited {waited:.1f} s for the analyses)")

    # every key made exactly once, by the fleet
    jobs = list(Job.objects.filter(step__in=ps.STEPS))
    keys = [(j.step, j.key_id) for j in jobs]
    assert len(keys) == len(set(keys))
    # all 8 steps of the probe with metrics.csv, all but UnitPassingCriteria of the other
    assert set(keys) == expected_keys() and len(keys) == 2 * len(ps.STEPS) - 1
    for job in jobs:
        assert (job.status, job.attempts) == (JobStatus.DONE, 1), (job.step, job.message)
        assert job.worker_host in fleet.names
    assert worker_hosts <= set(fleet.names)
    assert worker_hosts == set(fleet.names), "both workers made keys"
    for step in ps.STEPS:
        from mapsite.pipeline.steps import get_step

        assert not get_step(step).missing_keys().exists(), step

    # result rows: unique (constraints) and none missing
    for insertion in insertions:
        units = analysed(insertion)
        everyone = list(em.Unit.objects.filter(insertion=insertion))
        n = len(units)
        by = {"unit__insertion": insertion}
        assert pm.UnitPsth.objects.filter(**by).count() == 17 * n
        assert pm.PeriodSelectivity.objects.filter(**by).count() == 3 * n
        assert pm.UnitSelectivity.objects.filter(**by).count() == n
        assert pm.UnitCellType.objects.filter(**by).count() == n
        assert pm.DriftMetric.objects.filter(**by).count() == len(everyone)
        assert pm.UnitCoarseBrainLocation.objects.filter(**by).count() == len(everyone)
        assert em.UnitStat.objects.filter(**by).count() == len(everyone)
        with_metrics = em.Unit.objects.filter(insertion=insertion, cluster_metrics__isnull=False)
        assert pm.UnitPassingCriteria.objects.filter(**by).count() == with_metrics.count()
        # the built-in answer
        for unit in units:
            pref = answer[insertion.insertion_number].get(unit.unit)
            if pref:
                delay = pm.PeriodSelectivity.objects.get(unit=unit, period__name="delay")
                want = "contra-selective" if pref > 0 else "ipsi-selective"
                assert delay.selectivity.name == want
    # and the numbers of one insertion equal the loop implementation
    insertion = insertions[0]
    expected = oracle_psth(insertion, oracle_inputs(insertion))
    for row in pm.UnitPsth.objects.filter(unit__insertion=insertion).select_related(
        "trial_condition"
    ):
        count, rates = expected[(row.unit_id, row.trial_condition.name)]
        assert row.trial_count == count
        if rates is not None:
            np.testing.assert_allclose(row.rates_array(), rates, rtol=1e-6, atol=1e-4)
    logging.getLogger(__name__).info("fleet workers: %s", fleet.names)
