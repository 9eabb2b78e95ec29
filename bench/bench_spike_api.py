"""Benchmark: spike-time retrieval over the API, binary (.npy / .npz) vs JSON.

Run from the repository root:  .venv/bin/python bench/bench_spike_api.py [--units 400]
                                   [--spikes 25000] [--repeats 5] [--server]

Uses a PostgreSQL database of its own (default ``mapsite_bench_api`` on 127.0.0.1, created and
migrated here; ``--database-url`` picks another), never the test or development data.

One probe insertion of ``--units`` units × ``--spikes`` spikes (default 400 × 25,000 = 10 M
spikes, 80 MB of float64) is written straight into ``UnitSpikes`` with the ingest's COPY writer
(kept between runs; rebuilt when its size differs). Then every unit's spike times are fetched
through the API, authenticated with a token as scripts do, in four ways:

  npy per unit     GET /api/units/{id}/spike-times/?format=npy       400 requests
  npz insertion    GET /api/insertions/{id}/spike-times/?format=npz  1 request
  JSON per unit    GET /api/units/{id}/spike-times/                  400 requests
  JSON insertion   GET /api/insertions/{id}/spike-times/             1 request (streamed)

After a warm-up run (one per server worker), each is timed until the client holds every
unit's array as NumPy (``np.load`` for binary, ``json.loads`` + ``np.array`` for JSON); the
arrays must equal the ones written, exactly, else the script exits non-zero. Reported: the
median time, MB/s of spike data (8 bytes a spike, 1 MB = 10^6 bytes), MB on the wire, and the
binary/JSON ratios. Target: >= 200 MB/s binary.

By default requests go through Django's test client (in process: the whole Django/DRF stack,
no sockets). With ``--server`` a gunicorn (2 sync workers, persistent database connections as
in production) is started on 127.0.0.1 and the requests go over HTTP with ``http.client``.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import setup_django  # noqa: E402 - bench/ is sys.path[0]

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mapsite_bench_api"
SUBJECT_ID = 999_201
PROBE_SERIAL = "BENCH-SPIKE-API"
TARGET_MB_S = 200.0


def _trains(n_units: int, n_spikes: int, seed: int = 0) -> list[np.ndarray]:
    """Sorted float64 spike trains over a 50-minute session (full-precision values)."""
    rng = np.random.default_rng(seed)
    return [np.sort(rng.random(n_spikes) * 3000.0) for _ in range(n_units)]


def build_insertion(n_units: int, n_spikes: int) -> tuple[int, dict[int, np.ndarray]]:
    """The benchmark insertion (reused when it has the right size): (insertion id, arrays)."""
    import datetime as dt

    from django.db import transaction

    from ephys import models as m
    from ephys.ingest.service import write_unit_spikes
    from experiment.models import Session
    from lab.models import (
        ElectrodeConfig,
        ElectrodeConfigElectrode,
        Person,
        Probe,
        ProbeType,
        Rig,
        Subject,
    )
    from mapsite.core.npy import npy_bytes

    trains = _trains(n_units, n_spikes)
    existing = m.ProbeInsertion.objects.filter(probe__serial=PROBE_SERIAL).first()
    if existing is not None:
        units = list(
            m.Unit.objects.filter(insertion=existing)
            .order_by("unit")
            .values_list("pk", "spike_count")
        )
        if len(units) == n_units and all(c == n_spikes for _, c in units):
            print(f"reusing insertion {existing.pk} ({n_units} units x {n_spikes} spikes)")
            return existing.pk, {pk: trains[i] for i, (pk, _) in enumerate(units)}
        existing.session.delete()

    t0 = time.perf_counter()
    with transaction.atomic():
        np3b = ProbeType.objects.get(name="neuropixels 1.0 - 3B")
        config, created = ElectrodeConfig.objects.get_or_create(
            config_hash="bench-spike-api-1-384", defaults={"probe_type": np3b, "name": "1-384"}
        )
        if created:
            ElectrodeConfigElectrode.objects.bulk_create(
                ElectrodeConfigElectrode(config=config, electrode=e)
                for e in np3b.electrodes.filter(electrode__lte=384)
            )
        sites = list(config.electrodes.order_by("electrode__electrode"))
        person, _ = Person.objects.get_or_create(username="bench")
        rig, _ = Rig.objects.get_or_create(name="BenchRig", defaults={"room": "bench"})
        subject, _ = Subject.objects.get_or_create(subject_id=SUBJECT_ID)
        session = Session.objects.create(
            subject=subject,
            session=1,
            start_time=dt.datetime(2019, 3, 1, 15, tzinfo=dt.UTC),
            username=person,
            rig=rig,
        )
        probe, _ = Probe.objects.get_or_create(serial=PROBE_SERIAL, defaults={"probe_type": np3b})
        insertion = m.ProbeInsertion.objects.create(
            session=session,
            insertion_number=1,
            probe=probe,
            electrode_config=config,
            sampling_rate=30000.0,
        )
        method = m.ClusteringMethod.objects.get(name="kilosort2")
        good = m.UnitQualityType.objects.get(name="good")
        waveform = npy_bytes(np.zeros(82, np.float32))
        units = m.Unit.objects.bulk_create(
            m.Unit(
                insertion=insertion,
                clustering_method=method,
                unit=i + 1,
                unit_uid=i + 1,
                quality=good,
                electrode=sites[i % len(sites)],
                unit_posx=0.0,
                unit_posy=float(i),
                unit_amp=100.0,
                unit_snr=5.0,
                spike_count=n_spikes,
                waveform=waveform,
            )
            for i in range(n_units)
        )
        offsets = np.arange(n_units + 1, dtype=np.int64) * n_spikes
        times = np.concatenate(trains)
        electrodes = np.repeat(
            np.array([u.electrode.electrode.electrode for u in units], np.int32), n_spikes
        )
        depths = np.repeat(np.array([u.unit_posy for u in units], np.float32), n_spikes)
        write_unit_spikes([u.pk for u in units], offsets, [times, electrodes, depths])
    print(
        f"wrote insertion {insertion.pk}: {n_units} units x {n_spikes} spikes in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return insertion.pk, {u.pk: trains[i] for i, u in enumerate(units)}


# --- Transports ----------------------------------------------------------------------------------


class InProcess:
    """Django's test client: the whole request/response stack, no sockets."""

    name = "Django test client (in process)"
    workers = 1

    def __init__(self, token: str) -> None:
        from django.test import Client

        self.client = Client(SERVER_NAME="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")

    def get(self, path: str) -> bytes:
        response = self.client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        if response.streaming:
            return b"".join(response.streaming_content)
        return response.content

    def close(self) -> None:
        pass


