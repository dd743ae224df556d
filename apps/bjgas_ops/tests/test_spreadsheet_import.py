"""The generic Excel/CSV import: the template round trip, another tool's event log through a
column mapping, bad rows named by row and column, strict imports, re-imports and GBK CSV."""

import io
from datetime import UTC, datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import translation
from openpyxl import load_workbook

from apps.bjgas_ops.importers.records import ImportedIncident, ImportRefused
from apps.bjgas_ops.importers.spreadsheet import import_spreadsheet, template_workbook
from apps.bjgas_ops.importers.writer import write_incidents
from apps.bjgas_ops.models import (
    ImportFormat,
    ImportMapping,
    Incident,
    IncidentCategory,
    IncidentSegment,
)
from apps.bjgas_platform.models import SupportGroup, TransitionLog, User

from .incident_fixtures import *  # noqa: F403 (the fixtures clock and world)
from .incident_fixtures import local

pytestmark = pytest.mark.django_db

ROWS = ImportFormat.ROWS
EVENT_LOG = ImportFormat.EVENT_LOG


def write_csv(tmp_path, text: str, name="incidents.csv", encoding="utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def imported(key: str, source="spreadsheet") -> Incident:
    return Incident.objects.select_related("support_group", "requester", "assignee").get(
        source_system=source, source_key=key
    )


def state_log(incident: Incident) -> list[tuple[str, str]]:
    return list(
        TransitionLog.objects.filter(
            content_type=ContentType.objects.get_for_model(Incident), object_id=incident.pk
        )
        .order_by("created_at", "id")
        .values_list("from_state", "to_state")
    )


# ------------------------------------------------------------------ the template


def filled_template(tmp_path) -> str:
    """Download the template and fill three incidents as a user would in Excel."""
    workbook = load_workbook(io.BytesIO(template_workbook()))
    sheet = workbook.worksheets[0]
    column = {cell.value: cell.column for cell in sheet[1]}
    rows = [
        {
            "编号": "A001",
            "标题": "打印机卡纸",
            "报障时间": datetime(2026, 3, 2, 9, 0),  # an Excel date cell
            "解决时间": datetime(2026, 3, 2, 10, 30),
            "关闭时间": "2026-03-03 09:00",
            "报障人": "张会计",
            "报障公司": "HQ",
            "报障部门": "财务部",
            "紧急度": "2 - 高",
            "影响度": 3,
            "优先级": "P2",
            "严重度": "B",
            "支持组": "桌面运维一线",
            "处理人": "li",
            "服务级别达标": "是",
        },
        {
            "编号": "A002",
            "标题": "调度系统无法登录",
            "报障时间": "2026/03/02 14:00",
            "状态": "等待服务商",
            "紧急度": "1",
            "影响度": "1",
            "支持组": "应用运维二线",
        },
        {
            "编号": "A003",
            "标题": "邮件发送失败",
            "报障时间": "2026-03-03 08:00",
            "解决时间": "2026-03-03 08:45",
            "优先级": "P4 低",
            "支持组": "外包网络组",
            "支持层级": "二线",
        },
    ]
    for line, values in enumerate(rows, start=2):
        for header, value in values.items():
            sheet.cell(line, column[header], value)
    path = tmp_path / "filled.xlsx"
    workbook.save(path)
    return str(path)


def test_template_has_chinese_headers_and_explains_them(english):
    workbook = load_workbook(io.BytesIO(template_workbook()))
    data, guide = workbook.worksheets
    headers = [cell.value for cell in data[1]]
    assert headers[:6] == ["编号", "标题", "描述", "报障时间", "解决时间", "关闭时间"]
    assert {"报障人", "报障公司", "业务系统", "优先级", "严重度", "支持组", "处理人"} <= set(
        headers
    )
    assert data.max_row == 1  # no sample row that would be imported by mistake
    required = {
        c.value for c in data[1] if c.font.color is not None and c.font.color.rgb.endswith("C00000")
    }
    assert required == {"编号", "标题", "报障时间"}
    explained = {row[0]: row for row in guide.iter_rows(min_row=2, values_only=True) if row[0]}
    assert set(headers) <= set(explained)
    assert "P1" in explained["优先级"][3] and "已关闭（closed）" in explained["状态"][3]
    assert explained["编号"][1] == "required" and explained["描述"][1] is None


def test_template_round_trip(tmp_path, world, clock):
    summary = import_spreadsheet(filled_template(tmp_path), layout=ROWS, company=world.hq)

    assert (summary.rows, summary.created, summary.updated, summary.errors) == (3, 3, 0, [])
    a1, a2, a3 = imported("A001"), imported("A002"), imported("A003")
    assert {a1.channel, a2.channel, a3.channel} == {"import"}

    assert a1.created_at == local(2026, 3, 2, 9, 0)
    assert a1.resolved_at == local(2026, 3, 2, 10, 30)
    assert a1.closed_at == local(2026, 3, 3, 9, 0)
    assert a1.state == "closed"
    assert (a1.priority, a1.urgency, a1.impact, a1.severity) == ("P2", 2, 3, "B")
    assert a1.support_group == world.g1 and a1.tier == 1
    assert a1.assignee == world.li and a1.requester == world.zhang
    assert a1.department == world.fin and a1.company == world.hq
    assert a1.sla_met is True
    assert a1.handling_seconds == 90 * 60

    assert a2.state == "waiting_vendor" and a2.resolved_at is None
    assert a2.priority == "P1"  # urgency 1 × impact 1 by the default matrix
    assert a2.support_group == world.g2 and a2.tier == 2
    assert a2.created_at == local(2026, 3, 2, 14, 0)
    assert state_log(a2) == [("", "new"), ("new", "waiting_vendor")]

    assert a3.state == "resolved" and a3.priority == "P4" and a3.tier == 2
    assert a3.support_group.name == "外包网络组"
    assert a3.handling_seconds == 45 * 60
    assert state_log(a3) == [("", "new"), ("new", "resolved")]


def test_reimport_updates_instead_of_duplicating(tmp_path, world, clock):
    path = filled_template(tmp_path)
    import_spreadsheet(path, layout=ROWS, company=world.hq)
    first_pk = imported("A001").pk
    workbook = load_workbook(path)
    workbook.worksheets[0]["B2"] = "打印机卡纸（已更换硒鼓）"
    workbook.save(path)

    summary = import_spreadsheet(path, layout=ROWS, company=world.hq)

    assert (summary.created, summary.updated) == (0, 3)
    assert Incident.objects.filter(source_system="spreadsheet").count() == 3
    again = imported("A001")
    assert again.pk == first_pk and again.title == "打印机卡纸（已更换硒鼓）"
    assert state_log(again) == [("", "new"), ("new", "resolved"), ("resolved", "closed")]


def test_time_zone_of_the_import(tmp_path, world, clock):
    path = write_csv(tmp_path, "编号,标题,报障时间\nZ1,时区,2026-03-02 09:00\n")
    import_spreadsheet(path, layout=ROWS, company=world.hq, zone="UTC")
    assert imported("Z1").created_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_gbk_csv_from_chinese_excel(tmp_path, world, clock):
    text = (
        "编号,标题,报障时间,解决时间,支持组\n"
        "G-1,燃气表读数异常,2026-03-02 09:00,2026-03-02 09:20,桌面运维一线\n"
    )
    path = write_csv(tmp_path, text, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / "incidents.csv").read_bytes().decode("utf-8")

    summary = import_spreadsheet(path, layout=ROWS, company=world.hq)

    assert summary.errors == [] and summary.created == 1
    incident = imported("G-1")
    assert incident.title == "燃气表读数异常"
    assert incident.support_group == world.g1
    assert incident.handling_seconds == 20 * 60


def test_rows_through_a_mapping_and_spellings_of_values(tmp_path, world, clock):
    mapping = ImportMapping.objects.create(
        name="旧运维台账",
        format=ROWS,
        columns={"key": "工单号", "opened_at": "发生时间", "support_group": "处理班组"},
        values={"priority": {"紧急": "P1", "一般": "P3"}, "made_sla": {"超时": "否"}},
        time_format="%Y.%m.%d %H:%M",
    )
    text = (
        "工单号,标题,发生时间,优先级,紧急度,严重度,支持层级,服务级别达标,处理班组\n"
        "S1,一,2026.03.02 09:00,紧急,1 - Critical,A 级（2 小时内响应）,L2,超时,应用运维二线\n"
        "S2,二,2026.03.02 10:00,一般,4 - 低,b,三线,yes,\n"
        "S3,三,2026.03.02 11:00,P2 high,2,C,Tier 1,,\n"
    )
    summary = import_spreadsheet(
        write_csv(tmp_path, text), layout=ROWS, mapping=mapping, company=world.hq
    )

    assert summary.errors == [] and summary.created == 3
    s1, s2, s3 = (imported(k, f"sheet-{mapping.pk}") for k in ("S1", "S2", "S3"))
    assert (s1.priority, s1.urgency, s1.severity, s1.tier, s1.sla_met) == ("P1", 1, "A", 2, False)
    assert s1.support_group == world.g2 and s1.created_at == local(2026, 3, 2, 9, 0)
    assert (s2.priority, s2.urgency, s2.severity, s2.tier, s2.sla_met) == ("P3", 4, "B", 3, True)
    assert (s3.priority, s3.urgency, s3.severity, s3.tier, s3.sla_met) == ("P2", 2, "C", 1, None)


# -------------------------------------------------------------------- bad rows

BAD_FILE = """编号,标题,报障时间,解决时间,优先级,状态,转派次数,支持层级
B1,正常一,2026-03-02 09:00,,,,,
B2,,2026-03-02 09:00,,,,,
B3,时间错,2026-13-45 09:00,,,,,
B4,优先级错,2026-03-02 09:00,,P9,,,
B5,状态错,2026-03-02 09:00,,,Solved,,
B6,先解决后报障,2026-03-02 09:00,2026-03-02 08:00,,,,
B1,编号重复,2026-03-02 10:00,,,,,
B7,次数错,2026-03-02 09:00,,,,abc,
B8,层级错,2026-03-02 09:00,,,,,4
B9,正常二,2026-03-02 09:00,2026-03-02 11:00,P2 high,,,
"""
BAD_ROWS = [
    (3, "B2", "标题", "a value is required"),
    (4, "B3", "报障时间", "'2026-13-45 09:00' is not a time"),
    (5, "B4", "优先级", "unknown priority 'P9'"),
    (6, "B5", "状态", "unknown state 'Solved'"),
    (7, "B6", "解决时间", "resolved before it was reported"),
    (8, "B1", "编号", "the number B1 is already on row 2"),
    (9, "B7", "转派次数", "'abc' is not a whole number"),
    (10, "B8", "支持层级", "unknown tier '4'"),
]


def named(errors):
    return [(e.row, e.number, e.column, e.reason) for e in errors]


def test_bad_rows_are_named_and_good_rows_imported(tmp_path, world, clock, english):
    summary = import_spreadsheet(write_csv(tmp_path, BAD_FILE), layout=ROWS, company=world.hq)

    found = named(summary.errors)
    assert [f[:3] for f in found] == [b[:3] for b in BAD_ROWS]
    for (_r, _n, _c, reason), (*_where, expected) in zip(found, BAD_ROWS, strict=True):
        assert reason.startswith(expected)
    assert str(summary.errors[0]) == "row 3, column 标题 (B2): a value is required"
    assert summary.rows == 10 and summary.refused is False
    assert sorted(Incident.objects.values_list("source_key", flat=True)) == ["B1", "B9"]
    assert imported("B1").title == "正常一"  # the first B1 is kept
    assert imported("B9").priority == "P2"


def test_bad_rows_are_translated(tmp_path, world, clock):
    with translation.override("zh-hans"):
        summary = import_spreadsheet(write_csv(tmp_path, BAD_FILE), layout=ROWS, company=world.hq)
    assert summary.errors[0].reason == "此项必填"
    assert summary.errors[4].reason == "解决时间早于报障时间"


def test_strict_imports_nothing(tmp_path, world, clock, english):
    path = write_csv(tmp_path, BAD_FILE)
    summary = import_spreadsheet(path, layout=ROWS, company=world.hq, strict=True)

    assert summary.refused is True
    assert [f[:3] for f in named(summary.errors)] == [b[:3] for b in BAD_ROWS]
    assert Incident.objects.count() == 0


def test_missing_required_column_refuses_the_file(tmp_path, world, clock, english):
    path = write_csv(tmp_path, "编号,标题\nM1,没有时间\n")
    summary = import_spreadsheet(path, layout=ROWS, company=world.hq)

    assert summary.refused is True
    assert named(summary.errors) == [
        (1, "", "报障时间", "the file has no column '报障时间' (field opened_at)")
    ]
    assert Incident.objects.count() == 0


def test_unknown_company_is_a_bad_row(tmp_path, world, clock, english):
    text = "编号,标题,报障时间,报障公司\nU1,好,2026-03-02 09:00,HQ\nU2,坏,2026-03-02 09:00,NOPE\n"
    summary = import_spreadsheet(write_csv(tmp_path, text), layout=ROWS, company=world.hq)

    assert summary.refused is False
    assert [(e.row, e.number, e.column) for e in summary.errors] == [(3, "U2", "报障公司")]
    assert "NOPE" in summary.errors[0].reason
    assert list(Incident.objects.values_list("source_key", flat=True)) == ["U1"]


def test_unknown_company_with_strict_refuses_everything(tmp_path, world, clock, english):
    text = "编号,标题,报障时间,报障公司\nU1,好,2026-03-02 09:00,HQ\nU2,坏,2026-03-02 09:00,NOPE\n"
    path = write_csv(tmp_path, text)
    summary = import_spreadsheet(path, layout=ROWS, company=world.hq, strict=True)

    assert summary.refused is True
    assert [(e.row, e.number, e.column) for e in summary.errors] == [(3, "U2", "报障公司")]
    assert Incident.objects.count() == 0


# ------------------------------------------------------------------- event log

EVENT_CSV = """CaseID,Timestamp,Status,Team,Level,Agent,Subject
C-1,02.03.2026 09:00,Open,ServiceDesk,L1,li,VPN down
C-1,02.03.2026 09:30,Open,NetOps,L2,chen,
C-1,02.03.2026 10:00,Waiting,,,,
C-1,02.03.2026 11:00,Open,,,,
C-1,02.03.2026 12:00,Solved,,,,VPN down at the east branch
C-2,03.03.2026 08:00,Open,ServiceDesk,L1,zhou,Printer
C-2,03.03.2026 08:20,Solved,,,,
C-3,04.03.2026 10:00,Waiting,ServiceDesk,L1,,Laptop
C-2,03.03.2026 09:00,Open,,,,
C-2,03.03.2026 10:00,Solved,,,,
C-2,03.03.2026 11:00,Closed,,,,
C-3,04.03.2026 09:00,Open,,,,
"""


@pytest.fixture
def zendesk():
    return ImportMapping.objects.create(
        name="Zendesk 导出",
        format=EVENT_LOG,
        columns={
            "key": "CaseID",
            "time": "Timestamp",
            "state": "Status",
            "support_group": "Team",
            "tier": "Level",
            "assignee": "Agent",
            "title": "Subject",
        },
        values={
            "state": {
                "Open": "in_progress",
                "Waiting": "waiting_requester",
                "Solved": "resolved",
                "Closed": "closed",
            },
            "tier": {"L1": 1, "L2": 2},
        },
        time_format="%d.%m.%Y %H:%M",
    )


def test_event_log_through_a_mapping(tmp_path, world, clock, zendesk):
    path = write_csv(tmp_path, EVENT_CSV, name="cases.csv")
    summary = import_spreadsheet(path, layout=EVENT_LOG, mapping=zendesk, company=world.hq)

    assert summary.errors == [] and (summary.rows, summary.created, summary.events) == (12, 3, 12)
    source = f"sheet-{zendesk.pk}"
    c1, c2, c3 = (imported(k, source) for k in ("C-1", "C-2", "C-3"))
    assert {c1.channel, c2.channel, c3.channel} == {"import"}

    # C-1: escalated from the desk (tier 1) to NetOps (tier 2), waited an hour, solved.
    assert c1.created_at == local(2026, 3, 2, 9, 0)
    assert c1.resolved_at == local(2026, 3, 2, 12, 0) and c1.state == "resolved"
    assert c1.title == "VPN down at the east branch"  # the last value given
    assert c1.support_group.name == "NetOps" and c1.tier == 2 and c1.assignee == world.chen
    assert c1.handling_seconds == 3 * 3600
    assert c1.reassignment_count == 1
    assert state_log(c1) == [
        ("", "new"),
        ("new", "in_progress"),
        ("in_progress", "waiting_requester"),
        ("waiting_requester", "in_progress"),
        ("in_progress", "resolved"),
    ]
    spans = IncidentSegment.objects.filter(incident=c1)
    assert sum(s.wall_seconds for s in spans if s.tier == 1) == 30 * 60
    assert sum(s.wall_seconds for s in spans if s.tier == 2 and s.state != "resolved") == 2.5 * 3600

    # C-2: solved, reopened, solved again, closed: resolved at the second solution.
    assert c2.resolved_at == local(2026, 3, 3, 10, 0)
    assert c2.closed_at == local(2026, 3, 3, 11, 0) and c2.state == "closed"
    assert c2.reopen_count == 1

    # C-3: its rows are out of order in the file; still waiting, so unresolved.
    assert c3.created_at == local(2026, 3, 4, 9, 0)
    assert c3.state == "waiting_requester" and c3.resolved_at is None


def test_event_log_bad_rows(tmp_path, world, clock, zendesk, english):
    text = (
        EVENT_CSV
        + "C-4,05.03.2026 09:00,Escalated,,,,\n"
        + "C-4,2026-03-05,Open,,L9,,\n"
        + ",05.03.2026 10:00,Open,,,,\n"
    )
    summary = import_spreadsheet(
        write_csv(tmp_path, text), layout=EVENT_LOG, mapping=zendesk, company=world.hq
    )

    assert [f[:3] for f in named(summary.errors)] == [
        (14, "C-4", "Status"),
        (15, "C-4", "Timestamp"),
        (15, "C-4", "Level"),
        (16, "", "CaseID"),
    ]
    assert "unknown state 'Escalated'" in summary.errors[0].reason
    assert "format %d.%m.%Y %H:%M" in summary.errors[1].reason
    assert summary.created == 3  # the three good cases; C-4 has no good row


def test_event_log_time_before_report(tmp_path, world, clock, english):
    mapping = ImportMapping.objects.create(
        name="otrs",
        format=EVENT_LOG,
        columns={"key": "Ticket", "time": "Changed", "state": "State", "opened_at": "Created"},
        values={"state": {"open": "in_progress", "closed successful": "closed"}},
    )
    text = (
        "Ticket,Changed,State,Created\n"
        "T1,2026-03-02 08:00,closed successful,2026-03-02 09:00\n"
        "T2,2026-03-02 09:30,open,2026-03-02 09:00\n"
        "T2,2026-03-02 10:00,closed successful,2026-03-02 09:00\n"
    )
    summary = import_spreadsheet(
        write_csv(tmp_path, text), layout=EVENT_LOG, mapping=mapping, company=world.hq
    )

    assert named(summary.errors) == [(2, "T1", "Changed", "resolved before it was reported")]
    t2 = imported("T2", f"sheet-{mapping.pk}")
    assert t2.created_at == local(2026, 3, 2, 9, 0)
    # Closed without a resolved state: closing restored the service.
    assert t2.resolved_at == t2.closed_at == local(2026, 3, 2, 10, 0)
    assert SupportGroup.objects.filter(name="").count() == 0


# ------------------------------------------- bad references and lengths (writer)


def item(key, row, **values):
    """An incident as a reader hands it to the writer, reported on 2 March 2026 09:00."""
    return ImportedIncident(key=key, opened_at=local(2026, 3, 2, 9, 0), row=row, **values)


LONG_NAME = "张" * 51  # a person's full name holds at most 50 characters


def writer_batch():
    return [
        item("W1", 2, title="好的"),
        item("W2", 3, department="NO-SUCH-DEPT"),
        item("W3", 4, requester=LONG_NAME),
        item("W4", 5, title="题" * 201),
        item("DUP", 6),
        item("W5", 7, business_system="NO-SUCH-SYSTEM"),
    ]


WRITER_ERRORS = [  # row, number, column (English labels)
    (3, "W2", "department"),
    (4, "W3", "requester"),
    (5, "W4", "title"),
    (6, "DUP", "number"),
    (7, "W5", "business system"),
]


def test_writer_leaves_out_bad_incidents_and_names_them(world, clock, english):
    write_incidents([item("DUP", 2)], source_system="other", company=world.hq)

    summary = write_incidents(writer_batch(), source_system="spreadsheet", company=world.hq)

    assert [(e.row, e.number, e.column) for e in summary.errors] == WRITER_ERRORS
    assert summary.errors[1].reason == f"The name '{LONG_NAME}' is longer than 50 characters."
    assert summary.errors[2].reason == "the text is 201 characters long; at most 200 are allowed"
    assert summary.errors[3].reason == "The number is already used by another incident."
    assert (summary.created, summary.incidents) == (1, 1)
    assert list(
        Incident.objects.filter(source_system="spreadsheet").values_list("source_key", "title")
    ) == [("W1", "好的")]
    assert not User.objects.filter(full_name=LONG_NAME).exists()
    # The incident that had the number first is untouched.
    assert Incident.objects.get(number="DUP").source_system == "other"


def test_writer_strict_refuses_with_every_error(world, clock, english):
    write_incidents([item("DUP", 2)], source_system="other", company=world.hq)

    with pytest.raises(ImportRefused) as refused:
        write_incidents(writer_batch(), source_system="spreadsheet", company=world.hq, strict=True)

    assert [(e.row, e.number, e.column) for e in refused.value.errors] == WRITER_ERRORS
    assert Incident.objects.filter(source_system="spreadsheet").count() == 0


def test_too_long_texts_are_bad_rows_naming_the_column(tmp_path, world, clock, english):
    text = (
        "编号,标题,报障时间,分类,子分类,支持组,区域,报障人\n"
        f"L1,{'题' * 201},2026-03-02 09:00,,,,,\n"
        f"L2,二,2026-03-02 09:00,{'类' * 101},,,,\n"
        f"L3,三,2026-03-02 09:00,网络,{'子' * 101},,,\n"
        f"L4,四,2026-03-02 09:00,,,{'组' * 101},,\n"
        f"L5,五,2026-03-02 09:00,,,,{'区' * 101},\n"
        f"L6,六,2026-03-02 09:00,,,,,{LONG_NAME}\n"
        f"L7,{'题' * 200},2026-03-02 09:00,{'类' * 100},{'子' * 100},{'组' * 100},{'区' * 100},"
        f"{'张' * 50}\n"
    )
    summary = import_spreadsheet(write_csv(tmp_path, text), layout=ROWS, company=world.hq)

    assert named(summary.errors) == [
        (2, "L1", "标题", "the text is 201 characters long; at most 200 are allowed"),
        (3, "L2", "分类", "the text is 101 characters long; at most 100 are allowed"),
        (4, "L3", "子分类", "the text is 101 characters long; at most 100 are allowed"),
        (5, "L4", "支持组", "the text is 101 characters long; at most 100 are allowed"),
        (6, "L5", "区域", "the text is 101 characters long; at most 100 are allowed"),
        (7, "L6", "报障人", "the text is 51 characters long; at most 50 are allowed"),
    ]
    l7 = imported("L7")  # at the limits: kept whole
    assert l7.title == "题" * 200 and l7.category.name == "子" * 100
    assert l7.category.parent.name == "类" * 100
    assert l7.support_group.name == "组" * 100 and l7.region.name == "区" * 100
    assert l7.requester.full_name == "张" * 50


def test_writer_names_the_file_column_of_its_errors(tmp_path, world, clock, english):
    mapping = ImportMapping.objects.create(
        name="台账", format=ROWS, columns={"key": "工单号", "department": "部门名称"}
    )
    write_incidents([item("X2", 2)], source_system="other", company=world.hq)
    text = "工单号,标题,报障时间,部门名称\nX1,一,2026-03-02 09:00,NOPE\nX2,二,2026-03-02 09:00,\n"
    summary = import_spreadsheet(
        write_csv(tmp_path, text), layout=ROWS, mapping=mapping, company=world.hq
    )

    assert [(e.row, e.number, e.column) for e in summary.errors] == [
        (2, "X1", "部门名称"),
        (3, "X2", "工单号"),
    ]
    assert summary.created == 0 and summary.refused is False


def test_long_category_names_get_distinct_codes(world, clock):
    parent = "Network infrastructure"
    subs = ["Wireless access points A", "Wireless access points B"]  # same first 40 of a code
    summary = write_incidents(
        [
            item("C1", 2, category=parent, subcategory=subs[0]),
            item("C2", 3, category=parent, subcategory=subs[1]),
        ],
        source_system="sheet-123456",
        company=world.hq,
    )

    assert summary.errors == [] and summary.created == 2
    codes = dict(
        IncidentCategory.objects.filter(code__startswith="sheet-123456").values_list("name", "code")
    )
    assert set(codes) == {parent, *subs}
    assert len(set(codes.values())) == 3 and all(len(c) <= 40 for c in codes.values())
    assert imported("C2", "sheet-123456").category.name == subs[1]


# ------------------------------------------------------------ source identity


def test_mapping_source_is_its_id_not_its_name(tmp_path, world, clock):
    write_incidents(
        [item("K1", 2, title="来自 ServiceNow")], source_system="servicenow", company=world.hq
    )
    mapping = ImportMapping.objects.create(name="ServiceNow", format=ROWS)
    path = write_csv(
        tmp_path, "编号,标题,报障时间\nK1,表格,2026-03-02 09:00\nK2,二,2026-03-02 09:00\n"
    )

    first = import_spreadsheet(path, layout=ROWS, mapping=mapping, company=world.hq)

    # The mapping's name does not make its incidents ServiceNow's: K1 is another's number.
    assert [(e.row, e.number) for e in first.errors] == [(2, "K1")]
    assert imported("K1", "servicenow").title == "来自 ServiceNow"
    assert imported("K2", f"sheet-{mapping.pk}").title == "二"

    mapping.name = "旧台账（改名）"
    mapping.save()
    again = import_spreadsheet(path, layout=ROWS, mapping=mapping, company=world.hq)

    assert (again.created, again.updated) == (0, 1)  # renamed: still the same incidents
    assert Incident.objects.filter(source_key="K2").count() == 1
    assert imported("K2", f"sheet-{mapping.pk}").title == "二"


def test_missing_number_is_empty_not_none(tmp_path, world, clock, english):
    workbook = load_workbook(io.BytesIO(template_workbook()))
    sheet = workbook.worksheets[0]
    sheet.append([None, "无编号", None, "2026-03-02 09:00"])  # 编号 标题 描述 报障时间
    path = tmp_path / "incidents.xlsx"
    workbook.save(path)

    summary = import_spreadsheet(str(path), layout=ROWS, company=world.hq)

    assert named(summary.errors) == [(2, "", "编号", "a value is required")]
    assert str(summary.errors[0]) == "row 2, column 编号 (-): a value is required"


def test_template_sheet_title(english):
    workbook = load_workbook(io.BytesIO(template_workbook()))
    assert workbook.sheetnames[0] == "Incidents"
    with translation.override("zh-hans"):
        workbook = load_workbook(io.BytesIO(template_workbook()))
    assert workbook.sheetnames[0] != "事件数"
