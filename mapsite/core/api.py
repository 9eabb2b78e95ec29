"""Shared REST API building blocks: base viewsets, serializers and filters of every app's API.

Each app's ``api/`` package builds on these so that every endpoint behaves alike: the same
permission (``IsAuthenticatedReadStaffWrite``, from settings), capped pagination, whitelisted
filters and ordering, OpenAPI tags per app, model constraints checked before a write (400, not
500), and 409 when a delete or write would break a foreign key or a unique key.
"""

import copy
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException
from rest_framework.throttling import AnonRateThrottle

from .pagination import CappedPageNumberPagination
from .permissions import IsAuthenticatedReadStaffWrite

__all__ = [
    "NAME_REGEX",
    "CappedPageNumberPagination",
    "Conflict",
    "ConstraintCheckedSerializer",
    "IdFilter",
    "IsAuthenticatedReadStaffWrite",
    "LookupSerializer",
    "MapModelViewSet",
    "MapReadOnlyViewSet",
    "MapViewSet",
    "NameChoiceFilter",
    "NameMultipleChoiceFilter",
    "ReadOnlyModelSerializer",
    "ThrottledObtainAuthToken",
    "lookup_queryset",
    "lookup_viewset",
]

# Natural keys that are names may contain "/" ("N/A", "AAV2/1"): match the rest of the path.
NAME_REGEX = r".+"


class Conflict(APIException):
    """A write that the database refuses because of other rows (protected FK, duplicate key)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The change conflicts with other data."
    default_code = "conflict"


class TaggedAutoSchema(AutoSchema):
    """OpenAPI tags per app (``lab``, ``experiment``, …) instead of one tag per URL prefix."""

    def get_tags(self) -> list[str]:
        tags = getattr(self.view, "api_tags", None)
        if tags:
            return list(tags)
        queryset = getattr(self.view, "queryset", None)
        if queryset is not None:
            return [queryset.model._meta.app_label]
        return super().get_tags()


class _MapViewSetMixin:
    """What every MAP viewset shares; subclasses must whitelist ``ordering_fields`` themselves."""

    schema = TaggedAutoSchema()
    api_tags: tuple[str, ...] = ()
    # Never fall back to DRF's "every serializer field is orderable".
    ordering_fields: tuple[str, ...] | list[str] = ()


class MapReadOnlyViewSet(_MapViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Base for tables written by ingest/pipeline only (read-only over the API)."""


class MapViewSet(_MapViewSetMixin, viewsets.ViewSet):
    """Base for endpoints that are not a table (summaries): no filters, no pagination."""

    filter_backends: tuple = ()
    pagination_class = None


class MapModelViewSet(_MapViewSetMixin, viewsets.ModelViewSet):
    """Base for manual-entry tables: staff can create/update/delete over the API.

    Writes run in a savepoint so that a database refusal (a protected foreign key, a unique key
    lost to a concurrent write) becomes a 409 answer instead of a 500 and a broken transaction.
    History rows record the API user: DRF sets ``request._request.user`` on authentication,
    which django-simple-history's request middleware reads.
    """

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        self._guarded(serializer.save)

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        self._guarded(serializer.save)

    def perform_destroy(self, instance: models.Model) -> None:
        self._guarded(instance.delete)

    @staticmethod
    def _guarded(action: Any) -> None:
        try:
            with transaction.atomic():
                action()
        except (models.ProtectedError, models.RestrictedError) as exc:
            blocking = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
            raise Conflict(f"Still referenced by {', '.join(blocking)}; delete those first.")
        except IntegrityError as exc:
            raise Conflict(f"The database refused the change: {exc}".splitlines()[0])


class ConstraintCheckedSerializer(serializers.ModelSerializer):
    """A ModelSerializer that checks the model's constraints before saving.

    DRF validates unique constraints on the fields it sees but not check constraints; without
    this a violated ``CheckConstraint`` would surface as an IntegrityError (HTTP 500).
    """

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model = self.Meta.model
        candidate = copy.copy(self.instance) if self.instance is not None else model()
        for name, value in attrs.items():
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if field.concrete and not field.many_to_many:
                setattr(candidate, name, value)
        try:
            candidate.validate_constraints()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc))
        return attrs


class ReadOnlyModelSerializer(serializers.ModelSerializer):
    """For tables that are read-only over the API: every field is documented as read-only."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields


class LookupSerializer(ReadOnlyModelSerializer):
    """A lookup row: its name is its key."""

    class Meta:
        model: type[models.Model] | None = None
        fields = ["name", "description"]


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """An integer key (database id, subject id, trial number); typed as integer in OpenAPI."""


class NameMultipleChoiceFilter(filters.ModelMultipleChoiceFilter):
    """Lookup rows by name, repeatable (``?outcome=hit&outcome=miss``); unknown names are a 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("to_field_name", "name")
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)

    def get_filter_predicate(self, v: models.Model) -> dict[str, Any]:
        # Compare the relation with the row itself; django-filter would compare the relation
        # (an id) with the row's name.
        return {self.field_name: v}


class NameChoiceFilter(filters.ModelChoiceFilter):
    """One row by its natural key (``name`` unless told); unknown keys are a 400."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("to_field_name", "name")
        super().__init__(*args, **kwargs)


def lookup_queryset(model: type[models.Model]) -> models.QuerySet:
    return model.objects.all().order_by("name")


def lookup_viewset(
    model: type[models.Model],
    serializer_class: type[serializers.BaseSerializer] | None = None,
    *,
    select_related: tuple[str, ...] = (),
    tag: str | None = None,
) -> type[MapReadOnlyViewSet]:
    """A read-only viewset over a lookup table, addressed by name (``/api/outcomes/hit/``)."""
    if serializer_class is None:
        meta = type("Meta", (LookupSerializer.Meta,), {"model": model})
        serializer_class = type(
            f"{model.__name__}Serializer",
            (LookupSerializer,),
            {"Meta": meta, "__module__": model.__module__},
        )
    attrs = {
        "__module__": model.__module__.replace(".models", ".api.views"),
        "__doc__": f"{model._meta.verbose_name_plural.capitalize()} (a lookup table, by name).",
        "queryset": lookup_queryset(model).select_related(*select_related),
        "serializer_class": serializer_class,
        "lookup_field": "name",
        "lookup_value_regex": NAME_REGEX,
        "ordering_fields": ("name",),
        "ordering": ("name",),
        "api_tags": (tag or model._meta.app_label,),
    }
    return type(f"{model.__name__}ViewSet", (MapReadOnlyViewSet,), attrs)


class ThrottledObtainAuthToken(ObtainAuthToken):
    """``POST username + password → token``, throttled per client address.

    DRF's ``obtain_auth_token`` sets ``throttle_classes = ()``, so password guessing against it
    is unlimited; this one applies the anonymous rate (``DEFAULT_THROTTLE_RATES["anon"]``).
    """

    throttle_classes = (AnonRateThrottle,)
