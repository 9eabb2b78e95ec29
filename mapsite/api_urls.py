"""The API router: every app registers its viewsets in ``<app>/api/urls.py::register``."""

from importlib import import_module

from django.urls import path
from rest_framework.routers import DefaultRouter

from mapsite.core.api import ThrottledObtainAuthToken

router = DefaultRouter()
for app in ("lab", "experiment", "ephys", "psth", "ccf", "publication", "mapsite.pipeline"):
    try:
        module = import_module(f"{app}.api.urls")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"{app}.api", f"{app}.api.urls"):
            raise
        continue
    module.register(router)

urlpatterns = [path("token/", ThrottledObtainAuthToken.as_view(), name="api-token"), *router.urls]
