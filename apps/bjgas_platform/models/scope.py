"""Scoped access (分权分域): the one queryset method that decides which rows a user sees.

Every model that leaves the database through a user-facing surface declares
`scope_dimensions`, a map from a scope dimension to the field that carries it:

    scope_dimensions = {"company": "company_id", "department": "department_id"}

and optionally `scope_owner_fields`, fields naming users who always see the row (the
requester of a ticket, its assignee). `Model.objects.visible_to(user)` then returns the rows
that at least one of the user's scope rules (their own or their roles') allows:

- a rule with `all_records` allows every row;
- otherwise each dimension the rule restricts must match the row (company and department
  rules include the sub-companies and sub-departments); a dimension the model does not
  carry is not a restriction for that model;
- a rule that restricts no dimension allows nothing;
- a model that declares no dimension and no owner field is reference data that every user
  with the model permission sees whole.

Which models and actions a role may use at all is the job of Django's model permissions
on the role's group; scope rules only choose the rows. Superusers see every row.
"""

from __future__ import annotations

from django.contrib.auth.models import UserManager
from django.db import models
from django.db.models import Q

DIMENSIONS = ("company", "department", "region", "business_system", "vendor")
# What a process record (task, incident, ...) usually declares: it carries every dimension
# as a foreign key of the same name, and its requester, assignee and creator always see it.
RECORD_DIMENSIONS = {dim: f"{dim}_id" for dim in DIMENSIONS}
RECORD_OWNERS = ("requester", "assignee", "created_by")


class ScopedQuerySet(models.QuerySet):
    """QuerySet with `visible_to(user)`, the single entry point of row-level access."""

    def visible_to(self, user) -> ScopedQuerySet:
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        condition = scope_condition(self.model, user)
        if condition is None:
            return self
        return self.filter(condition)


class ScopedManager(models.Manager.from_queryset(ScopedQuerySet)):
    """Default manager of scoped models."""

    @classmethod
    def from_user_manager(cls):
        return ScopedUserManager()


class ScopedUserManager(UserManager.from_queryset(ScopedQuerySet)):
    """The user model's manager: Django's user helpers plus `visible_to`."""


def user_rules(user) -> list:
    """Return the scope rules that apply to a user: their own and their roles'."""
    from .access import ScopeRule

    cache = getattr(user, "_scope_rules_cache", None)
    if cache is None:
        cache = list(
            ScopeRule.objects.filter(is_active=True)
            .filter(Q(user=user) | Q(role__in=user.groups.all()))
            .prefetch_related("companies", "departments", "regions", "business_systems", "vendors")
        )
        user._scope_rules_cache = cache
    return cache


def scope_condition(model, user) -> Q | None:
    """Return the filter for the rows of `model` that `user` may see; None means all rows."""
    dims: dict[str, str] = getattr(model, "scope_dimensions", {})
    owner_fields: tuple[str, ...] = getattr(model, "scope_owner_fields", ())
    if not dims and not owner_fields:
        return None  # unscoped reference data: role permissions alone decide
    allowed = Q(pk__in=[])
    for field in owner_fields:
        allowed |= Q(**{field: user.pk})
    if not dims:
        # Rows scoped only by their owners (a person's import jobs): an organisation rule
        # does not reach them, only a rule over all records does.
        if any(rule.all_records for rule in user_rules(user)):
            return None
        return allowed
    for rule in user_rules(user):
        if rule.all_records:
            return None
        rule_q = _rule_condition(rule, dims)
        if rule_q is None:
            continue
        if not rule_q:
            # An empty Q (every row) would vanish in `allowed | Q()`: answer it here.
            return None
        allowed |= rule_q
    return allowed


def _rule_condition(rule, dims: dict[str, str]) -> Q | None:
    """Return the rows one rule allows on a model with `dims`, or None if it allows none."""
    restricted = rule.restricted_dimensions()
    if not restricted:
        return None
    applicable = {d: ids for d, ids in restricted.items() if d in dims}
    if not applicable:
        # The rule restricts only dimensions this model does not carry: the model's rows
        # are reference data for the holder of the rule, not scoped by it.
        return Q()
    q = Q()
    for dim, ids in applicable.items():
        q &= Q(**{f"{dims[dim]}__in": sorted(ids)})
    return q
