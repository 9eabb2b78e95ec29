from django.apps import AppConfig


class PsthConfig(AppConfig):
    name = "psth"
    verbose_name = "Analyses (psth, unit results)"

    def ready(self) -> None:
        from . import signals

        signals.connect()
