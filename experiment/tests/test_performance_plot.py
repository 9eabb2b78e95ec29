"""Behavior performance plot: numerics vs loop references, the API endpoint, the cache."""

import io
import random
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from django.core.cache import cache
from PIL import Image
from rest_framework.test import APIClient

from experiment import models
from experiment.analysis import behavior, plots
from experiment.analysis.behavior import SessionLabels
from experiment.tests.factories import (
    BehaviorTrialFactory,
    PhotostimBrainRegionFactory,
    PhotostimEventFactory,
    PhotostimFactory,
    PhotostimTrialFactory,
    SessionFactory,
    SessionTrialFactory,
)
from lab.tests.factories import lookup
from mapsite.core import plots as core_plots
from mapsite.core.tests.api_checks import new_user, token_client

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- Loop references -----------------------------------------------------------------------


def loop_moving_average(values: list[float], window: int) -> list[float]:
    n = len(values)
    window = max(1, min(window, n))
    out = []
    for i in range(n):
        start = i - window // 2
        inside = [values[j] for j in range(start, start + window) if 0 <= j < n]
        out.append(sum(inside) / len(inside))
    return out


def loop_curve(rows: list[tuple]) -> tuple[list[int], list[float], int]:
    counted = [r for r in sorted(rows) if r[1] in ("hit", "miss") and not r[4]]
    correct = [1.0 if r[1] == "hit" else 0.0 for r in counted]
    window = max(1, round(0.1 * len(correct)))
    return [r[0] for r in counted], loop_moving_average(correct, window), window


def loop_effect(rows: list[tuple], groups: dict[str, list[int]]) -> dict[tuple, tuple]:
    """{(group, instruction): (hits, trials)} with a trial's group by membership."""
    out = {}
    members = {"control": {r[0] for r in rows if not r[5]}}
    for name, trials in groups.items():
        members[name] = {t for t in trials}
    grouped = set().union(*groups.values()) if groups else set()
    orphans = {r[0] for r in rows if r[5] and r[0] not in grouped}
    if orphans:
        members["photostim"] = orphans
    for name, trials in members.items():
        for instruction in ("left", "right"):
            sel = [
                r
                for r in rows
                if r[0] in trials and r[2] == instruction and r[3] == "no early" and not r[4]
            ]
            out[(name, instruction)] = (sum(r[1] == "hit" for r in sel), len(sel))
    return out


