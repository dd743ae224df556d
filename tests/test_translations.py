"""The Simplified Chinese catalogs: complete, consistent with their sources, compiled and in use.

`locale/zh_Hans/LC_MESSAGES/django.po` holds the project's own messages, produced by
`makemessages` from the English msgids of the code and translated by hand;
`locale_libraries/zh_Hans/LC_MESSAGES/django.po` holds what django-unfold, which ships no
translations, would otherwise show in English. Django ignores fuzzy entries and shows the
English msgid for empty ones, so both count as missing here. The expected Chinese texts below
are the translations chosen for the product's vocabulary (权限范围规则, 处理组, 流转...).
"""

import re
from collections import Counter
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from apps.bjgas_ops.models import Task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.choices import StateCategory, SupportTier
from apps.bjgas_platform.models import ScopeRule, User
from apps.bjgas_platform.services.workflow import WorkflowError, take_transition
from apps.bjgas_platform.tests.factories import (
    CompanyFactory,
    ScopeRuleFactory,
    SupportGroupFactory,
    TaskFactory,
    UserFactory,
)

BASE_DIR = Path(settings.BASE_DIR)
OWN = BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
LIBRARIES = BASE_DIR / "locale_libraries" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# catalog -> the fewest entries it may hold (a smaller file means entries were lost)
CATALOGS = {OWN: 500, LIBRARIES: 50}
catalogs = pytest.mark.parametrize("po_path", list(CATALOGS), ids=["own", "libraries"])

# %(name)s, %s, %d, %.1f, %%; the whole conversion is compared, name and type together.
PERCENT = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")
WIDTH = re.compile(r"(?<=\))[#0 +-]*\d*")
BRACES = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|\{\d*\}")
TAG = re.compile(r"</?[A-Za-z][^>]*>")


def live_entries(po_path: Path) -> list[polib.POEntry]:
    return [entry for entry in polib.pofile(str(po_path)) if not entry.obsolete]


def translations(entry: polib.POEntry) -> list[str]:
    """Return the entry's msgstr, or each plural form's."""
    if entry.msgid_plural:
        return [entry.msgstr_plural[index] for index in sorted(entry.msgstr_plural)]
    return [entry.msgstr]


def placeholders(text: str, python_format: bool) -> Counter:
    found = BRACES.findall(text) + TAG.findall(text)
    if python_format:
        # Name and conversion must match; flags and width may differ (a Chinese date
        # reads 3月 where the ISO form pads to 03).
        found += [WIDTH.sub("", p) for p in PERCENT.findall(text) if p != "%%"]
    return Counter(found)


def test_settings_load_both_catalogs_own_first():
    assert [Path(p) for p in settings.LOCALE_PATHS] == [BASE_DIR / "locale", LIBRARIES.parents[2]]


@catalogs
def test_catalog_header_declares_chinese_plurals(po_path):
    po = polib.pofile(str(po_path))

    assert po.metadata["Language"] == "zh_Hans"
    assert po.metadata["Plural-Forms"] == "nplurals=1; plural=0;"
    assert po.metadata["Content-Type"] == "text/plain; charset=UTF-8"
    assert not po.metadata_is_fuzzy


@catalogs
def test_every_entry_is_translated_and_not_fuzzy(po_path):
    entries = live_entries(po_path)
    untranslated = [e.msgid for e in entries if not all(s.strip() for s in translations(e))]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]

    assert len(entries) > CATALOGS[po_path]
    assert untranslated == []
    assert fuzzy == []


@catalogs
def test_plural_entries_have_exactly_one_form(po_path):
    plural = [e for e in live_entries(po_path) if e.msgid_plural]

    assert plural
    assert {e.msgid: len(e.msgstr_plural) for e in plural} == {e.msgid: 1 for e in plural}


@catalogs
def test_placeholders_and_markup_match_the_msgid(po_path):
    wrong = []
    for entry in live_entries(po_path):
        python_format = "python-format" in entry.flags
        source = entry.msgid_plural or entry.msgid
        expected = placeholders(source, python_format)
        for text in translations(entry):
            if placeholders(text, python_format) != expected:
                wrong.append((entry.msgid, text))

    assert wrong == []


