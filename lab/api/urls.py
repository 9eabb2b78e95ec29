"""Routes of schema ``lab`` under /api/ (kebab-case plural prefixes)."""

from rest_framework.routers import BaseRouter

from . import views

ROUTES = [
    ("people", views.PersonViewSet, "person"),
    ("rigs", views.RigViewSet, "rig"),
    ("subjects", views.SubjectViewSet, "subject"),
    ("water-restrictions", views.WaterRestrictionViewSet, "waterrestriction"),
    ("subject-strains", views.SubjectStrainViewSet, "subjectstrain"),
    ("subject-gene-modifications", views.SubjectGeneModificationViewSet, "subjectgenemod"),
    ("modified-genes", views.ModifiedGeneViewSet, "modifiedgene"),
    ("serotypes", views.SerotypeViewSet, "serotype"),
    ("viruses", views.VirusViewSet, "virus"),
    ("virus-notes", views.VirusNoteViewSet, "virusnote"),
    ("surgeries", views.SurgeryViewSet, "surgery"),
    ("virus-injections", views.VirusInjectionViewSet, "virusinjection"),
    ("surgery-procedures", views.SurgeryProcedureViewSet, "surgeryprocedure"),
    ("probes", views.ProbeViewSet, "probe"),
    ("probe-type-electrodes", views.ProbeTypeElectrodeViewSet, "probetypeelectrode"),
    ("electrode-configs", views.ElectrodeConfigViewSet, "electrodeconfig"),
    ("electrode-config-electrodes", views.ElectrodeConfigElectrodeViewSet, "configelectrode"),
    # Lookups (read-only, addressed by name)
    ("animal-strains", views.AnimalStrainViewSet, "animalstrain"),
    ("animal-sources", views.AnimalSourceViewSet, "animalsource"),
    ("virus-sources", views.VirusSourceViewSet, "virussource"),
    ("skull-references", views.SkullReferenceViewSet, "skullreference"),
    ("brain-areas", views.BrainAreaViewSet, "brainarea"),
    ("hemispheres", views.HemisphereViewSet, "hemisphere"),
    ("photostim-devices", views.PhotostimDeviceViewSet, "photostimdevice"),
    ("whiskers", views.WhiskerViewSet, "whisker"),
    ("probe-types", views.ProbeTypeViewSet, "probetype"),
]


def register(router: BaseRouter) -> None:
    for prefix, viewset, basename in ROUTES:
        router.register(prefix, viewset, basename=f"lab-{basename}")
