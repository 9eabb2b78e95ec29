"""Shared admin base classes: the defaults every admin of the site starts from.

* :class:`BaseAdmin` — fast changelists (no full-table count, 50 rows a page), save buttons on
  top, a dash for empty values, per-request caching of small foreign-key choice lists, and a
  delete confirmation that stays readable when thousands of ingested rows would go with it.
* :class:`HistoryAdmin` — for models with ``history = HistoricalRecords()``: a History page per
  object (who, when, what changed), which also lists changes made to the rows edited in its
  inlines (a subject's strains, a session's comments, ...).
* :class:`ReadOnlyAdmin` / :class:`ReadOnlyInline` — for ingested tables (trials, events,
  photostim records). Nobody adds or edits those by hand: they are re-ingested. Only superusers
  may delete them (to clean up a bad ingest, usually by deleting the session); there is no bulk
  action, and row counts are capped so a changelist over millions of rows stays fast.
* :class:`LookupAdmin` — lookup tables, whose contents come from data migrations: read-only for
  everyone.
* :class:`AutocompleteFilter` — a list filter that picks one related object with the admin's
  autocomplete (select2) widget instead of listing every session in the sidebar.

Templates used here live in ``lab/templates/admin/map/`` (the lowest app of the site).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import (
    NestedObjects,
    get_last_value_from_parameters,
    quote,
    unquote,
)
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect, RelatedFieldWidgetWrapper
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import models, router
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from mapsite.core.models import Lookup

EMPTY = "–"
# Bookkeeping fields that change on every save; a diff listing them is noise.
HISTORY_EXCLUDED_FIELDS = ("created_at", "updated_at")
DELETE_LIST_LIMIT = 25  # objects listed per level on a delete confirmation page


class CappedCountPaginator(Paginator):
    """Count at most ``cap + 1`` rows, so paginating a table of millions never scans it all.

    ``SELECT COUNT(*) FROM (SELECT ... LIMIT cap+1)`` costs at most ``cap`` index entries. The
    ``pagination.html`` override of the app shows "more than <cap>" when :attr:`capped`.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        # Any cap+1 rows will do for a count: drop the ordering so no sort is needed.
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap


def deleted_objects_summary(
    objs: Sequence[models.Model],
    request: HttpRequest,
    admin_site: admin.AdminSite,
    limit: int = DELETE_LIST_LIMIT,
) -> tuple[list, dict, set, list]:
    """Django's ``get_deleted_objects``, listing at most ``limit`` objects per level.

    Deleting a session takes thousands of ingested rows with it; Django would format every one
    (a link, and ``str()``, which may query) into a page nobody reads. The counts per model
    (``model_count``) and the permission check still cover every row.
    """
    try:
        first = objs[0]
    except IndexError:
        return [], {}, set(), []
    collector = NestedObjects(using=router.db_for_write(first._meta.model), origin=objs)
    collector.collect(objs)

    perms_needed: set = set()
    for model, instances in collector.model_objs.items():
        if admin_site.is_registered(model) and instances:
            model_admin = admin_site.get_model_admin(model)
            if not model_admin.has_delete_permission(request, next(iter(instances))):
                perms_needed.add(model._meta.verbose_name)

    def fmt(obj: models.Model) -> str:
        opts = obj._meta
        if admin_site.is_registered(obj.__class__):
            try:
                url = reverse(
                    f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                    args=(quote(obj.pk),),
                )
            except NoReverseMatch:
                pass
            else:
                return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)
        return f"{capfirst(opts.verbose_name)}: {obj}"

    seen: set = set()

    def nested(items: Iterable[models.Model]) -> list:
        out: list = []
        items = [o for o in items if o not in seen]
        for obj in items[:limit]:
            seen.add(obj)
            out.append(fmt(obj))
            children = nested(collector.edges.get(obj, ()))
            if children:
                out.append(children)
        if len(items) > limit:
            out.append(f"… and {len(items) - limit} more (counted in the summary above)")
        return out

    to_delete = nested(collector.edges.get(None, ()))
    protected = [fmt(obj) for obj in list(collector.protected)[:limit]]
    model_count = {
        model._meta.verbose_name_plural: len(instances)
        for model, instances in collector.model_objs.items()
    }
    return to_delete, model_count, perms_needed, protected


