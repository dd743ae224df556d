"""Desk pages of the organisation and master data."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.views import ChangeList

from .. import resources
from ..models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ServiceCatalogItem,
    SupportGroup,
    Vendor,
    VendorCategory,
    VendorEngineer,
)
from .base import DeskAdmin, DeskTabularInline, HistoryDeskAdmin, ScopedRelatedFilter
from .imports import DeskImportExportMixin


class TreeChangeList(ChangeList):
    """A change list that works out the parent path of every row with one query."""

    def get_results(self, request):
        super().get_results(request)
        nodes = dict(
            (pk, (parent_id, name))
            for pk, parent_id, name in self.model._base_manager.values_list(
                "pk", "parent_id", "name"
            )
        )
        for obj in self.result_list:
            names, seen, node = [], {obj.pk}, obj.parent_id
            while node is not None and node not in seen and node in nodes:
                seen.add(node)
                parent_id, name = nodes[node]
                names.append(name)
                node = parent_id
            obj.parent_path = " / ".join(reversed(names))


class TreeAdminMixin:
    """Show where a record of a tree sits: the names of its parents from the root."""

    def get_changelist(self, request, **kwargs):
        return TreeChangeList

    @admin.display(description=_("parent path"))
    def parent_path_display(self, obj) -> str:
        path = getattr(obj, "parent_path", None)
        if path is None:
            path = " / ".join(a.name for a in reversed(obj.ancestors()))
        return path or "-"


class MasterDataAdmin(DeskImportExportMixin, HistoryDeskAdmin):
    """A master-data list with history, Excel import and export."""

    list_filter_submit = True


@admin.register(Company)
class CompanyAdmin(TreeAdminMixin, MasterDataAdmin):
    resource_classes = [resources.CompanyResource]
    list_display = ["code", "name", "kind", "parent_path_display", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    autocomplete_fields = ["parent"]
    fields = ["code", "name", "kind", "parent", "is_active"]


@admin.register(Department)
class DepartmentAdmin(TreeAdminMixin, MasterDataAdmin):
    resource_classes = [resources.DepartmentResource]
    list_display = ["code", "name", "company", "parent_path_display", "head", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = [("company", ScopedRelatedFilter), "is_active"]
    list_select_related = ["company", "head"]
    search_fields = ["code", "name", "company__name"]
    autocomplete_fields = ["company", "parent", "head"]
    fields = ["code", "name", "company", "parent", "head", "is_active"]


@admin.register(Region)
class RegionAdmin(TreeAdminMixin, MasterDataAdmin):
    resource_classes = [resources.RegionResource]
    list_display = ["code", "name", "kind", "parent_path_display", "address"]
    list_display_links = ["code", "name"]
    list_filter = ["kind"]
    search_fields = ["code", "name", "address"]
    autocomplete_fields = ["parent"]
    fields = ["code", "name", "kind", "parent", "address"]


@admin.register(BusinessSystem)
class BusinessSystemAdmin(MasterDataAdmin):
    resource_classes = [resources.BusinessSystemResource]
    list_display = ["code", "name", "owner", "company", "criticality", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["criticality", ("company", ScopedRelatedFilter), "is_active"]
    list_select_related = ["owner", "company"]
    search_fields = ["code", "name", "owner__full_name", "owner__username"]
    autocomplete_fields = ["owner", "company"]
    fields = ["code", "name", "owner", "company", "criticality", "description", "is_active"]


@admin.register(SupportGroup)
class SupportGroupAdmin(MasterDataAdmin):
    resource_classes = [resources.SupportGroupResource]
    list_display = ["code", "name", "tier", "leader", "email", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["tier", "is_active"]
    list_select_related = ["leader"]
    search_fields = ["code", "name", "leader__full_name", "leader__username"]
    autocomplete_fields = ["leader", "members"]
    fields = ["code", "name", "tier", "leader", "members", "email", "is_active"]


@admin.register(VendorCategory)
class VendorCategoryAdmin(DeskAdmin):
    list_display = ["code", "name"]
    list_display_links = ["code", "name"]
    search_fields = ["code", "name"]


class VendorEngineerInline(DeskTabularInline):
    model = VendorEngineer
    fields = ["name", "user", "phone", "email", "skills", "is_active"]
    autocomplete_fields = ["user"]


@admin.register(Vendor)
class VendorAdmin(MasterDataAdmin):
    resource_classes = [resources.VendorResource]
    list_display = ["code", "name", "contact_name", "contact_phone", "contract_end", "is_active"]
    list_display_links = ["code", "name"]
    list_filter = ["categories", "is_active"]
    search_fields = ["code", "name", "contact_name", "contact_phone"]
    autocomplete_fields = ["categories"]
    inlines = [VendorEngineerInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "categories", "is_active"]}),
        (_("Contact"), {"fields": ["contact_name", "contact_phone", "contact_email"]}),
        (_("Contract"), {"fields": ["contract_start", "contract_end"]}),
    ]


@admin.register(VendorEngineer)
class VendorEngineerAdmin(MasterDataAdmin):
    resource_classes = [resources.VendorEngineerResource]
    list_display = ["name", "vendor", "user", "phone", "skills", "is_active"]
    list_filter = [("vendor", ScopedRelatedFilter), "is_active"]
    list_select_related = ["vendor", "user"]
    search_fields = ["name", "vendor__name", "vendor__code", "phone", "skills"]
    autocomplete_fields = ["vendor", "user"]
    fields = ["vendor", "name", "user", "phone", "email", "skills", "is_active"]


@admin.register(ServiceCatalogItem)
class ServiceCatalogItemAdmin(TreeAdminMixin, MasterDataAdmin):
    resource_classes = [resources.ServiceCatalogItemResource]
    list_display = [
        "code",
        "name",
        "parent_path_display",
        "business_system",
        "default_support_group",
        "owner",
        "is_active",
    ]
    list_display_links = ["code", "name"]
    list_filter = [
        ("business_system", ScopedRelatedFilter),
        ("default_support_group", ScopedRelatedFilter),
        "is_active",
    ]
    list_select_related = ["business_system", "default_support_group", "owner"]
    search_fields = ["code", "name", "description"]
    autocomplete_fields = ["parent", "owner", "business_system", "default_support_group"]
    fields = [
        "code",
        "name",
        "parent",
        "owner",
        "business_system",
        "default_support_group",
        "default_workflow",
        "description",
        "is_active",
    ]
