"""Lookup contents of schema ``lab``, exactly as the original lists them (spec §2).

Data migrations load these; tests compare the database against them.
"""

ANIMAL_STRAINS = [{"name": "pl56"}, {"name": "kj18"}]

ANIMAL_SOURCES = [
    {"name": n}
    for n in (
        "Jackson Labs",
        "Allen Institute",
        "Charles River",
        "MMRRC",
        "Taconic",
        "Other",
        "Janelia",
    )
]

VIRUS_SOURCES = [{"name": n} for n in ("Janelia", "UPenn", "Addgene", "UNC", "Other")]

SKULL_REFERENCES = [{"name": "Bregma"}, {"name": "Lambda"}]

BRAIN_AREAS = [
    {"name": "ALM", "description": "anterior lateral motor cortex"},
    {"name": "vS1", "description": "vibrissal primary somatosensory cortex ('barrel cortex')"},
    {"name": "Thalamus", "description": "Thalamus"},
    {"name": "Medulla", "description": "Medulla"},
    {"name": "Striatum", "description": "Striatum"},
    {"name": "Midbrain", "description": "Midbrain"},
    {"name": "vM1", "description": "vibrissal primary motor cortex"},
    {"name": "PL", "description": "prelimbic"},
    {"name": "IL", "description": "infralimbic"},
    {"name": "ACA", "description": "anterior cingulate"},
    {"name": "MOB", "description": "main olfactory bulb"},
    {"name": "RSP", "description": "retrosplenial"},
]

HEMISPHERES = [{"name": "left"}, {"name": "right"}, {"name": "both"}]

PHOTOSTIM_DEVICES = [
    {
        "name": "LaserGem473",
        "excitation_wavelength": "473.0",
        "description": "Laser Quantum Gem 473",
    },
    {
        "name": "LED470",
        "excitation_wavelength": "470.0",
        "description": "Thorlabs M470F3 fiber-coupled LED",
    },
    {
        "name": "OBIS470",
        "excitation_wavelength": "473.0",
        "description": "Coherent OBIS 473nm LX 50mW",
    },
]

WHISKERS = [{"name": n} for n in ("B1", "B2", "B3", "C1", "C2", "C3", "D1", "D2", "D3")]

PROBE_TYPES = [
    {"name": n}
    for n in (
        "silicon_probe",
        "tetrode_array",
        "neuropixels 1.0 - 3A",
        "neuropixels 1.0 - 3B",
        "neuropixels 2.0 - SS",
        "neuropixels 2.0 - MS",
    )
]

ALL = {
    "lab.AnimalStrain": ANIMAL_STRAINS,
    "lab.AnimalSource": ANIMAL_SOURCES,
    "lab.VirusSource": VIRUS_SOURCES,
    "lab.SkullReference": SKULL_REFERENCES,
    "lab.BrainArea": BRAIN_AREAS,
    "lab.Hemisphere": HEMISPHERES,
    "lab.PhotostimDevice": PHOTOSTIM_DEVICES,
    "lab.Whisker": WHISKERS,
    "lab.ProbeType": PROBE_TYPES,
}


def load(apps, labels: list[str] | None = None) -> None:  # noqa: ANN001 - migration registry
    """Load the lookups named by ``labels`` (default: all); each migration names its own."""
    from mapsite.core.lookups import load_lookup

    for label in labels or ALL:
        load_lookup(apps, label, ALL[label])


def load_probe_geometry(apps) -> None:  # noqa: ANN001
    """Electrodes of every Neuropixels probe type, generated as §2.1 describes."""
    from ephys.ingest.geometry import NEUROPIXELS_PROBE_TYPES, neuropixels_electrodes

    ProbeType = apps.get_model("lab.ProbeType")
    Electrode = apps.get_model("lab.ProbeTypeElectrode")
    for name in NEUROPIXELS_PROBE_TYPES:
        probe_type, _ = ProbeType.objects.get_or_create(name=name)
        if Electrode.objects.filter(probe_type=probe_type).exists():
            continue
        Electrode.objects.bulk_create(
            Electrode(
                probe_type=probe_type,
                electrode=int(e["electrode"]),
                shank=int(e["shank"]),
                shank_col=int(e["shank_col"]),
                shank_row=int(e["shank_row"]),
                x_coord=float(e["x_coord"]),
                y_coord=float(e["y_coord"]),
            )
            for e in neuropixels_electrodes(name)
        )
