from django.db import models
from django.utils.translation import gettext_lazy as _


class CompanyKind(models.TextChoices):
    HEADQUARTERS = "hq", _("Group headquarters")
    BRANCH = "branch", _("Branch company")
    SUBSIDIARY = "subsidiary", _("Subsidiary")


class RegionKind(models.TextChoices):
    REGION = "region", _("Region")
    SITE = "site", _("Site")
    DATA_CENTER = "dc", _("Data center")


class SupportTier(models.IntegerChoices):
    TIER1 = 1, _("Tier 1")
    TIER2 = 2, _("Tier 2")
    TIER3 = 3, _("Tier 3")


class Criticality(models.TextChoices):
    CRITICAL = "critical", _("Critical")
    HIGH = "high", _("High")
    NORMAL = "normal", _("Normal")
    LOW = "low", _("Low")


class StateCategory(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open")
    WAITING = "waiting", _("Waiting")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")


class StateColor(models.TextChoices):
    GRAY = "gray", _("Gray")
    BLUE = "blue", _("Blue")
    GREEN = "green", _("Green")
    YELLOW = "yellow", _("Yellow")
    ORANGE = "orange", _("Orange")
    RED = "red", _("Red")
    PURPLE = "purple", _("Purple")


class ApproverRelation(models.TextChoices):
    ROLE = "role", _("Members of the approver role")
    REQUESTER_DEPARTMENT_HEAD = "requester_department_head", _("The requester's department head")
    BUSINESS_SYSTEM_OWNER = "business_system_owner", _("The business system's owner")
    SUPPORT_GROUP_LEADER = "support_group_leader", _("The support group's leader")


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")
