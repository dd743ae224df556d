from .access import Role, ScopeRule
from .calendar import (
    BusinessCalendar,
    CalendarException,
    HolidayKind,
    PublicHoliday,
    Weekday,
    WorkingPeriod,
)
from .numbering import NumberSequence
from .org import (
    BusinessSystem,
    Company,
    Department,
    Region,
    ServiceCatalogItem,
    SupportGroup,
    User,
    Vendor,
    VendorCategory,
    VendorEngineer,
)
from .scope import ScopedManager, ScopedQuerySet
from .workflow import (
    ApprovalRequest,
    ApprovalVote,
    TransitionLog,
    Workflow,
    WorkflowRecord,
    WorkflowState,
    WorkflowTransition,
)

__all__ = [
    "ApprovalRequest",
    "ApprovalVote",
    "BusinessCalendar",
    "BusinessSystem",
    "CalendarException",
    "HolidayKind",
    "PublicHoliday",
    "Weekday",
    "WorkingPeriod",
    "Company",
    "Department",
    "NumberSequence",
    "Region",
    "Role",
    "ScopeRule",
    "ScopedManager",
    "ScopedQuerySet",
    "ServiceCatalogItem",
    "SupportGroup",
    "TransitionLog",
    "User",
    "Vendor",
    "VendorCategory",
    "VendorEngineer",
    "Workflow",
    "WorkflowRecord",
    "WorkflowState",
    "WorkflowTransition",
]
