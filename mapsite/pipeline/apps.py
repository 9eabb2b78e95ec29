from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "mapsite.pipeline"
    label = "pipeline"
    verbose_name = "Pipeline jobs"

    def ready(self) -> None:
        # Steps live in each app's ``steps`` module; importing them registers them.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("steps")
