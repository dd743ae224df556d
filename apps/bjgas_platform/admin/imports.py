"""Excel import and export on the desk's master-data lists.

The import checks the whole file first (a dry run in a transaction that is rolled back),
shows every invalid row with its row number and column, and saves only a file without
errors; the confirmed import runs in one transaction again and rolls back entirely if a
row turns out invalid then. An empty template with the right columns can be downloaded
from the list and from the import page.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX
from unfold.contrib.import_export.forms import ExportForm, ImportForm


def validation_table(result) -> dict:
    """Return the invalid rows of an import as a table: sheet row, column, problem."""
    rows = []
    for invalid in result.invalid_rows:
        # Row numbers count the data rows; the sheet's row 1 holds the headers.
        sheet_row = invalid.number + 1
        for column, problems in invalid.field_specific_errors.items():
            rows.extend([sheet_row, column, problem] for problem in problems)
        rows.extend([sheet_row, "-", problem] for problem in invalid.non_field_specific_errors)
    return {"headers": [_("Row"), _("Column"), _("Problem")], "rows": rows}


class DeskImportExportMixin(ImportExportModelAdmin):
    """Import and export with unfold's forms, scope, and all-or-nothing imports."""

    import_form_class = ImportForm
    export_form_class = ExportForm
    formats = [XLSX, CSV]
    import_template_name = "bjgas_platform/admin/import.html"
    import_export_change_list_template = "bjgas_platform/admin/change_list_import_export.html"
    import_error_display = ("message",)

    def get_resource_kwargs(self, request, *args, **kwargs):
        return {"user": request.user}

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_or_change_permission(request)

    def get_import_data_kwargs(self, **kwargs):
        kwargs = super().get_import_data_kwargs(**kwargs)
        kwargs.pop("request", None)
        kwargs["rollback_on_validation_errors"] = True
        return kwargs

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None)
        result = context.get("result") if context else None
        if result is not None and result.has_validation_errors():
            context["validation_table"] = validation_table(result)
        return response

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            self.message_user(
                request,
                _(
                    "The file did not import: some rows became invalid after the check. "
                    "Nothing was saved; upload the file again to see the errors."
                ),
                messages.ERROR,
            )
            return HttpResponseRedirect(self._import_url())
        return super().process_result(result, request)

    def _import_url(self) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_import")

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "import-template/",
                self.admin_site.admin_view(self.import_template_view),
                name=f"{opts.app_label}_{opts.model_name}_import_template",
            ),
            *super().get_urls(),
        ]

    def import_template_view(self, request):
        """Download an empty Excel file with the import's column headers."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        resource = self.get_import_resource_classes(request)[0](
            **self.get_import_resource_kwargs(request)
        )
        dataset = resource.export(queryset=self.model._default_manager.none())
        content = XLSX().export_data(dataset)
        filename = _("%(name)s import template.xlsx") % {
            "name": self.model._meta.verbose_name_plural
        }
        return HttpResponse(
            content,
            content_type=XLSX().get_content_type(),
            headers={"Content-Disposition": content_disposition_header(True, filename)},
        )
