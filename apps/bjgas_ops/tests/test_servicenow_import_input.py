"""Bad input to the ServiceNow import: named rows and columns, whole-file refusals."""

from __future__ import annotations

import csv

import pytest
from django.core.management import CommandError

from apps.bjgas_ops.models import Incident

from .test_servicenow_import import EVENTS, company, log_file, run, write_log  # noqa: F401

pytestmark = pytest.mark.django_db


def rows_of(path) -> list[list[str]]:
    return list(csv.reader(open(path, encoding="utf-8-sig")))


def with_change(index: int, **values):
    base, mod, state, at, group, assignee, extra = EVENTS[index]
    return [*EVENTS[:index], (base, mod, state, at, group, assignee, extra | values),
            *EVENTS[index + 1:]]  # fmt: skip


def test_unreadable_values_are_named_by_row_and_column(company, tmp_path):  # noqa: F811
    # Line 7 is INC0000001's last row (index 5), line 8 INC0000002's first (index 6).
    events = with_change(5, closed_at="not a date")
    events = [*events[:6], (events[6][0], *events[6][1:6], {"reassignment_count": "x"}),
              *events[7:]]  # fmt: skip
    report = tmp_path / "errors.csv"
    run(write_log(tmp_path / "bad.csv", events), "--errors", str(report))
    bad = {(int(r[0]), r[1], r[2]) for r in rows_of(report)[1:]}
    assert (7, "INC0000001", "closed_at") in bad
    assert (8, "INC0000002", "reassignment_count") in bad
    # The other rows are imported; the bad rows' incidents keep their good rows.
    assert Incident.objects.count() == 3


def test_gbk_file_is_read(company, tmp_path):  # noqa: F811
    path = write_log(tmp_path / "utf8.csv")
    text = open(path, encoding="utf-8").read().replace("Caller 7", "报障人七")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(text.encode("gbk"))
    run(str(gbk))
    assert Incident.objects.get(number="INC0000001").requester.get_full_name() == "报障人七"


def test_missing_column_refuses_the_file(company, tmp_path):  # noqa: F811
    path = write_log(tmp_path / "log.csv")
    lines = open(path, encoding="utf-8").read().splitlines()
    header = lines[0].split(",")
    at = header.index("opened_at")
    cut = [",".join(c for i, c in enumerate(line.split(",")) if i != at) for line in lines]
    (tmp_path / "cut.csv").write_text("\n".join(cut), encoding="utf-8")
    with pytest.raises(CommandError, match="opened_at"):
        run(str(tmp_path / "cut.csv"))
    assert Incident.objects.count() == 0


@pytest.mark.parametrize("content", ["", "number,incident_state,sys_mod_count,opened_at,"
                                         "sys_updated_at\n"])  # fmt: skip
def test_empty_file_is_an_error(company, tmp_path, content):  # noqa: F811
    path = tmp_path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError):
        run(str(path))


def test_error_report_cannot_carry_a_formula(company, tmp_path):  # noqa: F811
    events = [(EVENTS[0][0] | {"number": '=HYPERLINK("http://evil","x")'}, *EVENTS[0][1:])]
    events = [(events[0][0], events[0][1], "-100", *events[0][3:])]
    report = tmp_path / "errors.csv"
    with pytest.raises(CommandError):
        run(write_log(tmp_path / "evil.csv", events), "--errors", str(report), "--strict")
    cell = rows_of(report)[1][1]
    assert cell == '\'=HYPERLINK("http://evil","x")'


def test_a_count_too_large_for_its_column_is_a_bad_row(company, tmp_path):  # noqa: F811
    # Line 2 is INC0000001's first row; a count of 20 digits would overflow the column.
    events = with_change(0, reassignment_count="99999999999999999999999")
    report = tmp_path / "errors.csv"
    run(write_log(tmp_path / "big.csv", events), "--errors", str(report))
    bad = [r for r in rows_of(report)[1:] if r[1] == "INC0000001"]
    assert [(int(r[0]), r[2]) for r in bad] == [(2, "reassignment_count")]
    assert "99999999999999999999999" in bad[0][3]
    assert Incident.objects.count() == 3  # the rest is imported
