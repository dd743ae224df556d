"""Load a believable demo installation: the IT center of a city gas group, its users and tasks.

Every name, phone number and address here is invented. Running the command again
updates the same rows by code or username and adds nothing twice; demo tasks are
recognised by their titles, so tasks are only created where their title is missing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.bjgas_ops.models import Incident, Task
from apps.bjgas_ops.reference import ensure_task_workflow
from apps.bjgas_ops.services.incidents import assign, create_incident, supplement_incident
from apps.bjgas_ops.services.tasks import create_task
from apps.bjgas_platform import roles as r
from apps.bjgas_platform.models import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ScopeRule,
    ServiceCatalogItem,
    SupportGroup,
    User,
    Vendor,
    VendorCategory,
    VendorEngineer,
)
from apps.bjgas_platform.roles import load_reference_data
from apps.bjgas_platform.services.workflow import decide_approval, take_transition

DEMO_PASSWORD = "bjgas-demo-2026"  # noqa: S105 - documented in README, demo only
MAIL_DOMAIN = "bjgas.example.cn"

# code, name, kind, parent code
COMPANIES = [
    ("BJGAS", "北京燃气集团", "hq", None),
    ("BJGAS-E", "城东分公司", "branch", "BJGAS"),
    ("BJGAS-W", "城西分公司", "branch", "BJGAS"),
    ("BJGAS-LNG", "液化天然气公司", "subsidiary", "BJGAS"),
]

# code, name, company code, parent department code
DEPARTMENTS = [
    ("HQ-IT", "信息中心", "BJGAS", None),
    ("HQ-IT-OPS", "运维部", "BJGAS", "HQ-IT"),
    ("HQ-IT-NET", "网络部", "BJGAS", "HQ-IT"),
    ("HQ-IT-APP", "应用部", "BJGAS", "HQ-IT"),
    ("HQ-IT-DESK", "服务台", "BJGAS", "HQ-IT"),
    ("HQ-CSC", "客户服务中心", "BJGAS", None),
    ("HQ-CSC-HOTLINE", "热线服务科", "BJGAS", "HQ-CSC"),
    ("HQ-CSC-HALL", "营业厅管理科", "BJGAS", "HQ-CSC"),
    ("HQ-FIN", "财务部", "BJGAS", None),
    ("HQ-AUDIT", "审计部", "BJGAS", None),
    ("HQ-DISPATCH", "调度中心", "BJGAS", None),
    ("HQ-PIPE", "管网运行部", "BJGAS", None),
    ("E-OFFICE", "综合办公室", "BJGAS-E", None),
    ("E-SERVICE", "客户服务部", "BJGAS-E", None),
    ("E-PIPE", "管网运行部", "BJGAS-E", None),
    ("W-OFFICE", "综合办公室", "BJGAS-W", None),
    ("W-PIPE", "输配运行科", "BJGAS-W", None),
    ("LNG-PROD", "生产运行部", "BJGAS-LNG", None),
]

# code, name, kind, parent code, address
REGIONS = [
    ("DONGCHENG", "东城区", "region", None, "北京市东城区"),
    ("XICHENG", "西城区", "region", None, "北京市西城区"),
    ("CHAOYANG", "朝阳区", "region", None, "北京市朝阳区"),
    ("HAIDIAN", "海淀区", "region", None, "北京市海淀区"),
    ("DONGCHENG-HALL", "东城营业厅", "site", "DONGCHENG", "东城区示例路 18 号"),
    ("XICHENG-OFFICE", "城西分公司办公楼", "site", "XICHENG", "西城区示例街 6 号"),
    ("IDC-MAIN", "主数据中心", "dc", "CHAOYANG", "朝阳区示例园区 3 号楼"),
    ("IDC-DR", "灾备中心", "dc", "HAIDIAN", "海淀区示例科技园 12 号楼"),
]


@dataclass
class DemoUser:
    username: str
    full_name: str
    role_codes: list[str]
    what: str
    company: str | None = None
    department: str | None = None
    phone: str = ""
    extension: str = ""
    employee_no: str = ""
    superuser: bool = False


USERS = [
    DemoUser(
        "admin", "赵文博", [r.ADMINISTRATOR], "系统管理员（超级用户）", "BJGAS", "HQ-IT-OPS",
        "13900010001", "8001", "IT0001", superuser=True,
    ),
    DemoUser(
        "manager", "陈志远", [r.IT_MANAGER], "信息中心主管", "BJGAS", "HQ-IT",
        "13900010002", "8000", "IT0002",
    ),
    DemoUser(
        "auditor", "孙丽华", [r.AUDITOR], "审计员（只读）", "BJGAS", "HQ-AUDIT",
        "13900010003", "8301", "AU0007",
    ),
    DemoUser(
        "agent", "刘晓燕", [r.SERVICE_DESK], "服务台坐席", "BJGAS", "HQ-IT-DESK",
        "13900010004", "8100", "IT0015",
    ),
    DemoUser(
        "eng1", "李强", [r.ENGINEER_T1], "一线工程师（桌面运维组，驻城东分公司）", "BJGAS-E",
        "E-OFFICE", "13900010005", "6120", "E0231",
    ),
    DemoUser(
        "eng2", "吴涛", [r.ENGINEER_T2], "二线工程师（应用运维组）", "BJGAS", "HQ-IT-APP",
        "13900010006", "8210", "IT0033",
    ),
    DemoUser(
        "neteng", "郑磊", [r.ENGINEER_T2], "二线工程师（网络组）", "BJGAS", "HQ-IT-NET",
        "13900010007", "8220", "IT0041",
    ),
    DemoUser(
        "eng3", "黄敏", [r.ENGINEER_T3], "三线工程师（数据库组）", "BJGAS", "HQ-IT-OPS",
        "13900010008", "8230", "IT0052",
    ),
    DemoUser(
        "vendor", "马俊", [r.VENDOR_ENGINEER], "服务商工程师（华信网络服务有限公司）",
        phone="13900010009",
    ),
    DemoUser(
        "lead", "杨帆", [r.TEAM_LEAD, r.ENGINEER_T2], "组长（应用运维组）", "BJGAS", "HQ-IT-APP",
        "13900010010", "8200", "IT0021",
    ),
    DemoUser(
        "head", "何静", [r.DEPARTMENT_HEAD, r.REQUESTER], "部门负责人（客户服务中心）", "BJGAS",
        "HQ-CSC", "13900010011", "7000", "CS0003",
    ),
    DemoUser(
        "user1", "林小红", [r.REQUESTER], "报障人（客户服务中心热线服务科）", "BJGAS",
        "HQ-CSC-HOTLINE", "13900010012", "7012", "CS0118",
    ),
    DemoUser(
        "user2", "高明", [r.REQUESTER], "报障人（城西分公司输配运行科）", "BJGAS-W", "W-PIPE",
        "13900010013", "5306", "W0409",
    ),
    DemoUser(
        "user3", "许婷", [r.REQUESTER], "报障人（城东分公司客户服务部）", "BJGAS-E", "E-SERVICE",
        "13900010014", "6035", "E0517",
    ),
]  # fmt: skip

# department code -> head's username
DEPARTMENT_HEADS = {"HQ-IT": "manager", "HQ-CSC": "head"}

# code, name, owner, company, criticality, description
BUSINESS_SYSTEMS = [
    ("CRM", "客户服务系统", "lead", "BJGAS", "critical", "热线与营业厅的客户工单与档案。"),
    ("BILLING", "营收收费系统", "lead", "BJGAS", "critical", "抄表、计费、收费与对账。"),
    ("SCADA", "SCADA 监控系统", "manager", "BJGAS", "critical", "门站、调压站与管网的实时监控。"),
    ("GIS", "GIS 管网地理信息系统", "eng3", "BJGAS", "high", "管线、阀门与用户的空间数据。"),
    ("NETWORK", "企业网络", "neteng", "BJGAS", "high", "总部与各分公司的有线、无线网络与 VPN。"),
    ("MAIL", "邮件系统", "neteng", "BJGAS", "normal", "集团邮件与反垃圾网关。"),
    ("MOBILE", "移动巡检 App", "eng2", "BJGAS", "normal", "管网巡检人员的移动端应用。"),
]  # fmt: skip

# code, name, tier, leader, members
SUPPORT_GROUPS = [
    ("SD", "服务台", 1, "agent", ["agent"]),
    ("DESKTOP", "桌面运维组", 1, None, ["eng1"]),
    ("NET", "网络组", 2, "neteng", ["neteng"]),
    ("APPOPS", "应用运维组", 2, "lead", ["lead", "eng2"]),
    ("DBA", "数据库组", 3, "eng3", ["eng3"]),
    ("DEV", "研发组", 3, None, ["eng3"]),
]

VENDOR_CATEGORIES = [
    ("NETWORK", "网络维护"),
    ("SOFTWARE", "软件开发与运维"),
    ("HARDWARE", "硬件维保"),
    ("ICS", "工控系统集成"),
]

# code, name, categories, contact, phone, contract start, contract end,
# engineers [(name, phone, skills, username or None)]
VENDORS = [
    (
        "HXNET", "华信网络服务有限公司", ["NETWORK"], "周海", "01060000101",
        datetime.date(2026, 1, 1), datetime.date(2027, 12, 31),
        [("马俊", "13900010009", "交换机、防火墙、专线", "vendor"),
         ("田亮", "13900020002", "无线网络、综合布线", None)],
    ),
    (
        "ZRYW", "中软运维服务有限公司", ["SOFTWARE", "HARDWARE"], "钱晓东", "01060000202",
        datetime.date(2025, 7, 1), datetime.date(2026, 12, 31),
        [("邓超", "13900020003", "营收系统二次开发", None),
         ("罗娜", "13900020004", "服务器与存储维保", None)],
    ),
    (
        "RKZD", "燃控自动化工程有限公司", ["ICS"], "韩立", "01060000303",
        datetime.date(2026, 3, 1), datetime.date(2028, 2, 29),
        [("韩冰", "13900020005", "SCADA 组态、RTU", None),
         ("曹阳", "13900020006", "工控网络安全", None)],
    ),
    (
        "JPOA", "京普办公设备维保中心", ["HARDWARE"], "冯刚", "01060000404",
        datetime.date(2026, 1, 1), datetime.date(2026, 12, 31),
        [("冯刚", "13900020007", "打印机、复印机", None)],
    ),
]  # fmt: skip

# code, name, parent, owner, business system, default support group, description
CATALOG = [
    ("DESKTOP", "桌面与终端", None, "manager", None, "DESKTOP", "办公电脑、外设与终端。"),
    ("DESKTOP-PC", "电脑故障", "DESKTOP", "manager", None, "DESKTOP", "无法开机、蓝屏、运行缓慢。"),
    ("DESKTOP-PRINTER", "打印机", "DESKTOP", "manager", None, "DESKTOP", "打印、扫描与耗材。"),
    ("NET", "网络", None, "neteng", "NETWORK", "NET", "有线、无线与远程接入。"),
    ("NET-LAN", "有线网络", "NET", "neteng", "NETWORK", "NET", "网口不通、网速慢、IP 冲突。"),
    ("NET-VPN", "VPN", "NET", "neteng", "NETWORK", "NET", "远程接入账号与连接问题。"),
    ("BIZ", "业务系统", None, "lead", None, "APPOPS", "业务系统的使用与故障。"),
    ("BIZ-BILLING", "营收收费", "BIZ", "lead", "BILLING", "APPOPS", "收费、对账、发票。"),
    ("BIZ-CRM", "客服", "BIZ", "lead", "CRM", "APPOPS", "客户服务系统的工单与档案。"),
    ("BIZ-SCADA", "SCADA", "BIZ", "manager", "SCADA", "APPOPS", "监控画面、历史数据与报警。"),
    ("ACCOUNT", "账号与权限", None, "agent", None, "SD", "系统账号的开通、变更与注销。"),
    ("ACCOUNT-NEW", "账号开通", "ACCOUNT", "agent", None, "SD", "新员工或新岗位的系统账号。"),
    ("ACCOUNT-PWD", "密码重置", "ACCOUNT", "agent", None, "SD", "忘记密码或账号锁定。"),
]  # fmt: skip


@dataclass
class ScopeSpec:
    name: str
    companies: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    systems: list[str] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    note: str = ""


# username -> the scope rules of that user. Manager, auditor and administrator see every
# record through their roles' reference rules; requesters see their own tasks as owners.
SCOPES: dict[str, list[ScopeSpec]] = {
    "agent": [ScopeSpec("服务台：集团全部单位", companies=["BJGAS"], note="含下属分公司。")],
    "eng1": [ScopeSpec("李强：城东分公司", companies=["BJGAS-E"])],
    "eng2": [ScopeSpec("吴涛：营收、客服、移动巡检", systems=["BILLING", "CRM", "MOBILE"])],
    "neteng": [
        ScopeSpec("郑磊：企业网络与邮件", systems=["NETWORK", "MAIL"]),
        ScopeSpec("郑磊：数据中心机房", regions=["IDC-MAIN", "IDC-DR"]),
    ],
    "eng3": [ScopeSpec("黄敏：数据库支撑的系统", systems=["BILLING", "CRM", "SCADA", "GIS"])],
    "lead": [ScopeSpec("杨帆：应用运维组负责的系统", systems=["BILLING", "CRM", "MOBILE"])],
    "vendor": [ScopeSpec("马俊：华信网络服务有限公司", vendors=["HXNET"])],
    "head": [ScopeSpec("何静：客户服务中心", departments=["HQ-CSC"])],
}


@dataclass
class DemoTask:
    title: str
    requester: str
    steps: list[tuple[str, str, str]] = field(default_factory=list)  # code, actor, comment
    system: str | None = None
    region: str | None = None
    group: str | None = None
    assignee: str | None = None
    vendor: str | None = None
    priority: str = "P3"
    description: str = ""
    approve_by: str | None = None  # who approves the pending request at the end


OPEN = [("assign", "agent", ""), ("accept", None, "")]  # None: the assignee acts
TASKS = [
    DemoTask(
        "营业厅收费终端无法打印发票", "user3", system="BILLING", region="DONGCHENG-HALL",
        group="DESKTOP", assignee="eng1", priority="P2",
        description="东城营业厅 2 号窗口打印发票时提示“打印机脱机”，窗口暂停收费。",
        steps=OPEN + [("complete", None, "更换打印机硒鼓并重装驱动，已恢复打印。"),
                      ("close", "user3", "")],
    ),
    DemoTask(
        "客服坐席电脑开机蓝屏", "user1", region="DONGCHENG", group="DESKTOP", assignee="eng1",
        description="热线 15 号坐席电脑开机后蓝屏，错误代码 0x0000007B。", steps=OPEN,
    ),
    DemoTask(
        "申请开通营收系统查询账号", "user2", system="BILLING", group="APPOPS", assignee="eng2",
        priority="P4", description="输配运行科新到岗员工需要营收系统只读查询权限。",
        steps=OPEN + [("complete", None, "已按只读查询角色开通账号，初始密码短信发送。"),
                      ("close", "user2", "")],
    ),
    DemoTask(
        "VPN 拨号后无法访问内网", "user2", system="NETWORK", region="XICHENG", group="NET",
        assignee="neteng", description="出差期间 VPN 显示已连接，但打不开内网营收系统。",
        steps=OPEN + [("wait", None, "等待用户提供 VPN 客户端日志。")],
    ),
    DemoTask(
        "城西分公司办公楼三层有线网络中断", "user2", system="NETWORK", region="XICHENG-OFFICE",
        group="NET", assignee="vendor", vendor="HXNET", priority="P2",
        description="三层东侧办公室约 20 个网口同时不通。",
        steps=OPEN + [("complete", None, "楼层交换机上联光模块损坏，已更换。")],
    ),
    DemoTask(
        "SCADA 历史曲线查询缓慢", "manager", system="SCADA", region="IDC-MAIN", group="DBA",
        assignee="eng3", priority="P2", description="调度中心查询近 7 天压力曲线需等一分钟以上。",
        steps=OPEN,
    ),
    DemoTask(
        "营收系统月结报表与财务账不一致", "head", system="BILLING", group="APPOPS",
        assignee="eng2", priority="P2", description="11 月月结报表实收金额与财务账相差 3,200 元。",
        steps=OPEN + [("wait", None, "需财务部提供对账明细。"), ("resume", None, "")],
    ),
    DemoTask(
        "客户服务系统工单导出 Excel 超时", "user1", system="CRM", group="APPOPS",
        assignee="eng2", description="导出本月全部工单时页面超时，导出一周的数据正常。",
        steps=[("assign", "agent", "")],
    ),
    DemoTask(
        "邮件系统收不到外部邮件", "user2", system="MAIL", group="NET", assignee="neteng",
        priority="P1", description="上午 9 点起全员收不到外部邮件，内部邮件正常。",
        steps=OPEN + [
            ("complete", None, "MX 记录配置错误，已更正。"),
            ("reject", "user2", "仍有部分外部邮件被退信。"),
            ("complete", None, "反垃圾网关白名单已调整，外部邮件恢复正常。"),
            ("close", "user2", ""),
        ],
    ),
    DemoTask(
        "移动巡检 App 无法上传照片", "user3", system="MOBILE", region="DONGCHENG",
        group="APPOPS", assignee="eng2", priority="P2",
        description="巡检人员在户外上传隐患照片时一直转圈，最终提示失败。",
        steps=OPEN + [("complete", None, "新版本已放宽上传超时并支持断点续传。")],
    ),
    DemoTask(
        "GIS 管网图层加载缺失", "user2", system="GIS", region="HAIDIAN", group="DBA",
        assignee="eng3", description="海淀片区中压管线图层在 1:2000 比例尺下不显示。",
    ),
    DemoTask(
        "新员工电脑领用与环境配置", "user3", region="DONGCHENG", group="DESKTOP", priority="P4",
        description="客户服务部下周一两名新员工入职，需要配置电脑与常用软件。",
    ),
    DemoTask(
        "打印机频繁卡纸", "user1", priority="P4", description="热线服务科公共打印机每天卡纸数次。",
    ),
    DemoTask(
        "营收数据库备份作业失败", "manager", system="BILLING", region="IDC-MAIN", group="DBA",
        assignee="eng3", priority="P1", description="凌晨全量备份作业失败，监控已告警。",
        steps=OPEN + [("complete", None, "归档空间不足，已扩容并重新执行备份，校验通过。"),
                      ("close", "agent", "")],
    ),
    DemoTask(
        "灾备中心至主数据中心专线丢包", "agent", system="NETWORK", region="IDC-DR", group="NET",
        assignee="vendor", vendor="HXNET", priority="P2",
        description="两中心之间专线丢包率约 3%，数据同步延迟升高。", steps=OPEN,
    ),
    DemoTask(
        "客服系统坐席软电话频繁掉线", "user1", system="CRM", group="APPOPS", assignee="eng2",
        priority="P2", description="多个坐席通话中途掉线，每天约 10 次。",
        steps=OPEN + [("abort", None, "经排查为话务平台问题，转由话务平台项目组处理。")],
    ),
    DemoTask(
        "营收系统对账接口改造需求评估", "head", system="BILLING", group="APPOPS",
        assignee="eng2", description="评估与银行新对账接口对接的改造工作量。",
        steps=OPEN + [("abort", None, "该需求已并入年度营收系统改造项目，本任务中止。")],
        approve_by="lead",
    ),
    DemoTask(
        "重复提交：客服电脑蓝屏", "user1", priority="P4", description="与另一条工单内容相同。",
        steps=[("cancel", "user1", "重复提交，见“客服坐席电脑开机蓝屏”。")],
    ),
    DemoTask(
        "营业厅排队叫号机无法联网", "user3", system="NETWORK", region="DONGCHENG-HALL",
        group="NET", assignee="neteng", description="叫号机显示网络未连接，现场已重启无效。",
        steps=[("assign", "agent", "")],
    ),
    DemoTask(
        "SCADA 远程终端时钟不同步", "agent", system="SCADA", region="IDC-MAIN", group="APPOPS",
        assignee="lead", vendor="RKZD", description="3 座调压站 RTU 时间与主站相差 2 分钟以上。",
        steps=OPEN + [("wait", None, "等待燃控自动化工程有限公司工程师到场。")],
    ),
    DemoTask(
        "密码重置：营收系统账号锁定", "user2", system="BILLING", group="APPOPS", assignee="eng2",
        priority="P4", description="连续输错密码后账号被锁定。", steps=[("assign", "agent", "")],
    ),
]  # fmt: skip


@dataclass
class DemoIncident:
    title: str
    requester: str
    catalog: str
    channel: str = "portal"
    urgency: int = 3
    impact: int = 3
    severity: str = ""
    system: str | None = None
    region: str | None = None
    assignee: str | None = None
    description: str = ""
    # (what, actor, text): what is a transition code, "supplement" or "reply".
    steps: list[tuple[str, str | None, str]] = field(default_factory=list)


DISPATCH = [("dispatch", "agent", ""), ("accept", None, ""), ("start", None, "")]
INCIDENTS = [
    DemoIncident(
        "SCADA 调度画面数据不刷新", "head", "BIZ-SCADA", channel="phone", urgency=1, impact=1,
        severity="A", system="SCADA", region="IDC-MAIN", assignee="eng2",
        description="调度中心大屏上城东门站压力曲线 10:05 起不再刷新，其他站点正常。",
        steps=DISPATCH,
    ),
    DemoIncident(
        "营业厅收费系统登录缓慢", "user3", "BIZ-BILLING", urgency=2, impact=2, severity="B",
        system="BILLING", region="DONGCHENG-HALL", assignee="eng2",
        description="东城营业厅所有窗口登录营收系统需要 2 分钟以上。",
        steps=DISPATCH + [("supplement", "user3", "补充：西城营业厅同事反映也慢，约从 9 点开始。")],
    ),
    DemoIncident(
        "客服热线坐席无法打开客户档案", "user1", "BIZ-CRM", urgency=2, impact=3,
        system="CRM", assignee="eng2", description="打开客户档案页面提示“服务器内部错误”。",
        steps=DISPATCH + [("wait_requester", None, "请提供报错截图和客户编号。")],
    ),
    DemoIncident(
        "办公电脑无法开机", "user2", "DESKTOP-PC", channel="phone", assignee="eng1",
        description="按下电源键指示灯亮，屏幕无显示。", steps=[("dispatch", "agent", "")],
    ),
    DemoIncident(
        "VPN 账号被锁定", "user2", "NET-VPN", channel="email", system="NETWORK",
        assignee="neteng", description="连续输错密码后 VPN 账号被锁定。",
        steps=DISPATCH + [("resolve", None, "已解锁账号并重置密码，请用新密码登录。")],
    ),
    DemoIncident(
        "打印机卡纸报错", "user3", "DESKTOP-PRINTER", assignee="eng1",
        description="三层打印机提示卡纸，取出后仍报错。",
        steps=DISPATCH + [("resolve", None, "清理定影组件残纸，已恢复。"),
                          ("confirm", "user3", "")],
    ),
    DemoIncident("申请重置邮箱密码", "user1", "ACCOUNT-PWD", channel="mobile",
                 description="忘记邮箱密码，无法登录手机邮件。"),
]  # fmt: skip


class Command(BaseCommand):
    help = "Load the demo organisation, users, scope rules and tasks; safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=DEMO_PASSWORD,
            help=f"Password of newly created demo users (default: {DEMO_PASSWORD}).",
        )
        parser.add_argument(
            "--no-tasks", action="store_true", help="Load the organisation and users only."
        )
        parser.add_argument(
            "--logins", action="store_true", help="Print the demo logins after loading."
        )

    def handle(self, *args, **options):
        load_reference_data()
        with transaction.atomic():
            users = self.load_organisation(options["password"])
            created = 0 if options["no_tasks"] else self.load_tasks(users)
            incidents = 0 if options["no_tasks"] else self.load_incidents(users)
        self.stdout.write(
            f"Demo data loaded: {len(users)} users, {created} new tasks "
            f"({Task.objects.count()} tasks in all), {incidents} new incidents "
            f"({Incident.objects.count()} in all)."
        )
        if options["logins"]:
            self.print_logins(options["password"])

    # ------------------------------------------------------------------ organisation

    def load_organisation(self, password: str) -> dict[str, User]:
        """Create or update every master-data row and user; return users by username."""
        companies: dict[str, Company] = {}
        for code, name, kind, parent in COMPANIES:
            companies[code], _ = Company.objects.update_or_create(
                code=code, defaults={"name": name, "kind": kind, "parent": companies.get(parent)}
            )
        departments: dict[str, Department] = {}
        for code, name, company, parent in DEPARTMENTS:
            departments[code], _ = Department.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "company": companies[company],
                    "parent": departments.get(parent),
                },
            )
        regions: dict[str, Region] = {}
        for code, name, kind, parent, address in REGIONS:
            regions[code], _ = Region.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "kind": kind,
                    "parent": regions.get(parent),
                    "address": address,
                },
            )

        users: dict[str, User] = {}
        for spec in USERS:
            user, created = User.objects.update_or_create(
                username=spec.username,
                defaults={
                    "full_name": spec.full_name,
                    "first_name": spec.full_name[1:],
                    "last_name": spec.full_name[:1],
                    "email": f"{spec.username}@{MAIL_DOMAIN}",
                    "company": companies.get(spec.company),
                    "department": departments.get(spec.department),
                    "phone": spec.phone,
                    "extension": spec.extension,
                    "employee_no": spec.employee_no,
                    "is_staff": True,
                    "is_superuser": spec.superuser,
                    "is_active": True,
                },
            )
            if created:
                user.set_password(password)
                user.save(update_fields=["password"])
            user.groups.add(*[r.role_group(code) for code in spec.role_codes])
            users[spec.username] = user
        for code, username in DEPARTMENT_HEADS.items():
            Department.objects.filter(pk=departments[code].pk).update(head=users[username])

        systems: dict[str, BusinessSystem] = {}
        for code, name, owner, company, criticality, description in BUSINESS_SYSTEMS:
            systems[code], _ = BusinessSystem.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "owner": users[owner],
                    "company": companies[company],
                    "criticality": criticality,
                    "description": description,
                },
            )
        groups: dict[str, SupportGroup] = {}
        for code, name, tier, leader, members in SUPPORT_GROUPS:
            groups[code], _ = SupportGroup.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "tier": tier,
                    "leader": users.get(leader) if leader else None,
                    "email": f"{code.lower()}@{MAIL_DOMAIN}",
                },
            )
            groups[code].members.add(*[users[m] for m in members])

        categories = {
            code: VendorCategory.objects.update_or_create(code=code, defaults={"name": name})[0]
            for code, name in VENDOR_CATEGORIES
        }
        vendors: dict[str, Vendor] = {}
        for code, name, cats, contact, phone, start, end, engineers in VENDORS:
            vendor, _ = Vendor.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "contact_name": contact,
                    "contact_phone": phone,
                    "contact_email": f"service@{code.lower()}.example.com",
                    "contract_start": start,
                    "contract_end": end,
                },
            )
            vendor.categories.add(*[categories[c] for c in cats])
            for engineer, engineer_phone, skills, username in engineers:
                VendorEngineer.objects.update_or_create(
                    vendor=vendor,
                    name=engineer,
                    defaults={
                        "phone": engineer_phone,
                        "skills": skills,
                        "user": users.get(username) if username else None,
                    },
                )
            vendors[code] = vendor

        workflow = ensure_task_workflow()
        items: dict[str, ServiceCatalogItem] = {}
        for code, name, parent, owner, system, group, description in CATALOG:
            items[code], _ = ServiceCatalogItem.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "parent": items.get(parent),
                    "owner": users[owner],
                    "business_system": systems.get(system),
                    "default_support_group": groups[group],
                    "default_workflow": workflow,
                    "description": description,
                },
            )

        for username, specs in SCOPES.items():
            for spec in specs:
                rule, _ = ScopeRule.objects.update_or_create(
                    user=users[username], name=spec.name, defaults={"note": spec.note}
                )
                rule.companies.set([companies[c] for c in spec.companies])
                rule.departments.set([departments[c] for c in spec.departments])
                rule.regions.set([regions[c] for c in spec.regions])
                rule.business_systems.set([systems[c] for c in spec.systems])
                rule.vendors.set([vendors[c] for c in spec.vendors])

        self.lookups = {"region": regions, "system": systems, "group": groups, "vendor": vendors}
        return users

    # ------------------------------------------------------------------------- tasks

    def load_tasks(self, users: dict[str, User]) -> int:
        """Create the demo tasks whose titles are missing and walk them through the workflow."""
        existing = set(Task.objects.values_list("title", flat=True))
        lookups = self.lookups
        created = 0
        for spec in TASKS:
            if spec.title in existing:
                continue
            requester = users[spec.requester]
            task = create_task(
                requester,
                title=spec.title,
                description=spec.description,
                requester=requester,
                priority=spec.priority,
                region=lookups["region"].get(spec.region),
                business_system=lookups["system"].get(spec.system),
                support_group=lookups["group"].get(spec.group),
                vendor=lookups["vendor"].get(spec.vendor),
                assignee=users.get(spec.assignee) if spec.assignee else None,
            )
            for code, actor, comment in spec.steps:
                result = take_transition(task, code, users[actor or spec.assignee], comment)
                task = result.record
            if spec.approve_by:
                decide_approval(result.approval.pk, users[spec.approve_by], approve=True)
            created += 1
        return created

    def load_incidents(self, users: dict[str, User]) -> int:
        """Report the demo incidents whose titles are missing and work them as the desk would."""
        existing = set(Incident.objects.values_list("title", flat=True))
        catalog = {item.code: item for item in ServiceCatalogItem.objects.all()}
        created = 0
        for spec in INCIDENTS:
            if spec.title in existing:
                continue
            requester = users[spec.requester]
            item = catalog[spec.catalog]
            incident = create_incident(
                requester, channel=spec.channel, title=spec.title,
                description=spec.description, catalog_item=item, urgency=spec.urgency,
                impact=spec.impact, severity=spec.severity,
                business_system=self.lookups["system"].get(spec.system),
                region=self.lookups["region"].get(spec.region),
            )  # fmt: skip
            if spec.assignee:
                incident = assign(
                    incident, users["agent"], item.default_support_group, users[spec.assignee]
                )
            for what, actor, text in spec.steps:
                who = users[actor or spec.assignee]
                if what == "supplement":
                    supplement_incident(incident, who, text)
                else:
                    incident = take_transition(incident, what, who, text).record
            created += 1
        return created

    def print_logins(self, password: str) -> None:
        """Print the demo logins as a table."""
        width = max(len(u.username) for u in USERS)
        self.stdout.write("")
        self.stdout.write("Demo logins / 演示账号 (username / password / who):")
        for spec in USERS:
            self.stdout.write(
                f"  {spec.username:<{width}}  {password}  {spec.full_name}，{spec.what}"
            )
        self.stdout.write("")
