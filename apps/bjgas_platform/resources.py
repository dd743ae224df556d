"""Excel/CSV import and export of master data (django-import-export resources).

A row is identified by its code (users by user name, vendor engineers by vendor code and
name): a code already in the database updates that record, a new code creates one, and a
code twice in one file is refused. Related records are named by their codes. Every row is
validated with the model's `full_clean()`, and an import either saves all rows or none
(the admin runs it in one transaction that rolls back on any invalid row).

Column headers are fixed Chinese texts rather than translated labels: a file downloaded by
one person must import for every other, whatever language their screen is in.
"""

from __future__ import annotations

import re

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import resources
from import_export.fields import Field
from import_export.widgets import (
    BooleanWidget,
    DateWidget,
    ForeignKeyWidget,
    ManyToManyWidget,
    Widget,
)

from .models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ServiceCatalogItem,
    SupportGroup,
    User,
    Vendor,
    VendorCategory,
    VendorEngineer,
)

LIST_SEPARATORS = re.compile(r"[,，、;；\s]+")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _scoped(queryset, user):
    if user is not None and hasattr(queryset, "visible_to"):
        return queryset.visible_to(user)
    return queryset


class CodeWidget(ForeignKeyWidget):
    """A related record named by its code (or another unique field), within scope."""

    def __init__(self, model, field: str = "code", **kwargs):
        super().__init__(model, field=field, **kwargs)

    def get_queryset(self, value, row, *args, **kwargs):
        return _scoped(self.model._default_manager.all(), kwargs.get("user"))

    def clean(self, value, row=None, **kwargs):
        value = _text(value)
        if not value:
            return None
        try:
            return super().clean(value, row, **kwargs)
        except self.model.DoesNotExist:
            raise ValueError(
                _("No %(model)s has %(field)s '%(value)s' (or it is outside your scope).")
                % {
                    "model": self.model._meta.verbose_name,
                    "field": self.model._meta.get_field(self.field).verbose_name,
                    "value": value,
                }
            ) from None

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return getattr(value, self.field)


class CodeListWidget(ManyToManyWidget):
    """Several related records named by their codes, separated by commas or '、'."""

    def __init__(self, model, field: str = "code"):
        super().__init__(model, separator=",", field=field)

    def split(self, value) -> list[str]:
        return [c for c in LIST_SEPARATORS.split(_text(value)) if c]

    def resolve(self, value, user=None) -> tuple[list, list[str]]:
        """Return (records found, codes not found) for a cell."""
        codes = self.split(value)
        found = _scoped(self.model._default_manager.all(), user).filter(
            **{f"{self.field}__in": codes}
        )
        by_code = {str(getattr(obj, self.field)): obj for obj in found}
        return [by_code[c] for c in codes if c in by_code], [c for c in codes if c not in by_code]

    def clean(self, value, row=None, **kwargs):
        records, _missing = self.resolve(value, kwargs.get("user"))
        return records

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return ",".join(str(getattr(o, self.field)) for o in value.all())


class ChoiceWidget(Widget):
    """A choice given by its stored value or its label."""

    def __init__(self, choices):
        super().__init__()
        self.choices = choices

    def clean(self, value, row=None, **kwargs):
        text = _text(value)
        if not text:
            return None
        for stored, label in self.choices:
            if text.lower() in (str(stored).lower(), str(label).lower()):
                return stored
        raise ValueError(
            _("'%(value)s' is not one of the allowed values: %(allowed)s.")
            % {"value": text, "allowed": "、".join(str(label) for _s, label in self.choices)}
        )

    def render(self, value, obj=None, **kwargs):
        for stored, label in self.choices:
            if stored == value:
                return str(label)
        return "" if value is None else str(value)


class TextWidget(Widget):
    """Text; an empty cell is an empty string and a whole number loses its '.0'."""

    def clean(self, value, row=None, **kwargs):
        return _text(value)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class YesNoWidget(BooleanWidget):
    """是/否 as well as 1/0 and true/false."""

    TRUE_TEXTS = {"1", "true", "yes", "y", "是", "启用"}
    FALSE_TEXTS = {"0", "false", "no", "n", "否", "停用"}

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, bool):
            return value
        text = _text(value).lower()
        if not text:
            return None
        if text in self.TRUE_TEXTS:
            return True
        if text in self.FALSE_TEXTS:
            return False
        raise ValueError(
            _("Write 是 or 否 (yes or no), not '%(value)s'.") % {"value": _text(value)}
        )

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return "是" if value else "否"


def text_column(attribute: str, header: str) -> Field:
    return Field(attribute=attribute, column_name=header, widget=TextWidget())


def code_column() -> Field:
    return text_column("code", "编码")


def name_column() -> Field:
    return text_column("name", "名称")


