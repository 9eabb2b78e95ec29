"""Pipeline steps of schema ``experiment``: behavior ingest (§14.1) and PhotostimBrainRegion
(§3.5)."""

from collections.abc import Iterable

from django.db.models import QuerySet

from mapsite.pipeline.steps import pipeline_step, register_discovery

from .ingest import discovery, service
from .models import BehaviorFile, Laterality, Photostim, PhotostimBrainRegion

BEHAVIOR_INGEST = "BehaviorIngest"


def behavior_files_to_ingest() -> QuerySet[BehaviorFile]:
    """Files found on the roots, not ingested, and not flagged as changed after an ingest."""
    return BehaviorFile.objects.filter(session__isnull=True, changed_after_ingest__isnull=True)


@register_discovery("behavior files")
def scan_behavior_roots() -> discovery.ScanReport:
    return discovery.scan_behavior_roots()


@pipeline_step(
    BEHAVIOR_INGEST,
    key_model=BehaviorFile,
    key_source=behavior_files_to_ingest,
    queue="ingest",
    soft_time_limit=15 * 60,
)
def ingest_behavior_file(behavior_file: BehaviorFile) -> None:
    """Bpod .mat file → session, trials, labels, events and photostim records (§14.1)."""
    service.ingest_behavior_file(behavior_file)


class PhotostimRegionError(ValueError):
    """The locations of a photostim protocol do not name one area and one side."""


def photostims_with_locations() -> QuerySet[Photostim]:
    return Photostim.objects.filter(locations__isnull=False).distinct()


def laterality_from_ml(ml_locations: list[float]) -> str:
    """left / right / both from the ML coordinates (right positive); all zero is ambiguous."""
    if any(ml > 0 for ml in ml_locations) and any(ml < 0 for ml in ml_locations):
        return Laterality.BOTH
    if ml_locations and all(ml > 0 for ml in ml_locations):
        return Laterality.RIGHT
    if ml_locations and all(ml < 0 for ml in ml_locations):
        return Laterality.LEFT
    raise PhotostimRegionError(
        f"ambiguous laterality: ML coordinates {ml_locations} are all 0 (on the midline)"
    )


def photostims_of_ingested_file(upstream: str, behavior_file_id: int) -> Iterable[int]:
    return Photostim.objects.filter(session__behavior_files=behavior_file_id).values_list(
        "pk", flat=True
    )


@pipeline_step(
    "PhotostimBrainRegion",
    key_model=Photostim,
    key_source=photostims_with_locations,
    depends_on=(BEHAVIOR_INGEST,),
    keys_after=photostims_of_ingested_file,
)
def make_photostim_brain_region(photostim: Photostim) -> None:
    """The one brain area and the laterality a photostim protocol targets (spec §3.5)."""
    locations = list(photostim.locations.select_related("brain_area"))
    areas = sorted({loc.brain_area.name for loc in locations})
    if len(areas) != 1:
        raise PhotostimRegionError(
            f"photostim {photostim.photo_stim} of session {photostim.session} targets several "
            f"brain areas ({', '.join(areas)}); one protocol must target one area"
        )
    laterality = laterality_from_ml([float(loc.ml_location) for loc in locations])
    PhotostimBrainRegion.objects.create(
        photostim=photostim,
        stim_brain_area=locations[0].brain_area,
        stim_laterality=laterality,
    )
