"""Pipeline steps of schema ``experiment`` (Computed tables of §3.5)."""

from django.db.models import QuerySet

from mapsite.pipeline.steps import pipeline_step

from .models import Laterality, Photostim, PhotostimBrainRegion


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


@pipeline_step(
    "PhotostimBrainRegion",
    key_model=Photostim,
    key_source=photostims_with_locations,
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