def active_column() -> Field:
    return Field(
        attribute="is_active", column_name="启用", widget=YesNoWidget(), saves_null_values=False
    )


def related_column(attribute: str, header: str, model, field: str = "code") -> Field:
    return Field(attribute=attribute, column_name=header, widget=CodeWidget(model, field))


def choice_column(attribute: str, header: str, choices) -> Field:
    return Field(
        attribute=attribute,
        column_name=header,
        widget=ChoiceWidget(choices),
        saves_null_values=False,
    )


class MasterDataResource(resources.ModelResource):
    """Base of the master-data resources: scope, duplicate codes, errors by column."""

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self._seen_keys: dict[tuple, int] = {}

    class Meta:
        use_transactions = True
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def get_queryset(self):
        return _scoped(super().get_queryset(), self.user)

    def _column(self, attribute: str) -> str:
        for field in self.fields.values():
            if field.attribute == attribute:
                return field.column_name
        return attribute

    def _by_column(self, error: ValidationError) -> ValidationError:
        messages = error.message_dict if hasattr(error, "error_dict") else None
        if messages is None:
            return error
        return ValidationError(
            {
                (key if key == NON_FIELD_ERRORS else self._column(key)): value
                for key, value in messages.items()
            }
        )

    def before_import(self, dataset, **kwargs):
        self._seen_keys = {}
        if dataset.headers:
            dataset.headers = [_text(h) for h in dataset.headers]
        known = {f.column_name for f in self.get_import_fields()}
        unknown = [h for h in dataset.headers or [] if h and h not in known]
        if unknown:
            raise ValueError(
                _("Unknown columns: %(unknown)s. Use the columns of the template: %(known)s.")
                % {
                    "unknown": "、".join(unknown),
                    "known": "、".join(f.column_name for f in self.get_import_fields()),
                }
            )

    def get_instance(self, instance_loader, row):
        try:
            return super().get_instance(instance_loader, row)
        except ValueError as exc:
            raise ValidationError({NON_FIELD_ERRORS: [str(exc)]}) from None

    def import_instance(self, instance, row, **kwargs):
        errors: dict = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        user = kwargs.get("user", self.user)
        for field in self.get_import_fields():
            if not isinstance(field.widget, CodeListWidget) or field.column_name not in row:
                continue
            _records, missing = field.widget.resolve(row[field.column_name], user)
            if missing:
                errors[field.attribute] = [
                    _("Not found (or outside your scope): %(codes)s.")
                    % {"codes": "、".join(missing)}
                ]
        self._check_repeated_key(row, kwargs.get("row_number"), errors)
        self.fill_defaults(instance)
        if errors:
            raise ValidationError(errors)

    def _check_repeated_key(self, row, row_number, errors: dict) -> None:
        id_fields = [self.fields[name] for name in self.get_import_id_fields()]
        key = tuple(_text(row.get(f.column_name)) for f in id_fields)
        if not any(key):
            return
        # Row numbers count the data rows; the sheet's row 1 holds the headers.
        first = self._seen_keys.setdefault(key, row_number)
        if first != row_number:
            errors.setdefault(id_fields[-1].attribute, []).append(
                _("'%(value)s' is already in row %(row)s of this file; each may appear once.")
                % {"value": " / ".join(key), "row": first + 1}
            )

    def fill_defaults(self, instance) -> None:
        """Complete fields that follow from others before validation."""

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        try:
            super().validate_instance(instance, import_validation_errors, validate_unique)
        except ValidationError as exc:
            raise self._by_column(exc) from None


class CompanyResource(MasterDataResource):
    code = code_column()
    name = name_column()
    kind = choice_column("kind", "类型", Company._meta.get_field("kind").choices)
    parent = related_column("parent", "上级公司编码", Company)
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = Company
        name = gettext_lazy("Companies")
        import_id_fields = ("code",)
        fields = ("code", "name", "kind", "parent", "is_active")


class DepartmentResource(MasterDataResource):
    code = code_column()
    name = name_column()
    company = related_column("company", "公司编码", Company)
    parent = related_column("parent", "上级部门编码", Department)
    head = related_column("head", "负责人用户名", User, field="username")
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = Department
        name = gettext_lazy("Departments")
        import_id_fields = ("code",)
        fields = ("code", "name", "company", "parent", "head", "is_active")

    def fill_defaults(self, instance) -> None:
        if instance.parent_id and not instance.company_id:
            instance.company_id = instance.parent.company_id


class RegionResource(MasterDataResource):
    code = code_column()
    name = name_column()
    kind = choice_column("kind", "类型", Region._meta.get_field("kind").choices)
    parent = related_column("parent", "上级区域编码", Region)
    address = text_column("address", "地址")

    class Meta(MasterDataResource.Meta):
        model = Region
        name = gettext_lazy("Regions / sites")
        import_id_fields = ("code",)
        fields = ("code", "name", "kind", "parent", "address")


