"""The analyses on the embedded default (SQLite, tasks in-process), as ``scripts/run`` runs
the site: a session is ingested by the commands, people's entries added, and every step is
made, with results equal to the loop implementation and the figures drawn.

Runs in a subprocess with a clean environment (its own SQLite file), like
``mapsite/core/tests/test_embedded_default.py``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, math, sys
import numpy as np
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient
from django.contrib.auth import get_user_model

from ephys import models as em
from ephys.tests.factories import SyntheticWorld
from mapsite.pipeline import runner
from mapsite.pipeline.steps import get_step
from psth import models as pm, steps as ps
from psth.tests.helpers import (
    annotate, oracle_inputs, oracle_period_selectivity, oracle_psth, write_recording,
)

tmp = sys.argv[-1]
world = SyntheticWorld(__import__("pathlib").Path(tmp) / "behavior",
                       __import__("pathlib").Path(tmp) / "ephys", h2o="sq01")
world.setup_lab()
run = lambda *args: call_command(*args)
rec = write_recording(world, run, seed=4, n_trials=60, with_metrics=True)
insertion = rec.insertion
annotate(insertion, hemisphere="left", seed=4)
runner.queue_missing(retry_waiting=True)

out = {"engine": connection.vendor, "eager": settings.CELERY_TASK_ALWAYS_EAGER}
out["jobs"] = dict(
    __import__("mapsite.pipeline.models", fromlist=["Job"]).Job.objects.filter(
        step__in=ps.STEPS).values_list("step", "status"))
out["missing"] = {n: get_step(n).missing_keys().count() for n in ps.STEPS}
o = oracle_inputs(insertion)
psth = oracle_psth(insertion, o)
ok = True
for row in pm.UnitPsth.objects.filter(unit__insertion=insertion).select_related("trial_condition"):
    n, rates = psth.pop((row.unit_id, row.trial_condition.name))
    ok &= row.trial_count == n
    if rates is not None:
        ok &= bool(np.allclose(row.rates_array(), rates, rtol=1e-6, atol=1e-4))
out["psth_equal"] = bool(ok) and not psth
sel = oracle_period_selectivity(insertion, o)
ok = True
for row in pm.PeriodSelectivity.objects.filter(unit__insertion=insertion).select_related(
        "period", "selectivity"):
    label, ipsi, contra, p = sel.pop((row.unit_id, row.period.name))
    ok &= row.selectivity.name == label
    ok &= math.isclose(row.p_value, p, rel_tol=1e-7, abs_tol=1e-12)
out["selectivity_equal"] = bool(ok) and not sel
user = get_user_model().objects.create_user("sq", password="sq-pw-1234")
client = APIClient(HTTP_HOST="localhost")
client.force_authenticate(user)
unit = pm.UnitSelectivity.objects.filter(unit__insertion=insertion).first().unit
png = client.get(f"/api/unit-analyses/{unit.pk}/plot.png")
svg = client.get(f"/api/insertion-analyses/{insertion.pk}/plot.svg")
npz = client.get(f"/api/unit-analyses/{unit.pk}/psth.npz")
found = client.get("/api/units/", {"brain_area": "ALM", "delay_selectivity": "contra-selective"})
out["http"] = [png.status_code, png["Content-Type"], svg.status_code, svg["Content-Type"],
               npz.status_code, found.status_code]
out["contra_delay_units"] = found.json()["count"] if found.status_code == 200 else None
out["preference_contra"] = sum(1 for p in rec.preference.values() if p > 0)
print("RESULT " + json.dumps(out))
"""


def test_every_analysis_step_on_sqlite_in_process(tmp_path, clean_env, manage_py):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mapsite.settings",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        CELERY_BROKER_URL="",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        MAP_BEHAVIOR_ROOTS=f"RRig={tmp_path / 'behavior'}",
        MAP_EPHYS_ROOTS=str(tmp_path / "ephys"),
    )

    def manage(*args: str) -> str:
        result = subprocess.run(
            [*manage_py, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, f"{args}:\n{result.stdout}{result.stderr}"
        return result.stdout

    manage("migrate", "--noinput")
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.replace("sys.argv[-1]", repr(str(tmp_path))))
    out = manage("shell", "--verbosity", "0", "-c", script.read_text())
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))

    assert result["engine"] == "sqlite" and result["eager"] is True
    assert result["jobs"] == {name: "done" for name in result["jobs"]}
    assert len(result["jobs"]) == 8
    assert all(n == 0 for n in result["missing"].values()), result["missing"]
    assert result["psth_equal"] and result["selectivity_equal"]
    assert result["http"] == [200, "image/png", 200, "image/svg+xml", 200, 200]
    assert result["contra_delay_units"] >= result["preference_contra"] > 0