def random_rows(n: int, seed: int, *, stim_fraction: float = 0.3) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for trial in range(1, n + 1):
        rows.append(
            (
                trial,
                rng.choice(["hit", "hit", "miss", "ignore", "N/A"]),
                rng.choice(["left", "right", "none"]),
                rng.choice(["early", "early, presample only", "no early", "no early"]),
                rng.random() < 0.1,
                rng.random() < stim_fraction,
            )
        )
    rng.shuffle(rows)  # from_rows sorts by trial number
    return rows


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 14, 15, 16, 99, 100, 101, 537])
def test_moving_average_equals_a_loop(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.integers(0, 2, n).astype(float)
    for window in {1, 2, 3, behavior.moving_window(n), n + 3}:
        got = behavior.centred_moving_average(values, window)
        assert got == pytest.approx(loop_moving_average(list(values), window)), window


def test_window_is_ten_percent_of_the_counted_trials() -> None:
    assert [behavior.moving_window(n) for n in (0, 1, 4, 5, 14, 15, 100, 537)] == [
        1,
        1,
        1,
        1,  # round(0.5) is 0 → at least one
        1,
        2,
        10,
        54,
    ]


@pytest.mark.parametrize("seed", range(5))
def test_performance_curve_equals_a_loop(seed: int) -> None:
    rows = random_rows(150 + 37 * seed, seed)
    curve = behavior.performance_curve(SessionLabels.from_rows(rows))
    trials, average, window = loop_curve(rows)
    assert curve.trial.tolist() == trials
    assert curve.window == window
    assert curve.moving_average == pytest.approx(average)
    hits = sum(r[1] == "hit" and not r[4] for r in rows)
    misses = sum(r[1] == "miss" and not r[4] for r in rows)
    assert curve.performance == pytest.approx(hits / (hits + misses))


@pytest.mark.parametrize("seed", range(5))
def test_photostim_effect_equals_a_loop(seed: int) -> None:
    rows = random_rows(200, seed)
    stim_trials = [r[0] for r in rows if r[5]]
    rng = random.Random(seed)
    groups = {"left ALM": [], "right ALM": []}
    for t in stim_trials:
        pick = rng.random()
        if pick < 0.45:
            groups["left ALM"].append(t)
        elif pick < 0.9:
            groups["right ALM"].append(t)
        if pick < 0.1:
            groups["right ALM"].append(t)  # both protocols on one trial: counts in both
    effect = behavior.photostim_effect(SessionLabels.from_rows(rows, groups))
    got = {(p.group, p.instruction): (p.hits, p.trials) for p in effect}
    assert got == loop_effect(rows, groups)
    assert [p.group for p in effect][:2] == ["control", "control"]


def test_no_photostim_no_effect() -> None:
    rows = random_rows(50, 1, stim_fraction=0)
    assert behavior.photostim_effect(SessionLabels.from_rows(rows)) == []


# --- Database and API ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


@pytest.fixture
def client(db: None) -> APIClient:
    return token_client(new_user())


def by_name(model: type) -> dict[str, object]:
    return {row.name: row for row in model.objects.all()}


def add_trials(session: models.Session, rows: list[tuple]) -> None:
    outcomes, instructions = by_name(models.Outcome), by_name(models.TrialInstruction)
    early_licks = by_name(models.EarlyLick)
    protocol = models.TaskProtocol.objects.get(task__name="audio delay", protocol=1)
    for trial, outcome, instruction, early, free, stim in rows:
        st = SessionTrialFactory(session=session, trial=trial)
        BehaviorTrialFactory(
            trial=st,
            task_protocol=protocol,
            outcome=outcomes[outcome],
            instruction=instructions[instruction],
            early_lick=early_licks[early],
            free_water=free,
        )
        if stim:
            PhotostimTrialFactory(trial=st)


@pytest.fixture
def data(db: None) -> SimpleNamespace:
    """A plain session, a photostim session (two protocols, one with a computed region, one
    stim trial without events), a session without trials and one with unlabelled trials."""
    plain = SessionFactory()
    plain_rows = random_rows(120, 7, stim_fraction=0)
    add_trials(plain, plain_rows)

    stim = SessionFactory()
    stim_rows = random_rows(90, 8)
    add_trials(stim, stim_rows)
    left = PhotostimFactory(session=stim, photo_stim=1)
    PhotostimBrainRegionFactory(photostim=left)  # left ALM
    other = PhotostimFactory(session=stim, photo_stim=2)
    groups: dict[str, list[int]] = {"left ALM": [], "protocol 2": []}
    stim_trials = models.PhotostimTrial.objects.filter(trial__session=stim).order_by("trial__trial")
    for k, pt in enumerate(stim_trials):
        if k == 0:
            continue  # a photostim trial without events: group "photostim"
        protocol = left if k % 2 else other
        PhotostimEventFactory(photostim_trial=pt, photostim=protocol)
        PhotostimEventFactory(photostim_trial=pt, photostim=protocol)  # same protocol twice
        groups["left ALM" if protocol is left else "protocol 2"].append(pt.trial.trial)

    empty = SessionFactory()
    unlabelled = SessionFactory()
    SessionTrialFactory(session=unlabelled, trial=1)
    return SimpleNamespace(
        plain=plain,
        plain_rows=plain_rows,
        stim=stim,
        stim_rows=stim_rows,
        groups=groups,
        empty=empty,
        unlabelled=unlabelled,
    )


def url(session: models.Session, suffix: str = ".png") -> str:
    return f"/api/sessions/{session.id}/performance-plot{suffix}"


def test_labels_from_the_database(data: SimpleNamespace) -> None:
    from experiment.analysis import queries

    labels = queries.session_labels(data.stim)
    expected = SessionLabels.from_rows(data.stim_rows, data.groups)
    assert labels.fingerprint_parts() == expected.fingerprint_parts()
    got = {(p.group, p.instruction): (p.hits, p.trials) for p in behavior.photostim_effect(labels)}
    reference = loop_effect(data.stim_rows, data.groups)
    assert got == reference
    assert ("photostim", "left") in got  # the stim trial without events


def test_png_endpoint(data: SimpleNamespace, client: APIClient) -> None:
    response = client.get(url(data.plain))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    body = response.content
    assert body.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(body))
    image.load()
    assert image.size == (800, 500)
    assert "_behavior_performance.png" in response["Content-Disposition"]
    # a white background with a dark curve: not a blank image
    pixels = np.asarray(image.convert("L"))
    assert pixels.min() < 50 and np.median(pixels) > 200