class OverHttp:
    """A gunicorn on 127.0.0.1 (2 sync workers), read with http.client."""

    name = "gunicorn (2 sync workers) on 127.0.0.1, http.client"
    workers = 2

    def __init__(self, token: str, database_url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # Persistent database connections, as in production (CONN_MAX_AGE=60 there).
        sep = "&" if "?" in database_url else "?"
        env = {**os.environ, "DATABASE_URL": f"{database_url}{sep}conn_max_age=60"}
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "mapsite.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                "300",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        self.headers = {"Authorization": f"Token {token}"}
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.close()
            raise RuntimeError("gunicorn did not start")

    def get(self, path: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
            return body
        finally:
            conn.close()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- The four ways -------------------------------------------------------------------------------


def npy_per_unit(get: Callable[[str], bytes], unit_ids: list[int]) -> tuple[dict, int]:
    out, wire = {}, 0
    for uid in unit_ids:
        body = get(f"/api/units/{uid}/spike-times/?format=npy")
        wire += len(body)
        out[uid] = np.load(io.BytesIO(body), allow_pickle=False)
    return out, wire


def npz_insertion(get: Callable[[str], bytes], insertion: int) -> tuple[dict, int]:
    body = get(f"/api/insertions/{insertion}/spike-times/?format=npz")
    with np.load(io.BytesIO(body), allow_pickle=False) as data:
        ids, offsets, times = data["unit_ids"], data["offsets"], data["spike_times"]
    out = {int(u): times[offsets[i] : offsets[i + 1]] for i, u in enumerate(ids)}
    return out, len(body)


def json_per_unit(get: Callable[[str], bytes], unit_ids: list[int]) -> tuple[dict, int]:
    out, wire = {}, 0
    for uid in unit_ids:
        body = get(f"/api/units/{uid}/spike-times/")
        wire += len(body)
        out[uid] = np.array(json.loads(body)["spike_times"], dtype=np.float64)
    return out, wire


def json_insertion(get: Callable[[str], bytes], insertion: int) -> tuple[dict, int]:
    body = get(f"/api/insertions/{insertion}/spike-times/")
    per_unit = json.loads(body)["spike_times"]
    out = {int(u): np.array(v, dtype=np.float64) for u, v in per_unit.items()}
    return out, len(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=400)
    ap.add_argument("--spikes", type=int, default=25_000, help="per unit")
    ap.add_argument("--repeats", type=int, default=5, help="runs of each way (median reported)")
    ap.add_argument("--server", action="store_true", help="over HTTP to a local gunicorn")
    ap.add_argument("--database-url", default=DEFAULT_DB)
    args = ap.parse_args()

    setup_django(args.database_url)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    insertion, trains = build_insertion(args.units, args.spikes)
    unit_ids = list(trains)
    user, _ = get_user_model().objects.get_or_create(username="bench-analyst")
    token, _ = Token.objects.get_or_create(user=user)
    payload_mb = sum(t.nbytes for t in trains.values()) / 1e6

    transport = OverHttp(token.key, args.database_url) if args.server else InProcess(token.key)
    ways = [
        ("npy per unit", "binary", lambda: npy_per_unit(transport.get, unit_ids)),
        ("npz insertion", "binary", lambda: npz_insertion(transport.get, insertion)),
        ("JSON per unit", "json", lambda: json_per_unit(transport.get, unit_ids)),
        ("JSON insertion", "json", lambda: json_insertion(transport.get, insertion)),
    ]
    results: dict[str, tuple[float, float]] = {}
    ok = True
    try:
        print(
            f"\n{args.units} units x {args.spikes} spikes = {payload_mb:.1f} MB of float64; "
            f"{transport.name}; median of {args.repeats}\n"
        )
        print(f"{'way':<16}{'seconds':>9}{'MB/s':>9}{'MB on wire':>12}")
        for name, _, fetch in ways:
            for _ in range(transport.workers):  # warm-up: every worker once
                fetch()
            times, got, wire = [], {}, 0
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                got, wire = fetch()
                times.append(time.perf_counter() - t0)
            same = list(got) == unit_ids and all(
                np.array_equal(got[u], trains[u]) for u in unit_ids
            )
            if not same:
                print(f"{name}: arrays differ from the ones written", file=sys.stderr)
                ok = False
            seconds = statistics.median(times)
            results[name] = (seconds, payload_mb / seconds)
            print(f"{name:<16}{seconds:>9.3f}{payload_mb / seconds:>9.0f}{wire / 1e6:>12.1f}")
    finally:
        transport.close()

    print()
    for binary, text in (("npy per unit", "JSON per unit"), ("npz insertion", "JSON insertion")):
        ratio = results[binary][1] / results[text][1]
        print(f"binary/JSON {binary} vs {text}: {ratio:.1f}x")
    best = max(results["npy per unit"][1], results["npz insertion"][1])
    verdict = "met" if best >= TARGET_MB_S else "NOT met"
    print(f"target >= {TARGET_MB_S:.0f} MB/s binary: {verdict} (best {best:.0f} MB/s)")
    print("arrays equal the ones written: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
