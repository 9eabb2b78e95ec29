"""REST API of schema ``experiment``: permissions, filters, ordering, query counts, history."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework.test import APIClient

from experiment import models
from experiment.tests.factories import (
    ActionEventFactory,
    BehaviorTrialFactory,
    PhotostimFactory,
    PhotostimLocationFactory,
    SessionFactory,
    SessionTrialFactory,
    TrialEventFactory,
)
from lab.models import BrainArea
from lab.tests.factories import PersonFactory, RigFactory, WaterRestrictionFactory, lookup
from mapsite.core.tests.api_checks import (
    Route,
    check_permission_matrix,
    check_query_count_constant,
    check_whitelists,
    fill_lookups,
    listed,
    route_id,
    routes_of,
    rows,
    writable,
)

EXP_ROUTES = routes_of("experiment.")
UTC = dt.UTC


def at(day: int, hour: int = 15) -> dt.datetime:
    return dt.datetime(2018, 2, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def exp_data(db: None) -> SimpleNamespace:
    """Two subjects, ten sessions and enough trials, events and photostims for every endpoint.

    Subject A (sessions 1-6, rig A, audio delay, project MAP), subject B (sessions 1-4, rig B,
    s1 stim). Session A6 starts 2018-03-01 02:00 UTC, i.e. 28 February in the lab's time zone.
    Trials: sessions A1, A2, A3 have 6 trials each with labels cycling through
    outcome hit/miss/ignore, instruction left/right; trials 1 and 4 are early licks, trial 2 has
    auto water, trial 6 free water; trials 1-3 are photostim trials.
    """
    fill_lookups(EXP_ROUTES)
    wr_a, wr_b = WaterRestrictionFactory(), WaterRestrictionFactory()
    rig_a, rig_b = RigFactory(name="RRig"), RigFactory(name="TRig1")
    who_a, who_b = PersonFactory(username="daveliu"), PersonFactory(username="susu")
    sessions_a = [
        SessionFactory(
            subject=wr_a.subject, session=i + 1, start_time=at(1 + i), rig=rig_a, username=who_a
        )
        for i in range(5)
    ]
    sessions_a.append(
        SessionFactory(
            subject=wr_a.subject,
            session=6,
            start_time=dt.datetime(2018, 3, 1, 2, 0, tzinfo=UTC),
            rig=rig_a,
            username=who_a,
        )
    )
    sessions_b = [
        SessionFactory(
            subject=wr_b.subject, session=i + 1, start_time=at(10 + i), rig=rig_b, username=who_b
        )
        for i in range(4)
    ]
    sessions = sessions_a + sessions_b
    audio = models.TaskProtocol.objects.get(task__name="audio delay", protocol=1)
    s1stim = models.TaskProtocol.objects.get(task__name="s1 stim", protocol=4)
    regular = lookup(models.TrainingType, "regular")
    map_project = lookup(models.Project, "MAP")
    for s in sessions:
        mine = s in sessions_a
        models.SessionComment.objects.create(session=s, comment=f"session {s.session} ok")
        if s is not sessions[-1]:
            models.SessionDetails.objects.create(session=s, session_weight=Decimal("23.5"))
        models.SessionTask.objects.create(session=s, task_protocol=audio if mine else s1stim)
        models.SessionTraining.objects.create(session=s, training_type=regular)
        if mine:
            models.ProjectSession.objects.create(session=s, project=map_project)
        models.BehaviorFile.objects.create(
            rig=s.rig,
            root="/data/behavior",
            relative_path=f"{s.subject.subject_id}/{s.session}.mat",
            file_name=f"{s.session}.mat",
            size=1000,
            mtime=s.start_time,
            sha256="0" * 64,
            session=s,
            ingested_at=s.start_time,
            changed_after_ingest=s.start_time if s.session == 2 and mine else None,
        )
    # The project-session of A6 is left for a different project; B4 has no details.

    outcomes = ["hit", "miss", "ignore"]
    trials, behaviors = [], []
    note_types = [lookup(models.TrialNoteType, n) for n in ("bitcode", "autolearn")]
    ports = {"left": lookup(models.WaterPort, "left"), "right": lookup(models.WaterPort, "right")}
    event_id = 0
    for s in sessions_a[:3]:
        for n in range(1, 7):
            trial = SessionTrialFactory(session=s, trial=n)
            instruction = "left" if n % 2 else "right"
            behavior = BehaviorTrialFactory(
                trial=trial,
                task_protocol=audio,
                instruction=lookup(models.TrialInstruction, instruction),
                outcome=lookup(models.Outcome, outcomes[(n - 1) % 3]),
                early_lick=lookup(models.EarlyLick, "early" if n in (1, 4) else "no early"),
                auto_water=n == 2,
                free_water=n == 6,
            )
            models.WaterPortChoice.objects.create(
                trial=behavior, water_port=ports[instruction] if n != 3 else None
            )
            for note_type in note_types:
                models.TrialNote.objects.create(trial=trial, note_type=note_type, note=f"{n}")
            for event_type in ("sample", "go"):
                event_id += 1
                TrialEventFactory(
                    trial=behavior,
                    trial_event_id=event_id,
                    event_type=lookup(models.TrialEventType, event_type),
                )
            ActionEventFactory(
                trial=behavior,
                action_event_id=n,
                action_type=lookup(models.ActionEventType, "left lick" if n % 2 else "right lick"),
            )
            trials.append(trial)
            behaviors.append(behavior)

    alm = BrainArea.objects.get(name="ALM")
    photostims = []
    for s in sessions_a[:2]:
        for p in range(1, 5):
            stim = PhotostimFactory(session=s, photo_stim=p)
            PhotostimLocationFactory(photostim=stim, ml_location=Decimal("-1500.00"))
            PhotostimLocationFactory(photostim=stim, ml_location=Decimal("-1000.00"))
            if p <= 2:
                models.PhotostimBrainRegion.objects.create(
                    photostim=stim, stim_brain_area=alm, stim_laterality="left"
                )
            photostims.append(stim)
    stim_event = 0
    for trial in trials:
        if trial.trial > 3 or trial.session not in sessions_a[:2]:
            continue
        pt = models.PhotostimTrial.objects.create(trial=trial)
        for p in (1, 2):
            stim_event += 1
            models.PhotostimEvent.objects.create(
                photostim_trial=pt,
                photostim_event_id=stim_event,
                photostim=models.Photostim.objects.get(session=trial.session, photo_stim=p),
                photostim_event_time=1.0,
                power=4.0 * p,
            )
    # Session A3 trials 1-3 are photostim trials too (no events), so 9 photostim trials.
    for trial in trials:
        if trial.session == sessions_a[2] and trial.trial <= 3:
            models.PhotostimTrial.objects.create(trial=trial)

    left_port = ports["left"]
    blocks = []
    for b in range(1, 9):
        block = models.MultiTargetLickingBlock.objects.create(
            session=sessions_b[0],
            block=b,
            block_start_time=60.0 * b,
            trial_count=2,
            num_licks_for_reward=3,
            roll_deg=0.0,
        )
        models.MultiTargetLickingBlockWaterPort.objects.create(
            block=block, water_port=left_port, position_x=b, position_y=0.0, position_z=1.0
        )
        blocks.append(block)
    for i, behavior in enumerate(behaviors[:16]):
        models.MultiTargetLickingBlockTrial.objects.create(
            block=blocks[i // 2], trial=behavior, block_trial_number=i % 2 + 1
        )
    return SimpleNamespace(
        subject_a=wr_a.subject,
        subject_b=wr_b.subject,
        wr_a=wr_a.water_restriction_number,
        wr_b=wr_b.water_restriction_number,
        sessions_a=sessions_a,
        sessions_b=sessions_b,
        sessions=sessions,
        trials=trials,
        photostims=photostims,
        blocks=blocks,
    )


def exp_payloads(data: SimpleNamespace) -> dict:
    a1, b1, b4 = data.sessions_a[0], data.sessions_b[0], data.sessions_b[3]
    brainwide = "Brain-wide neural activity underlying memory-guided movement"
    return {
        "experiment-sessioncomment": lambda: (
            {"session": a1.id, "comment": "whisker trimmed"},
            {"comment": "whiskers trimmed"},
        ),
        "experiment-sessiondetails": lambda: (
            {"session": b4.id, "session_weight": "22.1000"},
            {"session_water_earned": "1.2000"},
        ),
        "experiment-sessiontask": lambda: (
            {"session": a1.id, "task": "s1 stim", "protocol": 4},
            {"protocol": 5},
        ),
        "experiment-sessiontraining": lambda: (
            {"session": a1.id, "training_type": "regular + distractor"},
            {"training_type": "regular or regular + distractor"},
        ),
        "experiment-projectsession": lambda: (
            {"session": b1.id, "project": "MAP"},
            {"project": brainwide},
        ),
    }


# --- Every experiment endpoint -----------------------------------------------------------------


def test_every_experiment_table_has_an_endpoint() -> None:
    """Tables shown inside another endpoint's rows are listed with where they appear."""
    from django.apps import apps

    shown_inside = {
        models.BehaviorTrial: "trials",
        models.WaterPortChoice: "trials",
        models.MultiTargetLickingBlockWaterPort: "mtl-blocks",
        models.PhotostimLocation: "photostims",
        models.PhotostimBrainRegion: "photostims",
    }
    served = {viewset.queryset.model for _, viewset, _ in EXP_ROUTES}
    tables = {
        m
        for m in apps.get_app_config("experiment").get_models()
        if not m.__name__.startswith("Histor")
    }
    assert tables - served - set(shown_inside) == set()


