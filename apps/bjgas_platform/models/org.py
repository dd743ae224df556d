"""Organisation and master data: companies, departments, regions, business systems,
support groups, vendors, the service catalog and users."""

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from ..choices import CompanyKind, Criticality, RegionKind, SupportTier
from .scope import ScopedManager

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    _("Use letters, digits, '-', '_' or '.', starting with a letter or digit."),
    code="invalid_code",
)


def code_field() -> models.CharField:
    return models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])


class TreeMixin(models.Model):
    """A record with a `parent` in the same table; refuses cycles."""

    class Meta:
        abstract = True

    def ancestors(self) -> list:
        """Return the chain of parents, nearest first; stops at a cycle."""
        chain, seen, node = [], {self.pk}, self.parent
        while node is not None and node.pk not in seen:
            chain.append(node)
            seen.add(node.pk)
            node = node.parent
        return chain

    def clean(self) -> None:
        super().clean()
        node, seen = self.parent, set()
        while node is not None:
            if self.pk is not None and node.pk == self.pk:
                raise ValidationError(
                    {
                        "parent": ValidationError(
                            _("A record cannot be its own parent or ancestor."), code="tree_cycle"
                        )
                    }
                )
            if node.pk in seen:
                break
            seen.add(node.pk)
            node = node.parent

    @classmethod
    def descendant_ids(cls, root_ids) -> set[int]:
        """Return root_ids with every id below them (the trees are small: one query)."""
        children: dict[int, list[int]] = {}
        for pk, parent_id in cls._base_manager.values_list("pk", "parent_id"):
            children.setdefault(parent_id, []).append(pk)
        found, todo = set(), list(root_ids)
        while todo:
            pk = todo.pop()
            if pk in found:
                continue
            found.add(pk)
            todo.extend(children.get(pk, ()))
        return found


class Company(TreeMixin):
    """A company of the group: the headquarters or a branch company."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(
        _("kind"), max_length=20, choices=CompanyKind.choices, default=CompanyKind.BRANCH
    )
    parent = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent company"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = {"company": "pk"}

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Department(TreeMixin):
    """A department of a company; departments form a tree."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100)
    company = models.ForeignKey(
        Company, models.PROTECT, related_name="departments", verbose_name=_("company")
    )
    parent = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent department"),
    )
    head = models.ForeignKey(
        "User",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="headed_departments",
        verbose_name=_("department head"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = {"company": "company_id", "department": "pk"}

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["company__code", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "name", "parent"], name="department_unique_name_in_parent"
            )
        ]

    def __str__(self) -> str:
        # Branch companies have departments of the same name: say whose it is.
        if not self.company_id:
            return self.name
        return f"{self.name}（{self.company.name}）"

    def clean(self) -> None:
        super().clean()
        errors: dict[str, ValidationError] = {}
        if self.parent_id and self.company_id and self.parent.company_id != self.company_id:
            errors["parent"] = ValidationError(
                _("The parent department must belong to the same company."),
                code="department_company_mismatch",
            )
        if self.pk is not None and self.company_id and self._has_members_elsewhere():
            errors["company"] = ValidationError(
                _(
                    "This department still has sub-departments or users: move them to another "
                    "department first, then change its company."
                ),
                code="department_has_members",
            )
        if self.company_id and self.name and self._sibling_with_same_name():
            errors["name"] = ValidationError(
                _(
                    "The company already has a department named '%(name)s' at this level: "
                    "choose another name or another parent department."
                ),
                code="department_duplicate_name",
                params={"name": self.name},
            )
        if errors:
            raise ValidationError(errors)

    def _has_members_elsewhere(self) -> bool:
        """Whether the company changes while sub-departments or users stay behind."""
        stored = (
            Department._base_manager.filter(pk=self.pk).values_list("company_id", flat=True).first()
        )
        if stored is None or stored == self.company_id:
            return False
        return (
            Department._base_manager.filter(parent_id=self.pk).exists()
            or User._base_manager.filter(department_id=self.pk).exists()
        )

    def _sibling_with_same_name(self) -> bool:
        """Whether another department of the company has the same name and parent.

        The database constraint cannot see this for top-level departments: their parent is
        NULL, and NULL never equals NULL.
        """
        return (
            Department._base_manager.filter(
                company_id=self.company_id, parent_id=self.parent_id, name=self.name
            )
            .exclude(pk=self.pk)
            .exists()
        )


