from django.apps import AppConfig


class CcfConfig(AppConfig):
    name = "ccf"
