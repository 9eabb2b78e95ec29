"""The experiment admin: sessions with their summary and trial table, read-only ingested data."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from experiment import models
from experiment.admin import session_summary
from experiment.tests import factories as ef
from lab.tests import factories as lf
from lab.tests.test_admin import assert_constant_changelist, get_counting, staff_client  # noqa: F401

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


def lookups() -> dict[str, dict[str, object]]:
    return {
        "outcome": {o.name: o for o in models.Outcome.objects.all()},
        "instruction": {i.name: i for i in models.TrialInstruction.objects.all()},
        "early": {e.name: e for e in models.EarlyLick.objects.all()},
    }


def add_trials(session: models.Session, n: int, start: int = 1) -> list[models.SessionTrial]:
    """n trials with behavior labels in bulk (a real session has hundreds): a fixed pattern.

    Trial k: instruction left if k is odd; outcome hit/miss/ignore by k % 3; early lick when
    k % 5 == 0; auto water when k % 7 == 0; free water when k % 11 == 0; photostim k % 4 == 0.
    """
    lk = lookups()
    protocol = models.TaskProtocol.objects.get(task__name="audio delay", protocol=1)
    trials = models.SessionTrial.objects.bulk_create(
        models.SessionTrial(
            session=session,
            trial=k,
            trial_uid=k,
            start_time=10.0 * (k - 1),
            stop_time=10.0 * (k - 1) + 6.0,
        )
        for k in range(start, start + n)
    )
    outcomes = ["hit", "miss", "ignore"]
    models.BehaviorTrial.objects.bulk_create(
        models.BehaviorTrial(
            trial=t,
            task_protocol=protocol,
            instruction=lk["instruction"]["left" if t.trial % 2 else "right"],
            outcome=lk["outcome"][outcomes[t.trial % 3]],
            early_lick=lk["early"]["early" if t.trial % 5 == 0 else "no early"],
            auto_water=t.trial % 7 == 0,
            free_water=t.trial % 11 == 0,
        )
        for t in trials
    )
    models.PhotostimTrial.objects.bulk_create(
        models.PhotostimTrial(trial=t) for t in trials if t.trial % 4 == 0
    )
    return trials


def session_with_trials(n: int = 3) -> models.Session:
    session = ef.SessionFactory()
    add_trials(session, n)
    return session


def _trial() -> object:
    return add_trials(ef.SessionFactory(), 1)[0]


def _photostim() -> models.Photostim:
    region = ef.PhotostimBrainRegionFactory()
    ef.PhotostimLocationFactory(photostim=region.photostim)
    return region.photostim


def _trial_event() -> models.TrialEvent:
    behavior = ef.BehaviorTrialFactory()
    return ef.TrialEventFactory(trial=behavior)


def _action_event() -> models.ActionEvent:
    return ef.ActionEventFactory(trial=ef.BehaviorTrialFactory())


CHANGELISTS = {
    "session": session_with_trials,
    "sessiontrial": _trial,
    "behaviortrial": lambda: ef.BehaviorTrialFactory(),
    "trialevent": _trial_event,
    "actionevent": _action_event,
    "photostim": _photostim,
    "photostimevent": lambda: ef.PhotostimEventFactory(),
}


@pytest.mark.parametrize("model_name", CHANGELISTS)
def test_changelist_queries_do_not_grow_with_rows(staff_client, model_name):  # noqa: F811
    url = reverse(f"admin:experiment_{model_name}_changelist")
    queries = assert_constant_changelist(staff_client, url, CHANGELISTS[model_name])
    assert queries <= 15


@pytest.mark.parametrize(
    ("model_name", "param", "make"),
    [
        ("sessiontrial", "session__id__exact", lambda s: None),
        ("behaviortrial", "trial__session__id__exact", lambda s: None),
        (
            "photostim",
            "session__id__exact",
            lambda s: ef.PhotostimBrainRegionFactory(
                photostim=ef.PhotostimFactory(session=s, photo_stim=next(_numbers))
            ),
        ),
    ],
)
def test_filtered_by_session_constant_and_correct(staff_client, model_name, param, make):  # noqa: F811
    session = session_with_trials(4)
    other = session_with_trials(2)
    for _ in range(2):
        make(session)
        make(other)
    url = reverse(f"admin:experiment_{model_name}_changelist")
    response = staff_client.get(url, {param: session.pk})
    cl = response.context["cl"]
    sessions = {getattr(obj, "session", None) or obj.trial.session for obj in cl.result_list}
    assert sessions == {session}
    # The autocomplete filter shows the chosen session and is wired to the autocomplete view.
    html = response.content.decode()
    assert 'class="admin-autocomplete"' in html and str(session) in html
    assert "admin/js/autocomplete.js" in html
    # More rows of the chosen session: same queries.
    q_small, _ = get_counting(staff_client, url, **{param: str(session.pk)})
    add_trials(session, 8, start=5)
    for _ in range(4):
        make(session)
    q_large, _ = get_counting(staff_client, url, **{param: str(session.pk)})
    assert q_large == q_small


def test_session_changelist_columns_and_filters(staff_client, settings):  # noqa: F811
    settings.TIME_ZONE = "America/New_York"
    session = ef.SessionFactory(start_time=dt.datetime(2018, 2, 25, 16, 23, tzinfo=dt.UTC))
    add_trials(session, 7)
    ef.SessionFactory()  # no trials
    url = reverse("admin:experiment_session_changelist")
    response = staff_client.get(url)
    html = response.content.decode()
    assert "2018-02-25 11:23" in html  # 16:23 UTC is 11:23 in New York (EST)
    assert "start (America/New_York)" in html.lower().replace(
        "america/new_york", "America/New_York"
    )
    counts = {s.pk: s.trial_count for s in response.context["cl"].result_list}
    assert counts[session.pk] == 7 and sorted(counts.values()) == [0, 7]
    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"rig", "username", "projects", "task", "subject"} <= titles

    wr = session.subject.water_restriction.water_restriction_number
    response = staff_client.get(url, {"q": wr})
    assert [s.pk for s in response.context["cl"].result_list] == [session.pk]
    response = staff_client.get(url, {"q": f"{wr} {session.session}"})
    assert [s.pk for s in response.context["cl"].result_list] == [session.pk]
    response = staff_client.get(url, {"subject__id__exact": session.subject.pk})
    assert [s.pk for s in response.context["cl"].result_list] == [session.pk]
    response = staff_client.get(url, {"start_time__year": 2018, "start_time__month": 2})
    assert session.pk in {s.pk for s in response.context["cl"].result_list}


def test_session_summary_counts():
    session = session_with_trials(30)
    models.SessionTrial.objects.create(
        session=session, trial=31, trial_uid=31, start_time=400.0, stop_time=401.0
    )  # a trial without behavior labels
    s = session_summary(session)
    ks = range(1, 31)
    assert s["trials"] == 31 and s["with_behavior"] == 30
    assert s["early_lick"] == sum(k % 5 == 0 for k in ks)
    assert s["auto_water"] == sum(k % 7 == 0 for k in ks)
    assert s["free_water"] == sum(k % 11 == 0 for k in ks)
    assert s["photostim"] == sum(k % 4 == 0 for k in ks)
    assert s["by_outcome"] == {"hit": 10, "miss": 10, "ignore": 10}
    assert s["by_instruction"] == {"left": 15, "right": 15}
    left = next(r for r in s["rows"] if r["instruction"] == "left")
    hits_left = sum(1 for k in ks if k % 2 and k % 3 == 0)
    assert left["counts"][s["outcomes"].index("hit")] == hits_left
    assert left["hit_percent"] == round(100 * hits_left / 15)
    with CaptureQueriesContext(connection) as ctx:
        session_summary(session)
    assert len(ctx.captured_queries) == 2


def test_session_change_page_with_500_trials(staff_client):  # noqa: F811
    session = session_with_trials(5)
    ef.SessionCommentFactory(session=session)
    ef.SessionDetailsFactory(session=session)
    models.SessionTask.objects.create(
        session=session,
        task_protocol=models.TaskProtocol.objects.get(task__name="s1 stim", protocol=2),
    )
    models.ProjectSession.objects.create(
        session=session, project=models.Project.objects.get(name="MAP")
    )
    url = reverse("admin:experiment_session_change", args=[session.pk])
    q_small, response = get_counting(staff_client, url)
    assert len(response.context["trial_rows"]) == 5

    add_trials(session, 495, start=6)
    q_large, response = get_counting(staff_client, url)
    assert q_large == q_small <= 30, (q_small, q_large)
    html = response.content.decode()
    rows = response.context["trial_rows"]
    assert len(rows) == 500 and [r["trial"] for r in rows] == list(range(1, 501))
    assert rows[3]["photostim"] and not rows[2]["photostim"]  # trial 4 is photostimulated
    assert rows[4]["early_lick"] == "early" and rows[0]["early_lick"] == ""
    assert "Trials (500)" in html
    assert f"?session__id__exact={session.pk}" in html  # link to the filtered trial list
    assert "<strong>500</strong> trials" in html  # the summary
    assert "s1 stim #2" in html and "MAP" in html  # inlines
    assert reverse("admin:experiment_sessiontrial_change", args=[rows[0]["url"].split("/")[-3]])


def test_session_add_page_and_history_of_comments(staff_client):  # noqa: F811
    response = staff_client.get(reverse("admin:experiment_session_add"))
    assert response.status_code == 200
    assert "America/New_York" in response.content.decode() or "UTC" in response.content.decode()

    session = ef.SessionFactory()
    data = {
        "subject": session.subject.pk,
        "session": session.session,
        "start_time_0": "2018-02-25",
        "start_time_1": "06:23:28",
        "username": session.username.pk,
        "rig": session.rig.pk,
    }
    for prefix, initial in (
        ("details", 0),
        ("comments", 0),
        ("tasks", 0),
        ("trainings", 0),
        ("projectsession_set", 0),
    ):
        data |= {
            f"{prefix}-TOTAL_FORMS": "0",
            f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    data |= {"comments-TOTAL_FORMS": "1", "comments-0-comment": "licked well"}
    response = staff_client.post(
        reverse("admin:experiment_session_change", args=[session.pk]), data
    )
    assert response.status_code == 302, response.context and response.context.get("errors")
    comment = models.SessionComment.objects.get(session=session)
    assert comment.comment == "licked well"

    history = staff_client.get(reverse("admin:experiment_session_history", args=[session.pk]))
    related = history.context["related_history"]
    assert [(e["what"], e["record"].history_type, e["record"].history_user) for e in related] == [
        ("session comment", "+", staff_client.user)
    ]
    assert "licked well" in history.content.decode()


def test_trial_tables_are_read_only_and_counts_capped(staff_client, django_user_model):  # noqa: F811
    trial = _trial()
    url = reverse("admin:experiment_sessiontrial_changelist")
    with CaptureQueriesContext(connection) as ctx:
        response = staff_client.get(url)
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 10001" in sql for sql in counts), counts  # never a full count
    assert "action-checkbox" not in response.content.decode()  # no bulk actions

    assert staff_client.get(reverse("admin:experiment_sessiontrial_add")).status_code == 403
    change = reverse("admin:experiment_sessiontrial_change", args=[trial.pk])
    response = staff_client.get(change)
    assert response.status_code == 200 and 'name="_save"' not in response.content.decode()
    assert staff_client.post(change, {"trial": 99}).status_code == 403
    # Deleting is left to superusers (cleaning up a bad ingest); staff with every model
    # permission still cannot.
    assert (
        staff_client.get(
            reverse("admin:experiment_sessiontrial_delete", args=[trial.pk])
        ).status_code
        == 200
    )
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("tech", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="experiment"))
    staff_client.force_login(staff)
    assert staff_client.get(change).status_code == 200
    assert (
        staff_client.get(
            reverse("admin:experiment_sessiontrial_delete", args=[trial.pk])
        ).status_code
        == 403
    )


def test_capped_count_shows_more_than(staff_client, monkeypatch):  # noqa: F811
    from mapsite.core.admin_base import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 5)
    add_trials(ef.SessionFactory(), 12)
    response = staff_client.get(reverse("admin:experiment_sessiontrial_changelist"))
    assert "more than 5 session trials" in response.content.decode()
    assert len(response.context["cl"].result_list) == 12  # still one page of 50


def test_trial_change_page_shows_events(staff_client):  # noqa: F811
    event = _trial_event()
    ef.ActionEventFactory(trial=event.trial, action_event_time=4.5)
    response = staff_client.get(
        reverse("admin:experiment_sessiontrial_change", args=[event.trial.pk])
    )
    html = response.content.decode()
    assert "go" in html and "left lick" in html and "4.500" in html
    assert "instruction <b>left</b>" in html


def test_photostim_page_shows_locations_and_region(staff_client):  # noqa: F811
    photostim = _photostim()
    photostim.waveform = b"\x93NUMPY" + bytes(100)
    photostim.save()
    response = staff_client.get(reverse("admin:experiment_photostim_change", args=[photostim.pk]))
    html = response.content.decode()
    assert "ALM, left" in html  # PhotostimBrainRegion, computed
    assert "2500.00" in html  # the location inline
    assert "106 bytes" in html


def test_autocomplete_session_search(staff_client):  # noqa: F811
    session = ef.SessionFactory()
    wr = session.subject.water_restriction.water_restriction_number
    response = staff_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "experiment",
            "model_name": "sessiontrial",
            "field_name": "session",
            "term": wr,
        },
    )
    assert response.json()["results"] == [{"id": str(session.pk), "text": str(session)}]


def test_subject_page_links_to_its_sessions(staff_client):  # noqa: F811
    session = ef.SessionFactory()
    response = staff_client.get(reverse("admin:lab_subject_change", args=[session.subject.pk]))
    html = response.content.decode()
    assert f"?subject__id__exact={session.subject.pk}" in html and "1 session(s)" in html


def test_delete_confirmation_stays_short(staff_client):  # noqa: F811
    session = session_with_trials(60)
    response = staff_client.get(reverse("admin:experiment_session_delete", args=[session.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "… and 35 more" in html  # 25 listed
    assert dict(response.context["model_count"])["session trials"] == 60


def test_lab_surgery_and_people_changelists_have_search(staff_client):  # noqa: F811
    lf.PersonFactory(username="daveliu")
    response = staff_client.get(reverse("admin:lab_person_changelist"), {"q": "dave"})
    assert [p.username for p in response.context["cl"].result_list] == ["daveliu"]
