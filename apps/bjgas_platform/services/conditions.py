"""Transition conditions: a small, safe expression language over a record's fields.

The syntax is a subset of Python's expressions, parsed with `ast` and walked here; no
code is ever compiled or evaluated by Python. What is allowed:

- names of the record's fields (`priority`, `business_system`), and a related record's
  fields one or more levels down (`business_system.code`, `requester.department.code`);
- `actor_roles`, the set of the acting user's role codes; `actor_is_requester`, true when
  the acting user is the record's requester; `actor_is_assignee`, true when the acting user
  is the record's assignee;
- literals: strings, numbers, True, False, None, and tuples/lists of them;
- `and`, `or`, `not`, comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`,
  `is`, `is not`).

Example: `priority in ('P1', 'P2') and business_system.code == 'SCADA'`.

A comparison of a field with a literal must fit the field, so that a condition that could
never hold is refused when it is saved rather than hiding a transition later: text fields
take text, number fields numbers, yes/no fields True or False; date and time fields and
links to other records are compared only with None (a link's own fields can be compared
through a path). `in` and `not in` take a list of literals (or `actor_roles`) on the right;
`<`, `<=`, `>`, `>=` never take None; `is` and `is not` take only None. Passwords, secrets,
tokens and credential keys are never readable in a condition, at any depth of a path.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.translation import gettext as _

# Special name -> the field the record needs for it to mean anything (None: any record).
SPECIAL_NAMES = {
    "actor_roles": None,
    "actor_is_requester": "requester",
    "actor_is_assignee": "assignee",
}
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
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
MEMBERSHIP = (ast.In, ast.NotIn)
IDENTITY = (ast.Is, ast.IsNot)
# Credentials: never readable through a condition, at any depth of a field path.
SENSITIVE_NAME = re.compile(
    r"(^|_)(password|passwd|secret|token|credentials?)(_|$)"
    r"|^((api|access|private|secret|signing|app|auth|client|encryption)_?)?key$"
)
TEXT_FIELDS = (models.CharField, models.TextField)
NUMBER_FIELDS = (models.IntegerField, models.FloatField, models.DecimalField)
TIME_FIELDS = (models.DateField, models.TimeField, models.DurationField)
LITERAL = object()  # marks an operand that is a literal value


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
        "actor_is_assignee": bool(
            actor is not None and getattr(record, "assignee_id", None) == actor.pk
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
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, model)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        if _number(node) is None:
            raise ConditionSyntaxError(_("A minus sign may only stand before a number."))
    elif isinstance(node, ast.Compare):
        if any(type(op) not in COMPARATORS for op in node.ops):
            raise ConditionSyntaxError(_("This comparison is not supported in conditions."))
        operands = [node.left, *node.comparators]
        for operand in operands:
            _check(operand, model)
        for left, op, right in zip(operands, node.ops, operands[1:], strict=False):
            _check_comparison(left, op, right, model)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, str | int | float | bool | type(None)):
            raise ConditionSyntaxError(_("Only text, numbers, True, False and None are allowed."))
    elif isinstance(node, ast.Tuple | ast.List | ast.Set):
        for element in node.elts:
            if not isinstance(element, ast.Constant) and _number(element) is None:
                raise ConditionSyntaxError(_("A list in a condition may hold only literal values."))
            _check(element, model)
    elif isinstance(node, ast.Name):
        if node.id in SPECIAL_NAMES:
            _check_special(node.id, model)
        elif node.id not in CONSTANT_NAMES:
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


def _check_special(name: str, model) -> None:
    needed = SPECIAL_NAMES[name]
    if model is None or needed is None:
        return
    try:
        model._meta.get_field(needed)
    except FieldDoesNotExist as exc:
        raise ConditionSyntaxError(
            _("'%(name)s' cannot be used here: '%(model)s' has no field '%(field)s'.")
            % {"name": name, "model": model._meta.verbose_name, "field": needed}
        ) from exc


def _number(node: ast.AST) -> int | float | None:
    """Return the number a literal (possibly negative) stands for, or None."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1, node.operand
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return sign * node.value
    return None


def _operand(node: ast.AST, model) -> tuple[str, Any]:
    """Classify one side of a comparison: ('literal', value), ('list', values),
    ('field', (path text, field or None)), ('special', name) or ('other', None)."""
    if isinstance(node, ast.Constant):
        return "literal", node.value
    number = _number(node)
    if number is not None:
        return "literal", number
    if isinstance(node, ast.Name) and node.id in CONSTANT_NAMES:
        return "literal", CONSTANT_NAMES[node.id]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        values = [_operand(e, model)[1] for e in node.elts]
        return "list", values
    if isinstance(node, ast.Name) and node.id in SPECIAL_NAMES:
        return "special", node.id
    if isinstance(node, ast.Name | ast.Attribute):
        path = [node.id] if isinstance(node, ast.Name) else _attribute_path(node)
        return "field", (".".join(path), _field_path_model(path, model))
    return "other", None