class FormFieldMixin:
    """Form-field defaults shared by admins and inlines.

    * The choices of a plain foreign-key <select> are evaluated once per request: each inline
      form otherwise re-runs the choice query when it renders (N forms → N queries, plus the
      empty template form). Autocomplete and raw-id fields are left alone.
    * Next to a foreign key, only the "edit" and "add" icons are shown, and none at all for a
      lookup (read-only: nothing to add or edit). "Delete the related object" and "view" next
      to a form field invite mistakes and crowd narrow inline columns.
    """

    def formfield_for_dbfield(
        self, db_field: models.Field, request: HttpRequest | None, **kwargs: Any
    ) -> forms.Field | None:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)  # type: ignore[misc]
        widget = getattr(field, "widget", None)
        if isinstance(widget, RelatedFieldWidgetWrapper):
            widget.can_delete_related = False
            widget.can_view_related = False
            if issubclass(db_field.related_model, Lookup):
                widget.can_add_related = widget.can_change_related = False
        return field

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest | None, **kwargs: Any
    ) -> forms.Field | None:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        if (
            request is None
            or not isinstance(field, forms.ModelChoiceField)
            or isinstance(field.widget, AutocompleteSelect)
            or db_field.name in getattr(self, "raw_id_fields", ())
        ):
            return field
        cache = request.__dict__.setdefault("_map_choice_cache", {})
        key = (db_field.model._meta.label, db_field.name, str(field.queryset.query))
        if key not in cache:
            # One plain query (list(field.choices) would COUNT first, then open a cursor).
            iterator = field.iterator(field)
            blank = [("", field.empty_label)] if field.empty_label is not None else []
            cache[key] = blank + [iterator.choice(obj) for obj in field.queryset]
        field.choices = cache[key]
        return field


class MapChangeList(ChangeList):
    """Applies ``list_select_related`` even when ``get_queryset`` already selects related rows.

    Django skips ``list_select_related`` as soon as the admin's queryset has any
    ``select_related`` (e.g. the one ``str()`` needs for autocomplete), silently bringing back
    one query per row.
    """

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet:
        qs = super().get_queryset(request, exclude_parameters)
        extra = self.list_select_related
        if qs.query.select_related and isinstance(extra, (list, tuple)) and extra:
            qs = qs.select_related(*extra)
        return qs


class BaseAdmin(FormFieldMixin, admin.ModelAdmin):
    """Defaults for every admin of the site (see the module docstring)."""

    show_full_result_count = False
    list_per_page = 50
    list_max_show_all = 200
    save_on_top = True
    empty_value_display = EMPTY

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return MapChangeList

    def get_deleted_objects(
        self, objs: Iterable[models.Model], request: HttpRequest
    ) -> tuple[list, dict, set, list]:
        return deleted_objects_summary(objs, request, self.admin_site)

    @property
    def media(self) -> forms.Media:
        media = super().media
        if any(_is_autocomplete_filter(f) for f in self.list_filter):
            media += _autocomplete_media(self)
        return media


class BaseInlineMixin(FormFieldMixin):
    """Defaults for inlines: no blank extra rows unless asked for, compact number inputs, no
    per-row caption (tabular; its ``str()`` only repeats the parent), and
    ``inline_select_related`` to join what each row's ``str()`` and read-only fields read."""

    extra = 0
    inline_select_related: Sequence[str] = ()
    formfield_overrides = {
        models.DecimalField: {"widget": forms.NumberInput(attrs={"style": "width: 6em"})},
        models.FloatField: {"widget": forms.NumberInput(attrs={"style": "width: 6em"})},
    }

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)  # type: ignore[misc]
        return qs.select_related(*self.inline_select_related) if self.inline_select_related else qs


class TabularInline(BaseInlineMixin, admin.TabularInline):
    template = "admin/map/tabular.html"


class StackedInline(BaseInlineMixin, admin.StackedInline):
    pass


class ReadOnlyInline(TabularInline):
    """Rows of an ingested table shown under their parent, never edited there."""

    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


