"""Roles and scope rules."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from .org import BusinessSystem, Company, Department, Region, Vendor, code_validator


class Role(models.Model):
    """A role (角色): a permission group with a stable code the code can refer to."""

    group = models.OneToOneField(
        Group, models.CASCADE, related_name="role", verbose_name=_("permission group")
    )
    code = models.CharField(_("code"), max_length=40, unique=True, validators=[code_validator])
    description = models.TextField(_("description"), blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.group.name


class ScopeRule(models.Model):
    """Binds a user, or every holder of a role, to the rows they may see."""

    name = models.CharField(_("name"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="scope_rules",
        verbose_name=_("user"),
    )
    role = models.ForeignKey(
        Group,
        models.CASCADE,
        null=True,
        blank=True,
        related_name="scope_rules",
        verbose_name=_("role"),
    )
    all_records = models.BooleanField(
        _("all records"),
        default=False,
        help_text=_("Sees every record, whatever the dimensions below say."),
    )
    companies = models.ManyToManyField(
        Company,
        blank=True,
        related_name="+",
        verbose_name=_("companies"),
        help_text=_("Includes the companies below them."),
    )
    departments = models.ManyToManyField(
        Department,
        blank=True,
        related_name="+",
        verbose_name=_("departments"),
        help_text=_("Includes the departments below them."),
    )
    regions = models.ManyToManyField(
        Region,
        blank=True,
        related_name="+",
        verbose_name=_("regions / sites"),
        help_text=_("Includes the sites below them."),
    )
    business_systems = models.ManyToManyField(
        BusinessSystem, blank=True, related_name="+", verbose_name=_("business systems")
    )
    vendors = models.ManyToManyField(
        Vendor, blank=True, related_name="+", verbose_name=_("vendors")
    )
    is_active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    history = HistoricalRecords(
        m2m_fields=[companies, departments, regions, business_systems, vendors]
    )

    class Meta:
        verbose_name = _("scope rule")
        verbose_name_plural = _("scope rules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if bool(self.user_id) == bool(self.role_id):
            raise ValidationError(
                _("A scope rule applies to exactly one user or one role: choose one of the two."),
                code="scope_rule_holder",
            )

    def restricted_dimensions(self) -> dict[str, set[int]]:
        """Return {dimension: allowed ids} for the dimensions this rule restricts.

        Computed once per loaded rule: a request asks it for every scoped model it reads,
        and the trees would otherwise be walked again each time.
        """
        cached = getattr(self, "_restricted_cache", None)
        if cached is None:
            cached = self._restricted_cache = self._compute_restricted_dimensions()
        return cached

    def _compute_restricted_dimensions(self) -> dict[str, set[int]]:
        dims: dict[str, set[int]] = {}
        for dim, relation, model in (
            ("company", self.companies, Company),
            ("department", self.departments, Department),
            ("region", self.regions, Region),
            ("business_system", self.business_systems, BusinessSystem),
            ("vendor", self.vendors, Vendor),
        ):
            ids = {obj.pk for obj in relation.all()}
            if not ids:
                continue
            if hasattr(model, "descendant_ids"):
                ids = model.descendant_ids(ids)
            dims[dim] = ids
        return dims