class BusinessSystemResource(MasterDataResource):
    code = code_column()
    name = name_column()
    owner = related_column("owner", "负责人用户名", User, field="username")
    company = related_column("company", "公司编码", Company)
    criticality = choice_column(
        "criticality", "重要程度", BusinessSystem._meta.get_field("criticality").choices
    )
    description = text_column("description", "说明")
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = BusinessSystem
        name = gettext_lazy("Business systems")
        import_id_fields = ("code",)
        fields = ("code", "name", "owner", "company", "criticality", "description", "is_active")


class SupportGroupResource(MasterDataResource):
    code = code_column()
    name = name_column()
    tier = choice_column("tier", "层级", SupportGroup._meta.get_field("tier").choices)
    leader = related_column("leader", "组长用户名", User, field="username")
    members = Field(
        attribute="members", column_name="成员用户名", widget=CodeListWidget(User, "username")
    )
    email = text_column("email", "邮箱")
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = SupportGroup
        name = gettext_lazy("Support groups")
        import_id_fields = ("code",)
        fields = ("code", "name", "tier", "leader", "members", "email", "is_active")


class VendorResource(MasterDataResource):
    code = code_column()
    name = name_column()
    categories = Field(
        attribute="categories", column_name="类别编码", widget=CodeListWidget(VendorCategory)
    )
    contact_name = text_column("contact_name", "联系人")
    contact_phone = text_column("contact_phone", "联系电话")
    contact_email = text_column("contact_email", "联系邮箱")
    contract_start = Field(
        attribute="contract_start", column_name="合同开始", widget=DateWidget("%Y-%m-%d")
    )
    contract_end = Field(
        attribute="contract_end", column_name="合同结束", widget=DateWidget("%Y-%m-%d")
    )
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = Vendor
        name = gettext_lazy("Vendors")
        import_id_fields = ("code",)
        fields = (
            "code",
            "name",
            "categories",
            "contact_name",
            "contact_phone",
            "contact_email",
            "contract_start",
            "contract_end",
            "is_active",
        )


class VendorEngineerResource(MasterDataResource):
    vendor = related_column("vendor", "服务商编码", Vendor)
    name = text_column("name", "姓名")
    user = related_column("user", "用户名", User, field="username")
    phone = text_column("phone", "电话")
    email = text_column("email", "邮箱")
    skills = text_column("skills", "技能")
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = VendorEngineer
        name = gettext_lazy("Vendor engineers")
        import_id_fields = ("vendor", "name")
        fields = ("vendor", "name", "user", "phone", "email", "skills", "is_active")


class ServiceCatalogItemResource(MasterDataResource):
    code = code_column()
    name = name_column()
    parent = related_column("parent", "上级编码", ServiceCatalogItem)
    owner = related_column("owner", "负责人用户名", User, field="username")
    business_system = related_column("business_system", "业务系统编码", BusinessSystem)
    default_support_group = related_column("default_support_group", "默认支持组编码", SupportGroup)
    description = text_column("description", "说明")
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = ServiceCatalogItem
        name = gettext_lazy("Service catalog")
        import_id_fields = ("code",)
        fields = (
            "code",
            "name",
            "parent",
            "owner",
            "business_system",
            "default_support_group",
            "description",
            "is_active",
        )


class UserResource(MasterDataResource):
    username = text_column("username", "用户名")
    full_name = text_column("full_name", "姓名")
    employee_no = text_column("employee_no", "工号")
    email = text_column("email", "邮箱")
    company = related_column("company", "公司编码", Company)
    department = related_column("department", "部门编码", Department)
    phone = text_column("phone", "手机")
    extension = text_column("extension", "分机")
    is_active = active_column()

    class Meta(MasterDataResource.Meta):
        model = User
        name = gettext_lazy("Users")
        import_id_fields = ("username",)
        fields = (
            "username",
            "full_name",
            "employee_no",
            "email",
            "company",
            "department",
            "phone",
            "extension",
            "is_active",
        )

    def after_init_instance(self, instance, new, row, **kwargs):
        if new:
            # Imported people sign in through single sign-on or get a password set later.
            instance.set_unusable_password()

    def fill_defaults(self, instance) -> None:
        if instance.department_id and not instance.company_id:
            instance.company_id = instance.department.company_id


RESOURCES = {
    Company: CompanyResource,
    Department: DepartmentResource,
    Region: RegionResource,
    BusinessSystem: BusinessSystemResource,
    SupportGroup: SupportGroupResource,
    Vendor: VendorResource,
    VendorEngineer: VendorEngineerResource,
    ServiceCatalogItem: ServiceCatalogItemResource,
    User: UserResource,
}