def test_svg_endpoint_and_format_choices(data: SimpleNamespace, client: APIClient) -> None:
    response = client.get(url(data.plain, ".svg"))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 576 360"  # 8 × 5 in at 72 pt/in
    same = client.get(url(data.plain, "/"), {"format": "svg"})
    assert same["Content-Type"] == "image/svg+xml" and same.content == response.content
    by_accept = client.get(url(data.plain, "/"), HTTP_ACCEPT="image/svg+xml")
    assert by_accept["Content-Type"] == "image/svg+xml"
    default = client.get(url(data.plain, "/"))
    assert default["Content-Type"] == "image/png"
    assert client.get(url(data.plain, "/"), {"format": "png"}).content.startswith(PNG_SIGNATURE)
    assert client.get(url(data.plain, ".json")).status_code == 404
    assert client.get(url(data.plain, "/"), {"format": "pdf"}).status_code == 404


def test_plot_endpoint_requires_authentication(data: SimpleNamespace) -> None:
    anonymous = APIClient()
    for suffix in (".png", ".svg", "/"):
        response = anonymous.get(url(data.plain, suffix))
        assert response.status_code == 401, suffix
        assert response["Content-Type"] == "application/json"
        assert "credentials" in response.json()["detail"]


def test_session_without_behavior_trials_is_a_clear_404(
    data: SimpleNamespace, client: APIClient
) -> None:
    for session in (data.empty, data.unlabelled):
        response = client.get(url(session))
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert "no behavior trials" in response.json()["detail"]
    response = client.get("/api/sessions/999999999/performance-plot.svg")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_second_request_is_served_from_the_cache(data: SimpleNamespace, client: APIClient) -> None:
    with mock.patch.object(
        plots, "render_performance_figure", wraps=plots.render_performance_figure
    ) as render:
        first = client.get(url(data.plain))
        second = client.get(url(data.plain))
        assert render.call_count == 1
        assert second.content == first.content
        assert second["ETag"] == first["ETag"]
        client.get(url(data.plain, ".svg"))  # another format is another figure
        client.get(url(data.plain, ".svg"))
        assert render.call_count == 2
        # changed input: a new trial → a new version, drawn again
        add_trials(data.plain, [(500, "miss", "left", "no early", False, False)])
        third = client.get(url(data.plain))
        assert render.call_count == 3
        assert third["ETag"] != first["ETag"] and third.content != first.content
        # a label changed in place (same trial count and ids) is noticed too
        behavior_trial = models.BehaviorTrial.objects.get(trial__session=data.plain, trial__trial=1)
        behavior_trial.outcome = lookup(
            models.Outcome, "miss" if behavior_trial.outcome.name == "hit" else "hit"
        )
        behavior_trial.save()
        client.get(url(data.plain))
        assert render.call_count == 4


def test_etag_gives_304_without_rendering(data: SimpleNamespace, client: APIClient) -> None:
    first = client.get(url(data.plain))
    with mock.patch.object(plots, "render_performance_figure") as render:
        again = client.get(url(data.plain), HTTP_IF_NONE_MATCH=first["ETag"])
        assert again.status_code == 304 and again.content == b""
        assert render.call_count == 0