def test_read_only_and_writable_experiment_endpoints() -> None:
    assert {prefix for prefix, viewset, _ in EXP_ROUTES if writable(viewset)} == {
        "session-comments",
        "session-details",
        "session-tasks",
        "session-trainings",
        "project-sessions",
    }


@pytest.mark.parametrize("route", EXP_ROUTES, ids=route_id)
def test_permission_matrix(
    route: Route, exp_data: SimpleNamespace, user_client: APIClient, staff_client: APIClient
) -> None:
    check_permission_matrix(route, user_client, staff_client, exp_payloads(exp_data))


@pytest.mark.parametrize("route", EXP_ROUTES, ids=route_id)
def test_query_count_does_not_grow_with_page_size(
    route: Route, exp_data: SimpleNamespace, user_client: APIClient
) -> None:
    check_query_count_constant(route, user_client)


@pytest.mark.parametrize("route", EXP_ROUTES, ids=route_id)
def test_filters_and_ordering_are_whitelisted(route: Route) -> None:
    check_whitelists(route)


# --- Sessions ----------------------------------------------------------------------------------


def session_ids(client: APIClient, **params: Any) -> list[int]:
    return listed(client, "/api/sessions/", "id", **params)


def ids(objs: list) -> list[int]:
    return [o.id for o in objs]


