from .access import Role, ScopeRule
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
    "BusinessSystem",
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
