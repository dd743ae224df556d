"""The safe condition language: what it computes on a task, and what it refuses."""

import pytest

from apps.bjgas_ops.models import Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.services.conditions import (
    ConditionSyntaxError,
    evaluate_condition,
    parse_condition,
)

from .factories import (
    BusinessSystemFactory,
    CompanyFactory,
    DepartmentFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


@pytest.fixture
def task():
    """A P1 SCADA task of a requester in HQ's IT center, with no support group or vendor."""
    hq = CompanyFactory(code="HQ", name="集团总部")
    it = DepartmentFactory(code="HQ-IT", name="信息中心", company=hq)
    requester = UserFactory(username="zhao", company=hq, department=it, roles=[r.REQUESTER])
    return TaskFactory(
        title="调度中断",
        requester=requester,
        priority="P1",
        business_system=BusinessSystemFactory(code="SCADA", name="SCADA 调度系统"),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("priority in ('P1', 'P2')", True),
        ("priority in ('P3', 'P4')", False),
        ("priority not in ['P1', 'P2']", False),
        ("priority not in ['P3']", True),
        ("priority == 'P1' and business_system.code == 'SCADA'", True),
        ("priority == 'P1' and business_system.code == 'CRM'", False),
        ("priority == 'P3' or business_system.code == 'SCADA'", True),
        ("priority == 'P3' or business_system.code == 'CRM'", False),
        ("not priority == 'P1'", False),
        ("not (priority == 'P2' or priority == 'P3')", True),
        ("support_group is None", True),
        ("support_group is not None", False),
        ("vendor.code == 'VA'", False),
        ("vendor.code is None", True),
        ("requester.department.code == 'HQ-IT'", True),
        ("requester.department.company.code != 'HQ'", False),
        ("requester.company.parent is None", True),
        ("'P1' <= priority <= 'P2'", True),
        ("due_date > 3", False),
        ("title == '调度中断'", True),
        ("version == 0 and state == 'new'", True),
    ],
)
def test_evaluates_by_hand_known_values(task, text, expected):
    assert evaluate_condition(text, task) is expected


def test_actor_roles_and_requester(task):
    lead = UserFactory(username="lead", roles=[r.TEAM_LEAD, r.ENGINEER_T2])

    assert evaluate_condition("'team_lead' in actor_roles", task, lead) is True
    assert evaluate_condition("'service_desk' in actor_roles", task, lead) is False
    assert evaluate_condition("'team_lead' in actor_roles", task, task.requester) is False
    assert evaluate_condition("'requester' in actor_roles", task, task.requester) is True
    assert evaluate_condition("actor_is_requester", task, task.requester) is True
    assert evaluate_condition("actor_is_requester", task, lead) is False
    assert evaluate_condition("not actor_is_requester", task, None) is True
    assert evaluate_condition("actor_roles == actor_roles", task, None) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "__import__('os')",
            "'__import__('os')' is not allowed in a condition: use fields, literals, "
            "comparisons, and, or, not.",
        ),
        (
            "__import__('os').system('id') == 0",
            "'__import__('os').system('id')' is not allowed in a condition: use fields, "
            "literals, comparisons, and, or, not.",
        ),
        ("_state == 1", "Names starting with '_' are not allowed."),
        ("not __builtins__", "Names starting with '_' are not allowed."),
        ("business_system._meta is None", "Names starting with '_' are not allowed."),
        ("requester.__class__ is None", "Names starting with '_' are not allowed."),
        (
            "title[0] == 'x'",
            "'title[0]' is not allowed in a condition: use fields, literals, comparisons, "
            "and, or, not.",
        ),
        (
            "lambda: 1",
            "'lambda: 1' is not allowed in a condition: use fields, literals, comparisons, "
            "and, or, not.",
        ),
        (
            "[p for p in ('P1', 'P2')] == ['P1']",
            "'[p for p in ('P1', 'P2')]' is not allowed in a condition: use fields, "
            "literals, comparisons, and, or, not.",
        ),
        (
            "{p: 1 for p in 'ab'}",
            "'{p: 1 for p in 'ab'}' is not allowed in a condition: use fields, literals, "
            "comparisons, and, or, not.",
        ),
        (
            "priority + 'x' == 'P1x'",
            "'priority + 'x'' is not allowed in a condition: use fields, literals, "
            "comparisons, and, or, not.",
        ),
        (
            "(title := 'x') == 'x'",
            "'(title := 'x')' is not allowed in a condition: use fields, literals, "
            "comparisons, and, or, not.",
        ),
        (
            "'x'.upper() == 'X'",
            "'x'.upper()' is not allowed in a condition: use fields, "
            "literals, comparisons, and, or, not.",
        ),
        ("('x').upper == 1", "A field path must start with a field name."),
        ("priority in (title, 'P1')", "A list in a condition may hold only literal values."),
        ("priority == b'P1'", "Only text, numbers, True, False and None are allowed."),
    ],
)
def test_refuses_what_is_not_in_the_language(task, text, message):
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(text)
    assert str(caught.value).endswith(message)

    with pytest.raises(ConditionSyntaxError):
        evaluate_condition(text, task)


def test_nothing_is_executed(task, tmp_path):
    marker = tmp_path / "ran"
    attempts = [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"open({str(marker)!r}, 'w').write('x') == 1",
        f"[open({str(marker)!r}, 'w') for _ in 'a']",
        f"(lambda: open({str(marker)!r}, 'w'))() is None",
    ]
    for text in attempts:
        with pytest.raises(ConditionSyntaxError):
            evaluate_condition(text, task)

    assert not marker.exists()


def test_syntax_error_names_the_column():
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("priority = 'P1'")

    assert str(caught.value) == (
        "The condition is not a valid expression (column 10): invalid syntax"
    )


def test_syntax_error_at_the_end_has_no_column():
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("priority ==")

    assert str(caught.value) == "The condition is not a valid expression: invalid syntax"


def test_with_a_model_every_field_must_exist():
    parse_condition("requester.department.head.username == 'li'", Task)

    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("severity == 'A'", Task)
    assert str(caught.value) == "'task' has no field 'severity'."

    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("priority.code == 'P1'", Task)
    assert str(caught.value) == "'priority' is not a link to another record."

    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("business_system.colour == 'red'", Task)
    assert str(caught.value) == "'business system' has no field 'colour'."


def test_evaluating_an_unknown_field_is_a_syntax_error_not_a_crash(task):
    with pytest.raises(ConditionSyntaxError) as caught:
        evaluate_condition("severity == 'A'", task)

    assert str(caught.value) == "'task' has no field 'severity'."


def test_syntax_error_names_the_column_only_when_python_knows_it(english):
    # "priority 'P1'": the stray literal starts at column 10 (1-based).
    with pytest.raises(ConditionSyntaxError) as exc:
        parse_condition("priority 'P1'")
    assert "(column 10)" in str(exc.value)
    with pytest.raises(ConditionSyntaxError) as exc:
        parse_condition("priority ==")
    assert "column" not in str(exc.value)