@catalogs
def test_translations_read_as_chinese(po_path):
    """No translation is the msgid copied over: each holds Chinese or differs from it."""
    han = re.compile(r"[\u4e00-\u9fff]")
    not_chinese = [
        (e.msgid, text)
        for e in live_entries(po_path)
        for text in translations(e)
        if not han.search(text) and text == e.msgid
    ]

    assert not_chinese == []


@catalogs
def test_the_compiled_catalog_matches_the_source(po_path):
    """The .mo in the repository is compiled from the current .po (run compilemessages)."""
    mo = polib.mofile(str(po_path.with_suffix(".mo")))
    compiled = {(e.msgctxt, e.msgid): translations(e) for e in mo if e.msgid}
    source = {(e.msgctxt, e.msgid): translations(e) for e in live_entries(po_path)}

    assert {key: compiled.get(key) for key in source} == source


def test_default_language_is_simplified_chinese():
    assert settings.LANGUAGE_CODE == "zh-hans"
    with translation.override(settings.LANGUAGE_CODE):
        assert translation.get_language_info(translation.get_language())["bidi"] is False
        assert str(Task._meta.verbose_name_plural) == "任务"


def test_key_labels_render_in_chinese():
    with translation.override("zh-hans"):
        assert str(Task._meta.verbose_name_plural) == "任务"
        assert str(ScopeRule._meta.verbose_name_plural) == "权限范围规则"
        assert str(Task._meta.get_field("support_group").verbose_name) == "处理组"
        assert str(SupportTier.TIER1.label) == "一线"
        assert str(StateCategory.RESOLVED.label) == "已解决"
        assert str(settings.UNFOLD["SITE_HEADER"]) == "北京燃气 IT 运维服务平台"

    with translation.override("en"):
        assert str(ScopeRule._meta.verbose_name_plural) == "scope rules"


@pytest.mark.django_db
def test_the_stale_record_message_is_chinese():
    company = CompanyFactory(code="HQ", name="集团总部")
    requester = UserFactory(username="zhao", company=company, roles=[r.REQUESTER])
    desk = UserFactory(username="desk", company=company, roles=[r.SERVICE_DESK])
    engineer = UserFactory(username="eng", company=company, roles=[r.ENGINEER_T1])
    for role_code in (r.SERVICE_DESK, r.ENGINEER_T1):
        ScopeRuleFactory(name=role_code, role=r.role_group(role_code), companies=[company])
    task = TaskFactory(
        requester=requester, support_group=SupportGroupFactory(code="G1", name="一线支持组")
    )
    take_transition(task, "assign", desk, expected_version=0)

    with translation.override("zh-hans"), pytest.raises(WorkflowError) as caught:
        take_transition(task, "accept", engineer, expected_version=0)

    assert caught.value.code == "stale_record"
    assert caught.value.message == "该记录已被他人修改（当前状态为“已派单”），请刷新页面后重试。"


@pytest.mark.django_db
def test_desk_pages_speak_chinese(client):
    admin = User.objects.create_superuser("admin", "admin@example.com", "x")
    company = CompanyFactory(code="HQ", name="集团总部")
    task = TaskFactory(requester=admin, company=company)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    login = client.get(reverse("admin:login")).content.decode()
    client.force_login(admin)

    index = client.get(reverse("admin:index")).content.decode()
    change = client.get(reverse("admin:bjgas_ops_task_change", args=[task.pk])).content.decode()
    tasks = client.get(reverse("admin:bjgas_ops_task_changelist")).content.decode()

    # unfold's own words, from locale_libraries
    assert "欢迎登录" in login
    assert "Welcome back to" not in login
    assert "选择操作" in tasks
    assert "Select action" not in tasks

    for model, label in [
        ("bjgas_platform_company", "公司"),
        ("bjgas_platform_scoperule", "权限范围规则"),
        ("bjgas_platform_supportgroup", "处理组"),
        ("bjgas_platform_vendor", "服务商"),
        ("bjgas_platform_workflow", "流程"),
        ("bjgas_ops_task", "任务"),
    ]:
        link = re.escape(reverse(f"admin:{model}_changelist"))
        assert re.search(rf'href="{link}">\s*{label}\s*<', index), label
    for english in ("Companies", "Tasks", "Scope rules", "Support groups", "Workflows"):
        assert english not in index
    assert "状态历史" in change
    assert "State history" not in change
