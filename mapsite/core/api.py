"""Shared REST API building blocks: base viewsets (permissions and pagination live beside)."""

from django.db import models
from rest_framework import viewsets

from .pagination import CappedPageNumberPagination
from .permissions import IsAuthenticatedReadStaffWrite

__all__ = ["CappedPageNumberPagination", "IsAuthenticatedReadStaffWrite"]


class MapReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """Base for tables written by ingest/pipeline only (read-only over the API)."""


class MapModelViewSet(viewsets.ModelViewSet):
    """Base for manual-entry tables: staff can create/update/delete over the API."""


def lookup_queryset(model: type[models.Model]) -> models.QuerySet:
    return model.objects.all().order_by("name")