def test_photostim_session_gets_the_second_panel(data: SimpleNamespace, client: APIClient) -> None:
    figures = []
    original = plots.render_performance_figure

    def spy(plot_input: plots.PlotInput) -> object:
        figures.append(original(plot_input))
        return figures[-1]

    with mock.patch.object(plots, "render_performance_figure", side_effect=spy):
        for session in (data.plain, data.stim):
            response = client.get(url(session))
            assert response.status_code == 200
            assert Image.open(io.BytesIO(response.content)).size == (800, 500)
    plain_fig, stim_fig = figures
    assert [ax.get_title() for ax in plain_fig.axes] == [
        "Performance (ignore and free-water trials left out)"
    ]
    titles = [ax.get_title() for ax in stim_fig.axes]
    assert titles[1] == "Photostim effect"
    ticks = [t.get_text() for t in stim_fig.axes[1].get_xticklabels()]
    assert ticks == ["control", "left\nALM", "protocol\n2", "photostim"]
    assert stim_fig.axes[0].get_xlabel() == "Trial"
    assert "Proportion correct" in stim_fig.axes[0].get_ylabel()
    session = data.stim
    assert stim_fig.get_suptitle() == plots.session_title(session)
    assert f"session {session.session}" in stim_fig.get_suptitle()


def test_rendering_is_thread_safe(data: SimpleNamespace) -> None:
    plot_input = plots.plot_input(data.stim)
    serial = core_plots.figure_bytes(plots.render_performance_figure(plot_input), "png")

    def draw(_: int) -> bytes:
        return core_plots.figure_bytes(plots.render_performance_figure(plot_input), "png")

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert set(pool.map(draw, range(8))) == {serial}


def test_admin_html(data: SimpleNamespace) -> None:
    html = plots.performance_plot_html(data.stim)
    assert f'src="/api/sessions/{data.stim.id}/performance-plot.png"' in html
    assert f"/api/sessions/{data.stim.id}/performance-plot.svg" in html
    assert 'width="800" height="500"' in html
    empty = plots.performance_plot_html(data.empty)
    assert "No behavior trials" in empty and "<img" not in empty


def test_admin_user_sees_the_plot_through_the_session_login(
    data: SimpleNamespace, client: APIClient
) -> None:
    """The admin page's <img> is fetched with the admin's session cookie, not a token."""
    from django.test import Client

    staff = new_user(staff=True)
    browser = Client()
    browser.force_login(staff)
    response = browser.get(url(data.stim))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_cached_figure_renders_once_per_version_and_format(db: None) -> None:
    """The shared cache of ``mapsite.core.plots``: a key per (kind, id, version, format)."""
    from matplotlib.figure import Figure

    calls = []

    def render() -> Figure:
        calls.append(1)
        fig = Figure(figsize=(2, 1), dpi=50)
        fig.subplots().plot([0, 1], [0, len(calls)])
        return fig

    first = core_plots.cached_figure("test-kind", 1, "v1", "png", render)
    assert core_plots.cached_figure("test-kind", 1, "v1", "png", render) == first
    assert len(calls) == 1
    assert first.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(first)).size == (100, 50)
    core_plots.cached_figure("test-kind", 1, "v1", "svg", render)
    core_plots.cached_figure("test-kind", 1, "v2", "png", render)
    core_plots.cached_figure("test-kind", 2, "v1", "png", render)
    core_plots.cached_figure("other-kind", 1, "v1", "png", render)
    assert len(calls) == 5
    assert core_plots.fingerprint(1, [2, "a"]) == core_plots.fingerprint(1, [2, "a"])
    assert core_plots.fingerprint(1, [2, "a"]) != core_plots.fingerprint(1, [2, "b"])
    with pytest.raises(ValueError, match="unknown figure format"):
        core_plots.cached_figure("test-kind", 1, "v1", "pdf", render)


def test_session_admin_page_shows_the_plot(data: SimpleNamespace, django_user_model: type) -> None:
    from django.test import Client

    browser = Client()
    browser.force_login(django_user_model.objects.create_superuser("admin", "a@example.org", "pw"))
    response = browser.get(f"/admin/experiment/session/{data.stim.id}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    src = f"/api/sessions/{data.stim.id}/performance-plot.png"
    assert f'src="{src}"' in page
    image = browser.get(src)  # what the browser then fetches, with the admin's login
    assert image.status_code == 200 and image.content.startswith(PNG_SIGNATURE)
    empty = browser.get(f"/admin/experiment/session/{data.empty.id}/change/").content.decode()
    assert "No behavior trials in this session" in empty and "/performance-plot." not in empty
