"""Transition conditions: a small, safe expression language over a record's fields.

The syntax is a subset of Python's expressions, parsed with `ast` and walked here; no
code is ever compiled or evaluated by Python. What is allowed:

- names of the record's fields (`priority`, `business_system`), and a related record's
  fields one or more levels down (`business_system.code`, `requester.department.code`);
- `actor_roles`, the set of the acting user's role codes; `actor_is_requester`;
- literals: strings, numbers, True, False, None, and tuples/lists of them;
- `and`, `or`, `not`, comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`,
  `is`, `is not`).

Example: `priority in ('P1', 'P2') and business_system.code == 'SCADA'`.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext as _

SPECIAL_NAMES = {"actor_roles", "actor_is_requester"}
CONSTANT_NAMES = {"True": True, "False": False, "None": None}
COMPARATORS = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


class ConditionSyntaxError(ValueError):
    """The condition text is not a valid expression of the language."""


def parse_condition(text: str, model=None) -> ast.Expression | None:
    """Parse and check a condition; with `model`, check that every field exists on it."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        if exc.offset:
            message = _("The condition is not a valid expression (column %(col)s): %(msg)s") % {
                "col": exc.offset,
                "msg": exc.msg,
            }
        else:
            message = _("The condition is not a valid expression: %(msg)s") % {"msg": exc.msg}
        raise ConditionSyntaxError(message) from exc
    _check(tree.body, model)
    return tree


def evaluate_condition(text: str, record, actor=None) -> bool:
    """Return whether the condition holds for `record` acted on by `actor`."""
    tree = parse_condition(text, type(record))
    if tree is None:
        return True
    context = {
        "actor_roles": set(_role_codes(actor)),
        "actor_is_requester": bool(
            actor is not None and getattr(record, "requester_id", None) == actor.pk
        ),
    }
    return bool(_eval(tree.body, record, context))


def _role_codes(actor) -> list[str]:
    if actor is None:
        return []
    from ..models import Role

    return list(Role.objects.filter(group__user=actor).values_list("code", flat=True))


def _check(node: ast.AST, model) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, model)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        _check(node.operand, model)
    elif isinstance(node, ast.Compare):
        if any(type(op) not in COMPARATORS for op in node.ops):
            raise ConditionSyntaxError(_("This comparison is not supported in conditions."))
        _check(node.left, model)
        for comparator in node.comparators:
            _check(comparator, model)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, str | int | float | bool | type(None)):
            raise ConditionSyntaxError(_("Only text, numbers, True, False and None are allowed."))
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            if not isinstance(element, ast.Constant):
                raise ConditionSyntaxError(_("A list in a condition may hold only literal values."))
            _check(element, model)
    elif isinstance(node, ast.Name):
        if node.id not in SPECIAL_NAMES and node.id not in CONSTANT_NAMES:
            _field_path_model([node.id], model)
    elif isinstance(node, ast.Attribute):
        _field_path_model(_attribute_path(node), model)
    else:
        raise ConditionSyntaxError(
            _(
                "'%(part)s' is not allowed in a condition: use fields, literals, comparisons, "
                "and, or, not."
            )
            % {"part": ast.unparse(node)}
        )


def _attribute_path(node: ast.Attribute) -> list[str]:
    parts: list[str] = []
    current: ast.AST = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        raise ConditionSyntaxError(_("A field path must start with a field name."))
    parts.append(current.id)
    parts.reverse()
    for part in parts:
        if part.startswith("_"):
            raise ConditionSyntaxError(_("Names starting with '_' are not allowed."))
    return parts


def _field_path_model(path: list[str], model) -> None:
    if model is None:
        if any(p.startswith("_") for p in path):
            raise ConditionSyntaxError(_("Names starting with '_' are not allowed."))
        return
    current = model
    for i, name in enumerate(path):
        if name.startswith("_"):
            raise ConditionSyntaxError(_("Names starting with '_' are not allowed."))
        try:
            field = current._meta.get_field(name)
        except FieldDoesNotExist as exc:
            raise ConditionSyntaxError(
                _("'%(model)s' has no field '%(field)s'.")
                % {"model": current._meta.verbose_name, "field": name}
            ) from exc
        if i < len(path) - 1:
            if not field.is_relation or field.many_to_many or field.one_to_many:
                raise ConditionSyntaxError(
                    _("'%(field)s' is not a link to another record.") % {"field": name}
                )
            current = field.related_model


def _eval(node: ast.AST, record, context: dict[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_eval(v, record, context) for v in node.values)
        return any(_eval(v, record, context) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, record, context)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, record, context)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, record, context)
            try:
                if not COMPARATORS[type(op)](left, right):
                    return False
            except TypeError:
                return False  # comparing None with a number: the condition does not hold
            left = right
        return True
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [_eval(e, record, context) for e in node.elts]
    if isinstance(node, ast.Name):
        if node.id in CONSTANT_NAMES:
            return CONSTANT_NAMES[node.id]
        if node.id in context:
            return context[node.id]
        return _field_value(record, [node.id])
    if isinstance(node, ast.Attribute):
        return _field_value(record, _attribute_path(node))
    raise ConditionSyntaxError(
        _("'%(part)s' is not allowed in a condition.") % {"part": ast.unparse(node)}
    )


def _field_value(record, path: list[str]) -> Any:
    value = record
    for name in path:
        if value is None:
            return None
        field = value._meta.get_field(name)
        value = getattr(value, field.name)
    return value