class Region(TreeMixin):
    """A region, site or data center where users and equipment are."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100, unique=True)
    kind = models.CharField(
        _("kind"), max_length=20, choices=RegionKind.choices, default=RegionKind.REGION
    )
    parent = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent region"),
    )
    address = models.CharField(_("address"), max_length=200, blank=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = {"region": "pk"}

    class Meta:
        verbose_name = _("region / site")
        verbose_name_plural = _("regions / sites")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class BusinessSystem(models.Model):
    """A business system (业务系统) the IT center runs, with the person who owns it."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100, unique=True)
    owner = models.ForeignKey(
        "User",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_systems",
        verbose_name=_("owner"),
    )
    company = models.ForeignKey(
        Company,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="business_systems",
        verbose_name=_("company"),
    )
    criticality = models.CharField(
        _("criticality"), max_length=20, choices=Criticality.choices, default=Criticality.NORMAL
    )
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = {"business_system": "pk"}

    class Meta:
        verbose_name = _("business system")
        verbose_name_plural = _("business systems")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class SupportGroup(models.Model):
    """A support group of engineers at one tier (一线/二线/三线)."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100, unique=True)
    tier = models.PositiveSmallIntegerField(
        _("tier"), choices=SupportTier.choices, default=SupportTier.TIER1
    )
    leader = models.ForeignKey(
        "User",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="led_groups",
        verbose_name=_("team lead"),
    )
    members = models.ManyToManyField(
        "User", blank=True, related_name="support_groups", verbose_name=_("members")
    )
    email = models.EmailField(_("e-mail"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(m2m_fields=[members])

    objects = ScopedManager()
    scope_dimensions = {}

    class Meta:
        verbose_name = _("support group")
        verbose_name_plural = _("support groups")
        ordering = ["tier", "code"]

    def __str__(self) -> str:
        return self.name


class VendorCategory(models.Model):
    """A kind of vendor: hardware maintenance, software development, network..."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        verbose_name = _("vendor category")
        verbose_name_plural = _("vendor categories")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Vendor(models.Model):
    """A service provider (服务商) under contract with the IT center."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100, unique=True)
    categories = models.ManyToManyField(
        VendorCategory, blank=True, related_name="vendors", verbose_name=_("categories")
    )
    contact_name = models.CharField(_("contact"), max_length=50, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    contract_start = models.DateField(_("contract start"), null=True, blank=True)
    contract_end = models.DateField(_("contract end"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(m2m_fields=[categories])

    objects = ScopedManager()
    scope_dimensions = {"vendor": "pk"}

    class Meta:
        verbose_name = _("vendor")
        verbose_name_plural = _("vendors")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.contract_start and self.contract_end and self.contract_end < self.contract_start:
            raise ValidationError(
                {
                    "contract_end": ValidationError(
                        _("The contract cannot end before it starts."), code="contract_dates"
                    )
                }
            )


class VendorEngineer(models.Model):
    """An engineer of a vendor; linked to a user account when they log in."""

    vendor = models.ForeignKey(
        Vendor, models.CASCADE, related_name="engineers", verbose_name=_("vendor")
    )
    name = models.CharField(_("name"), max_length=50)
    user = models.OneToOneField(
        "User",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="vendor_engineer",
        verbose_name=_("user account"),
    )
    phone = models.CharField(_("phone"), max_length=30, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    skills = models.CharField(_("skills"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = {"vendor": "vendor_id"}

    class Meta:
        verbose_name = _("vendor engineer")
        verbose_name_plural = _("vendor engineers")
        ordering = ["vendor__code", "name"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "name"], name="vendor_engineer_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.vendor}）"


class ServiceCatalogItem(TreeMixin):
    """An entry of the service catalog (服务目录); items form a tree."""

    code = code_field()
    name = models.CharField(_("name"), max_length=100)
    parent = models.ForeignKey(
        "self",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent item"),
    )
    owner = models.ForeignKey(
        "User",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_catalog_items",
        verbose_name=_("owner"),
    )
    business_system = models.ForeignKey(
        BusinessSystem,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="catalog_items",
        verbose_name=_("business system"),
    )
    default_support_group = models.ForeignKey(
        SupportGroup,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="catalog_items",
        verbose_name=_("default support group"),
    )
    default_workflow = models.ForeignKey(
        "Workflow",
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="catalog_items",
        verbose_name=_("default workflow"),
    )
    auto_close_minutes = models.PositiveIntegerField(
        _("auto-close after (min)"),
        default=4320,
        validators=[MinValueValidator(1, _("The auto-close delay must be at least one minute."))],
        help_text=_("A resolved ticket closes by itself after this many minutes."),
    )
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords()

    objects = ScopedManager()
    scope_dimensions = {}

    class Meta:
        verbose_name = _("service catalog item")
        verbose_name_plural = _("service catalog")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="catalog_unique_name_in_parent")
        ]

    def __str__(self) -> str:
        return " / ".join([a.name for a in reversed(self.ancestors())] + [self.name])


class User(AbstractUser):
    """A person who logs in: staff, engineers, vendor engineers."""

    full_name = models.CharField(_("full name"), max_length=50, blank=True)
    company = models.ForeignKey(
        Company,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("company"),
    )
    department = models.ForeignKey(
        Department,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="users",
        verbose_name=_("department"),
    )
    phone = models.CharField(_("mobile phone"), max_length=30, blank=True)
    extension = models.CharField(_("extension"), max_length=20, blank=True)
    employee_no = models.CharField(_("employee number"), max_length=30, blank=True)
    history = HistoricalRecords(m2m_fields=["groups"], excluded_fields=["last_login", "password"])

    objects = ScopedManager.from_user_manager()
    scope_dimensions = {"company": "company_id", "department": "department_id"}
    scope_owner_fields = ("pk",)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.full_name or self.username

    def get_full_name(self) -> str:
        # Chinese names are one field, family name first; first/last would reverse them.
        return self.full_name or super().get_full_name() or self.username

    def get_short_name(self) -> str:
        return self.full_name or self.username

    def clean(self) -> None:
        super().clean()
        if self.department_id and self.company_id and self.department.company_id != self.company_id:
            raise ValidationError(
                {
                    "department": ValidationError(
                        _("The department must belong to the user's company."),
                        code="user_department_company",
                    )
                }
            )
