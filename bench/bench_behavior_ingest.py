"""Benchmark: behavior ingest of a 1,000-trial Bpod file vs writing the same rows one by one.

Run from the repository root:  .venv/bin/python bench/bench_behavior_ingest.py [--trials 1000]

Uses a PostgreSQL database of its own (default ``mapsite_bench_behavior`` on 127.0.0.1, created
and migrated here; ``--database-url`` picks another), never the test or development data.

One synthetic delay-response session (default 1,000 trials, early-delay photostim on some
trials, a few skipped trials, the 33 bitcode states and per-trial GUI metadata of the real rig
files) is written once. Then, alternating, ``--repeats`` times each:

  service     parse the file + ``experiment.ingest.service.write_session`` (bulk inserts),
              in one transaction, committed
  row by row  parse the file + the same rows written with ``Model.objects.create`` per row,
              in one transaction, committed

Each run's session is deleted afterwards (not timed). Both writers must produce identical
rows (compared after each first run), else the script exits non-zero. Reported: median wall
time of each stage, the parse alone, and the ratios; target: service < 2 s and >= 3x faster.
CPU time is that of this Python process only (PostgreSQL's own work runs in the server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import bench_subject, setup_django  # noqa: E402 - bench/ is sys.path[0]

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mapsite_bench_behavior"


def write_row_by_row(parsed: Any, *, subject: Any, rig: Any, username: Any) -> Any:
    """The baseline: exactly the rows of ``service.write_session``, one ``create`` per row.

    Lookups are resolved once up front (as the service does), so the difference measured is
    the per-row INSERT round trips, not lookup queries.
    """
    from django.db.models import Max

    from experiment import models as m
    from lab.models import BrainArea, PhotostimDevice, SkullReference

    trials = parsed.trials
    protocols = {
        (p.task.name, p.protocol): p for p in m.TaskProtocol.objects.select_related("task")
    }
    by_name = {
        model: {row.name: row for row in model.objects.all()}
        for model in (
            m.TrialInstruction,
            m.Outcome,
            m.EarlyLick,
            m.TrialNoteType,
            m.TrialEventType,
            m.ActionEventType,
            PhotostimDevice,
            SkullReference,
            BrainArea,
        )
    }
    number = (m.Session.objects.filter(subject=subject).aggregate(n=Max("session"))["n"] or 0) + 1
    session = m.Session.objects.create(
        subject=subject,
        session=number,
        start_time=parsed.session_datetime_utc,
        username=username,
        rig=rig,
    )
    for key in sorted({(t.task, t.task_protocol) for t in trials}):
        m.SessionTask.objects.create(session=session, task_protocol=protocols[key])
    stims = {}
    for p in parsed.photostims:
        stims[p.photo_stim] = m.Photostim.objects.create(
            session=session,
            photo_stim=p.photo_stim,
            device=by_name[PhotostimDevice][p.photostim_device],
            duration=p.duration,
        )
        for loc in p.locations:
            m.PhotostimLocation.objects.create(
                photostim=stims[p.photo_stim],
                skull_reference=by_name[SkullReference][loc.skull_reference],
                ap_location=round(loc.ap_location, 2),
                ml_location=round(loc.ml_location, 2),
                depth=round(loc.depth, 2),
                theta=round(loc.theta, 2),
                phi=round(loc.phi, 2),
                brain_area=by_name[BrainArea][loc.brain_area],
            )
    event_id = action_id = photostim_event_id = 0
    for t in trials:
        st = m.SessionTrial.objects.create(
            session=session,
            trial=t.trial,
            trial_uid=t.trial_uid,
            start_time=round(t.start_time, 4),
            stop_time=round(t.stop_time, 4),
        )
        bt = m.BehaviorTrial.objects.create(
            trial=st,
            task_protocol=protocols[(t.task, t.task_protocol)],
            instruction=by_name[m.TrialInstruction][t.instruction],
            early_lick=by_name[m.EarlyLick][t.early_lick],
            outcome=by_name[m.Outcome][t.outcome],
            auto_water=t.auto_water,
            free_water=t.free_water,
        )
        for kind, value in t.notes.items():
            m.TrialNote.objects.create(
                trial=st, note_type=by_name[m.TrialNoteType][kind], note=str(value)[:255]
            )
        for e in t.events:
            event_id += 1
            m.TrialEvent.objects.create(
                trial=bt,
                trial_event_id=event_id,
                event_type=by_name[m.TrialEventType][e.event_type],
                trial_event_time=round(e.time, 4),
                duration=round(max(e.duration, 0.0), 4),
            )
        for a in t.actions:
            action_id += 1
            m.ActionEvent.objects.create(
                trial=bt,
                action_event_id=action_id,
                action_type=by_name[m.ActionEventType][a.action_type],
                action_event_time=round(a.time, 4),
            )
        if t.photostim_events:
            pt = m.PhotostimTrial.objects.create(trial=st)
            for e in t.photostim_events:
                photostim_event_id += 1
                m.PhotostimEvent.objects.create(
                    photostim_trial=pt,
                    photostim_event_id=photostim_event_id,
                    photostim=stims[e.photo_stim],
                    photostim_event_time=round(e.time, 3),
                    power=round(e.power, 3),
                )
    return session


def delete_session(session: Any) -> None:
    """Delete a session and every row below it (cascade)."""
    from experiment import models as m

    m.Session.objects.filter(pk=session.pk).delete()


def snapshot_rows(session: Any) -> dict[str, list[tuple]]:
    """Every row written for a session, as comparable tuples (no surrogate keys)."""
    from experiment import models as m

    s = session
    return {
        "session": [(s.session, s.start_time, s.rig_id, s.username_id)],
        "tasks": sorted(s.tasks.values_list("task_protocol_id")),
        "trials": list(
            m.SessionTrial.objects.filter(session=s)
            .order_by("trial")
            .values_list(
                "trial",
                "trial_uid",
                "start_time",
                "stop_time",
                "behavior__task_protocol_id",
                "behavior__instruction_id",
                "behavior__early_lick_id",
                "behavior__outcome_id",
                "behavior__auto_water",
                "behavior__free_water",
            )
        ),
        "notes": sorted(
            m.TrialNote.objects.filter(trial__session=s).values_list(
                "trial__trial", "note_type_id", "note"
            )
        ),
        "events": sorted(
            m.TrialEvent.objects.filter(trial__trial__session=s).values_list(
                "trial__trial__trial",
                "trial_event_id",
                "event_type_id",
                "trial_event_time",
                "duration",
            )
        ),
        "actions": sorted(
            m.ActionEvent.objects.filter(trial__trial__session=s).values_list(
                "trial__trial__trial", "action_event_id", "action_type_id", "action_event_time"
            )
        ),
        "photostims": sorted(
            m.Photostim.objects.filter(session=s).values_list("photo_stim", "device_id", "duration")
        ),
        "locations": sorted(
            m.PhotostimLocation.objects.filter(photostim__session=s).values_list(
                "photostim__photo_stim",
                "skull_reference_id",
                "ap_location",
                "ml_location",
                "depth",
                "theta",
                "phi",
                "brain_area_id",
            )
        ),
        "photostim_events": sorted(
            m.PhotostimEvent.objects.filter(photostim_trial__trial__session=s).values_list(
                "photostim_trial__trial__trial",
                "photostim_event_id",
                "photostim__photo_stim",
                "photostim_event_time",
                "power",
            )
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each writer (median shown)")
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    ap.add_argument(
        "--simple", action="store_true", help="no bitcode states / GUI metadata (smaller file)"
    )
    args = ap.parse_args()

    setup_django(args.database_url)
    from django.db import connection, transaction

    from experiment import models as m
    from experiment.ingest.bpod import parse_session
    from experiment.ingest.service import write_session
    from experiment.ingest.synthetic import write_synthetic_session

    subject, rig, person = bench_subject(999001, "bn01")
    for leftover in m.Session.objects.filter(subject=subject):  # of an interrupted run
        delete_session(leftover)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truth = write_synthetic_session(
            tmp,
            h2o="bn01",
            n_trials=args.trials,
            seed=args.seed,
            photostim=True,
            photostim_rate=0.25,
            skip_rate=0.02,
            free_water_rate=0.05,
            bitcode_states=not args.simple,
            realistic_settings=not args.simple,
        )
        size = truth.path.stat().st_size
        print(
            f"synthetic file: {args.trials} trials, {size / 1e6:.1f} MB, written in "
            f"{time.perf_counter() - t0:.1f} s; database {connection.settings_dict['NAME']} "
            f"({connection.vendor})"
        )

        def run(writer: Any) -> tuple[float, float, float, Any]:
            t0, c0 = time.perf_counter(), time.process_time()
            parsed = parse_session(truth.path)
            t_parse = time.perf_counter() - t0
            with transaction.atomic():
                session = writer(parsed, subject=subject, rig=rig, username=person)
            return time.perf_counter() - t0, time.process_time() - c0, t_parse, session

        results: dict[str, list[tuple[float, float, float]]] = {"service": [], "row by row": []}
        writers = {"service": write_session, "row by row": write_row_by_row}
        rows: dict[str, dict] = {}
        counts: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, writer in writers.items():
                wall, cpu, t_parse, session = run(writer)
                results[name].append((wall, cpu, t_parse))
                if name not in rows:
                    rows[name] = snapshot_rows(session)
                    counts = {k: len(v) for k, v in rows[name].items()}
                delete_session(session)

    same = rows["service"] == rows["row by row"]
    total_rows = sum(counts.values())
    print(
        "rows per session: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + f" (total {total_rows}, plus {counts['trials']} BehaviorTrial)"
    )

    def med(name: str, k: int) -> float:
        return statistics.median(r[k] for r in results[name])

    parse = statistics.median(r[2] for rs in results.values() for r in rs)
    service_wall, baseline_wall = med("service", 0), med("row by row", 0)
    service_cpu, baseline_cpu = med("service", 1), med("row by row", 1)
    write_service, write_baseline = (
        service_wall - med("service", 2),
        baseline_wall - med("row by row", 2),
    )
    print()
    print(f"{'stage (median of ' + str(args.repeats) + ')':<34}{'wall s':>9}{'CPU s':>9}")
    print(f"{'parse only':<34}{parse:>9.3f}")
    print(f"{'service: parse + bulk write':<34}{service_wall:>9.3f}{service_cpu:>9.3f}")
    print(f"{'baseline: parse + row-by-row':<34}{baseline_wall:>9.3f}{baseline_cpu:>9.3f}")
    print(f"{'  write only, service':<34}{write_service:>9.3f}")
    print(f"{'  write only, row by row':<34}{write_baseline:>9.3f}")
    print()
    ratio = baseline_wall / service_wall
    print(f"ratio (parse + write), row by row / service: {ratio:.1f}x")
    print(f"ratio (write only),    row by row / service: {write_baseline / write_service:.1f}x")
    print(f"identical rows from both writers: {same}")
    met = service_wall < 2.0 and ratio >= 3.0
    print(f"target (< 2 s and >= 3x): {'met' if met else 'NOT met'}")
    load = os.getloadavg()[0]
    print(f"host load average {load:.1f} on {os.cpu_count()} CPU(s) (wall times grow with it)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