class HistoryContextHelper(HistoricalRecordContextHelper):
    """Show choice labels ("Female", not "F") and a dash for empty values in history diffs."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        value = super().prepare_delta_change_value(change, value)
        field = self.model._meta.get_field(change.field)
        if getattr(field, "choices", None) and not isinstance(value, list):
            value = dict(field.flatchoices).get(value, value)
        return EMPTY if value in (None, "") else value


class HistoryAdmin(SimpleHistoryAdmin, BaseAdmin):
    """Admin of a model with ``HistoricalRecords``: a History page showing who changed what.

    ``history_related`` names the history-tracked child models edited in this admin's inlines,
    with the field that points at this object, e.g. ``[(SubjectStrain, "subject")]``; their
    changes (additions and deletions included) are listed on this object's History page too.
    """

    object_history_template = "admin/map/object_history.html"
    object_history_list_template = "admin/map/object_history_list.html"
    history_list_per_page = 50
    history_related: Sequence[tuple[type[models.Model], str]] = ()
    history_related_limit = 100

    def get_historical_record_context_helper(
        self, request: HttpRequest, historical_record: Any
    ) -> HistoricalRecordContextHelper:
        return HistoryContextHelper(self.model, historical_record)

    def set_history_delta_changes(
        self,
        request: HttpRequest,
        historical_records: Sequence[Any],
        foreign_keys_are_objs: bool = True,
    ) -> None:
        """As simple_history does, without the timestamps that change on every save."""
        previous = None
        for current in historical_records:
            if previous is not None:
                delta = previous.diff_against(
                    current,
                    excluded_fields=HISTORY_EXCLUDED_FIELDS,
                    foreign_keys_are_objs=foreign_keys_are_objs,
                )
                helper = self.get_historical_record_context_helper(request, previous)
                previous.history_delta_changes = helper.context_for_delta_changes(delta)
            previous = current

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        context = {"related_history": self.related_history(request, unquote(object_id))}
        context.update(extra_context or {})
        return super().history_view(request, object_id, extra_context=context)

    def related_history(self, request: HttpRequest, object_id: str) -> list[dict]:
        """Changes to the inline rows of this object, newest first, with their diffs."""
        entries: list[dict] = []
        for model, fk_name in self.history_related:
            history_model = model.history.model
            fk_names = [
                f.name
                for f in model.history.model.tracked_fields
                if isinstance(f, models.ForeignKey) and f.name != fk_name
            ]
            pk_name = model._meta.pk.attname
            records = list(
                history_model.objects.filter(**{f"{fk_name}_id": object_id})
                .select_related("history_user", *fk_names)
                .order_by(pk_name, "history_date", "history_id")[: self.history_related_limit * 4]
            )
            previous_of: dict[Any, Any] = {}
            for record in records:
                key = getattr(record, pk_name)
                prev = previous_of.get(key)
                changes: list[dict] = []
                if prev is not None and record.history_type == "~":
                    delta = record.diff_against(
                        prev, excluded_fields=HISTORY_EXCLUDED_FIELDS, foreign_keys_are_objs=True
                    )
                    changes = HistoryContextHelper(model, record).context_for_delta_changes(delta)
                previous_of[key] = record
                entries.append(
                    {
                        "what": model._meta.verbose_name,
                        "object": _history_label(record, fk_name),
                        "record": record,
                        "changes": changes,
                    }
                )
        entries.sort(key=lambda e: e["record"].history_date, reverse=True)
        return entries[: self.history_related_limit]


def _history_label(record: Any, skip_fk: str) -> str:
    """A short description of a child row from its own fields (no query, no parent repeated)."""
    parts = []
    for field in record.tracked_fields:
        if field.name in (skip_fk, *HISTORY_EXCLUDED_FIELDS) or field.primary_key:
            continue
        value = getattr(record, field.name, None)
        if value in (None, ""):
            continue
        parts.append(str(value))
        if len(parts) == 3:
            break
    return ", ".join(parts) or f"#{record.pk}"


class ReadOnlyAdmin(BaseAdmin):
    """Ingested data: viewable and filterable, never added or edited by hand (it is re-ingested).

    Only superusers may delete (to clean up a bad ingest — usually by deleting the session, which
    needs this permission for the rows that go with it). Bulk actions are off.
    """

    actions = None
    paginator = CappedCountPaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_active and request.user.is_superuser


class SessionScopedMixin:
    """A changelist of per-session rows (trials, events), usually looked at one session at a time.

    Filtered by session (``session_filter_param`` present), rows come in ``session_ordering``
    (e.g. trial number) and the session column, the same on every row, is left out. Unfiltered,
    they come in ``ordering``, which must be served by an index (e.g. ``-pk``) so that the first
    page of a table of millions needs no sort.
    """

    session_filter_param = "session__id__exact"
    session_ordering: Sequence[str] = ()

    def _one_session(self, request: HttpRequest) -> bool:
        return self.session_filter_param in request.GET

    def get_ordering(self, request: HttpRequest) -> Sequence[str]:
        if self.session_ordering and self._one_session(request):
            return self.session_ordering
        return super().get_ordering(request)  # type: ignore[misc]

    def get_list_display(self, request: HttpRequest) -> Sequence[str]:
        columns = super().get_list_display(request)  # type: ignore[misc]
        if self._one_session(request):
            return [c for c in columns if c != "session"]
        return columns


class LookupAdmin(ReadOnlyAdmin):
    """A lookup table: contents come from the data migrations, so nobody edits them here."""

    list_display = ["name", "description"]
    search_fields = ["name", "description"]
    paginator = Paginator
    list_per_page = 100

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False


# --- Autocomplete list filter --------------------------------------------------------------------


class AutocompleteFilter(admin.FieldListFilter):
    """Filter by one related object chosen with the admin's autocomplete (select2) widget.

    Usage: ``list_filter = [("session", AutocompleteFilter)]`` (any foreign-key path, e.g.
    ``("trial__session", AutocompleteFilter)``). The query parameter is the same as Django's
    related filter (``session__id__exact=<pk>``), so links built elsewhere keep working. The
    related model's admin needs ``search_fields``.
    """

    template = "admin/map/autocomplete_filter.html"

    def __init__(
        self,
        field: models.ForeignKey,
        request: HttpRequest,
        params: dict,
        model: type[models.Model],
        model_admin: admin.ModelAdmin,
        field_path: str,
    ) -> None:
        self.lookup_kwarg = f"{field_path}__{field.target_field.name}__exact"
        self.lookup_val = get_last_value_from_parameters(params, self.lookup_kwarg)
        super().__init__(field, request, params, model, model_admin, field_path)
        remote = field.remote_field.model
        self.title = remote._meta.verbose_name
        self.source_opts = field.model._meta  # the model holding the FK: the autocomplete view
        self.field_name = field.name  # checks this field and searches its target's admin
        self.selected_label = ""
        if self.lookup_val:
            remote_admin = model_admin.admin_site._registry.get(remote)
            qs = remote_admin.get_queryset(request) if remote_admin else remote._default_manager
            try:
                self.selected_label = str(qs.get(**{field.target_field.name: self.lookup_val}))
            except (remote.DoesNotExist, ValueError, TypeError, ValidationError):
                self.selected_label = f"#{self.lookup_val} (not found)"
        self.clear_query_string = "?"

    def expected_parameters(self) -> list[str]:
        return [self.lookup_kwarg]

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: Any) -> Iterable[dict]:
        self.clear_query_string = changelist.get_query_string(remove=[self.lookup_kwarg])
        yield {
            "selected": self.lookup_val is None,
            "query_string": self.clear_query_string,
            "display": "All",
        }
        if self.lookup_val is not None:
            yield {
                "selected": True,
                "query_string": changelist.get_query_string({self.lookup_kwarg: self.lookup_val}),
                "display": self.selected_label,
            }


def _is_autocomplete_filter(item: Any) -> bool:
    return (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[1], type)
        and issubclass(item[1], AutocompleteFilter)
    )


def _autocomplete_media(model_admin: admin.ModelAdmin) -> forms.Media:
    """select2 and Django's autocomplete.js, exactly as an autocomplete form field loads them."""
    return AutocompleteSelect(None, model_admin.admin_site).media


def admin_link(obj: models.Model | None, text: str | None = None) -> str:
    """An HTML link to ``obj``'s admin change page (or its text if there is none)."""
    if obj is None:
        return EMPTY
    opts = obj._meta
    try:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return str(text if text is not None else obj)
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)
