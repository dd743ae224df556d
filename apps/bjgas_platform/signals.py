"""Signals the platform sends; processes and notifications subscribe to them."""

from django.dispatch import Signal

# Sent inside the transaction that changed a record's state (also at creation), after
# the log row is written: receivers update derived rows (SLA clocks, segments, outbox)
# atomically with the change. A receiver that raises rolls the whole transition back.
# kwargs: record, log (TransitionLog), actor.
transition_applied = Signal()

# Sent after the transaction that changed a record's state has committed.
# kwargs: record, log (TransitionLog), actor.
transition_completed = Signal()

# Sent after commit when an approval request is opened or decided.
# kwargs: request (ApprovalRequest), actor.
approval_requested = Signal()
approval_decided = Signal()

# Sent inside the transaction that derived a record's SLA clocks again (after a
# transition, a reply, a policy change, or a sweep that fired something).
# kwargs: record, clocks (dict metric → SlaClock).
clocks_refreshed = Signal()
