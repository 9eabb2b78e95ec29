"""Lookup contents of schema ``ephys`` (spec §4.2)."""

UNIT_QUALITY_TYPES = [
    {"name": "good", "description": "single unit"},
    {"name": "ok", "description": "probably a single unit, but could be contaminated"},
    {"name": "multi", "description": "multi unit"},
    {"name": "all", "description": "all units"},
]

CELL_TYPES = [
    {"name": "Pyr", "description": "putative pyramidal"},
    {"name": "FS", "description": "fast spiking"},
    {
        "name": "not classified",
        "description": (
            "intermediate spike-width that falls between spike-width thresholds for FS or "
            "Putative pyramidal cells"
        ),
    },
    {"name": "all", "description": "all types"},
]

CLUSTERING_METHODS = [
    {"name": n} for n in ("jrclust_v3", "kilosort", "jrclust_v4", "kilosort2", "pykilosort2.5")
]

ALL = {
    "ephys.UnitQualityType": UNIT_QUALITY_TYPES,
    "ephys.CellType": CELL_TYPES,
    "ephys.ClusteringMethod": CLUSTERING_METHODS,
}


def load(apps) -> None:  # noqa: ANN001 - the migration's historical app registry
    from mapsite.core.lookups import load_lookup

    for label, rows in ALL.items():
        load_lookup(apps, label, rows)
