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
        ("due_date is None", True),
        ("version >= -1 and version < 1", True),
        ("priority in ('P2', None)", False),
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


TEXT = "'%s' is a text field: compare it with text in quotes, such as 'P1'."
NUMBER = "'%s' is a number field: compare it with a number, without quotes."
DATE = (
    "'%s' is a date or time field: a condition can only test whether it is None or not; "
    "use a condition on another field, such as the priority or the state, instead."
)
LINK = (
    "'%s' is a link to another record: compare it only with None, or compare a field of "
    "that record, such as %s."
)
SENSITIVE = (
    "'%s' holds a password, secret, token or key and cannot be used in a condition; "
    "use other fields of the record."
)
IN_LIST = (
    "'in' and 'not in' need a list of values on the right, such as ('P1', 'P2'), or actor_roles."
)
ORDER_NONE = "'<', '<=', '>' and '>=' cannot compare with None: use 'is None' or 'is not None'."
IS_NONE = "'is' and 'is not' compare only with None: use '==' or '!=' for other values."
LIST_PLACE = "A list of values may only follow 'in' or 'not in'."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("priority > 5", TEXT % "priority"),
        ("5 < priority", TEXT % "priority"),
        ("priority in ('P1', 5)", TEXT % "priority"),
        ("'P1' <= priority <= 2", TEXT % "priority"),
        ("business_system.code == 1", TEXT % "business_system.code"),
        ("version == '0'", NUMBER % "version"),
        ("version == True", NUMBER % "version"),
        ("version not in (1, 'x')", NUMBER % "version"),
        (
            "requester.is_active == 1",
            "'requester.is_active' is a yes/no field: compare it with True or False.",
        ),
        ('due_date > "2026-01-01"', DATE % "due_date"),
        ("due_date == 20260101", DATE % "due_date"),
        ("created_at >= '2026-01-01 08:00'", DATE % "created_at"),
        ("support_group == 'G1'", LINK % ("support_group", "support_group.code")),
        ("requester != 'zhao'", LINK % ("requester", "requester.username")),
        (
            "requester.department in (1, 2)",
            LINK % ("requester.department", "requester.department.code"),
        ),
        ("priority in 5", IN_LIST),
        ("priority in 'P1P2'", IN_LIST),
        ("'P1' in priority", IN_LIST),
        ("priority not in business_system.code", IN_LIST),
        ("title < None", ORDER_NONE),
        ("None >= version", ORDER_NONE),
        ("title is 'x'", IS_NONE),
        ("version is not 0", IS_NONE),
        ("priority == ('P1', 'P2')", LIST_PLACE),
        ("('P1',) in ('P1', 'P2')", LIST_PLACE),
        ("requester.password < 'pbkdf2'", SENSITIVE % "requester.password"),
        ("requester.password is None", SENSITIVE % "requester.password"),
        (
            "assignee.department.head.password == 'x'",
            SENSITIVE % "assignee.department.head.password",
        ),
        (
            "requester.groups is None",
            "'requester.groups' is a list of related records, which "
            "a condition cannot use; compare a field of this record or of a single linked record.",
        ),
        ("-title == 1", "A minus sign may only stand before a number."),
    ],
)
def test_comparisons_must_fit_the_field(text, message):
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(text, Task)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text",
    [
        "priority in ('P1', 'P2', None)",
        "title != '' and title is not None",
        "version > -1 and 0 <= version",
        "requester.is_active == True and requester.department.code == 'HQ-IT'",
        "due_date is None or due_date is not None or due_date == None",
        "support_group is None and support_group != None",
        "support_group.code in ['G1', 'G2']",
        "'team_lead' in actor_roles and actor_is_requester == False",
        "actor_is_assignee or assignee is None",
        "priority == title",
    ],
)
def test_comparisons_that_fit_are_accepted(text):
    assert parse_condition(text, Task) is not None


@pytest.mark.parametrize(
    "text",
    [
        "password == 'x'",
        "secret == 'x'",
        "webhook.secret is None",
        "api_token != ''",
        "api_key == 'x'",
        "key == 'x'",
    ],
)
def test_credentials_are_refused_even_without_a_model(text):
    field = text.split(" ")[0]
    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition(text)
    assert str(caught.value) == SENSITIVE % field


def test_a_robot_webhook_secret_is_refused_on_its_model():
    from apps.bjgas_platform.models import RobotWebhook

    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("secret == 'abc'", RobotWebhook)
    assert str(caught.value) == SENSITIVE % "secret"


def test_ordinary_keys_are_not_credentials():
    from apps.bjgas_ops.models import Incident

    assert parse_condition("source_key == 'ZBX-1'", Incident) is not None


def test_actor_is_assignee(task):
    engineer = UserFactory(username="eng", roles=[r.ENGINEER_T1])
    other = UserFactory(username="other", roles=[r.ENGINEER_T1])

    assert evaluate_condition("actor_is_assignee", task, engineer) is False
    task.assignee = engineer
    assert evaluate_condition("actor_is_assignee", task, engineer) is True
    assert evaluate_condition("actor_is_assignee", task, other) is False
    assert evaluate_condition("actor_is_assignee", task, None) is False
    assert evaluate_condition("actor_is_requester", task, engineer) is False


def test_actor_is_assignee_needs_an_assignee_field():
    from apps.bjgas_platform.models import Department

    with pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("actor_is_assignee", Department)
    assert str(caught.value) == (
        "'actor_is_assignee' cannot be used here: 'department' has no field 'assignee'."
    )


def test_messages_are_translated():
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(ConditionSyntaxError) as caught:
        parse_condition("priority > 5", Task)
    assert "priority" in str(caught.value)
    assert str(caught.value) != TEXT % "priority"
