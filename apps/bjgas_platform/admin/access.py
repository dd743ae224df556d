"""Desk pages of people and access: users, roles (permission groups) and scope rules."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from .. import resources
from ..models import Role, ScopeRule, User
from .base import DeskAdmin, DeskStackedInline, HistoryDeskAdmin, ScopedRelatedFilter
from .imports import DeskImportExportMixin

admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(DeskImportExportMixin, BaseUserAdmin, HistoryDeskAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    resource_classes = [resources.UserResource]
    list_display = [
        "username",
        "full_name",
        "company",
        "department",
        "phone",
        "is_staff",
        "is_active",
    ]
    list_display_links = ["username", "full_name"]
    list_filter = [
        ("company", ScopedRelatedFilter),
        "is_staff",
        "is_superuser",
        "is_active",
        "groups",
    ]
    list_select_related = ["company", "department"]
    search_fields = ["username", "full_name", "email", "employee_no", "phone"]
    autocomplete_fields = ["company", "department"]
    filter_horizontal = ["groups", "user_permissions"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (
            _("Personal info"),
            {"fields": ["full_name", "email", "employee_no", "phone", "extension"]},
        ),
        (_("Organisation"), {"fields": ["company", "department"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["username", "usable_password", "password1", "password2"]}),
        (_("Personal info"), {"fields": ["full_name", "phone", "extension", "employee_no"]}),
        (_("Organisation"), {"fields": ["company", "department", "groups"]}),
    ]


@admin.register(Role)
class RoleAdmin(HistoryDeskAdmin):
    list_display = ["code", "group", "description"]
    list_display_links = ["code", "group"]
    list_select_related = ["group"]
    search_fields = ["code", "group__name", "description"]
    autocomplete_fields = ["group"]
    fields = ["code", "group", "description"]


class RoleInline(DeskStackedInline):
    model = Role
    fields = ["code", "description"]
    max_num = 1
    can_delete = False


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, DeskAdmin):
    list_display = ["name", "role_code", "member_count"]
    search_fields = ["name", "role__code"]
    filter_horizontal = ["permissions"]
    inlines = [RoleInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("role")
            .annotate(members=Count("user", distinct=True))
        )

    @admin.display(description=_("role code"), ordering="role__code")
    def role_code(self, obj) -> str:
        role = getattr(obj, "role", None)
        return role.code if role else "-"

    @admin.display(description=_("members"), ordering="members")
    def member_count(self, obj) -> int:
        return obj.members


@admin.register(ScopeRule)
class ScopeRuleAdmin(HistoryDeskAdmin):
    list_display = ["name", "user", "role", "all_records", "dimensions_display", "is_active"]
    list_filter = ["all_records", "is_active", "role"]
    list_select_related = ["user", "role"]
    search_fields = ["name", "user__username", "user__full_name", "role__name", "note"]
    autocomplete_fields = [
        "user",
        "role",
        "companies",
        "departments",
        "regions",
        "business_systems",
        "vendors",
    ]
    fieldsets = [
        (None, {"fields": ["name", "user", "role", "is_active", "note"]}),
        (
            _("Records seen"),
            {
                "description": _(
                    "A record is seen when it matches every dimension filled in below; "
                    "company, department and region include the units below them."
                ),
                "fields": [
                    "all_records",
                    "companies",
                    "departments",
                    "regions",
                    "business_systems",
                    "vendors",
                ],
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("companies", "departments", "regions", "business_systems", "vendors")
        )

    @admin.display(description=_("dimensions"))
    def dimensions_display(self, obj) -> str:
        if obj.all_records:
            return _("all records")
        parts = []
        for label, relation in (
            (_("companies"), obj.companies),
            (_("departments"), obj.departments),
            (_("regions / sites"), obj.regions),
            (_("business systems"), obj.business_systems),
            (_("vendors"), obj.vendors),
        ):
            names = [str(o) for o in relation.all()]
            if names:
                parts.append(f"{label}: {'、'.join(names)}")
        return "；".join(parts) or _("nothing")
