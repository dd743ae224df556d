"""Signals the platform sends; processes and notifications subscribe to them."""

from django.dispatch import Signal

# Sent after the transaction that changed a record's state has committed.
# kwargs: record, log (TransitionLog), actor.
transition_completed = Signal()

# Sent after commit when an approval request is opened or decided.
# kwargs: request (ApprovalRequest), actor.
approval_requested = Signal()
approval_decided = Signal()
