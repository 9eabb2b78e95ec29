"""Benchmark: EphysIngest of a 400-unit, 10 M-spike, 384-channel, 500-trial session vs the floor.

Run from the repository root:  .venv/bin/python bench/bench_ephys_ingest.py [--repeats 3]

Uses a PostgreSQL database of its own (default ``mapsite_bench_ephys`` on 127.0.0.1, created
and migrated here; ``--database-url`` picks another), never the test or development data.

Setup (not timed): a synthetic 500-trial Bpod session is written and ingested (BehaviorIngest),
then a matching synthetic Kilosort/phy session (default 400 units, 10 M spikes, 384 channels,
NP1.0 3B, no metrics.csv: amplitudes from templates) is written under an ephys root and found
by the scan. Then, alternating, ``--repeats`` times each:

  ingest  the EphysIngest job, made by ``runner.run_job`` in a fresh Python process: the
          fingerprint check, ``.ap.meta``, the phy loader, bitcode alignment against the
          behavior trials, then units + spike times/sites/depths (COPY BINARY) + alignment,
          committed (the downstream analysis steps are not run). The peak RSS (VmHWM) of
          that process above its RSS just before the job is the ingest's peak memory.
  floor   ``np.load`` of spike_times.npy and spike_clusters.npy, seconds from the first trial
          start, stable argsort by cluster, split, and ``COPY ... (FORMAT BINARY)`` of the
          per-unit float64 ``.npy`` bytes (the bytes the ingest stores as spike_times) into a
          plain bytea table with ``STORAGE EXTERNAL``, committed.

The ingested spike times of some units are compared with the generator's ground truth (exit
non-zero on a difference). Reported: medians, the ratio ingest / floor (target <= 2) and the
ingest's peak memory over the size of the input arrays (every ``.npy`` of the phy folder;
target <= 3).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import bench_subject, setup_django  # noqa: E402 - bench/ is sys.path[0]

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mapsite_bench_ephys"
H2O = "be01"
FLOOR_TABLE = "bench_floor_unitspikes"


def _status_kb(key: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc (Linux).

    Not ``getrusage().ru_maxrss``: Linux carries that over an exec from the parent, so a child
    started by a big parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


# ---- the child process: one ingest ---------------------------------------------------------------
def child_ingest(args: argparse.Namespace) -> int:
    os.environ["MAP_EPHYS_ROOTS"] = args.ephys_root
    setup_django(args.database_url, migrate=False)
    import numpy as np  # noqa: F401 - imported before the baseline is taken

    from ephys.ingest import service  # noqa: F401
    from mapsite.pipeline import runner

    # Only EphysIngest is measured: the steps downstream of it (psth) are not queued here.
    runner.queue_downstream = lambda step_name, key_id: None

    # reset the peak to the current RSS (Linux >= 4.0), so that imports do not count
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    rss_before = _status_kb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    status = runner.run_job(args.job_id)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_kb("VmHWM")
    print(
        json.dumps(
            {
                "status": status,
                "wall": wall,
                "cpu": cpu,
                "rss_before_kb": rss_before,
                "peak_kb": peak,
            }
        )
    )
    return 0


# ---- the parent ---------------------------------------------------------------------------------
def _clean() -> None:
    """Remove what earlier runs of this benchmark left (its subject's sessions and files)."""
    from ephys.models import EphysRecording
    from experiment.models import BehaviorFile, Session
    from mapsite.pipeline.models import Job

    Session.objects.filter(subject__water_restriction__water_restriction_number=H2O).delete()
    EphysRecording.objects.filter(h2o=H2O).delete()
    BehaviorFile.objects.filter(file_name__startswith=f"{H2O}_").delete()
    Job.objects.filter(step__in=["EphysIngest", "BehaviorIngest"]).delete()


def _reset_ingest(output_id: int) -> int:
    """Forget the last ingest (not timed): delete its rows and job, queue a new job."""
    from django.db import connection

    from ephys.models import ProbeInsertion, SortedOutput, SortedOutputStatus
    from mapsite.pipeline import runner
    from mapsite.pipeline.models import Job

    ProbeInsertion.objects.filter(
        session__subject__water_restriction__water_restriction_number=H2O
    ).delete()
    output = SortedOutput.objects.select_related("recording").get(pk=output_id)
    output.status, output.note, output.ingested_at = SortedOutputStatus.FOUND, "", None
    output.save()
    output.recording.session = None
    output.recording.save()
    Job.objects.filter(step="EphysIngest").delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ephys_unitspikes")  # outside a transaction (autocommit)
    runner.create_jobs(runner.get_step("EphysIngest"), [output_id])
    return Job.objects.get(step="EphysIngest", key_id=output_id).pk


def floor(ks_dir: Path, first_trial_start: float, fs: float, database_url: str) -> float:
    """The floor (see the module docstring); returns wall seconds."""
    import numpy as np
    import psycopg

    from mapsite.core.npy import npy_header

    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {FLOOR_TABLE}")
        conn.commit()
        t0 = time.perf_counter()
        times = np.load(ks_dir / "spike_times.npy").reshape(-1)
        clusters = np.load(ks_dir / "spike_clusters.npy").reshape(-1)
        seconds = (times.astype(np.float64) - first_trial_start) / fs
        order = np.argsort(clusters, kind="stable")
        grouped_ids = clusters[order]
        grouped = seconds[order]
        cuts = np.flatnonzero(np.diff(grouped_ids)) + 1
        units = grouped_ids[np.concatenate([[0], cuts])]
        with (
            conn.cursor() as cur,
            cur.copy(
                f"COPY {FLOOR_TABLE} (unit_id, spike_times) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["int4", "bytea"])
            for unit, part in zip(units, np.split(grouped, cuts), strict=True):
                copy.write_row((int(unit), npy_header(part.dtype, part.size) + part.tobytes()))
        conn.commit()
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=400)
    ap.add_argument("--spikes", type=int, default=10_000_000)
    ap.add_argument("--channels", type=int, default=384)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--database-url", default=DEFAULT_DB)
    ap.add_argument("--child-ingest", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--job-id", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ephys-root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_ingest:
        return child_ingest(args)

    setup_django(args.database_url, migrate=True)
    import numpy as np
    from django.conf import settings
    from django.db import connection, transaction

    from ephys.ingest import db_discovery
    from ephys.ingest.synthetic import BehaviorTrials, make_synthetic_session
    from ephys.models import SortedOutput, Unit
    from experiment.ingest import discovery as behavior_discovery
    from experiment.ingest import service as behavior_service
    from experiment.ingest.synthetic import write_synthetic_session

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (unit_id integer, spike_times bytea)"
        )
        cursor.execute(f"ALTER TABLE {FLOOR_TABLE} ALTER COLUMN spike_times SET STORAGE EXTERNAL")
    bench_subject(999101, H2O)
    _clean()

    with tempfile.TemporaryDirectory(prefix="bench_ephys_") as tmp:
        behavior_root, ephys_root = Path(tmp) / "behavior", Path(tmp) / "ephys"
        settings.BEHAVIOR_DATA_ROOTS = [f"RRig={behavior_root}"]
        settings.EPHYS_DATA_ROOTS = [str(ephys_root)]

        t0 = time.perf_counter()
        truth = write_synthetic_session(
            behavior_root / H2O / "tw2" / "Session Data", h2o=H2O, n_trials=args.trials, seed=3
        )
        behavior_file = behavior_discovery.register_file(truth.path)
        with transaction.atomic():
            behavior_service.ingest_behavior_file(behavior_file)
        ingested = truth.ingested
        trials = BehaviorTrials.from_lists(
            [t.start_time for t in ingested],
            [t.go_cue_time for t in ingested],
            [t.bitcode for t in ingested],
            [t.trial for t in ingested],
        )
        s = make_synthetic_session(
            ephys_root,
            h2o=H2O,
            session_datetime=truth.session_datetime_utc.replace(tzinfo=None),
            trials=trials,
            n_units=args.units,
            n_spikes=args.spikes,
            n_channels=args.channels,
            seed=0,
        )
        report = db_discovery.scan_ephys_roots(settle_seconds=0)
        output = SortedOutput.objects.get(recording__h2o=H2O, superseded_at__isnull=True)
        input_bytes = sum(p.stat().st_size for p in s.ks_dir.glob("*.npy"))
        floor_bytes = sum(
            (s.ks_dir / n).stat().st_size for n in ("spike_times.npy", "spike_clusters.npy")
        )
        print(
            f"setup: {len(ingested)} behavior trials ingested, {s.unit_ids.size} units / "
            f"{s.spike_samples.size:,} spikes / {args.channels} channels written, scan: {report} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        print(f"input arrays (phy folder .npy files): {input_bytes / 1e6:.0f} MB")

        ingest_runs, floor_runs, memory = [], [], []
        for k in range(args.repeats):
            floor_runs.append(
                floor(s.ks_dir, s.first_trial_start, s.sampling_rate, args.database_url)
            )
            job_id = _reset_ingest(output.pk)
            connection.close()
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child-ingest",
                    "--job-id",
                    str(job_id),
                    "--ephys-root",
                    str(ephys_root),
                    "--database-url",
                    args.database_url,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if child.returncode != 0:
                print(child.stdout, child.stderr)
                return 1
            result = json.loads(child.stdout.strip().splitlines()[-1])
            if result["status"] != "done":
                from mapsite.pipeline.models import Job

                job = Job.objects.get(pk=job_id)
                print(f"ingest failed: {job.message}\n{job.traceback}")
                return 1
            ingest_runs.append(result["wall"])
            memory.append((result["peak_kb"] - result["rss_before_kb"]) * 1024)
            print(
                f"run {k + 1}: floor {floor_runs[-1]:.2f} s, ingest {result['wall']:.2f} s "
                f"(CPU {result['cpu']:.2f} s), ingest peak memory +{memory[-1] / 1e6:.0f} MB "
                f"(RSS {result['rss_before_kb'] / 1e3:.0f} -> {result['peak_kb'] / 1e3:.0f} MB)"
            )

        # correctness: spike times read back equal the generator's ground truth
        for unit in Unit.objects.filter(
            insertion__session__subject__water_restriction__water_restriction_number=H2O,
            unit__in=s.unit_ids[[0, len(s.unit_ids) // 2, -1]].tolist(),
        ).select_related("spikes"):
            got = np.load(io.BytesIO(bytes(unit.spikes.spike_times)))
            if not np.array_equal(got, s.unit_spike_times(unit.unit)):
                print(f"MISMATCH: unit {unit.unit} spike times differ from the ground truth")
                return 1
        _clean()

    t_ingest, t_floor = statistics.median(ingest_runs), statistics.median(floor_runs)
    peak = max(memory)
    print()
    print(f"ingest (median of {args.repeats}): {t_ingest:.2f} s")
    print(f"floor  (median of {args.repeats}): {t_floor:.2f} s")
    print(f"ratio ingest / floor: {t_ingest / t_floor:.2f}x (target <= 2x)")
    print(
        f"ingest peak memory: {peak / 1e6:.0f} MB = {peak / input_bytes:.2f}x the input arrays "
        f"({input_bytes / 1e6:.0f} MB; target <= 3x)"
    )
    print(
        f"  (vs spike_times.npy + spike_clusters.npy alone, {floor_bytes / 1e6:.0f} MB: "
        f"{peak / floor_bytes:.2f}x)"
    )
    print("spike times read back == ground truth: yes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
