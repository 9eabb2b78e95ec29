"""The admin site, with its index grouped by the lab's workflow rather than by Django app."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# (section title, [(app_label, ModelName), ...]) — the order lab staff work in.
WORKFLOW_SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Animals",
        [
            ("lab", "Subject"),
            ("lab", "WaterRestriction"),
            ("lab", "Surgery"),
            ("lab", "ModifiedGene"),
        ],
    ),
    (
        "Sessions and behavior",
        [
            ("experiment", "Session"),
            ("experiment", "SessionTrial"),
            ("experiment", "BehaviorTrial"),
            ("experiment", "TrialEvent"),
            ("experiment", "ActionEvent"),
            ("experiment", "Photostim"),
            ("experiment", "PhotostimEvent"),
            ("experiment", "MultiTargetLickingBlock"),
            ("experiment", "Project"),
        ],
    ),
    (
        "Electrophysiology",
        [
            ("ephys", "ProbeInsertion"),
            ("ephys", "Unit"),
            ("ephys", "ProbeInsertionQuality"),
            ("ephys", "UnitComment"),
            ("ephys", "ArchivedClustering"),
            ("ephys", "EphysRecording"),
            ("ephys", "SortedOutput"),
        ],
    ),
    (
        "Analyses",
        [("psth", "UnitAnalysis"), ("psth", "InsertionAnalysis"), ("psth", "TrialCondition")],
    ),
    ("Pipeline", [("pipeline", "Job")]),
    (
        "Lab resources",
        [
            ("lab", "Person"),
            ("lab", "Rig"),
            ("lab", "Virus"),
            ("lab", "Serotype"),
            ("lab", "Probe"),
        ],
    ),
    (
        "Users and access",
        [("auth", "User"), ("auth", "Group"), ("authtoken", "TokenProxy")],
    ),
]


class MapAdminSite(admin.AdminSite):
    site_header = "MAP-ephys data platform"
    site_title = "MAP-ephys"
    index_title = "Daily data entry and pipeline status"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        app_list = super().get_app_list(request, app_label)
        if app_label:  # an app's own page keeps Django's layout
            return app_list
        models = {
            (app["app_label"], m["object_name"]): m for app in app_list for m in app["models"]
        }
        placed: set[tuple[str, str]] = set()
        sections = []
        for title, members in WORKFLOW_SECTIONS:
            entries = [models[k] for k in members if k in models]
            placed.update(k for k in members if k in models)
            if entries:
                sections.append(_section(title, entries))
        # Everything not named above (lookups, reference tables, auth) stays reachable.
        rest: dict[str, list[dict]] = {}
        urls: dict[str, str] = {}
        for app in app_list:
            left = [m for m in app["models"] if (app["app_label"], m["object_name"]) not in placed]
            if left:
                rest[app["name"]] = left
                urls[app["name"]] = app["app_url"]
        for name, entries in rest.items():
            sections.append(_section(f"{name}: lookups and reference", entries, urls[name]))
        return sections


def _section(title: str, entries: list[dict], app_url: str = "") -> dict:
    return {
        "name": title,
        "app_label": title.lower().replace(" ", "-").replace(":", ""),
        "app_url": app_url,
        "has_module_perms": True,
        "models": entries,
    }


class MapAdminConfig(AdminConfig):
    """The admin app, with MapAdminSite as its default site."""

    default_site = "mapsite.core.admin_site.MapAdminSite"