def _check_comparison(left: ast.AST, op: ast.cmpop, right: ast.AST, model) -> None:
    """Refuse a comparison that could never hold or that Python cannot make."""
    left_kind, left_value = _operand(left, model)
    right_kind, right_value = _operand(right, model)
    none_side = (left_kind == "literal" and left_value is None) or (
        right_kind == "literal" and right_value is None
    )
    if isinstance(op, IDENTITY):
        if not none_side:
            raise ConditionSyntaxError(
                _("'is' and 'is not' compare only with None: use '==' or '!=' for other values.")
            )
    elif isinstance(op, ORDERING) and none_side:
        raise ConditionSyntaxError(
            _("'<', '<=', '>' and '>=' cannot compare with None: use 'is None' or 'is not None'.")
        )
    if isinstance(op, MEMBERSHIP):
        if not (right_kind == "list" or (right_kind, right_value) == ("special", "actor_roles")):
            raise ConditionSyntaxError(
                _(
                    "'in' and 'not in' need a list of values on the right, such as "
                    "('P1', 'P2'), or actor_roles."
                )
            )
        if left_kind == "list":
            raise ConditionSyntaxError(_("A list of values may only follow 'in' or 'not in'."))
        if left_kind == "field" and right_kind == "list":
            for value in right_value:
                _check_literal(*left_value, value)
        return
    if left_kind == "list" or right_kind == "list":
        raise ConditionSyntaxError(_("A list of values may only follow 'in' or 'not in'."))
    if left_kind == "field" and right_kind == "literal":
        _check_literal(*left_value, right_value)
    elif right_kind == "field" and left_kind == "literal":
        _check_literal(*right_value, left_value)


def _check_literal(path: str, field, value: Any) -> None:
    """Refuse a literal that a field's values can never equal or be ordered with."""
    if field is None or value is None:
        return  # no model to check against; None fits every field ('is None')
    if field.is_relation and field.related_model is None:
        raise ConditionSyntaxError(
            _("'%(field)s' is a link to another record: compare it only with None.")
            % {"field": path}
        )
    if field.is_relation:
        raise ConditionSyntaxError(
            _(
                "'%(field)s' is a link to another record: compare it only with None, or "
                "compare a field of that record, such as %(example)s."
            )
            % {"field": path, "example": f"{path}.{_example_field(field.related_model)}"}
        )
    if isinstance(field, models.BooleanField):
        if not isinstance(value, bool):
            raise ConditionSyntaxError(
                _("'%(field)s' is a yes/no field: compare it with True or False.") % {"field": path}
            )
    elif isinstance(field, NUMBER_FIELDS):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConditionSyntaxError(
                _("'%(field)s' is a number field: compare it with a number, without quotes.")
                % {"field": path}
            )
    elif isinstance(field, TEXT_FIELDS):
        if not isinstance(value, str):
            raise ConditionSyntaxError(
                _("'%(field)s' is a text field: compare it with text in quotes, such as 'P1'.")
                % {"field": path}
            )
    elif isinstance(field, TIME_FIELDS):
        raise ConditionSyntaxError(
            _(
                "'%(field)s' is a date or time field: a condition can only test whether it "
                "is None or not; use a condition on another field, such as the priority or "
                "the state, instead."
            )
            % {"field": path}
        )
    else:
        raise ConditionSyntaxError(
            _("'%(field)s' cannot be compared with a literal value: only with None.")
            % {"field": path}
        )


def _example_field(model) -> str:
    for name in ("code", "username", "name"):
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        return name
    return model._meta.pk.name


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


def _field_path_model(path: list[str], model):
    """Check a field path against `model`; return its last field (None without a model)."""
    for name in path:
        if name.startswith("_"):
            raise ConditionSyntaxError(_("Names starting with '_' are not allowed."))
        if SENSITIVE_NAME.search(name.lower()):
            raise ConditionSyntaxError(
                _(
                    "'%(field)s' holds a password, secret, token or key and cannot be used in "
                    "a condition; use other fields of the record."
                )
                % {"field": ".".join(path)}
            )
    if model is None:
        return None
    current, field = model, None
    for i, name in enumerate(path):
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
    if field.many_to_many or field.one_to_many:
        raise ConditionSyntaxError(
            _(
                "'%(field)s' is a list of related records, which a condition cannot use; "
                "compare a field of this record or of a single linked record."
            )
            % {"field": ".".join(path)}
        )
    return field


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
