from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class CoreConfig(AppConfig):
    name = "mapsite.core"
    label = "core"
    verbose_name = "Core"


class MapAdminConfig(AdminConfig):
    """The admin, with the workflow-grouped index of mapsite.core.admin_site."""

    default_site = "mapsite.core.admin_site.MapAdminSite"
