"""Per-session behavior summary: SQL aggregate vs a plain recount, in the API list and detail."""

import random
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from experiment import models
from experiment.analysis import behavior, queries
from experiment.tests.factories import (
    BehaviorTrialFactory,
    PhotostimTrialFactory,
    SessionFactory,
    SessionTrialFactory,
)
from mapsite.core.tests.api_checks import list_queries, new_user, rows, token_client

OUTCOMES = ["hit", "miss", "ignore", "N/A"]
INSTRUCTIONS = ["left", "right", "middle", "none"]
EARLY = ["early", "early, presample only", "no early", "no early", "no early"]


def make_trials(session: models.Session, n: int, seed: int, *, bare: tuple = ()) -> None:
    """``n`` trials with pseudo-random labels; the trial numbers in ``bare`` get no behavior
    labels (a trial the ingest could not label), every 4th labelled trial is a photostim trial."""
    rng = random.Random(seed)
    outcomes = {o.name: o for o in models.Outcome.objects.all()}
    instructions = {i.name: i for i in models.TrialInstruction.objects.all()}
    early_licks = {e.name: e for e in models.EarlyLick.objects.all()}
    protocol = models.TaskProtocol.objects.get(task__name="audio delay", protocol=1)
    for number in range(1, n + 1):
        trial = SessionTrialFactory(session=session, trial=number)
        if number in bare:
            continue
        BehaviorTrialFactory(
            trial=trial,
            task_protocol=protocol,
            outcome=outcomes[rng.choice(OUTCOMES[:3] * 3 + ["N/A"])],
            instruction=instructions[rng.choice(INSTRUCTIONS[:2] * 4 + ["none"])],
            early_lick=early_licks[rng.choice(EARLY)],
            auto_water=rng.random() < 0.2,
            free_water=rng.random() < 0.15,
        )
        if number % 4 == 0:
            PhotostimTrialFactory(trial=trial)


def recount(session: models.Session) -> dict[str, Any]:
    """The summary by the definitions, trial by trial."""
    trials = list(models.SessionTrial.objects.filter(session=session))
    labelled = [t.behavior for t in trials if hasattr(t, "behavior")]
    outcomes = {o: 0 for o in OUTCOMES}
    instructions = {i: 0 for i in INSTRUCTIONS}
    hits = {i: 0 for i in INSTRUCTIONS}
    misses = {i: 0 for i in INSTRUCTIONS}
    early = auto = free = 0
    for b in labelled:
        outcomes[b.outcome.name] += 1
        instructions[b.instruction.name] += 1
        early += b.early_lick.name != "no early"
        auto += b.auto_water
        free += b.free_water
        if not b.free_water and b.outcome.name == "hit":
            hits[b.instruction.name] += 1
        if not b.free_water and b.outcome.name == "miss":
            misses[b.instruction.name] += 1
    all_hits, all_misses = sum(hits.values()), sum(misses.values())
    return {
        "trials": len(trials),
        "behavior_trials": len(labelled),
        "outcomes": outcomes,
        "instructions": instructions,
        "early_lick": early,
        "early_lick_rate": early / len(labelled) if labelled else None,
        "auto_water": auto,
        "free_water": free,
        "photostim": sum(hasattr(t, "photostim_trial") for t in trials),
        "performance_trials": all_hits + all_misses,
        "performance": all_hits / (all_hits + all_misses) if all_hits + all_misses else None,
        "performance_by_instruction": {
            i: hits[i] / (hits[i] + misses[i]) if hits[i] + misses[i] else None
            for i in INSTRUCTIONS
        },
    }


def assert_same_summary(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), key
        elif isinstance(value, dict):
            assert got[key].keys() == value.keys(), key
            for k, v in value.items():
                assert got[key][k] == (pytest.approx(v) if isinstance(v, float) else v), (key, k)
        else:
            assert got[key] == value, key


@pytest.fixture
def client(db: None) -> APIClient:
    return token_client(new_user())


@pytest.fixture
def sessions(db: None) -> SimpleNamespace:
    """Three labelled sessions (one with unlabelled trials), one without trials, and five
    sessions with two trials each (to fill list pages)."""
    busy = SessionFactory()
    make_trials(busy, 60, seed=1, bare=(7, 33))
    other = SessionFactory()
    make_trials(other, 25, seed=2)
    third = SessionFactory()
    make_trials(third, 9, seed=3)
    empty = SessionFactory()
    small = [SessionFactory() for _ in range(5)]
    for i, s in enumerate(small):
        make_trials(s, 2, seed=10 + i)
    return SimpleNamespace(
        busy=busy, other=other, third=third, empty=empty, all=[busy, other, third, empty, *small]
    )


def test_fixture_covers_every_label(sessions: SimpleNamespace) -> None:
    """Otherwise the recount comparison would not test every count."""
    expected = recount(sessions.busy)
    assert all(expected["outcomes"].values())
    assert expected["early_lick"] and expected["free_water"] and expected["auto_water"]
    assert expected["photostim"] and expected["trials"] > expected["behavior_trials"]
    assert expected["instructions"]["none"] and not expected["instructions"]["middle"]


