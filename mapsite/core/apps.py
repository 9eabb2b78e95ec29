from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mapsite.core"
    label = "core"
    verbose_name = "Core"