def test_session_rows_use_natural_keys(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    a1 = exp_data.sessions_a[0]
    body = user_client.get(f"/api/sessions/{a1.id}/").json()
    assert body["subject"] == exp_data.subject_a.subject_id
    assert body["water_restriction_number"] == exp_data.wr_a
    assert body["session"] == 1
    assert body["rig"] == "RRig"
    assert body["username"] == "daveliu"
    assert body["projects"] == ["MAP"]
    assert body["tasks"] == [{"task": "audio delay", "protocol": 1}]
    assert body["training_types"] == ["regular"]
    assert body["comments"] == ["session 1 ok"]
    assert Decimal(body["details"]["session_weight"]) == Decimal("23.5")
    assert user_client.get(f"/api/sessions/{exp_data.sessions_b[3].id}/").json()["details"] is None


def test_session_filters(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    a, b = exp_data.sessions_a, exp_data.sessions_b
    assert session_ids(user_client, subject=exp_data.subject_b.subject_id) == ids(b)
    assert session_ids(user_client, water_restriction_number=exp_data.wr_a) == ids(a)
    assert session_ids(user_client, rig="TRig1") == ids(b)
    assert session_ids(user_client, username="daveliu") == ids(a)
    assert session_ids(user_client, task="s1 stim") == ids(b)
    assert session_ids(user_client, task="audio delay") == ids(a)
    assert session_ids(user_client, project="MAP") == ids(a)
    assert session_ids(user_client, training_type="regular") == ids(a + b)
    assert session_ids(user_client, subject=exp_data.subject_a.subject_id, session=3) == [a[2].id]
    # Combined filters intersect.
    assert session_ids(user_client, project="MAP", rig="TRig1") == []


def test_session_date_range_uses_the_lab_calendar_day(
    exp_data: SimpleNamespace, user_client: APIClient
) -> None:
    a, b = exp_data.sessions_a, exp_data.sessions_b
    assert session_ids(user_client, date_after="2018-02-02", date_before="2018-02-04") == ids(
        a[1:4]
    )
    assert session_ids(user_client, date_after="2018-02-10") == ids([a[5], *b])
    # A6 started 2018-03-01 02:00 UTC = 2018-02-28 21:00 in New York: a February session.
    assert session_ids(user_client, date_after="2018-02-28", date_before="2018-02-28") == [a[5].id]
    assert session_ids(user_client, date_after="2018-03-01") == []
    assert user_client.get("/api/sessions/", {"date_after": "yesterday"}).status_code == 400


def test_session_filters_reject_unknown_names(
    exp_data: SimpleNamespace, user_client: APIClient
) -> None:
    for param in ("rig", "task", "project", "username"):
        response = user_client.get("/api/sessions/", {param: "no such thing"})
        assert response.status_code == 400, param


def test_session_ordering(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    by_time = sorted(exp_data.sessions, key=lambda s: s.start_time, reverse=True)
    assert session_ids(user_client, ordering="-start_time") == ids(by_time)
    default = ids(exp_data.sessions_a + exp_data.sessions_b)
    assert session_ids(user_client) == default
    assert session_ids(user_client, ordering="rig__room") == default  # not whitelisted: ignored


def test_session_children_filters(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    a3 = exp_data.sessions_a[2]
    for url in ("/api/session-comments/", "/api/session-tasks/", "/api/session-trainings/"):
        assert listed(user_client, url, "session", session=a3.id) == [a3.id]
        got = listed(user_client, url, "session_number", water_restriction_number=exp_data.wr_b)
        assert got == [1, 2, 3, 4], url
    assert listed(user_client, "/api/session-tasks/", "protocol", task="s1 stim") == [4] * 4
    details = listed(
        user_client, "/api/session-details/", "session", subject=exp_data.subject_b.subject_id
    )
    assert details == ids(exp_data.sessions_b[:3])
    assert listed(user_client, "/api/project-sessions/", "session", project="MAP") == ids(
        exp_data.sessions_a
    )
    changed = listed(user_client, "/api/behavior-files/", "session", changed="true")
    assert changed == [exp_data.sessions_a[1].id]


# --- Trials and events -------------------------------------------------------------------------


def trial_numbers(client: APIClient, session: models.Session, **params: Any) -> list[int]:
    return listed(client, "/api/trials/", "trial", session=session.id, **params)


def test_trial_rows_carry_behavior_labels(
    exp_data: SimpleNamespace, user_client: APIClient
) -> None:
    trial = exp_data.trials[1]  # A1 trial 2: miss, right, no early, auto water
    body = user_client.get(f"/api/trials/{trial.id}/").json()
    assert body == {
        "id": trial.id,
        "session": trial.session_id,
        "subject": exp_data.subject_a.subject_id,
        "session_number": 1,
        "trial": 2,
        "trial_uid": 2,
        "start_time": 10.0,
        "stop_time": 16.0,
        "task": "audio delay",
        "protocol": 1,
        "instruction": "right",
        "early_lick": "no early",
        "outcome": "miss",
        "auto_water": True,
        "free_water": False,
        "water_port": "right",
        "photostim": True,
    }
    bare = SessionTrialFactory(session=exp_data.sessions_b[0], trial=1)
    body = user_client.get(f"/api/trials/{bare.id}/").json()
    assert body["outcome"] is None and body["auto_water"] is None and body["photostim"] is False


def test_trial_filters(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    a1 = exp_data.sessions_a[0]
    assert trial_numbers(user_client, a1) == [1, 2, 3, 4, 5, 6]
    assert trial_numbers(user_client, a1, outcome="hit") == [1, 4]
    assert trial_numbers(user_client, a1, outcome=["hit", "ignore"]) == [1, 3, 4, 6]
    assert trial_numbers(user_client, a1, outcome="N/A") == []
    assert trial_numbers(user_client, a1, instruction="left") == [1, 3, 5]
    assert trial_numbers(user_client, a1, early_lick="early") == [1, 4]
    assert trial_numbers(user_client, a1, early_lick="no early", outcome="hit") == []
    assert trial_numbers(user_client, a1, auto_water="true") == [2]
    assert trial_numbers(user_client, a1, free_water="true") == [6]
    assert trial_numbers(user_client, a1, photostim="true") == [1, 2, 3]
    assert trial_numbers(user_client, a1, photostim="false") == [4, 5, 6]
    assert trial_numbers(user_client, a1, task="audio delay") == [1, 2, 3, 4, 5, 6]
    subject = exp_data.subject_a.subject_id
    assert len(listed(user_client, "/api/trials/", "id", subject=subject)) == 18
    assert (
        len(listed(user_client, "/api/trials/", "id", water_restriction_number=exp_data.wr_b)) == 0
    )
    assert listed(user_client, "/api/trials/", "session_number", subject=subject, trial=6) == [
        1,
        2,
        3,
    ]
    assert user_client.get("/api/trials/", {"outcome": "great"}).status_code == 400


def test_event_filters(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    a1, a2 = exp_data.sessions_a[0], exp_data.sessions_a[1]
    go = listed(user_client, "/api/trial-events/", "event_type", session=a1.id, event_type="go")
    assert go == ["go"] * 6
    both = listed(
        user_client,
        "/api/trial-events/",
        "event_type",
        session=a1.id,
        event_type=["go", "sample"],
    )
    assert sorted(both) == ["go"] * 6 + ["sample"] * 6
    assert listed(user_client, "/api/trial-events/", "id", event_type="delay") == []
    trial = exp_data.trials[7]  # A2 trial 2
    events = listed(user_client, "/api/trial-events/", "trial_number", trial=trial.id)
    assert events == [2, 2]
    assert listed(user_client, "/api/trial-events/", "trial", session=a2.id, trial_number=2) == [
        trial.id,
        trial.id,
    ]
    assert user_client.get("/api/trial-events/", {"event_type": "bogus"}).status_code == 400

    licks = listed(
        user_client, "/api/action-events/", "trial_number", session=a1.id, action_type="right lick"
    )
    assert licks == [2, 4, 6]
    assert len(listed(user_client, "/api/action-events/", "id", action_type="middle lick")) == 0

    notes = listed(user_client, "/api/trial-notes/", "note", session=a1.id, note_type="bitcode")
    assert notes == ["1", "2", "3", "4", "5", "6"]


def test_photostim_endpoints(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    stim = exp_data.photostims[0]
    body = user_client.get(f"/api/photostims/{stim.id}/").json()
    assert body["device"] == "OBIS470"
    assert body["brain_region"] == {"stim_brain_area": "ALM", "stim_laterality": "left"}
    assert [loc["brain_area"] for loc in body["locations"]] == ["ALM", "ALM"]
    assert "waveform" not in body
    no_region = user_client.get(f"/api/photostims/{exp_data.photostims[3].id}/").json()
    assert no_region["brain_region"] is None
    in_alm = listed(user_client, "/api/photostims/", "photo_stim", brain_area="ALM")
    assert sorted(in_alm) == [1, 1, 2, 2]
    assert listed(user_client, "/api/photostims/", "id", laterality="right") == []

    a1 = exp_data.sessions_a[0]
    assert listed(user_client, "/api/photostim-trials/", "trial_number", session=a1.id) == [1, 2, 3]
    trial_rows = rows(user_client.get("/api/photostim-trials/", {"session": a1.id}))
    assert [e["photo_stim"] for e in trial_rows[0]["events"]] == [1, 2]
    powers = listed(user_client, "/api/photostim-events/", "power", session=a1.id, photo_stim=2)
    assert powers == [8.0, 8.0, 8.0]


def test_mtl_endpoints(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    block = exp_data.blocks[2]
    body = user_client.get(f"/api/mtl-blocks/{block.id}/").json()
    assert body["water_port"] == {
        "water_port": "left",
        "position_x": 3.0,
        "position_y": 0.0,
        "position_z": 1.0,
    }
    assert listed(user_client, "/api/mtl-block-trials/", "block_number", block=block.id) == [3, 3]


def test_lookup_endpoints_by_name(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    assert user_client.get("/api/outcomes/N/A/").json() == {"name": "N/A", "description": ""}
    assert user_client.get("/api/early-licks/early, presample only/").status_code == 200
    assert user_client.get("/api/periods/response/").json()["end_time_shift"] == 1.2
    assert listed(user_client, "/api/task-protocols/", "protocol", task="foraging") == [100]
    assert user_client.get("/api/outcomes/great/").status_code == 404


def test_page_size_is_capped(exp_data: SimpleNamespace, user_client: APIClient) -> None:
    session = exp_data.sessions_b[1]
    models.SessionTrial.objects.bulk_create(
        models.SessionTrial(
            session=session, trial=n, trial_uid=n, start_time=float(n), stop_time=n + 0.5
        )
        for n in range(1, 1006)
    )
    response = user_client.get("/api/trials/", {"session": session.id, "page_size": 100000})
    assert response.status_code == 200
    assert response.json()["count"] == 1005
    assert len(rows(response)) == 1000


# --- Writes ------------------------------------------------------------------------------------


def test_session_task_is_written_by_task_name_and_protocol(
    exp_data: SimpleNamespace, staff_client: APIClient
) -> None:
    b2 = exp_data.sessions_b[1]
    response = staff_client.post(
        "/api/session-tasks/",
        {"session": b2.id, "task": "audio delay", "protocol": 1},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert models.SessionTask.objects.filter(
        session=b2, task_protocol__task__name="audio delay"
    ).exists()
    response = staff_client.post(
        "/api/session-tasks/",
        {"session": b2.id, "task": "audio delay", "protocol": 1},
        format="json",
    )
    assert response.status_code == 400  # the same task protocol twice
    response = staff_client.post(
        "/api/session-tasks/",
        {"session": b2.id, "task": "audio delay", "protocol": 7},
        format="json",
    )
    assert response.status_code == 400
    assert "no protocol 7" in str(response.json())


def test_session_details_cannot_move_to_another_session(
    exp_data: SimpleNamespace, staff_client: APIClient
) -> None:
    a1, a2 = exp_data.sessions_a[0], exp_data.sessions_a[1]
    response = staff_client.patch(f"/api/session-details/{a1.id}/", {"session": a2.id})
    assert response.status_code == 400
    response = staff_client.post(
        "/api/session-details/", {"session": a1.id, "session_weight": "20"}, format="json"
    )
    assert response.status_code == 400
    response = staff_client.patch(
        f"/api/session-details/{a1.id}/", {"session_weight": "-1"}, format="json"
    )
    assert response.status_code == 400
    assert models.SessionDetails.objects.get(pk=a1.id).session_weight == Decimal("23.5")


def test_comment_created_over_the_api_is_attributed(
    exp_data: SimpleNamespace, staff: Any, staff_client: APIClient
) -> None:
    a1 = exp_data.sessions_a[0]
    response = staff_client.post(
        "/api/session-comments/", {"session": a1.id, "comment": "lick port moved"}, format="json"
    )
    assert response.status_code == 201
    comment = models.SessionComment.objects.get(pk=response.json()["id"])
    record = comment.history.get()
    assert record.history_user == staff
    response = staff_client.patch(
        f"/api/session-comments/{comment.id}/", {"comment": "lick port re-aligned"}, format="json"
    )
    assert response.status_code == 200
    assert comment.history.order_by("-history_id").first().history_user == staff
    staff_client.delete(f"/api/session-comments/{comment.id}/")
    deleted = models.SessionComment.history.filter(id=comment.id, history_type="-").get()
    assert deleted.history_user == staff


def test_ingested_tables_are_read_only_even_for_staff(
    exp_data: SimpleNamespace, staff_client: APIClient
) -> None:
    trial = exp_data.trials[0]
    assert staff_client.delete(f"/api/trials/{trial.id}/").status_code == 405
    assert (
        staff_client.patch(f"/api/sessions/{trial.session_id}/", {"session": 9}).status_code == 405
    )
    assert models.SessionTrial.objects.filter(pk=trial.pk).exists()