def test_api_summary_equals_a_recount(sessions: SimpleNamespace, client: APIClient) -> None:
    by_id = {row["id"]: row for row in rows(client.get("/api/sessions/", {"page_size": 50}))}
    assert set(by_id) == {s.id for s in sessions.all}
    for session in sessions.all:
        expected = recount(session)
        assert_same_summary(by_id[session.id]["behavior_summary"], expected)
        detail = client.get(f"/api/sessions/{session.id}/").json()["behavior_summary"]
        assert_same_summary(detail, expected)
        action = client.get(f"/api/sessions/{session.id}/behavior-summary/")
        assert action.status_code == 200
        assert_same_summary(action.json(), expected)


def test_session_without_trials_has_a_zero_summary(
    sessions: SimpleNamespace, client: APIClient
) -> None:
    body = client.get(f"/api/sessions/{sessions.empty.id}/behavior-summary/").json()
    assert body["trials"] == body["behavior_trials"] == body["photostim"] == 0
    assert body["outcomes"] == {"hit": 0, "miss": 0, "ignore": 0, "N/A": 0}
    assert body["performance"] is None and body["early_lick_rate"] is None
    assert set(body["performance_by_instruction"].values()) == {None}


def test_one_query_for_the_summary_action(sessions: SimpleNamespace, client: APIClient) -> None:
    url = f"/api/sessions/{sessions.busy.id}/behavior-summary/"
    client.get(url)  # warm-up: token, throttle cache
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    # authentication (token + user) and the annotated session
    session_queries = [q for q in ctx.captured_queries if "experiment_sessiontrial" in q["sql"]]
    assert len(session_queries) == 1, [q["sql"][:200] for q in ctx.captured_queries]


def test_list_query_count_is_constant_in_page_size(
    sessions: SimpleNamespace, client: APIClient
) -> None:
    client.get("/api/sessions/")
    small, n_small = list_queries(client, "/api/sessions/", 3)
    large, n_large = list_queries(client, "/api/sessions/", 50)
    assert (n_small, n_large) == (3, len(sessions.all))
    assert small == large


def test_many_valued_filters_do_not_inflate_the_counts(
    sessions: SimpleNamespace, client: APIClient
) -> None:
    """A session with two task protocols and two projects is joined twice by these filters."""
    busy = sessions.busy
    for protocol in (2, 4):
        models.SessionTask.objects.create(
            session=busy,
            task_protocol=models.TaskProtocol.objects.get(task__name="s1 stim", protocol=protocol),
        )
    for project in models.Project.objects.all()[:2]:
        models.ProjectSession.objects.create(session=busy, project=project)
    expected = recount(busy)
    for params in ({"task": "s1 stim"}, {"project": models.Project.objects.first().name}):
        got = rows(client.get("/api/sessions/", params))
        assert [r["id"] for r in got] == [busy.id]
        assert_same_summary(got[0]["behavior_summary"], expected)


def test_summary_requires_authentication(sessions: SimpleNamespace) -> None:
    response = APIClient().get(f"/api/sessions/{sessions.busy.id}/behavior-summary/")
    assert response.status_code == 401
    assert APIClient().get("/api/sessions/").status_code == 401


def test_unknown_session_is_a_404(db: None, client: APIClient) -> None:
    assert client.get("/api/sessions/999999999/behavior-summary/").status_code == 404


# --- Pure functions ------------------------------------------------------------------------


def test_counts_from_labels_match_the_database_aggregate(sessions: SimpleNamespace) -> None:
    busy = sessions.busy
    trials = models.SessionTrial.objects.filter(session=busy, behavior__isnull=False)
    labels = list(
        trials.values_list(
            "behavior__outcome__name",
            "behavior__instruction__name",
            "behavior__early_lick__name",
            "behavior__auto_water",
            "behavior__free_water",
        )
    )
    outcome, instruction, early, auto, free = zip(*labels, strict=True)
    counts = behavior.counts_from_labels(
        trials=models.SessionTrial.objects.filter(session=busy).count(),
        outcome=outcome,
        instruction=instruction,
        early_lick=early,
        auto_water=auto,
        free_water=free,
        photostim=models.PhotostimTrial.objects.filter(trial__session=busy).count(),
    )
    assert counts == queries.session_counts(busy)
    assert_same_summary(behavior.summary_from_counts(counts), recount(busy))


def test_performance_leaves_out_ignore_na_and_free_water() -> None:
    counts = behavior.counts_from_labels(
        trials=7,
        outcome=["hit", "hit", "miss", "ignore", "N/A", "hit", "miss"],
        instruction=["left", "left", "left", "left", "right", "right", "right"],
        early_lick=["no early"] * 6 + ["early"],
        auto_water=[False] * 7,
        free_water=[False, True, False, False, False, False, False],
        photostim=0,
    )
    summary = behavior.summary_from_counts(counts)
    # left: hit, (free-water hit), miss → 1/2; right: hit, miss → 1/2; N/A and ignore out
    assert summary["performance"] == 0.5
    assert summary["performance_trials"] == 4
    assert summary["performance_by_instruction"] == {
        "left": 0.5,
        "right": 0.5,
        "middle": None,
        "none": None,
    }
    assert summary["outcomes"] == {"hit": 3, "miss": 2, "ignore": 1, "N/A": 1}
    assert summary["early_lick_rate"] == pytest.approx(1 / 7)
    assert behavior.summary_from_counts(None)["trials"] == 0
