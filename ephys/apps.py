from django.apps import AppConfig


class EphysConfig(AppConfig):
    name = "ephys"
