"""The PhotostimBrainRegion step (spec §3.5), run through the pipeline: queue_missing + eager.

Rule: all locations of a protocol share one brain area (else error); laterality from ML
(right positive): some >0 and some <0 → both; all >0 → right; all <0 → left; all 0 → error.
"""

from decimal import Decimal

import pytest

from experiment.models import Photostim, PhotostimBrainRegion
from experiment.steps import PhotostimRegionError, laterality_from_ml
from experiment.tests.factories import PhotostimFactory, PhotostimLocationFactory, SessionFactory
from lab.models import BrainArea
from mapsite.pipeline import runner
from mapsite.pipeline.models import Job, JobStatus

pytestmark = pytest.mark.django_db

STEP = "PhotostimBrainRegion"


def photostim(*locations: tuple[str, str], photo_stim: int = 4) -> Photostim:
    """A photostim protocol with locations given as (brain area, ML µm)."""
    stim = PhotostimFactory(session=SessionFactory(), photo_stim=photo_stim)
    for i, (area, ml) in enumerate(locations):
        PhotostimLocationFactory(
            photostim=stim,
            brain_area=BrainArea.objects.get(name=area),
            ml_location=Decimal(ml),
            ap_location=Decimal("2500.00") + i,  # distinct locations
        )
    return stim


@pytest.fixture
def populate(django_capture_on_commit_callbacks):
    """Queue the missing keys of the step; the commit runs them (eager Celery)."""

    def run() -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return runner.queue_missing([STEP])

    return run


def job_of(stim: Photostim) -> Job:
    return Job.objects.get(step=STEP, key_id=stim.pk)


@pytest.mark.parametrize(
    ("mls", "expected"),
    [
        (["1500.00"], "right"),
        (["1500.00", "1200.00", "0.01"], "right"),
        (["-1500.00"], "left"),
        (["-1500.00", "-900.00"], "left"),
        (["-1500.00", "1500.00"], "both"),
        (["-1500.00", "0.00", "1500.00"], "both"),
    ],
)
def test_one_area_gives_area_and_laterality(populate, mls, expected):
    stim = photostim(*[("vS1", ml) for ml in mls])
    assert populate() == {STEP: 1}
    region = PhotostimBrainRegion.objects.get(photostim=stim)
    assert region.stim_brain_area.name == "vS1"
    assert region.stim_laterality == expected
    assert job_of(stim).status == JobStatus.DONE


def test_several_protocols_in_one_run(populate):
    left = photostim(("ALM", "-1500.00"))
    right = photostim(("ALM", "1500.00"), photo_stim=5)
    both = photostim(("Thalamus", "-800.00"), ("Thalamus", "800.00"), photo_stim=6)
    assert populate() == {STEP: 3}
    got = dict(PhotostimBrainRegion.objects.values_list("photostim_id", "stim_laterality"))
    assert got == {left.pk: "left", right.pk: "right", both.pk: "both"}
    assert PhotostimBrainRegion.objects.get(photostim=both).stim_brain_area.name == "Thalamus"


def test_mixed_areas_is_a_job_error_and_writes_nothing(populate):
    stim = photostim(("ALM", "-1500.00"), ("vS1", "-1500.00"))
    populate()
    job = job_of(stim)
    assert job.status == JobStatus.ERROR
    assert job.message.startswith("PhotostimRegionError: ")
    assert "several brain areas (ALM, vS1)" in job.message
    assert "one protocol must target one area" in job.message
    assert f"photostim {stim.photo_stim}" in job.message
    assert "Traceback" in job.traceback
    assert not PhotostimBrainRegion.objects.filter(photostim=stim).exists()


def test_ml_all_zero_is_ambiguous(populate):
    stim = photostim(("ALM", "0.00"), ("ALM", "0.00"))
    populate()
    job = job_of(stim)
    assert job.status == JobStatus.ERROR
    assert "ambiguous" in job.message
    assert not PhotostimBrainRegion.objects.filter(photostim=stim).exists()


def test_ml_zero_and_one_side_is_an_error(populate):
    """Not covered by the rule (the original fails its sanity assertion): no row is written."""
    stim = photostim(("ALM", "0.00"), ("ALM", "1500.00"))
    populate()
    assert job_of(stim).status == JobStatus.ERROR
    assert not PhotostimBrainRegion.objects.filter(photostim=stim).exists()


def test_an_error_does_not_stop_the_other_keys(populate):
    bad = photostim(("ALM", "0.00"))
    good = photostim(("ALM", "-1500.00"), photo_stim=5)
    populate()
    assert job_of(bad).status == JobStatus.ERROR
    assert job_of(good).status == JobStatus.DONE
    assert PhotostimBrainRegion.objects.get(photostim=good).stim_laterality == "left"


def test_photostims_without_locations_are_not_keys(populate):
    bare = PhotostimFactory(session=SessionFactory())
    assert populate() == {STEP: 0}
    assert not Job.objects.filter(step=STEP, key_id=bare.pk).exists()
    # Its locations arrive later: now it is a key.
    PhotostimLocationFactory(photostim=bare, ml_location=Decimal("700.00"))
    assert populate() == {STEP: 1}
    assert PhotostimBrainRegion.objects.get(photostim=bare).stim_laterality == "right"


def test_each_key_is_made_once(populate):
    stim = photostim(("ALM", "1500.00"), ("ALM", "1600.00"))
    assert populate() == {STEP: 1}
    assert populate() == {STEP: 0}
    assert PhotostimBrainRegion.objects.filter(photostim=stim).count() == 1
    assert job_of(stim).attempts == 1


def test_a_fixed_error_is_made_on_retry(django_capture_on_commit_callbacks, populate):
    stim = photostim(("ALM", "-1500.00"), ("vS1", "-1500.00"))
    populate()
    job = job_of(stim)
    assert job.status == JobStatus.ERROR
    stim.locations.filter(brain_area__name="vS1").delete()  # a person corrects the entry
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.retry([job.pk]) == 1
    job.refresh_from_db()
    assert job.status == JobStatus.DONE
    assert PhotostimBrainRegion.objects.get(photostim=stim).stim_laterality == "left"


@pytest.mark.parametrize(
    ("mls", "expected"),
    [([1.0], "right"), ([-1.0], "left"), ([-1.0, 1.0], "both"), ([0.0, -2.0, 3.0], "both")],
)
def test_laterality_from_ml(mls, expected):
    assert laterality_from_ml(mls) == expected


@pytest.mark.parametrize("mls", [[0.0], [0.0, 0.0], [], [0.0, 1.0]])
def test_laterality_from_ml_refuses(mls):
    with pytest.raises(PhotostimRegionError):
        laterality_from_ml(mls)
