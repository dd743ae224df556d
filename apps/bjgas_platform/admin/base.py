"""The desk's base admin classes: every row they show or accept goes through scope.

A scoped model's admin reads its rows from `Model.objects.visible_to(user)`, so lists,
forms, search, autocomplete, deletes and actions see only what the user may see. A record
outside the user's scope answers 404 exactly like a record that does not exist. Choices of
foreign keys and many-to-many fields are limited the same way when the related model is
scoped; a value already on the record stays selectable so that saving does not fail.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import Q
from django.forms.models import ModelChoiceField, ModelMultipleChoiceField
from django.http import Http404
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.contrib.filters.admin import RelatedDropdownFilter

NOT_FOUND = _("The record does not exist or is outside your scope.")


def is_scoped(model) -> bool:
    """Whether a model's rows are chosen by scope rules (its manager has `visible_to`)."""
    return hasattr(model._default_manager, "visible_to")


def keep_current_choices(form) -> None:
    """Let a bound form keep the related records already on its instance among the choices."""
    instance = getattr(form, "instance", None)
    if instance is None or instance.pk is None:
        return
    for name, field in form.fields.items():
        if not isinstance(field, ModelChoiceField) or field.queryset is None:
            continue
        current = _current_related_ids(instance, name, field)
        if not current:
            continue
        qs = field.queryset
        model = qs.model
        field.queryset = model._default_manager.filter(
            Q(pk__in=qs.values("pk")) | Q(pk__in=current)
        ).order_by(*qs.query.order_by)


def _current_related_ids(instance, name: str, field) -> list:
    if isinstance(field, ModelMultipleChoiceField):
        try:
            return list(getattr(instance, name).values_list("pk", flat=True))
        except (AttributeError, ValueError):
            return []
    value = getattr(instance, f"{name}_id", None)
    return [value] if value is not None else []


class ScopedFieldsMixin:
    """Limit related-field choices to the records the user may see."""

    def get_field_queryset(self, db, db_field, request):
        queryset = super().get_field_queryset(db, db_field, request)
        related = db_field.remote_field.model
        if not is_scoped(related):
            return queryset
        if queryset is None:
            queryset = related._default_manager.using(db).all()
        return queryset.visible_to(request.user)


class ScopedAdminMixin(ScopedFieldsMixin):
    """Read every row through `visible_to(user)`; out-of-scope records answer 404."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if hasattr(queryset, "visible_to"):
            queryset = queryset.visible_to(request.user)
        return queryset

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects with a message naming the id; a 404 tells nothing.
        raise Http404(NOT_FOUND)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.require_object(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self.require_object(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self.require_object(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def require_object(self, request, object_id: str):
        """Return the record with `object_id` if the user may see it; else raise 404."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(NOT_FOUND)
        return obj

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return _with_current_choices(form)


class ScopedInlineMixin(ScopedFieldsMixin):
    """An inline whose rows and choices go through scope."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if hasattr(queryset, "visible_to"):
            queryset = queryset.visible_to(request.user)
        return queryset

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _with_current_choices(formset.form)
        return formset


def _with_current_choices(form_class):
    """Return a subclass of `form_class` that keeps the instance's current related values."""

    def __init__(self, *args, **kwargs):
        form_class.__init__(self, *args, **kwargs)
        keep_current_choices(self)

    return type(form_class)(form_class.__name__, (form_class,), {"__init__": __init__})


class DeskAdmin(ScopedAdminMixin, ModelAdmin):
    """Admin of a model without change history."""

    list_per_page = 50
    warn_unsaved_form = True


class HistoryDeskAdmin(ScopedAdminMixin, SimpleHistoryAdmin, ModelAdmin):
    """Admin of a model with django-simple-history's change history."""

    list_per_page = 50
    warn_unsaved_form = True

    # ScopedAdminMixin.history_view checks the live row first: simple_history would fall
    # back to the last historical copy of a row it cannot find, which may be out of scope.

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self.require_object(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)


class DeskTabularInline(ScopedInlineMixin, TabularInline):
    extra = 0


class DeskStackedInline(ScopedInlineMixin, StackedInline):
    extra = 0


class ScopedRelatedFilter(RelatedDropdownFilter):
    """A foreign-key filter offering only the values found on rows the user may see."""

    def field_choices(self, field, request, model_admin):
        return admin.RelatedOnlyFieldListFilter.field_choices(self, field, request, model_admin)


def state_badge(state_name: str, color: str):
    """Return the HTML of a workflow state's colored badge."""
    return format_html(
        '<span class="bjgas-state bjgas-state-{}">{}</span>', color or "gray", state_name
    )
